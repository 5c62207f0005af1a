-- Followers (reactors) of the event feed: where each stands, and the reactions a target context
-- rejected (suspense), kept until a retry over REST succeeds.
CREATE TABLE follower_positions (
    follower   TEXT    NOT NULL,
    stream     TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (follower, stream)
);

CREATE TABLE reactor_suspense (
    reactor        TEXT    NOT NULL,
    event_id       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    correlation_id TEXT,
    reason         TEXT    NOT NULL,
    problem        TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('open', 'resolved')),
    attempts       INTEGER NOT NULL,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    PRIMARY KEY (reactor, event_id)
);
