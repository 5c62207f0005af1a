-- stock_levels: quantity and value moved per company, material, plant, storage location and day.
-- Append-only: each micro-batch appends its own totals; readers sum them (stock on hand, value).
SELECT
    company,
    material,
    plant,
    location,
    valuation_class,
    currency,
    posting_date,
    sum(quantity) AS quantity,
    sum(value) AS value,
    count(*) AS movement_count
FROM materials_stock_movements
GROUP BY company, material, plant, location, valuation_class, currency, posting_date
