-- tasks becomes a partitioned table whose plain tasks rotate through two
-- partitions that are emptied by TRUNCATE. {{.schema}} is the target schema,
-- already quoted.
--
-- Why: every claim and completion leaves a dead row version. VACUUM makes
-- their space reusable but never gives it back, and while a long transaction
-- holds back the xmin horizon it cannot even do that: the file, and every
-- scan of it, grows with each task processed. TRUNCATE needs no horizon. A
-- partition that holds nothing but tasks finished longer than
-- FinishedRetention ago is truncated whole, dead versions and all, and
-- becomes the partition new tasks go to (see queue.Engine.Rotate).
--
-- gen is the partition key:
--   0     the sticky partition, tasks_g0: tasks whose identity must be unique
--         across the table (unique keys, schedule ticks, callbacks, preset
--         ids), tasks that wait (dependencies, a run_at further ahead than a
--         rotation), tasks with a TTL, and rows written by SQL by hand (gen's
--         default). Pruned row by row, as before.
--   1, 2  the rotating partitions, for everything else; tasks_rotation says
--         which one new tasks go to.
-- The indexes only sticky tasks need (unique keys, schedule ticks, waiting
-- dependents, TTLs, finished tasks in retention order) are tasks_g0's alone, and
-- unique within it as before; a CHECK keeps such tasks out of the rotating
-- partitions. Every index costs each statement on tasks a lock per
-- partition, so the rotating ones carry only what claims, completions,
-- rescue, expiry and cancels read. The primary key is (id, gen), as a
-- partitioned table's must include the key; ids are UUIDv7 made by the
-- client.

-- tasks_rotation: one row per rotating partition. The current one (exactly
-- one) takes new tasks; one that ended is truncated once it holds nothing
-- but tasks finished longer than FinishedRetention ago, and is then empty
-- (ended_at NULL) until it is current again.
CREATE TABLE {{.schema}}.tasks_rotation (
    gen        smallint    PRIMARY KEY CHECK (gen BETWEEN 1 AND 2),
    current    boolean     NOT NULL DEFAULT false,
    started_at timestamptz,          -- when it last became current
    ended_at   timestamptz           -- when it stopped being current; NULL while current or empty
);
CREATE UNIQUE INDEX tasks_rotation_current_idx ON {{.schema}}.tasks_rotation (current) WHERE current;
INSERT INTO {{.schema}}.tasks_rotation (gen, current, started_at) VALUES (1, true, now()), (2, false, NULL);

ALTER TABLE {{.schema}}.tasks RENAME TO tasks_unpartitioned;
CREATE TABLE {{.schema}}.tasks (
    LIKE {{.schema}}.tasks_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE,
    gen smallint NOT NULL DEFAULT 0 CHECK (gen BETWEEN 0 AND 2),
    CONSTRAINT tasks_sticky_check CHECK (gen = 0
        OR (unique_key IS NULL AND schedule_id IS NULL AND expires_at IS NULL AND status <> 'waiting'))
) PARTITION BY LIST (gen);
CREATE TABLE {{.schema}}.tasks_g0 PARTITION OF {{.schema}}.tasks FOR VALUES IN (0);
CREATE TABLE {{.schema}}.tasks_g1 PARTITION OF {{.schema}}.tasks FOR VALUES IN (1);
CREATE TABLE {{.schema}}.tasks_g2 PARTITION OF {{.schema}}.tasks FOR VALUES IN (2);
INSERT INTO {{.schema}}.tasks SELECT *, 0 FROM {{.schema}}.tasks_unpartitioned;

-- The view as 002 made it, now over the partitioned table.
CREATE OR REPLACE VIEW {{.schema}}.queue_stats AS
WITH t AS (
    SELECT queue,
        count(*) FILTER (WHERE status = 'pending')   AS pending,
        count(*) FILTER (WHERE status = 'waiting')   AS waiting,
        count(*) FILTER (WHERE status = 'running')   AS running,
        count(*) FILTER (WHERE status = 'retry')     AS retry,
        count(*) FILTER (WHERE status = 'success')   AS success,
        count(*) FILTER (WHERE status = 'error')     AS error,
        count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
        count(*) FILTER (WHERE status = 'expired')   AS expired,
        count(*) FILTER (WHERE status = 'success' AND completed_at >= now() - interval '1 minute') AS succeeded_last_minute,
        count(*) FILTER (WHERE status IN ('error', 'cancelled', 'expired') AND completed_at >= now() - interval '1 minute') AS failed_last_minute,
        now() - min(run_at) FILTER (WHERE status IN ('pending', 'retry') AND run_at <= now()) AS oldest_pending_age
    FROM {{.schema}}.tasks
    GROUP BY queue
)
SELECT coalesce(t.queue, q.name) AS queue,
    coalesce(t.pending, 0) AS pending, coalesce(t.waiting, 0) AS waiting,
    coalesce(t.running, 0) AS running, coalesce(t.retry, 0) AS retry,
    coalesce(t.success, 0) AS success, coalesce(t.error, 0) AS error,
    coalesce(t.cancelled, 0) AS cancelled, coalesce(t.expired, 0) AS expired,
    coalesce(t.succeeded_last_minute, 0) AS succeeded_last_minute,
    coalesce(t.failed_last_minute, 0) AS failed_last_minute,
    t.oldest_pending_age,
    coalesce(q.paused_at IS NOT NULL, false) AS paused
FROM t FULL JOIN {{.schema}}.queues q ON q.name = t.queue;

DROP TABLE {{.schema}}.tasks_unpartitioned;

-- The indexes of 001, 004 and 005: on every partition those claims,
-- completions, rescue, expiry and cancels read; on tasks_g0 alone the rest.
ALTER TABLE {{.schema}}.tasks ADD CONSTRAINT tasks_pkey PRIMARY KEY (id, gen);
CREATE INDEX tasks_runnable_idx ON {{.schema}}.tasks (queue, priority DESC, run_at, id)
    WHERE status IN ('pending', 'retry');
CREATE INDEX tasks_running_idx ON {{.schema}}.tasks (worker_id)
    WHERE status = 'running';
CREATE INDEX tasks_cancel_requested_idx ON {{.schema}}.tasks (worker_id)
    WHERE status = 'running' AND cancel_requested_at IS NOT NULL;
CREATE UNIQUE INDEX tasks_unique_idx ON {{.schema}}.tasks_g0 (unique_key)
    WHERE unique_key IS NOT NULL AND status = ANY (unique_states);
CREATE UNIQUE INDEX tasks_schedule_tick_idx ON {{.schema}}.tasks_g0 (schedule_id, scheduled_at)
    WHERE schedule_id IS NOT NULL;
CREATE INDEX tasks_waiting_deps_idx ON {{.schema}}.tasks_g0 USING gin (depends_on)
    WHERE status = 'waiting';
CREATE INDEX tasks_finished_idx ON {{.schema}}.tasks_g0 (completed_at)
    WHERE status IN ('success', 'error', 'cancelled', 'expired');
CREATE INDEX tasks_expires_idx ON {{.schema}}.tasks_g0 (expires_at)
    WHERE expires_at IS NOT NULL AND status IN ('pending', 'retry', 'waiting');

-- 004's autovacuum settings, per partition (a partitioned table has no
-- storage of its own to set them on). The rotating partitions are emptied by
-- TRUNCATE; vacuum still keeps their indexes short between truncations.
ALTER TABLE {{.schema}}.tasks_g0 SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE {{.schema}}.tasks_g1 SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE {{.schema}}.tasks_g2 SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);

---- create above / drop below ----

ALTER TABLE {{.schema}}.tasks RENAME TO tasks_partitioned;
CREATE TABLE {{.schema}}.tasks (
    LIKE {{.schema}}.tasks_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE
);
INSERT INTO {{.schema}}.tasks SELECT * FROM {{.schema}}.tasks_partitioned;
ALTER TABLE {{.schema}}.tasks DROP COLUMN gen;

CREATE OR REPLACE VIEW {{.schema}}.queue_stats AS
WITH t AS (
    SELECT queue,
        count(*) FILTER (WHERE status = 'pending')   AS pending,
        count(*) FILTER (WHERE status = 'waiting')   AS waiting,
        count(*) FILTER (WHERE status = 'running')   AS running,
        count(*) FILTER (WHERE status = 'retry')     AS retry,
        count(*) FILTER (WHERE status = 'success')   AS success,
        count(*) FILTER (WHERE status = 'error')     AS error,
        count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
        count(*) FILTER (WHERE status = 'expired')   AS expired,
        count(*) FILTER (WHERE status = 'success' AND completed_at >= now() - interval '1 minute') AS succeeded_last_minute,
        count(*) FILTER (WHERE status IN ('error', 'cancelled', 'expired') AND completed_at >= now() - interval '1 minute') AS failed_last_minute,
        now() - min(run_at) FILTER (WHERE status IN ('pending', 'retry') AND run_at <= now()) AS oldest_pending_age
    FROM {{.schema}}.tasks
    GROUP BY queue
)
SELECT coalesce(t.queue, q.name) AS queue,
    coalesce(t.pending, 0) AS pending, coalesce(t.waiting, 0) AS waiting,
    coalesce(t.running, 0) AS running, coalesce(t.retry, 0) AS retry,
    coalesce(t.success, 0) AS success, coalesce(t.error, 0) AS error,
    coalesce(t.cancelled, 0) AS cancelled, coalesce(t.expired, 0) AS expired,
    coalesce(t.succeeded_last_minute, 0) AS succeeded_last_minute,
    coalesce(t.failed_last_minute, 0) AS failed_last_minute,
    t.oldest_pending_age,
    coalesce(q.paused_at IS NOT NULL, false) AS paused
FROM t FULL JOIN {{.schema}}.queues q ON q.name = t.queue;

DROP TABLE {{.schema}}.tasks_partitioned;
DROP TABLE {{.schema}}.tasks_rotation;

ALTER TABLE {{.schema}}.tasks ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);
CREATE INDEX tasks_runnable_idx ON {{.schema}}.tasks (queue, priority DESC, run_at, id)
    WHERE status IN ('pending', 'retry');
CREATE INDEX tasks_running_idx ON {{.schema}}.tasks (worker_id)
    WHERE status = 'running';
CREATE INDEX tasks_waiting_deps_idx ON {{.schema}}.tasks USING gin (depends_on)
    WHERE status = 'waiting';
CREATE INDEX tasks_expires_idx ON {{.schema}}.tasks (expires_at)
    WHERE expires_at IS NOT NULL AND status IN ('pending', 'retry', 'waiting');
CREATE UNIQUE INDEX tasks_unique_idx ON {{.schema}}.tasks (unique_key)
    WHERE unique_key IS NOT NULL AND status = ANY (unique_states);
CREATE UNIQUE INDEX tasks_schedule_tick_idx ON {{.schema}}.tasks (schedule_id, scheduled_at)
    WHERE schedule_id IS NOT NULL;
CREATE INDEX tasks_cancel_requested_idx ON {{.schema}}.tasks (worker_id)
    WHERE status = 'running' AND cancel_requested_at IS NOT NULL;
CREATE INDEX tasks_finished_idx ON {{.schema}}.tasks (completed_at)
    WHERE status IN ('success', 'error', 'cancelled', 'expired');
ALTER TABLE {{.schema}}.tasks SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
