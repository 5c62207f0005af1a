-- Finance's pipelines as one Arroyo pipeline: gl_journal_lines (one row per posted line) and
-- gl_account_movements (debit and credit totals per company, account, currency and posting
-- day, per one-minute window). The same columns as services/finance/pipelines/*.sql; see
-- deploy/arroyo/README.md for what differs from the built-in runner.
-- {{KAFKA}} and {{LAKE}} are replaced by deploy/arroyo/submit (or by hand).

-- finance.events: the payload of each event as JSON; JournalEntryPosted is the one with lines.
CREATE TABLE finance_events (
    entry_id TEXT,
    company TEXT,
    posting_date TEXT,
    document_date TEXT,
    period TEXT,
    reference TEXT,
    text TEXT,
    reversal_of TEXT,
    lines STRUCT<
        line_no INT,
        account TEXT,
        debit TEXT,
        credit TEXT,
        currency TEXT,
        cost_center TEXT,
        text TEXT
    >[]
) WITH (
    connector = 'kafka',
    bootstrap_servers = '{{KAFKA}}',
    topic = 'finance.events',
    type = 'source',
    format = 'json',
    'source.offset' = 'earliest',
    bad_data = 'drop'
);

CREATE VIEW journal_lines AS
SELECT
    company,
    entry_id,
    line.line_no AS line_no,
    CAST(posting_date AS DATE) AS posting_date,
    CAST(document_date AS DATE) AS document_date,
    period,
    line.account AS account,
    CAST(line.debit AS DECIMAL(38, 4)) AS debit,
    CAST(line.credit AS DECIMAL(38, 4)) AS credit,
    line.currency AS currency,
    line.cost_center AS cost_center,
    line.text AS line_text,
    reference,
    text AS entry_text,
    reversal_of
FROM (SELECT *, unnest(lines) AS line FROM finance_events WHERE lines IS NOT NULL);

CREATE TABLE gl_journal_lines (
    company TEXT,
    entry_id TEXT,
    line_no INT,
    posting_date DATE,
    document_date DATE,
    period TEXT,
    account TEXT,
    debit DECIMAL(38, 4),
    credit DECIMAL(38, 4),
    currency TEXT,
    cost_center TEXT,
    line_text TEXT,
    reference TEXT,
    entry_text TEXT,
    reversal_of TEXT
) WITH (
    connector = 'delta',
    path = '{{LAKE}}/arroyo/gl_journal_lines',
    format = 'parquet',
    rollover_seconds = '60'
);

INSERT INTO gl_journal_lines SELECT * FROM journal_lines;

-- Append-only movements per window: readers sum them, as they sum the built-in runner's
-- movements per micro-batch (gl_account_balances).
CREATE TABLE gl_account_movements (
    window_start TIMESTAMP,
    company TEXT,
    account TEXT,
    currency TEXT,
    period TEXT,
    posting_date DATE,
    debit DECIMAL(38, 4),
    credit DECIMAL(38, 4),
    line_count BIGINT
) WITH (
    connector = 'delta',
    path = '{{LAKE}}/arroyo/gl_account_movements',
    format = 'parquet',
    rollover_seconds = '60'
);

INSERT INTO gl_account_movements
SELECT
    window.start AS window_start,
    company,
    account,
    currency,
    period,
    posting_date,
    sum(debit) AS debit,
    sum(credit) AS credit,
    count(*) AS line_count
FROM journal_lines
GROUP BY tumble(INTERVAL '1 minute'), company, account, currency, period, posting_date;
