-- One material's planned orders and purchase requisitions as last planned.
SELECT planned_order, proposal_type, quantity, receipt_date, release_date
FROM planned_orders
WHERE company = $1 AND plant = $2 AND material = $3
ORDER BY receipt_date, planned_order
