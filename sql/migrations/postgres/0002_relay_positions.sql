-- Where each relay has published up to: the feed cursor and the next relay sequence number.
-- The sequence numbers the events the relay publishes, in feed order, deterministically: a relay
-- that crashes after publishing and before saving republishes the same events with the same
-- numbers, so consumers drop repeats by keeping the highest number seen per partition.
CREATE TABLE relay_positions (
    relay          TEXT        PRIMARY KEY,
    cursor         BIGINT      NOT NULL,
    next_sequence  BIGINT      NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
