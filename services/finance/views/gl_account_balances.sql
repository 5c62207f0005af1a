-- Current balance of every account: all movements rolled up. Balance = debit - credit.
CREATE VIEW gl_account_balances AS
SELECT
    company,
    account,
    currency,
    sum(debit) AS debit_total,
    sum(credit) AS credit_total,
    sum(debit) - sum(credit) AS balance,
    sum(line_count) AS line_count
FROM gl_account_movements
GROUP BY company, account, currency
