-- gl_account_movements: debit and credit totals per company, account, currency and posting day.
-- Append-only: each micro-batch appends its own totals; readers sum them (gl_account_balances).
SELECT
    company,
    account,
    currency,
    period,
    posting_date,
    sum(debit) AS debit,
    sum(credit) AS credit,
    count(*) AS line_count
FROM finance_journal_lines
GROUP BY company, account, currency, period, posting_date
