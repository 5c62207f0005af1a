-- ap_document_movements: vendor invoices and credit memos as posted (amount owed, signed) and
-- their settlements by payments (negative, discount beside it). Open items and the aging sum
-- them as of a date (views ap_open_items, ap_aging; GET /api/v1/ap-aging?as_of=).
SELECT
    company,
    vendor,
    document,
    document_type,
    entry,
    invoice_date,
    posting_date,
    due_date,
    currency,
    amount,
    discount,
    payment_id,
    blocked,
    event_position,
    recorded_at
FROM materials_vendor_documents
