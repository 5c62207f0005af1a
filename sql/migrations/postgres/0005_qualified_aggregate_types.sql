-- Aggregate types are qualified by their context ("account" -> "finance.account"), so that two
-- contexts can never share a stream type. Stores written before this migration carry the bare
-- names: their streams and events are renamed here, once. This is the one change ever made to
-- stored events, and it changes only the name of their stream type (context, ids, sequence,
-- payload and metadata are untouched); the immutability trigger is back before the migration
-- commits (sqlx runs each migration in one transaction).
UPDATE streams s
SET aggregate_type = e.context || '.' || s.aggregate_type
FROM (SELECT DISTINCT ON (aggregate_type, aggregate_id) aggregate_type, aggregate_id, context
      FROM events WHERE strpos(aggregate_type, '.') = 0) e
WHERE strpos(s.aggregate_type, '.') = 0
  AND e.aggregate_type = s.aggregate_type AND e.aggregate_id = s.aggregate_id;

ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete;

UPDATE events SET aggregate_type = context || '.' || aggregate_type
WHERE strpos(aggregate_type, '.') = 0;

ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete;
