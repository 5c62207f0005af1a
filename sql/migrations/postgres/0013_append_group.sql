-- Group commit: the appends of several concurrent commands in one transaction, one round trip
-- and one WAL flush. Each command runs `append_events` in its own subtransaction (the
-- EXCEPTION block), so a command that fails (a version conflict, a taken idempotency key, a
-- deadlock with another group) is rolled back alone, its locks released, and the others go on.
--
-- The commands' arrays are concatenated; `*_ends` give where each command's part ends (1-based,
-- inclusive; a command's part starts after the previous command's end). Every event of the
-- group gets the group's transaction id, so a feed reader sees the whole group at once, in
-- position order (the order of the commands, then of their events).
--
-- Answers per command either its events' positions and cursors, or one row with the error's
-- SQLSTATE, message and detail (`o_event_id` null).
CREATE FUNCTION append_event_group(
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
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    c        INTEGER;
    r0       INTEGER := 1;
    w0       INTEGER := 1;
    e0       INTEGER := 1;
    ids      UUID[];
    poss     BIGINT[];
    curs     BIGINT[];
    e_code   TEXT;
    e_msg    TEXT;
    e_detail TEXT;
BEGIN
    FOR c IN 1 .. coalesce(array_length(p_contexts, 1), 0) LOOP
        BEGIN
            -- Collected first: nothing of a command that fails reaches the answer.
            SELECT array_agg(a.o_event_id), array_agg(a.o_position), array_agg(a.o_cursor)
                INTO ids, poss, curs
                FROM append_events(
                    read_types[r0:read_ends[c]], read_ids[r0:read_ends[c]],
                    read_versions[r0:read_ends[c]],
                    write_types[w0:write_ends[c]], write_ids[w0:write_ends[c]],
                    write_expected[w0:write_ends[c]], write_versions[w0:write_ends[c]],
                    event_ids[e0:event_ends[c]], event_agg_types[e0:event_ends[c]],
                    event_agg_ids[e0:event_ends[c]], event_sequences[e0:event_ends[c]],
                    event_types[e0:event_ends[c]], event_versions[e0:event_ends[c]],
                    event_payloads[e0:event_ends[c]],
                    p_contexts[c], NULL, p_times[c], p_metadata[c],
                    idem_keys[c], idem_hashes[c], idem_statuses[c], idem_bodies[c]) AS a;
            RETURN QUERY SELECT c, u.i, u.p, u.k, NULL::TEXT, NULL::TEXT, NULL::TEXT
                FROM unnest(ids, poss, curs) AS u (i, p, k);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS e_code = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                    e_detail = PG_EXCEPTION_DETAIL;
            RETURN QUERY SELECT c, NULL::UUID, NULL::BIGINT, NULL::BIGINT, e_code, e_msg, e_detail;
        END;
        r0 := read_ends[c] + 1;
        w0 := write_ends[c] + 1;
        e0 := event_ends[c] + 1;
    END LOOP;
END $$;
