-- The chart of accounts as it is now, in one aggregate over the changes: type and currency
-- from the account's first change (its creation), name and blocked flag from the latest change
-- that set them. "The value of the latest change that set it" is max(<position, 20 digits> ||
-- value) with the position cut off again: no window functions (three sorts for 60 rows cost
-- more than the rest of a dashboard query) and no IGNORE NULLS, so DuckDB runs the same view
-- in the query benchmark.
CREATE VIEW gl_accounts AS
SELECT
    company,
    account,
    substr(max(CASE WHEN name IS NOT NULL
        THEN lpad(CAST(event_position AS VARCHAR), 20, '0') || name END), 21) AS name,
    substr(min(CASE WHEN account_type IS NOT NULL
        THEN lpad(CAST(event_position AS VARCHAR), 20, '0') || account_type END), 21) AS account_type,
    substr(min(CASE WHEN currency IS NOT NULL
        THEN lpad(CAST(event_position AS VARCHAR), 20, '0') || currency END), 21) AS currency,
    CAST(substr(max(CASE WHEN blocked IS NOT NULL
        THEN lpad(CAST(event_position AS VARCHAR), 20, '0') || CAST(blocked AS VARCHAR) END), 21) AS BOOLEAN) AS blocked
FROM gl_account_changes
GROUP BY company, account
