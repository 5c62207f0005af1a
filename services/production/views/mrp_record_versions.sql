-- The time-phased record of every plan version, one row per bucket.
CREATE VIEW mrp_record_versions AS
SELECT company, plant, material, sequence, version, bucket, bucket_start, gross_requirements,
       scheduled_receipts, projected_on_hand, net_requirements, planned_receipts,
       planned_releases
FROM mrp_plan_rows
WHERE row_kind = 'record'
