-- A compact outcome row's two times become columns of events. {{.schema}}
-- is the target schema, already quoted.
--
-- Why: at the default event level a routine task writes one event row, the
-- compact outcome, which also stands for the task's enqueue and its
-- attempt's start (events.Expand). Those two times were JSON in data:
-- {"started_at": "2026-12-03T14:09:26.05617+00:00", "enqueued_at": ...},
-- 105 of a row's 264 bytes. As two timestamptz columns they take 16, and
-- the row 184: the table grows 30% slower, each scan of it (a reader's
-- count, retention, a report) reads 30% fewer pages, and the completion
-- statement builds no JSON per task. The table keeps 7 days of events by
-- default, so it is the largest OmniQ keeps.
--
-- The columns are null for every other row, which costs nothing: a null is
-- a bit in the row's null bitmap. data keeps the other details (run_at of a
-- retry or a snooze).
--
-- Rows written before this migration keep the times in data; they are not
-- rewritten here (on a large log that is an UPDATE of every row, and twice
-- the table until vacuum), and readers of the log fall back to data while
-- they remain (events.Store, docs/SQL.md). Retention removes them within
-- EventRetention. The down migration folds the columns back into data.

ALTER TABLE {{.schema}}.events
    ADD COLUMN enqueued_at timestamptz,
    ADD COLUMN started_at timestamptz;

---- create above / drop below ----

UPDATE {{.schema}}.events
SET data = data || jsonb_strip_nulls(jsonb_build_object('enqueued_at', enqueued_at, 'started_at', started_at))
WHERE enqueued_at IS NOT NULL OR started_at IS NOT NULL;
ALTER TABLE {{.schema}}.events
    DROP COLUMN enqueued_at,
    DROP COLUMN started_at;
