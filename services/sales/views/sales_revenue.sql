-- Revenue (net of tax and of credit memos), cost of the goods and margin, with quantities, per
-- company, month, customer, material and material group.
CREATE VIEW sales_revenue AS
SELECT company, date_trunc('month', posting_date) AS month, customer, material, material_group,
       currency,
       sum(quantity) AS quantity,
       sum(net_value) AS revenue,
       sum(cost) AS cost,
       sum(net_value) - sum(cost) AS margin
FROM billing_document_lines
GROUP BY company, date_trunc('month', posting_date), customer, material, material_group, currency
