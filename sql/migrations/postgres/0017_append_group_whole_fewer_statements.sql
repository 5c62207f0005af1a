-- `append_event_group_whole` (migration 0015) in fewer statements: one look at the group's
-- shape (order dependencies, and how many existing streams, new streams and idempotency keys it
-- writes), then only the statements the group needs. A group of journal entries (new streams
-- only, no keys) ran eleven statements and now runs five. Each statement of a PL/pgSQL function
-- starts and ends an executor: a profile of PostgreSQL while 8 clients posted (perf, dwarf call
-- graphs) had 20% of its time in `standard_ExecutorStart` and most of the rest spread over the
-- function's statements, at 2.3 commands per group. Same parameters, same answer, same checks.
CREATE OR REPLACE FUNCTION append_event_group_whole(
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
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
#variable_conflict use_column
DECLARE
    dependent BOOLEAN;
    updates   BIGINT;
    inserts   BIGINT;
    keys      BIGINT;
    changed   BIGINT;
    bad_type  TEXT;
    bad_id    TEXT;
    bad_want  BIGINT;
    bad_have  BIGINT;
BEGIN
    -- A stream written twice, or read by one command and written by another, makes the
    -- commands depend on each other's order: only the command-by-command path decides those.
    SELECT count(*) > count(DISTINCT (w.t, w.i))
               OR EXISTS (SELECT 1 FROM unnest(write_types, write_ids) AS x (t, i)
                          JOIN unnest(read_types, read_ids) AS r (t, i)
                            ON r.t = x.t AND r.i = x.i),
           count(*) FILTER (WHERE w.e > 0),
           count(*) FILTER (WHERE w.e = 0),
           (SELECT count(*) FROM unnest(idem_keys) AS k (key) WHERE k.key IS NOT NULL)
        INTO dependent, updates, inserts, keys
        FROM unnest(write_types, write_ids, write_expected) AS w (t, i, e);
    IF dependent THEN
        RAISE EXCEPTION USING ERRCODE = 'TRG01',
            MESSAGE = 'the group depends on its order: append command by command';
    END IF;

    IF cardinality(read_types) > 0 THEN
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
    END IF;

    IF updates > 0 THEN
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
        IF changed <> updates THEN
            RAISE EXCEPTION USING ERRCODE = 'TR409', MESSAGE = 'concurrent change to a stream written';
        END IF;
    END IF;
    IF inserts > 0 THEN
        INSERT INTO streams (aggregate_type, aggregate_id, version)
            SELECT w.t, w.i, w.v
            FROM unnest(write_types, write_ids, write_expected, write_versions) AS w (t, i, e, v)
            WHERE w.e = 0
            ORDER BY w.t, w.i
            ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING;
        GET DIAGNOSTICS changed = ROW_COUNT;
        IF changed <> inserts THEN
            RAISE EXCEPTION USING ERRCODE = 'TR409', MESSAGE = 'concurrent change to a stream written';
        END IF;
    END IF;

    IF keys > 0 THEN
        INSERT INTO idempotency_keys (idempotency_key, request_hash, status, body)
            SELECT k.key, k.hash, k.status, k.body
            FROM unnest(idem_keys, idem_hashes, idem_statuses, idem_bodies) AS k (key, hash, status, body)
            WHERE k.key IS NOT NULL
            ON CONFLICT (idempotency_key) DO NOTHING;
        GET DIAGNOSTICS changed = ROW_COUNT;
        IF changed <> keys THEN
            RAISE EXCEPTION USING ERRCODE = 'TR412', MESSAGE = 'idempotency key taken';
        END IF;
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
