-- stock_movements: one row per goods movement, valued as the write model decided it.
-- Source materials_stock_movements: GoodsMovementPosted events from materials.events.
SELECT
    company,
    material,
    plant,
    location,
    valuation_class,
    movement_id,
    movement_type,
    posting_date,
    quantity,
    value,
    currency,
    stock_quantity_after,
    stock_value_after,
    moving_average_after,
    purchase_order,
    purchase_order_line,
    vendor,
    detail,
    event_id,
    event_position,
    recorded_at
FROM materials_stock_movements
