-- results becomes a partitioned table whose rows go with their task's
-- partition of tasks, and are emptied with it by TRUNCATE. {{.schema}} is
-- the target schema, already quoted.
--
-- Why: a result without an expiry of its own is kept as long as its task,
-- and a rotating partition's tasks leave by TRUNCATE (007). Their results
-- were deleted row by row beside it: a dead row version for each, which
-- vacuum cannot remove while a long transaction holds back the xmin horizon,
-- so the results file, and every scan of it, grew by a row per task
-- processed for as long as the horizon was held, and the DELETE cost the
-- server a row's work per task. results_g1 and results_g2 are truncated
-- together with tasks_g1 and tasks_g2 (queue.Engine.Rotate and Retire); a
-- result whose expiry is still ahead then is first moved to results_g0,
-- which holds the results of the sticky partition's tasks and is pruned row
-- by row by expiry and with its tasks, as before.
--
-- gen is the partition key, the task's gen (tasks.gen); the primary key is
-- (task_id, gen), as a partitioned table's must include the key.

ALTER TABLE {{.schema}}.results RENAME TO results_unpartitioned;
CREATE TABLE {{.schema}}.results (
    LIKE {{.schema}}.results_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE,
    gen smallint NOT NULL DEFAULT 0 CHECK (gen BETWEEN 0 AND 2)
) PARTITION BY LIST (gen);
CREATE TABLE {{.schema}}.results_g0 PARTITION OF {{.schema}}.results FOR VALUES IN (0);
CREATE TABLE {{.schema}}.results_g1 PARTITION OF {{.schema}}.results FOR VALUES IN (1);
CREATE TABLE {{.schema}}.results_g2 PARTITION OF {{.schema}}.results FOR VALUES IN (2);
-- A result whose task is gone (deleted by hand) is the sticky partition's.
INSERT INTO {{.schema}}.results
SELECT r.*, coalesce((SELECT t.gen FROM {{.schema}}.tasks t WHERE t.id = r.task_id LIMIT 1), 0)
FROM {{.schema}}.results_unpartitioned r;
DROP TABLE {{.schema}}.results_unpartitioned;

ALTER TABLE {{.schema}}.results ADD CONSTRAINT results_pkey PRIMARY KEY (task_id, gen);
CREATE INDEX results_expires_idx ON {{.schema}}.results (expires_at) WHERE expires_at IS NOT NULL;

-- 004's autovacuum settings, per partition (a partitioned table has no
-- storage of its own to set them on).
ALTER TABLE {{.schema}}.results_g0 SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE {{.schema}}.results_g1 SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE {{.schema}}.results_g2 SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05);

---- create above / drop below ----

ALTER TABLE {{.schema}}.results RENAME TO results_partitioned;
CREATE TABLE {{.schema}}.results (
    LIKE {{.schema}}.results_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE
);
ALTER TABLE {{.schema}}.results DROP COLUMN gen;
-- One row a task, as before 011: a task's results are in one partition.
INSERT INTO {{.schema}}.results
SELECT task_id, status, result, codec, error, traceback, created_at, started_at, completed_at,
    execution_time, worker_id, attempt, expires_at
FROM {{.schema}}.results_partitioned;
DROP TABLE {{.schema}}.results_partitioned;
ALTER TABLE {{.schema}}.results ADD CONSTRAINT results_pkey PRIMARY KEY (task_id);
CREATE INDEX results_expires_idx ON {{.schema}}.results (expires_at) WHERE expires_at IS NOT NULL;
ALTER TABLE {{.schema}}.results SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05);
