-- sales_order_line_changes: what each sales order event did to a line. "entered" rows carry the
-- line as it is from then on (quantity in the base unit, net and gross value); "cancelled",
-- "delivered" and "billed" rows carry what changed. The view sales_order_lines folds them.
SELECT company, sales_order, customer, line, entry, material, material_group, plant,
       document_date, requested_date, currency, quantity, net_value, gross_value,
       event_position, recorded_at
FROM sales_order_lines_entered
