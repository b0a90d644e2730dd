-- omniq.enqueue's NOTIFY carries the task's run_at, as the Go client's does.
-- {{.schema}} is the target schema, already quoted. The function is 003's,
-- but for that NOTIFY.

CREATE OR REPLACE FUNCTION {{.schema}}.enqueue(
    kind         text,
    args         jsonb       DEFAULT '{}',
    queue        text        DEFAULT 'default',
    priority     integer     DEFAULT 0,
    run_at       timestamptz DEFAULT NULL,
    max_attempts integer     DEFAULT 4,
    name         text        DEFAULT NULL,
    tags         text[]      DEFAULT '{}',
    metadata     jsonb       DEFAULT '{}',
    timeout      interval    DEFAULT NULL,
    ttl          interval    DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    new_id uuid := {{.schema}}.uuid_v7();
    start  timestamptz := greatest(coalesce(enqueue.run_at, now()), now());
BEGIN
    IF enqueue.kind IS NULL OR enqueue.kind = '' OR length(enqueue.kind) > 128 THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid kind %: must be 1-128 characters', quote_nullable(enqueue.kind)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.queue IS NULL OR enqueue.queue !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$' THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid queue %: use 1-128 letters, digits, ''_'', ''.'', '':'' or ''-'', starting with a letter or digit', quote_nullable(enqueue.queue)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.priority IS NULL OR enqueue.priority NOT BETWEEN -32768 AND 32767 THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid priority %: must be between -32768 and 32767', quote_nullable(enqueue.priority)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.max_attempts IS NULL OR enqueue.max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid max_attempts %: must be between 1 and 1000', quote_nullable(enqueue.max_attempts)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.args IS NULL OR octet_length(enqueue.args::text) > 1048576 THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid args: must be non-null JSON of at most 1048576 bytes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.timeout IS NOT NULL AND enqueue.timeout <= '0' THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid timeout %: must be positive', enqueue.timeout
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.ttl IS NOT NULL AND enqueue.ttl <= '0' THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid ttl %: must be positive', enqueue.ttl
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO {{.schema}}.tasks (id, kind, queue, args, priority, run_at, max_attempts, name, tags, metadata,
        timeout, expires_at)
    VALUES (new_id, enqueue.kind, enqueue.queue, enqueue.args, enqueue.priority, start, enqueue.max_attempts,
        enqueue.name, coalesce(enqueue.tags, '{}'), coalesce(enqueue.metadata, '{}'), enqueue.timeout,
        start + enqueue.ttl);
    INSERT INTO {{.schema}}.events (type, task_id, kind, queue, source, message)
    VALUES ('enqueued', new_id, enqueue.kind, enqueue.queue, 'sql', 'enqueued by ' || session_user);
    IF start <= now() THEN
        -- The payload carries the task's run_at, as the Go client's does
        -- (queue.sqlWake): producers move their claim cursors back to it, so
        -- a task enqueued by a transaction that commits long after it began
        -- is claimed at once. Identical notifications fold into one per
        -- transaction.
        PERFORM pg_notify({{.schema}}.channel('insert'),
            enqueue.queue || ' ' || floor(extract(epoch FROM start) * 1000000)::bigint);
    END IF;
    RETURN new_id;
END
$$;

---- create above / drop below ----

CREATE OR REPLACE FUNCTION {{.schema}}.enqueue(
    kind         text,
    args         jsonb       DEFAULT '{}',
    queue        text        DEFAULT 'default',
    priority     integer     DEFAULT 0,
    run_at       timestamptz DEFAULT NULL,
    max_attempts integer     DEFAULT 4,
    name         text        DEFAULT NULL,
    tags         text[]      DEFAULT '{}',
    metadata     jsonb       DEFAULT '{}',
    timeout      interval    DEFAULT NULL,
    ttl          interval    DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    new_id uuid := {{.schema}}.uuid_v7();
    start  timestamptz := greatest(coalesce(enqueue.run_at, now()), now());
BEGIN
    IF enqueue.kind IS NULL OR enqueue.kind = '' OR length(enqueue.kind) > 128 THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid kind %: must be 1-128 characters', quote_nullable(enqueue.kind)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.queue IS NULL OR enqueue.queue !~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$' THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid queue %: use 1-128 letters, digits, ''_'', ''.'', '':'' or ''-'', starting with a letter or digit', quote_nullable(enqueue.queue)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.priority IS NULL OR enqueue.priority NOT BETWEEN -32768 AND 32767 THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid priority %: must be between -32768 and 32767', quote_nullable(enqueue.priority)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.max_attempts IS NULL OR enqueue.max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid max_attempts %: must be between 1 and 1000', quote_nullable(enqueue.max_attempts)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.args IS NULL OR octet_length(enqueue.args::text) > 1048576 THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid args: must be non-null JSON of at most 1048576 bytes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.timeout IS NOT NULL AND enqueue.timeout <= '0' THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid timeout %: must be positive', enqueue.timeout
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF enqueue.ttl IS NOT NULL AND enqueue.ttl <= '0' THEN
        RAISE EXCEPTION 'omniq.enqueue: invalid ttl %: must be positive', enqueue.ttl
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO {{.schema}}.tasks (id, kind, queue, args, priority, run_at, max_attempts, name, tags, metadata,
        timeout, expires_at)
    VALUES (new_id, enqueue.kind, enqueue.queue, enqueue.args, enqueue.priority, start, enqueue.max_attempts,
        enqueue.name, coalesce(enqueue.tags, '{}'), coalesce(enqueue.metadata, '{}'), enqueue.timeout,
        start + enqueue.ttl);
    INSERT INTO {{.schema}}.events (type, task_id, kind, queue, source, message)
    VALUES ('enqueued', new_id, enqueue.kind, enqueue.queue, 'sql', 'enqueued by ' || session_user);
    IF start <= now() THEN
        -- Identical notifications fold into one per transaction.
        PERFORM pg_notify({{.schema}}.channel('insert'), enqueue.queue);
    END IF;
    RETURN new_id;
END
$$;
