-- One material's planned orders and purchase requisitions of the plan version $4 (the record's).
SELECT planned_order, proposal_type, quantity, receipt_date, release_date
FROM planned_order_versions
WHERE company = $1 AND plant = $2 AND material = $3 AND version = $4
ORDER BY receipt_date, planned_order
