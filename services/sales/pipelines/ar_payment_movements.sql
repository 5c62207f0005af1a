-- ar_payment_movements: what a customer payment left on account, a negative open item.
SELECT company, customer, document, document_type, entry, posting_date, due_date, currency,
       amount, discount, cleared_by, event_position, recorded_at
FROM sales_ar_payments
