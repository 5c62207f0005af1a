-- The chart of accounts as it is now, from one pass over the changes: type and currency from
-- the account's first change (its creation), name and blocked flag from the latest change that
-- set them (non-null values sort first). Plain SQL (no IGNORE NULLS), so DuckDB runs the same
-- view in the query benchmark.
CREATE VIEW gl_accounts AS
SELECT company, account, name, account_type, currency, blocked
FROM (
    SELECT
        company,
        account,
        first_value(name) OVER (
            PARTITION BY company, account ORDER BY name IS NULL, event_position DESC
        ) AS name,
        first_value(account_type) OVER (
            PARTITION BY company, account ORDER BY event_position
        ) AS account_type,
        first_value(currency) OVER (
            PARTITION BY company, account ORDER BY event_position
        ) AS currency,
        first_value(blocked) OVER (
            PARTITION BY company, account ORDER BY blocked IS NULL, event_position DESC
        ) AS blocked,
        row_number() OVER (PARTITION BY company, account ORDER BY event_position) AS nth
    FROM gl_account_changes
) AS changes
WHERE nth = 1
