-- OmniQ core schema: tasks, results, schedules, events, queues, clients.
-- {{.schema}} is the target schema, already quoted as an identifier by migrations.Migrate.

-- tasks: one row per task. A task's lifecycle writes three row versions in the
-- common case (insert, claim, complete); nothing on the hot path rewrites it more.
CREATE TABLE {{.schema}}.tasks (
    id            uuid        PRIMARY KEY,          -- UUIDv7, made by the client
    kind          text        NOT NULL CHECK (kind <> '' AND length(kind) <= 128),
    queue         text        NOT NULL DEFAULT 'default'
                              CHECK (queue ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
    args          jsonb       NOT NULL DEFAULT '{}',
    codec         text        NOT NULL DEFAULT 'json' CHECK (codec <> ''),
    name          text,
    description   text,
    tags          text[]      NOT NULL DEFAULT '{}',
    priority      smallint    NOT NULL DEFAULT 0,   -- higher runs first
    status        text        NOT NULL DEFAULT 'pending'
                              CHECK (status IN ('pending','waiting','running','success','error','retry','cancelled','expired')),
    run_at        timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    completed_at  timestamptz,
    attempt       integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts  integer     NOT NULL DEFAULT 4 CHECK (max_attempts >= 1),
    retry_delay   interval    NOT NULL DEFAULT '5 seconds' CHECK (retry_delay >= '0'),
    retry_backoff text        NOT NULL DEFAULT 'fixed' CHECK (retry_backoff IN ('fixed','exponential')),
    expires_at    timestamptz,                      -- TTL: never started after this
    timeout       interval    CHECK (timeout > '0'),
    depends_on    uuid[]      NOT NULL DEFAULT '{}',
    run_anyway    boolean     NOT NULL DEFAULT false, -- run when dependencies end, whatever their status
    callback      jsonb,                            -- {"kind","args","queue","priority","on"} of a follow-up task
    result_ttl    interval    CHECK (result_ttl > '0'),
    store_result  boolean     NOT NULL DEFAULT true,
    unique_key    bytea,
    unique_states text[],
    schedule_id   uuid,
    scheduled_at  timestamptz,                      -- the schedule tick this task was fired for
    worker_id     text,
    heartbeat_at  timestamptz,
    cancel_requested_at timestamptz,
    errors        jsonb       NOT NULL DEFAULT '[]', -- one entry per failed attempt
    metadata      jsonb       NOT NULL DEFAULT '{}',
    CHECK (unique_key IS NULL OR unique_states IS NOT NULL)
);

-- The hot path: producers claim runnable rows in this order. Finished rows are
-- not in it, so a claim never walks history.
CREATE INDEX tasks_runnable_idx ON {{.schema}}.tasks (queue, priority DESC, run_at, id)
    WHERE status IN ('pending', 'retry');
-- Rescue of tasks whose client died, and cancel of running tasks.
CREATE INDEX tasks_running_idx ON {{.schema}}.tasks (worker_id)
    WHERE status = 'running';
-- Release of dependents when a dependency finishes.
CREATE INDEX tasks_waiting_deps_idx ON {{.schema}}.tasks USING gin (depends_on)
    WHERE status = 'waiting';
-- Expiry of tasks whose TTL passed before they ran.
CREATE INDEX tasks_expires_idx ON {{.schema}}.tasks (expires_at)
    WHERE expires_at IS NOT NULL AND status IN ('pending', 'retry', 'waiting');
-- Unique tasks: at most one row per key among the statuses the task chose.
CREATE UNIQUE INDEX tasks_unique_idx ON {{.schema}}.tasks (unique_key)
    WHERE unique_key IS NOT NULL AND status = ANY (unique_states);
-- A schedule fires each tick at most once, whatever the code does.
CREATE UNIQUE INDEX tasks_schedule_tick_idx ON {{.schema}}.tasks (schedule_id, scheduled_at)
    WHERE schedule_id IS NOT NULL;

-- results: the outcome of a task's last attempt, kept for result_ttl.
CREATE TABLE {{.schema}}.results (
    task_id        uuid        PRIMARY KEY,
    status         text        NOT NULL
                               CHECK (status IN ('pending','running','success','error','cancelled','timeout')),
    result         jsonb,
    codec          text        NOT NULL DEFAULT 'json',
    error          text,
    traceback      text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    completed_at   timestamptz,
    execution_time interval,
    worker_id      text,
    attempt        integer     NOT NULL DEFAULT 0,
    expires_at     timestamptz
);
CREATE INDEX results_expires_idx ON {{.schema}}.results (expires_at) WHERE expires_at IS NOT NULL;

-- schedules: cron, interval, timestamp and once; fired by whichever client claims them.
CREATE TABLE {{.schema}}.schedules (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL UNIQUE CHECK (name <> ''),
    type         text        NOT NULL CHECK (type IN ('cron','interval','timestamp','once')),
    cron         text,
    timezone     text        NOT NULL DEFAULT 'UTC',
    "interval"   interval    CHECK ("interval" > '0'),
    run_at       timestamptz,
    kind         text        NOT NULL CHECK (kind <> ''),
    queue        text        NOT NULL DEFAULT 'default',
    args         jsonb       NOT NULL DEFAULT '{}',
    codec        text        NOT NULL DEFAULT 'json',
    priority     smallint    NOT NULL DEFAULT 0,
    options      jsonb       NOT NULL DEFAULT '{}',  -- the rest of the task template's enqueue options
    max_runs     integer     CHECK (max_runs >= 0),
    run_count    integer     NOT NULL DEFAULT 0,
    missed       text        NOT NULL DEFAULT 'once' CHECK (missed IN ('once','backfill','skip')),
    backfill_max integer     NOT NULL DEFAULT 0 CHECK (backfill_max >= 0),
    no_overlap   boolean     NOT NULL DEFAULT false,
    status       text        NOT NULL DEFAULT 'active' CHECK (status IN ('active','paused','expired','cancelled')),
    last_run_at  timestamptz,
    next_run_at  timestamptz,
    paused_at    timestamptz,
    resumed_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    tags         text[]      NOT NULL DEFAULT '{}',
    description  text,
    CHECK (type <> 'cron' OR cron IS NOT NULL),
    CHECK (type <> 'interval' OR "interval" IS NOT NULL)
);
CREATE INDEX schedules_due_idx ON {{.schema}}.schedules (next_run_at) WHERE status = 'active';

-- events: the audit log. Append-only; pruned by retention.
CREATE TABLE {{.schema}}.events (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time           timestamptz NOT NULL DEFAULT now(),
    type           text        NOT NULL,
    task_id        uuid,
    kind           text,
    queue          text,
    worker_id      text,
    schedule_id    uuid,
    attempt        integer,
    message        text,
    data           jsonb       NOT NULL DEFAULT '{}',
    execution_time interval,
    error          text,
    source         text        NOT NULL DEFAULT 'omniq',
    level          text        NOT NULL DEFAULT 'info' CHECK (level IN ('debug','info','warning','error'))
);
CREATE INDEX events_task_idx ON {{.schema}}.events (task_id, id) WHERE task_id IS NOT NULL;
CREATE INDEX events_schedule_idx ON {{.schema}}.events (schedule_id, id) WHERE schedule_id IS NOT NULL;
CREATE INDEX events_type_idx ON {{.schema}}.events (type, id);
CREATE INDEX events_time_idx ON {{.schema}}.events USING brin (time);

-- queues: persisted per-queue state (pause), honoured by every client.
CREATE TABLE {{.schema}}.queues (
    name       text        PRIMARY KEY,
    paused_at  timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- clients: one row per started client, refreshed every heartbeat interval. A
-- running task whose client's row is stale is rescued; one row per client,
-- not one write per running task.
CREATE TABLE {{.schema}}.clients (
    id           text        PRIMARY KEY,
    hostname     text        NOT NULL DEFAULT '',
    pid          integer     NOT NULL DEFAULT 0,
    queues       text[]      NOT NULL DEFAULT '{}',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

---- create above / drop below ----

DROP TABLE IF EXISTS {{.schema}}.clients;
DROP TABLE IF EXISTS {{.schema}}.queues;
DROP TABLE IF EXISTS {{.schema}}.events;
DROP TABLE IF EXISTS {{.schema}}.schedules;
DROP TABLE IF EXISTS {{.schema}}.results;
DROP TABLE IF EXISTS {{.schema}}.tasks;
