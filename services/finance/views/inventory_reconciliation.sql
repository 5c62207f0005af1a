-- Inventory accounts against the stock ledger: the rows where the ledger's balance of an
-- inventory account differs from the value of the stock it is determined for (the newest
-- determination of each company, a valuation class's own account or the company's default).
-- No rows: the books and the stock agree (wherever the pipelines and the postings have
-- caught up). A stock whose class has no inventory account shows with account NULL.
CREATE VIEW inventory_reconciliation AS
WITH newest AS (
    SELECT company, max(event_position) AS event_position
    FROM gl_account_determinations
    GROUP BY company
),
inventory_accounts AS (
    SELECT d.company, d.valuation_class, d.account
    FROM gl_account_determinations d
    JOIN newest n ON n.company = d.company AND n.event_position = d.event_position
    WHERE d.account_key = 'inventory'
),
stock AS (
    SELECT company, valuation_class, currency, sum(value) AS stock_value
    FROM stock_levels
    GROUP BY company, valuation_class, currency
),
stock_by_account AS (
    SELECT s.company, coalesce(own.account, fallback.account) AS account, s.currency,
           sum(s.stock_value) AS stock_value
    FROM stock s
    LEFT JOIN inventory_accounts own
           ON own.company = s.company AND own.valuation_class = s.valuation_class
    LEFT JOIN inventory_accounts fallback
           ON fallback.company = s.company AND fallback.valuation_class = ''
    GROUP BY s.company, coalesce(own.account, fallback.account), s.currency
),
ledger AS (
    SELECT m.company, m.account, m.currency, sum(m.debit) - sum(m.credit) AS ledger_value
    FROM gl_account_movements m
    JOIN (SELECT DISTINCT company, account FROM inventory_accounts) a
      ON a.company = m.company AND a.account = m.account
    GROUP BY m.company, m.account, m.currency
)
SELECT coalesce(s.company, l.company) AS company,
       coalesce(s.account, l.account) AS account,
       coalesce(s.currency, l.currency) AS currency,
       coalesce(s.stock_value, 0) AS stock_value,
       coalesce(l.ledger_value, 0) AS ledger_value,
       coalesce(l.ledger_value, 0) - coalesce(s.stock_value, 0) AS difference
FROM stock_by_account s
FULL OUTER JOIN ledger l
  ON l.company = s.company AND l.account = s.account AND l.currency = s.currency
WHERE coalesce(l.ledger_value, 0) <> coalesce(s.stock_value, 0)
