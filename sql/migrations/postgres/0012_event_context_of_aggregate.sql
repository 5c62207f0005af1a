-- An event's context is its aggregate's (the part of its aggregate type before the dot), not
-- the context of the command that appended it: a sales delivery appends materials' goods issue
-- in the same transaction, and that event belongs to materials (its topic, its audit trail,
-- its source). p_context remains for unqualified aggregate types only; p_source is unused.
CREATE OR REPLACE FUNCTION append_events(
    read_types      TEXT[],
    read_ids        TEXT[],
    read_versions   BIGINT[],
    write_types     TEXT[],
    write_ids       TEXT[],
    write_expected  BIGINT[],
    write_versions  BIGINT[],
    event_ids       UUID[],
    event_agg_types TEXT[],
    event_agg_ids   TEXT[],
    event_sequences BIGINT[],
    event_types     TEXT[],
    event_versions  INTEGER[],
    event_payloads  TEXT[],
    p_context       TEXT,
    p_source        TEXT,
    p_time          TIMESTAMPTZ,
    p_metadata      TEXT,
    idem_key        TEXT,
    idem_hash       TEXT,
    idem_status     INTEGER,
    idem_body       TEXT
) RETURNS TABLE (o_event_id UUID, o_position BIGINT, o_cursor BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    i         INTEGER;
    changed   BIGINT;
    c_actual  BIGINT;
BEGIN
    -- One primary-key lookup per stream, in the caller's (byte) order: plans that stay index
    -- lookups whatever the statistics say (a fresh, fast-growing table is planned as tiny).
    FOR i IN 1 .. coalesce(array_length(read_types, 1), 0) LOOP
        c_actual := NULL;
        SELECT version INTO c_actual FROM streams
            WHERE aggregate_type = read_types[i] AND aggregate_id = read_ids[i]
            FOR SHARE;
        IF coalesce(c_actual, 0) <> read_versions[i] THEN
            RAISE EXCEPTION USING ERRCODE = 'TR409', MESSAGE = 'concurrent change to a stream read',
                DETAIL = json_build_object('aggregate_type', read_types[i], 'aggregate_id', read_ids[i],
                                           'expected', read_versions[i],
                                           'actual', coalesce(c_actual, 0))::text;
        END IF;
    END LOOP;

    FOR i IN 1 .. coalesce(array_length(write_types, 1), 0) LOOP
        IF write_expected[i] = 0 THEN
            INSERT INTO streams (aggregate_type, aggregate_id, version)
                VALUES (write_types[i], write_ids[i], write_versions[i])
                ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING;
        ELSE
            UPDATE streams SET version = write_versions[i]
                WHERE aggregate_type = write_types[i] AND aggregate_id = write_ids[i]
                  AND version = write_expected[i];
        END IF;
        GET DIAGNOSTICS changed = ROW_COUNT;
        IF changed <> 1 THEN
            SELECT version INTO c_actual FROM streams
                WHERE aggregate_type = write_types[i] AND aggregate_id = write_ids[i];
            RAISE EXCEPTION USING ERRCODE = 'TR409', MESSAGE = 'concurrent change to a stream written',
                DETAIL = json_build_object('aggregate_type', write_types[i], 'aggregate_id', write_ids[i],
                                           'expected', write_expected[i], 'actual', coalesce(c_actual, 0))::text;
        END IF;
    END LOOP;

    RETURN QUERY
        INSERT INTO events (event_id, context, aggregate_type, aggregate_id, sequence, event_type,
                            event_version, source, time, payload, metadata)
        SELECT e.id, c.context, e.agg_type, e.agg_id, e.seq, e.kind, e.version,
               '/tributary/' || c.context, p_time, e.payload::jsonb, p_metadata::jsonb
        FROM unnest(event_ids, event_agg_types, event_agg_ids, event_sequences, event_types,
                    event_versions, event_payloads)
             WITH ORDINALITY AS e (id, agg_type, agg_id, seq, kind, version, payload, n)
             CROSS JOIN LATERAL (
                 SELECT CASE WHEN position('.' IN e.agg_type) > 0
                             THEN split_part(e.agg_type, '.', 1) ELSE p_context END AS context
             ) AS c
        ORDER BY e.n
        RETURNING event_id, position, transaction_id::text::bigint;

    IF idem_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (idempotency_key, request_hash, status, body)
            VALUES (idem_key, idem_hash, idem_status, idem_body)
            ON CONFLICT (idempotency_key) DO NOTHING;
        GET DIAGNOSTICS changed = ROW_COUNT;
        IF changed = 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'TR412', MESSAGE = 'idempotency key taken',
                DETAIL = idem_key;
        END IF;
    END IF;
END $$;
