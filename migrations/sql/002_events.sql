-- OmniQ events: live subscription support, read indexes, and operator views.
-- {{.schema}} is the target schema, already quoted as an identifier by migrations.Migrate.

-- xid: the top-level transaction that wrote the event. Event ids come from a
-- sequence, so a transaction that commits later may hold a smaller id than
-- one already read; subscribers therefore read "what became visible since my
-- last snapshot" (xid >= that snapshot's xmax, or xid among its in-progress
-- list), which no id cursor can express. Nearly every batch shares one xid,
-- so its deduplicated btree index stays small.
ALTER TABLE {{.schema}}.events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_xid_idx ON {{.schema}}.events (xid);

-- Filters of Events(): by queue and by kind, newest or oldest first.
CREATE INDEX events_queue_idx ON {{.schema}}.events (queue, id) WHERE queue IS NOT NULL;
CREATE INDEX events_kind_idx ON {{.schema}}.events (kind, id) WHERE kind IS NOT NULL;
-- Warnings and errors are the rare rows an operator asks for by level.
CREATE INDEX events_level_idx ON {{.schema}}.events (level, id) WHERE level IN ('warning', 'error');

-- One NOTIFY per transaction that wrote events (PostgreSQL folds identical
-- notifications of a transaction), none for statements that inserted no row.
-- The channel is queue.Channel(schema, 'events'): schema || '_events', or a
-- hash of the schema when that is longer than an identifier.
CREATE FUNCTION {{.schema}}.events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ch text := TG_TABLE_SCHEMA || '_events';
BEGIN
    IF EXISTS (SELECT 1 FROM new_events) THEN
        IF octet_length(ch) > 63 THEN
            ch := 'omniq_' || left(encode(sha256(convert_to(TG_TABLE_SCHEMA, 'UTF8')), 'hex'), 16) || '_events';
        END IF;
        PERFORM pg_notify(ch, '');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON {{.schema}}.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION {{.schema}}.events_notify();

-- queue_stats: one row per queue (with tasks or a persisted pause state):
-- tasks per status, finished in the last minute, and how long the oldest due
-- task has waited. One scan of tasks; meant for operators, not the hot path.
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

DROP VIEW IF EXISTS {{.schema}}.queue_stats;
DROP TRIGGER IF EXISTS events_notify ON {{.schema}}.events;
DROP FUNCTION IF EXISTS {{.schema}}.events_notify();
DROP INDEX IF EXISTS {{.schema}}.events_level_idx;
DROP INDEX IF EXISTS {{.schema}}.events_kind_idx;
DROP INDEX IF EXISTS {{.schema}}.events_queue_idx;
DROP INDEX IF EXISTS {{.schema}}.events_xid_idx;
ALTER TABLE {{.schema}}.events DROP COLUMN IF EXISTS xid;
