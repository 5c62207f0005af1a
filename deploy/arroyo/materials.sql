-- Materials' stock_movements as an Arroyo pipeline: one row per goods movement, valued as the
-- write model decided it (services/materials/pipelines/stock_movements.sql), and the daily
-- quantity and value per material and plant as tumbling windows.
-- {{KAFKA}} and {{LAKE}} are replaced by deploy/arroyo/submit (or by hand).

-- materials.events: GoodsMovementPosted is the payload with movements.
CREATE TABLE materials_events (
    company TEXT,
    material TEXT,
    plant TEXT,
    valuation_class TEXT,
    movements STRUCT<
        movement_id TEXT,
        posting_date TEXT,
        location TEXT,
        kind STRUCT<"type" TEXT, purchase_order TEXT, line INT, vendor TEXT>,
        quantity TEXT,
        value TEXT,
        currency TEXT,
        stock_quantity_after TEXT,
        stock_value_after TEXT,
        moving_average_after TEXT
    >[]
) WITH (
    connector = 'kafka',
    bootstrap_servers = '{{KAFKA}}',
    topic = 'materials.events',
    type = 'source',
    format = 'json',
    'source.offset' = 'earliest',
    bad_data = 'drop'
);

CREATE VIEW movements AS
SELECT
    company,
    material,
    plant,
    movement.location AS location,
    valuation_class,
    movement.movement_id AS movement_id,
    movement.kind."type" AS movement_type,
    CAST(movement.posting_date AS DATE) AS posting_date,
    CAST(movement.quantity AS DECIMAL(38, 4)) AS quantity,
    CAST(movement.value AS DECIMAL(38, 4)) AS value,
    movement.currency AS currency,
    CAST(movement.stock_quantity_after AS DECIMAL(38, 4)) AS stock_quantity_after,
    CAST(movement.stock_value_after AS DECIMAL(38, 4)) AS stock_value_after,
    CAST(movement.moving_average_after AS DECIMAL(38, 4)) AS moving_average_after
FROM (SELECT *, unnest(movements) AS movement FROM materials_events WHERE movements IS NOT NULL);

CREATE TABLE stock_movements (
    company TEXT,
    material TEXT,
    plant TEXT,
    location TEXT,
    valuation_class TEXT,
    movement_id TEXT,
    movement_type TEXT,
    posting_date DATE,
    quantity DECIMAL(38, 4),
    value DECIMAL(38, 4),
    currency TEXT,
    stock_quantity_after DECIMAL(38, 4),
    stock_value_after DECIMAL(38, 4),
    moving_average_after DECIMAL(38, 4)
) WITH (
    connector = 'delta',
    path = '{{LAKE}}/arroyo/stock_movements',
    format = 'parquet',
    rollover_seconds = '60'
);

INSERT INTO stock_movements SELECT * FROM movements;

CREATE TABLE stock_daily (
    window_start TIMESTAMP,
    company TEXT,
    material TEXT,
    plant TEXT,
    posting_date DATE,
    quantity DECIMAL(38, 4),
    value DECIMAL(38, 4),
    movements BIGINT
) WITH (
    connector = 'delta',
    path = '{{LAKE}}/arroyo/stock_daily',
    format = 'parquet',
    rollover_seconds = '60'
);

INSERT INTO stock_daily
SELECT
    window.start AS window_start,
    company,
    material,
    plant,
    posting_date,
    sum(quantity) AS quantity,
    sum(value) AS value,
    count(*) AS movements
FROM movements
GROUP BY tumble(INTERVAL '1 minute'), company, material, plant, posting_date;
