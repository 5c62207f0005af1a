-- Balance of account $2 of company $1 in currency $3 as of posting date $4 (inclusive).
SELECT
    sum(debit) AS debit_total,
    sum(credit) AS credit_total
FROM gl_account_movements
WHERE company = $1 AND account = $2 AND currency = $3 AND posting_date <= $4
