-- Accounts receivable open items now: invoices not yet cleared (positive), credit memos and
-- payments on account not yet used (negative), with their due dates. For another date, sum the
-- movements up to it (GET /api/v1/ar-aging?as_of=). Billing documents and payments are numbered
-- each in their own range: a document is its number within its source.
CREATE VIEW ar_open_items AS
SELECT company, customer, document, document_type, posting_date, due_date, currency,
       original_amount, open_amount
FROM (
    SELECT company, source, document,
           max(customer) AS customer,
           max(document_type) AS document_type,
           min(posting_date) AS posting_date,
           max(due_date) AS due_date,
           max(currency) AS currency,
           sum(CASE WHEN entry = 'posted' THEN amount ELSE 0 END) AS original_amount,
           sum(amount) AS open_amount
    FROM (SELECT company, 'billing' AS source, customer, document, document_type, entry,
                 posting_date, due_date, currency, amount
          FROM ar_document_movements
          UNION ALL
          SELECT company, 'payment' AS source, customer, document, document_type, entry,
                 posting_date, due_date, currency, amount
          FROM ar_payment_movements) AS movements
    GROUP BY company, source, document
) AS documents
WHERE open_amount <> 0
