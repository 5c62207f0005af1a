-- Accounts payable open items now: every vendor invoice or credit memo not yet settled, signed
-- (a credit memo negative), with its due date and whether it is blocked for payment. For
-- another date, sum ap_document_movements up to it (GET /api/v1/ap-aging?as_of=).
CREATE VIEW ap_open_items AS
SELECT company, vendor, document, document_type, invoice_date, due_date, currency,
       original_amount, open_amount, blocked
FROM (
    SELECT company, vendor, document,
           max(document_type) AS document_type,
           max(invoice_date) AS invoice_date,
           max(due_date) AS due_date,
           max(currency) AS currency,
           sum(CASE WHEN entry = 'posted' THEN amount ELSE 0 END) AS original_amount,
           sum(amount) AS open_amount,
           bool_or(entry = 'posted' AND blocked) AND NOT bool_or(entry = 'released') AS blocked
    FROM ap_document_movements
    GROUP BY company, vendor, document
) AS documents
WHERE open_amount <> 0
