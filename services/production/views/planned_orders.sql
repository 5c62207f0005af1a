-- Planned orders (make) and purchase requisitions (buy) of the current plan: what to release
-- when, to receive when.
CREATE VIEW planned_orders AS
SELECT o.company, o.plant, o.material, o.planned_order, o.proposal_type, o.quantity,
       o.receipt_date, o.release_date, o.sequence, o.run
FROM planned_order_versions o
JOIN mrp_plans p ON p.company = o.company AND p.plant = o.plant AND p.material = o.material
                AND p.version = o.version
