-- Inventory value now per company, plant and valuation class: the stock ledger rolled up.
CREATE VIEW inventory_value AS
SELECT company, plant, valuation_class, currency,
       sum(quantity) AS quantity,
       sum(value) AS value,
       sum(movement_count) AS movement_count
FROM stock_levels
GROUP BY company, plant, valuation_class, currency
