-- Retention of finished tasks in completion order. {{.schema}} is the target
-- schema, already quoted.
--
-- Retention deletes finished tasks whose completed_at is past
-- FinishedRetention. Without this index it walked the primary key from the
-- oldest id, and with it the entries of every task it had deleted that vacuum
-- had not removed yet: all of them while a long transaction holds back the
-- xmin horizon, so each pass grew with the pin (at 1,000 tasks/s, passes
-- every 10s stalled claims by 100-200ms after two minutes). In completed_at
-- order a pass starts where the last one stopped (see Engine.Prune), and a
-- task that finishes late, whatever its id, sorts after what was deleted.
CREATE INDEX tasks_finished_idx ON {{.schema}}.tasks (completed_at)
    WHERE status IN ('success', 'error', 'cancelled', 'expired');

---- create above / drop below ----

DROP INDEX IF EXISTS {{.schema}}.tasks_finished_idx;
