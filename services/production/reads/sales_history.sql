-- The sales history a forecast reads ($1 company, $2 plant, $3 material): ordered quantities of
-- the lines not cancelled, by requested date, from $4 up to (not including) $5.
SELECT requested_date, sum(ordered_quantity) AS quantity
FROM sales_order_lines
WHERE company = $1 AND plant = $2 AND material = $3 AND NOT cancelled
  AND requested_date >= $4 AND requested_date < $5
GROUP BY requested_date
ORDER BY requested_date
