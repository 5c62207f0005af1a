-- The receivables account against the open items: the rows where the ledger's balance of a
-- company's receivable account (its newest determination) differs from the sum of its open
-- items. No rows: the books and the subledger agree (wherever the pipelines and the postings
-- have caught up).
CREATE VIEW ar_reconciliation AS
WITH newest AS (
    SELECT company, max(event_position) AS event_position
    FROM gl_account_determinations
    GROUP BY company
),
receivable_accounts AS (
    SELECT DISTINCT d.company, d.account
    FROM gl_account_determinations d
    JOIN newest n ON n.company = d.company AND n.event_position = d.event_position
    WHERE d.account_key = 'receivable'
),
items AS (
    SELECT company, currency, sum(open_amount) AS open_items
    FROM ar_open_items
    GROUP BY company, currency
),
ledger AS (
    SELECT m.company, m.currency, sum(m.debit) - sum(m.credit) AS ledger_balance
    FROM gl_account_movements m
    JOIN receivable_accounts a ON a.company = m.company AND a.account = m.account
    GROUP BY m.company, m.currency
)
SELECT coalesce(i.company, l.company) AS company,
       coalesce(i.currency, l.currency) AS currency,
       coalesce(i.open_items, 0) AS open_items,
       coalesce(l.ledger_balance, 0) AS ledger_balance,
       coalesce(l.ledger_balance, 0) - coalesce(i.open_items, 0) AS difference
FROM items i
FULL OUTER JOIN ledger l ON l.company = i.company AND l.currency = i.currency
WHERE coalesce(l.ledger_balance, 0) <> coalesce(i.open_items, 0)
