-- Contexts whose events this installation keeps in other databases (--context-database-url),
-- recorded in the main database by the first start that routes each: a process started later
-- without the same routes is refused instead of serving those contexts empty.
CREATE TABLE context_databases (
    context      TEXT PRIMARY KEY,
    -- The database URL without its password, for messages.
    database_url TEXT NOT NULL,
    recorded_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
