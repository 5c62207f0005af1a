-- Where each relay has published up to (see the PostgreSQL migration for the sequence's role).
CREATE TABLE relay_positions (
    relay          TEXT    PRIMARY KEY,
    cursor         INTEGER NOT NULL,
    next_sequence  INTEGER NOT NULL,
    updated_at     TEXT    NOT NULL
);
