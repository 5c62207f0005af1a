-- Who asked for a report run and what their SQL may read (JSON of the query service's read
-- scope: {"companies": [...] or null for every company, "raw_events": bool}); the run reads
-- through it, and is shown to its requester and to whoever may read runs in those companies.
-- NULL scope: a scheduled run (or one from before), which reads everything.
ALTER TABLE report_runs ADD COLUMN requested_by TEXT;
ALTER TABLE report_runs ADD COLUMN scope TEXT;
