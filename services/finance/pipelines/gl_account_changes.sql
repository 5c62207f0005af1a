-- gl_account_changes: the chart of accounts as a stream of changes; view gl_accounts folds it.
SELECT
    company,
    account,
    name,
    account_type,
    currency,
    blocked,
    change,
    event_position,
    changed_at
FROM finance_account_changes
