-- name: income-statement
-- title: Income statement
-- description: Revenue and expenses of the period and the month before, of the year to date and of the same months a year earlier.
-- parameter: period month
-- parameter: company company optional
-- schedule: 0 6 1 * *
-- formats: csv, xlsx, parquet, pdf
-- statement: income_statement
SELECT
    m.company,
    m.currency,
    m.account,
    a.name,
    a.account_type,
    sum(CASE WHEN m.posting_date >= $period_start THEN m.debit - m.credit ELSE 0 END) AS period,
    sum(CASE WHEN m.posting_date BETWEEN $period_previous_start AND $period_previous_end THEN m.debit - m.credit ELSE 0 END) AS previous_period,
    sum(CASE WHEN m.posting_date >= $period_year_start THEN m.debit - m.credit ELSE 0 END) AS year_to_date,
    sum(CASE WHEN m.posting_date BETWEEN $period_previous_year_start AND $period_previous_year_end THEN m.debit - m.credit ELSE 0 END) AS previous_year_to_date
FROM gl_account_movements AS m
LEFT JOIN gl_accounts AS a ON a.company = m.company AND a.account = m.account
WHERE m.company = $company
    AND a.account_type IN ('revenue', 'expense')
    AND m.posting_date <= $period_end
    AND (m.posting_date >= $period_previous_year_start)
GROUP BY m.company, m.currency, m.account, a.name, a.account_type
ORDER BY m.currency, m.account
