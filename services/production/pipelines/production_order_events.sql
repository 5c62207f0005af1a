-- production_order_events: what each production order event did, with its amount on work in
-- process (debit positive: issues and activity; credit negative: receipts and settlement).
SELECT company, production_order, event, date, status, material, operation, quantity,
       wip_amount, event_position
FROM production_order_event_rows
