-- Purchase order lines now: ordered, received and invoiced quantities (base unit) and values,
-- what is still open, and the line's status as the write model decides it.
CREATE VIEW purchase_order_lines AS
WITH orders AS (
    SELECT company, purchase_order, max(vendor) AS vendor, max(currency) AS currency,
           max(order_date) AS order_date, bool_or(closed) AS order_closed
    FROM purchase_order_line_changes
    GROUP BY company, purchase_order
),
terms AS (
    SELECT company, purchase_order, line, delivery_date, unit_price
    FROM (
        SELECT company, purchase_order, line, delivery_date, unit_price,
               row_number() OVER (PARTITION BY company, purchase_order, line
                                  ORDER BY event_position DESC) AS newest
        FROM purchase_order_line_changes
        WHERE delivery_date IS NOT NULL
    ) AS changes
    WHERE newest = 1
),
totals AS (
    SELECT company, purchase_order, line,
           max(material) AS material, max(plant) AS plant,
           sum(ordered_quantity) AS ordered_quantity,
           sum(received_quantity) AS received_quantity,
           sum(received_value) AS received_value,
           sum(invoiced_quantity) AS invoiced_quantity,
           sum(invoiced_amount) AS invoiced_amount,
           bool_or(cancelled) AS cancelled
    FROM purchase_order_line_changes
    WHERE line > 0
    GROUP BY company, purchase_order, line
),
lines AS (
    SELECT t.company, t.purchase_order, t.line, o.vendor, t.material, t.plant, o.currency,
           o.order_date, p.delivery_date, p.unit_price, t.ordered_quantity,
           t.received_quantity, t.received_value, t.invoiced_quantity, t.invoiced_amount,
           t.cancelled, o.order_closed,
           CASE WHEN t.cancelled OR o.order_closed OR t.received_quantity >= t.ordered_quantity
                THEN CAST(0 AS DECIMAL(38, 4))
                ELSE t.ordered_quantity - t.received_quantity END AS open_quantity
    FROM totals t
    JOIN orders o ON o.company = t.company AND o.purchase_order = t.purchase_order
    JOIN terms p ON p.company = t.company AND p.purchase_order = t.purchase_order
                AND p.line = t.line
)
SELECT company, purchase_order, line, vendor, material, plant, currency, order_date,
       delivery_date, unit_price, ordered_quantity, received_quantity, received_value,
       invoiced_quantity, invoiced_amount, open_quantity,
       CAST(round(open_quantity * unit_price, 2) AS DECIMAL(38, 4)) AS open_value,
       order_closed,
       CASE WHEN cancelled THEN 'closed'
            WHEN received_quantity = 0 AND invoiced_quantity = 0 THEN 'open'
            WHEN received_quantity < ordered_quantity THEN 'partially_received'
            WHEN invoiced_quantity >= received_quantity THEN 'invoiced'
            ELSE 'received' END AS status
FROM lines
