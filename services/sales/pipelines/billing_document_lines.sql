-- billing_document_lines: invoice lines and credit memo lines (negative), with revenue (net),
-- tax and the cost of the goods: revenue, margin and quantity by customer, material, group and
-- month come from here (view sales_revenue).
SELECT company, document, document_type, customer, sales_order, line, material, material_group,
       posting_date, currency, quantity, net_value, tax, cost, event_position
FROM sales_billing_lines
