-- Exception messages of the current plan: scheduled receipts to reschedule in or out or to
-- cancel, proposals whose release is past due, requirements without planning data.
CREATE VIEW mrp_exceptions AS
SELECT e.company, e.plant, e.material, e.kind, e.source, e.date, e.suggested_date, e.quantity,
       e.message, e.sequence
FROM mrp_exception_versions e
JOIN mrp_plans p ON p.company = e.company AND p.plant = e.plant AND p.material = e.material
                AND p.version = e.version
