-- name: balance-sheet
-- title: Balance sheet
-- description: Assets, liabilities and equity at the end of the period, at the end of the month before, and a year earlier. Revenue and expense accounts are read too: their result since the first posting is the net income shown in equity, so the sheet balances.
-- parameter: period month
-- parameter: company company optional
-- schedule: 0 6 1 * *
-- formats: csv, xlsx, parquet, pdf
-- statement: balance_sheet
SELECT
    m.company,
    m.currency,
    m.account,
    a.name,
    a.account_type,
    sum(m.debit - m.credit) AS balance,
    sum(CASE WHEN m.posting_date <= $period_previous_end THEN m.debit - m.credit ELSE 0 END) AS previous_period_balance,
    sum(CASE WHEN m.posting_date <= $period_previous_year_end THEN m.debit - m.credit ELSE 0 END) AS previous_year_balance
FROM gl_account_movements AS m
LEFT JOIN gl_accounts AS a ON a.company = m.company AND a.account = m.account
WHERE m.company = $company AND m.posting_date <= $period_end
GROUP BY m.company, m.currency, m.account, a.name, a.account_type
ORDER BY m.currency, m.account
