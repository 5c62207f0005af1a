-- Accounts payable aging today by due date, per vendor: not yet due, 1-30, 31-60, 61-90 and
-- over 90 days overdue. GET /api/v1/ap-aging?as_of= gives it for any date.
CREATE VIEW ap_aging AS
SELECT company, vendor, currency,
       sum(CASE WHEN due_date >= current_date THEN open_amount ELSE 0 END) AS not_due,
       sum(CASE WHEN due_date < current_date AND due_date >= current_date - INTERVAL '30 days'
                THEN open_amount ELSE 0 END) AS overdue_1_30,
       sum(CASE WHEN due_date < current_date - INTERVAL '30 days'
                 AND due_date >= current_date - INTERVAL '60 days'
                THEN open_amount ELSE 0 END) AS overdue_31_60,
       sum(CASE WHEN due_date < current_date - INTERVAL '60 days'
                 AND due_date >= current_date - INTERVAL '90 days'
                THEN open_amount ELSE 0 END) AS overdue_61_90,
       sum(CASE WHEN due_date < current_date - INTERVAL '90 days'
                THEN open_amount ELSE 0 END) AS overdue_over_90,
       sum(open_amount) AS total
FROM ap_open_items
GROUP BY company, vendor, currency
