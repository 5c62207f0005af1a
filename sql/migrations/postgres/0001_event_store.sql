-- Event store (PostgreSQL). Events are appended once and never changed.
--
-- Global order for readers is (transaction_id, position), not position alone: a BIGSERIAL
-- value is taken when a row is inserted but becomes visible only when its transaction commits,
-- so a reader that follows "highest position seen" would skip a row that commits late.
-- transaction_id is the writer's xid8; every transaction below pg_snapshot_xmin() of the
-- reader's snapshot has ended, so reading only below that bound never skips a late commit.
CREATE TABLE events (
    position        BIGSERIAL   PRIMARY KEY,
    transaction_id  XID8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id        UUID        NOT NULL UNIQUE,
    context         TEXT        NOT NULL,
    aggregate_type  TEXT        NOT NULL,
    aggregate_id    TEXT        NOT NULL,
    sequence        BIGINT      NOT NULL CHECK (sequence >= 1),
    event_type      TEXT        NOT NULL,
    event_version   INTEGER     NOT NULL CHECK (event_version >= 1),
    source          TEXT        NOT NULL,
    time            TIMESTAMPTZ NOT NULL,
    payload         JSONB       NOT NULL,
    metadata        JSONB       NOT NULL,
    CONSTRAINT events_aggregate_sequence UNIQUE (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX events_feed ON events (transaction_id, position);

-- One row per aggregate with its current version: the optimistic concurrency check, and the row
-- that commands reading another aggregate lock FOR SHARE so that, for example, blocking an
-- account and posting to it cannot both succeed in a race.
CREATE TABLE streams (
    aggregate_type  TEXT   NOT NULL,
    aggregate_id    TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

CREATE TABLE idempotency_keys (
    idempotency_key TEXT        PRIMARY KEY,
    request_hash    TEXT        NOT NULL,
    status          INTEGER     NOT NULL,
    body            TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % refused', TG_OP;
END $$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();
