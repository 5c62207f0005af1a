-- Exception messages of every plan version: reschedule in or out, cancel, past-due release,
-- no planning data.
CREATE VIEW mrp_exception_versions AS
SELECT company, plant, material, sequence, version, kind, source, date, suggested_date, quantity,
       message
FROM mrp_plan_rows
WHERE row_kind = 'exception'
