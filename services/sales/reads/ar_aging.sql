-- Accounts receivable of company $1 as of $2: invoices, credit memos and payments on account
-- posted and cleared up to that day, each open one aged by its due date against $2.
WITH documents AS (
    SELECT source, document,
           max(customer) AS customer,
           max(document_type) AS document_type,
           max(due_date) AS due_date,
           max(currency) AS currency,
           sum(amount) AS open_amount
    FROM (SELECT company, 'billing' AS source, customer, document, document_type, posting_date,
                 due_date, currency, amount
          FROM ar_document_movements
          UNION ALL
          SELECT company, 'payment' AS source, customer, document, document_type, posting_date,
                 due_date, currency, amount
          FROM ar_payment_movements) AS movements
    WHERE company = $1 AND posting_date <= $2
    GROUP BY source, document
)
SELECT customer, document, document_type, due_date, currency, open_amount,
       CASE WHEN due_date >= $2 THEN 'current'
            WHEN due_date >= $2 - INTERVAL '30 days' THEN 'past_due_1_30'
            WHEN due_date >= $2 - INTERVAL '60 days' THEN 'past_due_31_60'
            WHEN due_date >= $2 - INTERVAL '90 days' THEN 'past_due_61_90'
            ELSE 'past_due_over_90' END AS bucket
FROM documents
WHERE open_amount <> 0
ORDER BY customer, due_date, document
