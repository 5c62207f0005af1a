-- purchase_order_line_changes: what each purchase order event changed on a line (line 0: the
-- whole order, when it was closed). Quantities in the base unit; readers sum them
-- (view purchase_order_lines).
SELECT
    company,
    purchase_order,
    line,
    vendor,
    material,
    plant,
    currency,
    order_date,
    delivery_date,
    unit_price,
    change,
    ordered_quantity,
    received_quantity,
    received_value,
    invoiced_quantity,
    invoiced_amount,
    cancelled,
    closed,
    event_position,
    recorded_at
FROM materials_purchase_order_events
