-- Sales order lines now: the quantity and values as last entered (nothing when cancelled),
-- what is delivered and billed of them, and what is still to deliver (the backlog).
CREATE VIEW sales_order_lines AS
WITH entered AS (
    SELECT company, sales_order, line, material, material_group, plant, requested_date,
           quantity, net_value, gross_value,
           row_number() OVER (PARTITION BY company, sales_order, line
                              ORDER BY event_position DESC) AS newest
    FROM sales_order_line_changes
    WHERE entry = 'entered'
),
headers AS (
    SELECT company, sales_order, max(customer) AS customer, max(document_date) AS document_date,
           max(currency) AS currency
    FROM sales_order_line_changes
    WHERE entry = 'entered'
    GROUP BY company, sales_order
),
moved AS (
    SELECT company, sales_order, line,
           bool_or(entry = 'cancelled') AS cancelled,
           sum(CASE WHEN entry = 'delivered' THEN quantity ELSE 0 END) AS delivered_quantity,
           sum(CASE WHEN entry = 'billed' THEN quantity ELSE 0 END) AS billed_quantity
    FROM sales_order_line_changes
    GROUP BY company, sales_order, line
)
SELECT e.company, e.sales_order, h.customer, e.line, e.material, e.material_group, e.plant,
       h.document_date, e.requested_date, h.currency,
       e.quantity AS ordered_quantity, e.net_value, e.gross_value,
       m.delivered_quantity, m.billed_quantity, m.cancelled,
       CASE WHEN m.cancelled THEN 0
            ELSE greatest(e.quantity - m.delivered_quantity, 0) END AS open_quantity,
       CASE WHEN m.cancelled OR e.quantity = 0 THEN 0
            ELSE round(e.net_value * greatest(e.quantity - m.delivered_quantity, 0) / e.quantity, 2)
       END AS backlog_value
FROM entered e
JOIN headers h ON h.company = e.company AND h.sales_order = e.sales_order
JOIN moved m ON m.company = e.company AND m.sales_order = e.sales_order AND m.line = e.line
WHERE e.newest = 1
