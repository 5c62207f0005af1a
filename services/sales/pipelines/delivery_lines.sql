-- delivery_lines: one row per delivery line, the quantity issued (base unit) and its cost.
SELECT company, delivery, sales_order, customer, line, material, plant, location,
       posting_date, quantity, cost, event_position
FROM sales_delivery_lines
