-- The time-phased record of each material as last planned: gross requirements, scheduled
-- receipts, projected on hand (end of bucket), net requirements, planned receipts and releases.
CREATE VIEW mrp_records AS
SELECT r.company, r.plant, r.material, p.low_level_code, r.bucket, r.bucket_start,
       r.gross_requirements, r.scheduled_receipts, r.projected_on_hand, r.net_requirements,
       r.planned_receipts, r.planned_releases, r.sequence, r.version, p.run
FROM mrp_record_versions r
JOIN mrp_plans p ON p.company = r.company AND p.plant = r.plant AND p.material = r.material
                AND p.version = r.version
