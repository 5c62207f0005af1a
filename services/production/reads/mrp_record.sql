-- One material's time-phased record as last planned ($1 company, $2 plant, $3 material).
SELECT bucket, bucket_start, gross_requirements, scheduled_receipts, projected_on_hand,
       net_requirements, planned_receipts, planned_releases, low_level_code, sequence, version, run
FROM mrp_records
WHERE company = $1 AND plant = $2 AND material = $3
ORDER BY bucket
