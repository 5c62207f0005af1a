-- The order backlog: ordered, not yet delivered, per company, customer and material group.
CREATE VIEW order_backlog AS
SELECT company, customer, material_group, currency,
       count(*) AS open_lines,
       sum(open_quantity) AS open_quantity,
       sum(backlog_value) AS backlog_value
FROM sales_order_lines
WHERE open_quantity > 0
GROUP BY company, customer, material_group, currency
