-- The chart of accounts as it is now: the latest change of each account wins.
CREATE VIEW gl_accounts AS
SELECT company, account, name, account_type, currency, blocked
FROM (
    SELECT
        company,
        account,
        last_value(name) IGNORE NULLS OVER w AS name,
        first_value(account_type) OVER w AS account_type,
        first_value(currency) OVER w AS currency,
        last_value(blocked) IGNORE NULLS OVER w AS blocked,
        row_number() OVER (PARTITION BY company, account ORDER BY event_position DESC) AS newest
    FROM gl_account_changes
    WINDOW w AS (PARTITION BY company, account ORDER BY event_position
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
) AS changes
WHERE newest = 1
