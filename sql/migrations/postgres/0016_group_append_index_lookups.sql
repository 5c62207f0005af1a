-- The group append and the scoped load as primary-key lookups, whatever the statistics say.
-- Their plans are generic (migrations 0014, 0015) and made at a session's first call: on a
-- fresh database `streams` has no statistics and is taken for ten pages, so the group's keys
-- were joined to it by hashing a sequential scan, and a pooled session kept that plan while
-- `streams` grew by a row per journal entry. Every group then read the whole table (measured:
-- grouped posting at 0.7 of ungrouped after 4,000 entries, PostgreSQL busy in `hash_bytes` and
-- heap scans for two thirds of the machine). A group holds a few dozen keys at most: one index
-- lookup each is the right plan at any size of the table.
ALTER FUNCTION append_event_group_whole(
    TEXT[], TEXT[], BIGINT[], INTEGER[], TEXT[], TEXT[], BIGINT[], BIGINT[], INTEGER[], UUID[],
    TEXT[], TEXT[], BIGINT[], TEXT[], INTEGER[], TEXT[], INTEGER[], TEXT[], TIMESTAMPTZ[], TEXT[],
    TEXT[], TEXT[], INTEGER[], TEXT[])
    SET enable_seqscan = off
    SET enable_hashjoin = off
    SET enable_mergejoin = off;

ALTER FUNCTION load_scoped_events(TEXT, TEXT, TEXT[], TEXT[])
    SET enable_seqscan = off
    SET enable_hashjoin = off
    SET enable_mergejoin = off;
