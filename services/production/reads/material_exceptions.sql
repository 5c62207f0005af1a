-- One material's exception messages of the plan version $4 (the record's).
SELECT kind, source, date, suggested_date, quantity, message
FROM mrp_exception_versions
WHERE company = $1 AND plant = $2 AND material = $3 AND version = $4
ORDER BY date, kind, source
