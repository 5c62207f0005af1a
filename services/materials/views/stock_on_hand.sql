-- Stock on hand now per company, material, plant and storage location: every movement rolled
-- up, like gl_account_balances. Value is kept per plant (a transfer moves quantity, not value):
-- stock_value is the plant's value shared out by quantity, for reading, not for posting.
CREATE VIEW stock_on_hand AS
WITH locations AS (
    SELECT company, material, plant, location, valuation_class, currency,
           sum(quantity) AS quantity
    FROM stock_levels
    GROUP BY company, material, plant, location, valuation_class, currency
),
plants AS (
    SELECT company, material, plant, sum(quantity) AS quantity, sum(value) AS value
    FROM stock_levels
    GROUP BY company, material, plant
)
SELECT l.company, l.material, l.plant, l.location, l.valuation_class, l.currency, l.quantity,
       CASE WHEN p.quantity = 0 THEN CAST(0 AS DECIMAL(38, 4))
            ELSE CAST(round(p.value * l.quantity / p.quantity, 2) AS DECIMAL(38, 4)) END
           AS stock_value
FROM locations l
JOIN plants p ON p.company = l.company AND p.material = l.material AND p.plant = l.plant
WHERE l.quantity <> 0
