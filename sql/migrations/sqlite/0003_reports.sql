-- Reports: definitions created over REST (the built-in ones are files), runs and their state,
-- and the last slot each schedule was claimed for. Times are epoch milliseconds (one text of
-- SQL for both backends). A scheduled run's (report, slot) is unique: two instances claiming
-- the same slot insert one run.
CREATE TABLE report_definitions (
    name        TEXT   PRIMARY KEY,
    definition  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE report_runs (
    id           TEXT    PRIMARY KEY,
    report       TEXT    NOT NULL,
    parameters   TEXT    NOT NULL,
    formats      TEXT    NOT NULL,
    trigger      TEXT    NOT NULL,
    slot         BIGINT,
    status       TEXT    NOT NULL,
    queued_at    BIGINT  NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT,
    lease_until  BIGINT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    row_count    BIGINT,
    error        TEXT,
    outputs      TEXT
);
CREATE UNIQUE INDEX report_runs_slot ON report_runs (report, slot);
CREATE INDEX report_runs_waiting ON report_runs (status, queued_at);

CREATE TABLE report_schedules (
    report     TEXT   PRIMARY KEY,
    last_slot  BIGINT NOT NULL
);
