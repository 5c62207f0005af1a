-- Planned orders (make) and purchase requisitions (buy) of every plan version.
CREATE VIEW planned_order_versions AS
SELECT company, plant, material, sequence, version, planned_order, proposal_type, quantity,
       receipt_date, release_date, run
FROM mrp_plan_rows
WHERE row_kind = 'order'
