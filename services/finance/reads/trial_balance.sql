-- Trial balance of company $1 for period $2 (YYYY-MM): per account and currency the balance
-- before the period, the period's debits and credits, and the closing balance (debit - credit).
WITH movements AS (
    SELECT
        account,
        currency,
        sum(CASE WHEN period < $2 THEN debit - credit ELSE 0 END) AS opening_balance,
        sum(CASE WHEN period = $2 THEN debit ELSE 0 END) AS period_debit,
        sum(CASE WHEN period = $2 THEN credit ELSE 0 END) AS period_credit,
        sum(debit - credit) AS closing_balance
    FROM gl_account_movements
    WHERE company = $1 AND period <= $2
    GROUP BY account, currency
)
SELECT
    m.account,
    a.name,
    a.account_type,
    m.currency,
    m.opening_balance,
    m.period_debit,
    m.period_credit,
    m.closing_balance
FROM movements AS m
LEFT JOIN gl_accounts AS a ON a.company = $1 AND a.account = m.account
ORDER BY m.account, m.currency
