-- ar_document_movements: customer invoices (positive) and credit memos (negative) as posted,
-- and what payments and credit memos cleared of them. Summed per document: its open amount
-- (views ar_open_items, ar_aging; GET /api/v1/ar-aging?as_of=).
SELECT company, customer, document, document_type, entry, posting_date, due_date, currency,
       amount, discount, cleared_by, event_position, recorded_at
FROM sales_ar_documents
