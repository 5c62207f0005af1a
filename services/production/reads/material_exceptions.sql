-- One material's exception messages as last planned.
SELECT kind, source, date, suggested_date, quantity, message
FROM mrp_exceptions
WHERE company = $1 AND plant = $2 AND material = $3
ORDER BY date, kind, source
