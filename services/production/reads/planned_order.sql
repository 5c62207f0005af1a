-- One planned order or purchase requisition of the current plan ($1 company, $2 id).
SELECT plant, material, proposal_type, quantity, receipt_date, release_date
FROM planned_orders
WHERE company = $1 AND planned_order = $2
