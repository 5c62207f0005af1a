-- Group commit without subtransactions: the appends of several commands checked and stored
-- with a few set-based statements, on the bet that none of them fails. Same parameters and
-- answer as `append_event_group` (migration 0013). Any failure (a version read or written has
-- moved, a taken idempotency key, a deadlock, a group that writes one stream twice or reads a
-- stream it writes) raises, so nothing of the group is stored; the caller then appends the
-- group through `append_event_group`, which gives each command its own savepoint and its own
-- answer. Every command is checked exactly as `append_events` checks it alone:
--
--  * every stream read is locked FOR SHARE (once, in key order) and must be at the version read;
--  * every existing stream written is locked FOR UPDATE (in key order) and must be at the
--    version expected; a new one must not exist yet;
--  * every idempotency key must be new.
--
-- Events are inserted in command order, each with its own command's context, time and
-- metadata; `o_command` is 0 on every row (all succeeded).
CREATE FUNCTION append_event_group_whole(
    read_types      TEXT[],
    read_ids        TEXT[],
    read_versions   BIGINT[],
    read_ends       INTEGER[],
    write_types     TEXT[],
    write_ids       TEXT[],
    write_expected  BIGINT[],
    write_versions  BIGINT[],
    write_ends      INTEGER[],
    event_ids       UUID[],
    event_agg_types TEXT[],
    event_agg_ids   TEXT[],
    event_sequences BIGINT[],
    event_types     TEXT[],
    event_versions  INTEGER[],
    event_payloads  TEXT[],
    event_ends      INTEGER[],
    p_contexts      TEXT[],
    p_times         TIMESTAMPTZ[],
    p_metadata      TEXT[],
    idem_keys       TEXT[],
    idem_hashes     TEXT[],
    idem_statuses   INTEGER[],
    idem_bodies     TEXT[]
) RETURNS TABLE (o_command INTEGER, o_event_id UUID, o_position BIGINT, o_cursor BIGINT,
                 o_code TEXT, o_message TEXT, o_detail TEXT)
LANGUAGE plpgsql
-- One plan per statement for every group size: custom plans re-planned per call cost more than
-- they save on primary-key lookups.
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
    changed   BIGINT;
    wanted    BIGINT;
    bad_type  TEXT;
    bad_id    TEXT;
    bad_want  BIGINT;
    bad_have  BIGINT;
BEGIN
    -- A stream written twice, or read by one command and written by another, makes the
    -- commands depend on each other's order: only the command-by-command path decides those.
    IF EXISTS (SELECT 1 FROM unnest(write_types, write_ids) AS w (t, i)
               GROUP BY w.t, w.i HAVING count(*) > 1)
       OR EXISTS (SELECT 1 FROM unnest(write_types, write_ids) AS w (t, i)
                  JOIN unnest(read_types, read_ids) AS r (t, i) ON r.t = w.t AND r.i = w.i) THEN
        RAISE EXCEPTION USING ERRCODE = 'TRG01',
            MESSAGE = 'the group depends on its order: append command by command';
    END IF;

    PERFORM 1 FROM (
        SELECT s.aggregate_type FROM streams AS s
            JOIN (SELECT DISTINCT t, i FROM unnest(read_types, read_ids) AS r (t, i)) AS r
              ON s.aggregate_type = r.t AND s.aggregate_id = r.i
            ORDER BY s.aggregate_type, s.aggregate_id
            FOR SHARE OF s) AS locked;
    SELECT r.t, r.i, r.v, coalesce(s.version, 0) INTO bad_type, bad_id, bad_want, bad_have
        FROM unnest(read_types, read_ids, read_versions) AS r (t, i, v)
        LEFT JOIN streams AS s ON s.aggregate_type = r.t AND s.aggregate_id = r.i
        WHERE coalesce(s.version, 0) <> r.v
        LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TR409', MESSAGE = 'concurrent change to a stream read',
            DETAIL = json_build_object('aggregate_type', bad_type, 'aggregate_id', bad_id,
                                       'expected', bad_want, 'actual', bad_have)::text;
    END IF;

    PERFORM 1 FROM (
        SELECT s.aggregate_type FROM streams AS s
            JOIN unnest(write_types, write_ids, write_expected) AS w (t, i, e)
              ON s.aggregate_type = w.t AND s.aggregate_id = w.i AND w.e > 0
            ORDER BY s.aggregate_type, s.aggregate_id
            FOR UPDATE OF s) AS locked;
    UPDATE streams AS s SET version = w.v
        FROM unnest(write_types, write_ids, write_expected, write_versions) AS w (t, i, e, v)
        WHERE w.e > 0 AND s.aggregate_type = w.t AND s.aggregate_id = w.i AND s.version = w.e;
    GET DIAGNOSTICS changed = ROW_COUNT;
    SELECT count(*) INTO wanted FROM unnest(write_expected) AS w (e) WHERE w.e > 0;
    IF changed <> wanted THEN
        RAISE EXCEPTION USING ERRCODE = 'TR409', MESSAGE = 'concurrent change to a stream written';
    END IF;
    INSERT INTO streams (aggregate_type, aggregate_id, version)
        SELECT w.t, w.i, w.v
        FROM unnest(write_types, write_ids, write_expected, write_versions) AS w (t, i, e, v)
        WHERE w.e = 0
        ORDER BY w.t, w.i
        ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING;
    GET DIAGNOSTICS changed = ROW_COUNT;
    SELECT count(*) INTO wanted FROM unnest(write_expected) AS w (e) WHERE w.e = 0;
    IF changed <> wanted THEN
        RAISE EXCEPTION USING ERRCODE = 'TR409', MESSAGE = 'concurrent change to a stream written';
    END IF;

    INSERT INTO idempotency_keys (idempotency_key, request_hash, status, body)
        SELECT k.key, k.hash, k.status, k.body
        FROM unnest(idem_keys, idem_hashes, idem_statuses, idem_bodies) AS k (key, hash, status, body)
        WHERE k.key IS NOT NULL
        ON CONFLICT (idempotency_key) DO NOTHING;
    GET DIAGNOSTICS changed = ROW_COUNT;
    SELECT count(*) INTO wanted FROM unnest(idem_keys) AS k (key) WHERE k.key IS NOT NULL;
    IF changed <> wanted THEN
        RAISE EXCEPTION USING ERRCODE = 'TR412', MESSAGE = 'idempotency key taken';
    END IF;

    RETURN QUERY
        INSERT INTO events (event_id, context, aggregate_type, aggregate_id, sequence, event_type,
                            event_version, source, time, payload, metadata)
        SELECT e.id, x.context, e.agg_type, e.agg_id, e.seq, e.kind, e.version,
               '/tributary/' || x.context, p_times[o.c], e.payload::jsonb, p_metadata[o.c]::jsonb
        FROM unnest(event_ids, event_agg_types, event_agg_ids, event_sequences, event_types,
                    event_versions, event_payloads)
             WITH ORDINALITY AS e (id, agg_type, agg_id, seq, kind, version, payload, n)
             -- The event's command: the first whose part ends at or after it.
             CROSS JOIN LATERAL (
                 SELECT min(c) AS c FROM generate_subscripts(event_ends, 1) AS c
                 WHERE event_ends[c] >= e.n
             ) AS o
             CROSS JOIN LATERAL (
                 SELECT CASE WHEN position('.' IN e.agg_type) > 0
                             THEN split_part(e.agg_type, '.', 1) ELSE p_contexts[o.c] END AS context
             ) AS x
        ORDER BY e.n
        RETURNING 0, event_id, position, transaction_id::text::bigint,
                  NULL::TEXT, NULL::TEXT, NULL::TEXT;
END $$;
