-- Days sales outstanding per company and currency: open receivables against the gross amount
-- billed over the last 90 days, per day.
CREATE VIEW days_sales_outstanding AS
WITH billed AS (
    SELECT company, currency, sum(net_value + tax) AS billed_90_days
    FROM billing_document_lines
    WHERE posting_date > current_date - INTERVAL '90 days'
    GROUP BY company, currency
),
open AS (
    SELECT company, currency, sum(open_amount) AS receivables
    FROM ar_open_items
    GROUP BY company, currency
)
SELECT o.company, o.currency, o.receivables, coalesce(b.billed_90_days, 0) AS billed_90_days,
       CASE WHEN coalesce(b.billed_90_days, 0) = 0 THEN NULL
            ELSE round(o.receivables * 90 / b.billed_90_days, 1) END AS days_sales_outstanding
FROM open o
LEFT JOIN billed b ON b.company = o.company AND b.currency = o.currency
