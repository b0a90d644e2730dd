-- tasks.queue becomes the domain queue_name, whose CHECK is 008's queue
-- rule under the same constraint name. {{.schema}} is the target schema,
-- already quoted.
--
-- Why: PostgreSQL evaluates every CHECK constraint of a table on every row
-- version an UPDATE writes, whichever columns it sets, and 008's ltrim over
-- a 66-character set cost 1.5-2.5 µs a row on the claim and on the
-- completion (the largest part of ExecConstraints, about a tenth of a
-- claim's and a completion's server time). A domain's CHECK runs only when a
-- value is converted to it: on INSERT, COPY and an UPDATE that sets queue,
-- which are exactly the writes that can bring in a bad name. The rule and
-- the error (SQLSTATE 23514, constraint tasks_queue_check) are unchanged.
--
-- Changing the column's type rewrites tasks (every partition) and its
-- indexes under an ACCESS EXCLUSIVE lock, and checks every stored name; the
-- view that reads the column is made again around it.

CREATE DOMAIN {{.schema}}.queue_name AS text
    CONSTRAINT tasks_queue_check CHECK (
        octet_length(VALUE) BETWEEN 1 AND 128
        AND ltrim(VALUE, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-') = ''
        AND left(VALUE, 1) NOT IN ('_', '.', ':', '-'));

DROP VIEW {{.schema}}.queue_stats;
ALTER TABLE {{.schema}}.tasks DROP CONSTRAINT tasks_queue_check,
    ALTER COLUMN queue TYPE {{.schema}}.queue_name;
CREATE VIEW {{.schema}}.queue_stats AS
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

---- create above / drop below ----

DROP VIEW {{.schema}}.queue_stats;
ALTER TABLE {{.schema}}.tasks ALTER COLUMN queue TYPE text;
ALTER TABLE {{.schema}}.tasks ADD CONSTRAINT tasks_queue_check CHECK (
    octet_length(queue) BETWEEN 1 AND 128
    AND ltrim(queue, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-') = ''
    AND left(queue, 1) NOT IN ('_', '.', ':', '-'));
DROP DOMAIN {{.schema}}.queue_name;
CREATE VIEW {{.schema}}.queue_stats AS
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
