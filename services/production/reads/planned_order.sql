-- One planned order or purchase requisition of the current plan ($1 company, $2 id), with the
-- feed position its plan version was made at.
SELECT o.plant, o.material, o.proposal_type, o.quantity, o.receipt_date, o.release_date,
       p.feed_position
FROM planned_orders o
JOIN mrp_plans p ON p.company = o.company AND p.plant = o.plant AND p.material = o.material
                AND p.sequence = o.sequence
WHERE o.company = $1 AND o.planned_order = $2
