-- Each material's newest plan version per company and plant: the run or net change that
-- planned it, when, over which horizon, at which low-level code.
CREATE VIEW mrp_plans AS
SELECT company, plant, material, sequence, version, run, planned_at, feed_position, low_level_code,
       procurement, horizon_start, bucket_size, buckets
FROM (
    SELECT *, row_number() OVER (PARTITION BY company, plant, material
                                 ORDER BY sequence DESC) AS newest
    FROM mrp_plan_versions
) AS versions
WHERE newest = 1
