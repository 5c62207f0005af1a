-- Accounts payable of company $1 as of $2: documents posted and settlements made up to that
-- day, each open one aged by its due date against $2.
WITH documents AS (
    SELECT vendor, document,
           max(document_type) AS document_type,
           max(due_date) AS due_date,
           max(currency) AS currency,
           sum(amount) AS open_amount
    FROM ap_document_movements
    WHERE company = $1 AND posting_date <= $2
    GROUP BY vendor, document
)
SELECT vendor, document, document_type, due_date, currency, open_amount,
       CASE WHEN due_date >= $2 THEN 'not_due'
            WHEN due_date >= $2 - INTERVAL '30 days' THEN 'overdue_1_30'
            WHEN due_date >= $2 - INTERVAL '60 days' THEN 'overdue_31_60'
            WHEN due_date >= $2 - INTERVAL '90 days' THEN 'overdue_61_90'
            ELSE 'overdue_over_90' END AS bucket
FROM documents
WHERE open_amount <> 0
ORDER BY vendor, due_date, document
