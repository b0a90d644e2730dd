package periodic

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// scheduleColumns is the column list scanSchedule reads.
const scheduleColumns = `id, name, type, coalesce(cron, ''), timezone, coalesce("interval", '0'), run_at,
	kind, queue, args, codec, priority, options, coalesce(max_runs, 0), run_count, backfill_max, no_overlap,
	status, last_run_at, next_run_at, paused_at, resumed_at, created_at, updated_at, tags, coalesce(description, '')`

type statements struct {
	schedules, insert, upsert, claim, nextDue, advance, event, notify, latestResult string
}

func newStatements(schema string) *statements {
	r := strings.NewReplacer(
		"{schedules}", pgx.Identifier{schema, "schedules"}.Sanitize(),
		"{tasks}", pgx.Identifier{schema, "tasks"}.Sanitize(),
		"{results}", pgx.Identifier{schema, "results"}.Sanitize(),
		"{events}", pgx.Identifier{schema, "events"}.Sanitize(),
		"{columns}", scheduleColumns,
	)
	return &statements{
		schedules:    r.Replace("{schedules}"),
		insert:       r.Replace(sqlInsert),
		upsert:       r.Replace(sqlUpsert),
		claim:        r.Replace(sqlClaim),
		nextDue:      r.Replace(sqlNextDue),
		advance:      r.Replace(sqlAdvance),
		event:        r.Replace(sqlEvent),
		notify:       sqlNotify,
		latestResult: r.Replace(sqlLatestResult),
	}
}

// The definition columns, $1…$20, shared by insert and upsert.
const sqlValues = `($1, $2, $3, nullif($4, ''), $5, $6, $7, $8, $9, $10, $11, $12, $13, nullif($14, 0), $15, $16, $17, $18, $19, nullif($20, ''))`

const sqlInsert = `
INSERT INTO {schedules} (id, name, type, cron, timezone, "interval", run_at, kind, queue, args, codec,
	priority, options, max_runs, missed, backfill_max, no_overlap, next_run_at, tags, description)
VALUES ` + sqlValues + `
RETURNING {columns}`

// sqlUpsert writes a Config-declared schedule by name. An unchanged spec
// writes nothing. A changed one updates the definition; next_run_at is
// recomputed only when the timing changed (or an expired schedule comes back
// to life because its timing or max_runs changed); pause and cancel stay.
// Returns whether a row was written, and whether it was new.
const sqlUpsert = `
INSERT INTO {schedules} AS s (id, name, type, cron, timezone, "interval", run_at, kind, queue, args, codec,
	priority, options, max_runs, missed, backfill_max, no_overlap, next_run_at, tags, description)
VALUES ` + sqlValues + `
ON CONFLICT (name) DO UPDATE SET
	type = excluded.type, cron = excluded.cron, timezone = excluded.timezone, "interval" = excluded."interval",
	run_at = excluded.run_at, kind = excluded.kind, queue = excluded.queue, args = excluded.args,
	codec = excluded.codec, priority = excluded.priority, options = excluded.options,
	max_runs = excluded.max_runs, missed = excluded.missed, backfill_max = excluded.backfill_max,
	no_overlap = excluded.no_overlap, tags = excluded.tags, description = excluded.description,
	updated_at = now(),
	status = CASE WHEN s.status = 'expired'
			AND (excluded.max_runs IS NULL OR s.run_count < excluded.max_runs)
			AND ((s.type, s.cron, s.timezone, s."interval", s.run_at) IS DISTINCT FROM
				(excluded.type, excluded.cron, excluded.timezone, excluded."interval", excluded.run_at)
				OR (s.type IN ('cron', 'interval') AND s.max_runs IS DISTINCT FROM excluded.max_runs))
		THEN 'active' ELSE s.status END,
	next_run_at = CASE
		WHEN s.status IN ('cancelled') THEN s.next_run_at
		WHEN (s.type, s.cron, s.timezone, s."interval", s.run_at) IS DISTINCT FROM
			(excluded.type, excluded.cron, excluded.timezone, excluded."interval", excluded.run_at)
			OR (s.status = 'expired' AND s.type IN ('cron', 'interval') AND s.max_runs IS DISTINCT FROM excluded.max_runs)
		THEN excluded.next_run_at
		ELSE s.next_run_at END
WHERE (s.type, s.cron, s.timezone, s."interval", s.run_at, s.kind, s.queue, s.args, s.codec, s.priority,
		s.options, s.max_runs, s.missed, s.backfill_max, s.no_overlap, s.tags, s.description)
	IS DISTINCT FROM (excluded.type, excluded.cron, excluded.timezone, excluded."interval", excluded.run_at,
		excluded.kind, excluded.queue, excluded.args, excluded.codec, excluded.priority, excluded.options,
		excluded.max_runs, excluded.missed, excluded.backfill_max, excluded.no_overlap, excluded.tags,
		excluded.description)
RETURNING s.id, s.name, xmax = 0 AS inserted`

// sqlClaim locks up to $2 due schedules for one fire. $1 is the test clock
// (NULL: the database clock decides what is due). busy says the newest task
// of a no-overlap schedule has not finished; it reads one index entry (a
// schedule's tasks are in tasks' sticky partition, gen 0, whose index it is).
const sqlClaim = `
SELECT {columns}, coalesce($1::timestamptz, now()) AS now,
	s.no_overlap AND EXISTS (
		SELECT 1 FROM (SELECT t.status FROM {tasks} t WHERE t.gen = 0 AND t.schedule_id = s.id
			ORDER BY t.scheduled_at DESC LIMIT 1) last
		WHERE last.status IN ('pending', 'waiting', 'running', 'retry')) AS busy
FROM {schedules} s
WHERE s.status = 'active' AND s.next_run_at <= coalesce($1::timestamptz, now())
ORDER BY s.next_run_at
LIMIT $2
FOR UPDATE OF s SKIP LOCKED`

// sqlNextDue is the idle loop's only query: how long until the earliest
// active schedule is due, by the database clock. One index entry read.
const sqlNextDue = `
SELECT extract(epoch FROM (SELECT min(next_run_at) FROM {schedules} WHERE status = 'active')
	- coalesce($1::timestamptz, now()))::float8`

const sqlAdvance = `
UPDATE {schedules} SET next_run_at = $2, run_count = run_count + $3,
	last_run_at = CASE WHEN $3 > 0 THEN $4 ELSE last_run_at END,
	status = CASE WHEN $5 THEN 'expired' ELSE status END, updated_at = now()
WHERE id = $1`

const sqlEvent = `
INSERT INTO {events} (type, task_id, kind, queue, schedule_id, message, data, level)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

const sqlNotify = `SELECT pg_notify($1, '')`

// sqlLatestResult finds the newest unexpired result of a schedule's tasks.
const sqlLatestResult = `
SELECT r.task_id FROM {results} r JOIN {tasks} t ON t.id = r.task_id
WHERE t.gen = 0 AND t.schedule_id = $1 AND (r.expires_at IS NULL OR r.expires_at > now())
ORDER BY t.scheduled_at DESC, r.completed_at DESC NULLS LAST
LIMIT 1`
