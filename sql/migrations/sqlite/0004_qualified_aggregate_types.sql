-- Aggregate types are qualified by their context ("account" -> "finance.account"), so that two
-- contexts can never share a stream type. Stores written before this migration carry the bare
-- names: their streams and events are renamed here, once. This is the one change ever made to
-- stored events, and it changes only the name of their stream type (context, ids, sequence,
-- payload and metadata are untouched); the immutability trigger is back before the migration
-- commits.
UPDATE streams
SET aggregate_type = (
    SELECT e.context || '.' || e.aggregate_type FROM events e
    WHERE e.aggregate_type = streams.aggregate_type AND e.aggregate_id = streams.aggregate_id
    LIMIT 1)
WHERE instr(aggregate_type, '.') = 0
  AND EXISTS (SELECT 1 FROM events e
              WHERE e.aggregate_type = streams.aggregate_type AND e.aggregate_id = streams.aggregate_id);

DROP TRIGGER events_no_update;

UPDATE events SET aggregate_type = context || '.' || aggregate_type
WHERE instr(aggregate_type, '.') = 0;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE refused'); END;
