-- The chart of accounts as it is now: type and currency from the account's first change (its
-- creation), name and blocked flag from the latest change that set them. Plain SQL (no IGNORE
-- NULLS), so DuckDB runs the same view in the query benchmark.
CREATE VIEW gl_accounts AS
WITH created AS (
    SELECT
        company,
        account,
        account_type,
        currency,
        row_number() OVER (PARTITION BY company, account ORDER BY event_position) AS nth
    FROM gl_account_changes
),
named AS (
    SELECT
        company,
        account,
        name,
        row_number() OVER (PARTITION BY company, account ORDER BY event_position DESC) AS nth
    FROM gl_account_changes
    WHERE name IS NOT NULL
),
flagged AS (
    SELECT
        company,
        account,
        blocked,
        row_number() OVER (PARTITION BY company, account ORDER BY event_position DESC) AS nth
    FROM gl_account_changes
    WHERE blocked IS NOT NULL
)
SELECT c.company, c.account, n.name, c.account_type, c.currency, f.blocked
FROM created AS c
LEFT JOIN named AS n ON n.company = c.company AND n.account = c.account AND n.nth = 1
LEFT JOIN flagged AS f ON f.company = c.company AND f.account = c.account AND f.nth = 1
WHERE c.nth = 1
