-- Every plan version of every material: which run or net change planned it, when, over which
-- horizon, at which low-level code.
CREATE VIEW mrp_plan_versions AS
SELECT company, plant, material, sequence, version, run, planned_at, feed_position,
       low_level_code, procurement, horizon_start, bucket_size, buckets
FROM mrp_plan_rows
WHERE row_kind = 'plan'
