-- name: statement-of-account
-- title: Statement of account
-- description: Each customer's invoices, credit memos, payments on account (entry posted) and what payments and credit memos cleared of them (entry cleared or credited, by which document), up to a date, with the running balance; the last line of a customer is what the customer owes. One customer, or every customer with movements; scheduled on the first of each month as of that day.
-- parameter: company company optional
-- parameter: customer text optional
-- parameter: as_of date optional
-- schedule: 0 6 1 * *
-- formats: pdf, csv, xlsx
WITH movements AS (
    SELECT company, 'billing' AS source, customer, document, document_type, entry, posting_date,
           due_date, currency, amount, cleared_by, event_position
    FROM ar_document_movements
    UNION ALL
    SELECT company, 'payment' AS source, customer, document, document_type, entry, posting_date,
           due_date, currency, amount, cleared_by, event_position
    FROM ar_payment_movements
),
-- Billing documents and payments are numbered each in their own range.
documents AS (
    SELECT company, source, document, max(customer) AS customer,
           max(document_type) AS document_type, max(due_date) AS due_date,
           max(currency) AS currency
    FROM movements
    GROUP BY company, source, document
)
SELECT
    d.customer,
    m.posting_date AS date,
    m.document,
    d.document_type,
    m.entry,
    m.cleared_by,
    d.due_date,
    d.currency,
    m.amount,
    sum(m.amount) OVER (
        PARTITION BY d.customer, d.currency
        ORDER BY m.posting_date, m.event_position
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS balance
FROM movements m
JOIN documents d ON d.company = m.company AND d.source = m.source AND d.document = m.document
WHERE m.company = $company
  AND m.posting_date <= coalesce($as_of, current_date)
  AND ($customer IS NULL OR d.customer = $customer)
ORDER BY d.customer, d.currency, m.posting_date, m.event_position
