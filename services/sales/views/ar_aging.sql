-- Accounts receivable aging today by due date, per customer: current (not yet due), 1-30,
-- 31-60, 61-90 and over 90 days past due. GET /api/v1/ar-aging?as_of= gives it for any date.
CREATE VIEW ar_aging AS
SELECT company, customer, currency,
       sum(CASE WHEN due_date >= current_date THEN open_amount ELSE 0 END) AS current_amount,
       sum(CASE WHEN due_date < current_date AND due_date >= current_date - INTERVAL '30 days'
                THEN open_amount ELSE 0 END) AS past_due_1_30,
       sum(CASE WHEN due_date < current_date - INTERVAL '30 days'
                 AND due_date >= current_date - INTERVAL '60 days'
                THEN open_amount ELSE 0 END) AS past_due_31_60,
       sum(CASE WHEN due_date < current_date - INTERVAL '60 days'
                 AND due_date >= current_date - INTERVAL '90 days'
                THEN open_amount ELSE 0 END) AS past_due_61_90,
       sum(CASE WHEN due_date < current_date - INTERVAL '90 days'
                THEN open_amount ELSE 0 END) AS past_due_over_90,
       sum(open_amount) AS total
FROM ar_open_items
GROUP BY company, customer, currency
