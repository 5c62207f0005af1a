-- Snapshots of aggregates with long histories: the state after `version` events, serialized.
-- A cache, never the truth: any snapshot can be deleted and is rebuilt from the events; one of
-- another `snapshot_version` (the state's shape changed) is ignored and replaced.
CREATE TABLE snapshots (
    aggregate_type   TEXT        NOT NULL,
    aggregate_id     TEXT        NOT NULL,
    version          BIGINT      NOT NULL CHECK (version >= 1),
    snapshot_version INTEGER     NOT NULL,
    state            JSONB       NOT NULL,
    taken_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);
