-- Storage settings for a queue that runs for weeks: see "Staying fast for
-- weeks" in DESIGN.md. {{.schema}} is the target schema, already quoted.

-- Cancel requests a client missed are polled every second by worker_id. In
-- tasks_running_idx that lookup also reads the entries of every task the
-- client finished, dead but not yet vacuumed (all of them while a long
-- transaction holds back the xmin horizon); this index holds only running
-- tasks with a pending cancel request.
CREATE INDEX tasks_cancel_requested_idx ON {{.schema}}.tasks (worker_id)
    WHERE status = 'running' AND cancel_requested_at IS NOT NULL;

-- tasks is updated twice per task (claim, completion) and pruned: with the
-- default scale factor (20%) autovacuum waits until a fifth of a large table
-- is dead. Vacuum it after 1% (and at least 1,000 rows) changes, without
-- cost-based sleeps: the table is hot and its dead index entries slow every
-- scan until they are removed.
ALTER TABLE {{.schema}}.tasks SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
-- results and events are append-mostly: vacuum them on inserts too, so the
-- visibility map stays current (index-only scans) and pruned rows' space is
-- reused before the files grow.
ALTER TABLE {{.schema}}.results SET (
    autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_vacuum_insert_scale_factor = 0.05
);
ALTER TABLE {{.schema}}.events SET (
    autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_vacuum_insert_scale_factor = 0.05
);
-- clients: one row per client, updated every heartbeat. Room on the page
-- keeps those updates HOT (no index writes).
ALTER TABLE {{.schema}}.clients SET (fillfactor = 50);

---- create above / drop below ----

ALTER TABLE {{.schema}}.clients RESET (fillfactor);
ALTER TABLE {{.schema}}.events RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor);
ALTER TABLE {{.schema}}.results RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor);
ALTER TABLE {{.schema}}.tasks RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,
    autovacuum_vacuum_insert_scale_factor, autovacuum_analyze_scale_factor, autovacuum_vacuum_cost_delay);
DROP INDEX IF EXISTS {{.schema}}.tasks_cancel_requested_idx;
