-- Materials' stock_movements as an Arroyo pipeline: one row per goods movement, valued as the
-- write model decided it (services/materials/pipelines/stock_movements.sql), and stock_levels:
-- quantity and value per material, plant, location and day, as tumbling windows.
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
    CAST(movement.moving_average_after AS DECIMAL(38, 6)) AS moving_average_after
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
    moving_average_after DECIMAL(38, 6)
) WITH (
    connector = 'delta',
    path = '{{LAKE}}/arroyo/stock_movements',
    format = 'parquet',
    rollover_seconds = '60'
);

INSERT INTO stock_movements SELECT * FROM movements;

CREATE TABLE stock_levels (
    window_start TIMESTAMP,
    company TEXT,
    material TEXT,
    plant TEXT,
    location TEXT,
    valuation_class TEXT,
    currency TEXT,
    posting_date DATE,
    quantity DECIMAL(38, 4),
    value DECIMAL(38, 4),
    movement_count BIGINT
) WITH (
    connector = 'delta',
    path = '{{LAKE}}/arroyo/stock_levels',
    format = 'parquet',
    rollover_seconds = '60'
);

-- Append-only totals per window: readers sum them, as they sum the built-in runner's totals
-- per micro-batch (services/materials/pipelines/stock_levels.sql).
INSERT INTO stock_levels
SELECT
    window.start AS window_start,
    company,
    material,
    plant,
    location,
    valuation_class,
    currency,
    posting_date,
    sum(quantity) AS quantity,
    sum(value) AS value,
    count(*) AS movement_count
FROM movements
GROUP BY tumble(INTERVAL '1 minute'), company, material, plant, location, valuation_class, currency, posting_date;
