-- name: trial-balance
-- title: Trial balance
-- description: Every account with a balance or movement: balance before the period, the period's debits and credits, the closing balance (as debit or credit), the year to date, and the closing balance a year earlier.
-- parameter: period month
-- parameter: company company optional
-- schedule: 0 6 1 * *
-- formats: csv, xlsx, parquet, pdf
-- statement: trial_balance
WITH movements AS (
    SELECT
        company,
        account,
        currency,
        sum(CASE WHEN posting_date < $period_start THEN debit - credit ELSE 0 END) AS opening_balance,
        sum(CASE WHEN posting_date >= $period_start THEN debit ELSE 0 END) AS period_debit,
        sum(CASE WHEN posting_date >= $period_start THEN credit ELSE 0 END) AS period_credit,
        sum(debit - credit) AS closing_balance,
        sum(CASE WHEN posting_date >= $period_year_start THEN debit ELSE 0 END) AS year_to_date_debit,
        sum(CASE WHEN posting_date >= $period_year_start THEN credit ELSE 0 END) AS year_to_date_credit,
        sum(CASE WHEN posting_date <= $period_previous_year_end THEN debit - credit ELSE 0 END) AS previous_year_closing_balance
    FROM gl_account_movements
    WHERE company = $company AND posting_date <= $period_end
    GROUP BY company, account, currency
)
SELECT
    m.company,
    m.currency,
    m.account,
    a.name,
    a.account_type,
    m.opening_balance,
    m.period_debit,
    m.period_credit,
    m.closing_balance,
    m.year_to_date_debit,
    m.year_to_date_credit,
    m.previous_year_closing_balance
FROM movements AS m
LEFT JOIN gl_accounts AS a ON a.company = m.company AND a.account = m.account
ORDER BY m.currency, m.account
