package queue

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// taskColumns is the column list every task read scans, in scanTask's order.
const taskColumns = `id, kind, queue, args, codec, coalesce(name, ''), coalesce(description, ''), tags, priority,
	status, run_at, created_at, started_at, completed_at, attempt, max_attempts, retry_delay, retry_backoff,
	expires_at, coalesce(timeout, '0'), depends_on, run_anyway, callback, coalesce(result_ttl, '0'),
	store_result, schedule_id, scheduled_at, coalesce(worker_id, ''), heartbeat_at, errors, metadata, gen`

// statements holds every SQL text of the engine, rendered once for a schema.
// The schema is the only thing spliced in, always quoted by pgx.Identifier.
type statements struct {
	schema string

	insert        string
	copyTasks     [copyShapes]string // COPY of tasks, by copyShape
	copyEvents    string
	claim         [maxCursors + 1]string // by number of cursors
	claimEvents   [maxCursors + 1]string // the same, writing 'executing' events
	behindCursor  string
	complete      string
	depsLock      string
	releaseDeps   string
	cancelDeps    string
	fireCallbacks string
	notify        string
	wake          string

	heartbeat    string
	deleteClient string
	rescueStale  string
	rescueAll    string
	expire       string
	returnTasks  string

	pruneTasks   string
	pruneResults string
	pruneEvents  string

	rotationGen     string
	rotationSlots   string
	rotationEnd     string
	rotationStart   string
	rotationEmpty   string
	rotationRestore string
	// By rotating partition (index gen-1), and for those of one table by
	// partitionTables' index: see rotation.go.
	partitionDrained  [rotatingPartitions]string
	partitionKeep     [rotatingPartitions]string
	partitionLock     [rotatingPartitions]string
	partitionTruncate [rotatingPartitions]string
	partitionDetach   [rotatingPartitions][len(partitionTables)]string
	partitionFinalize [rotatingPartitions][len(partitionTables)]string
	partitionAttach   [rotatingPartitions][len(partitionTables)]string
	retireLock        string
	retireUnlock      string
	retireTry         string
}

func table(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

func newStatements(schema string) *statements {
	r := strings.NewReplacer(
		"{tasks}", table(schema, "tasks"),
		"{results}", table(schema, "results"),
		"{events}", table(schema, "events"),
		"{clients}", table(schema, "clients"),
		"{queues}", table(schema, "queues"),
		"{rotation}", table(schema, "tasks_rotation"),
		"{tasks_g0}", table(schema, "tasks_g0"),
		"{dependency_state}", table(schema, "dependency_state"),
		"{task_columns}", taskColumns,
	)
	s := &statements{schema: schema}
	for _, p := range []struct {
		dst *string
		sql string
	}{
		{&s.insert, sqlInsert},
		{&s.copyEvents, sqlCopyEvents},
		{&s.complete, sqlComplete},
		{&s.behindCursor, sqlBehindCursor},
		{&s.depsLock, sqlDepsLock},
		{&s.releaseDeps, sqlReleaseDeps},
		{&s.cancelDeps, sqlCancelDeps},
		{&s.fireCallbacks, sqlFireCallbacks},
		{&s.notify, sqlNotify},
		{&s.wake, sqlWake},
		{&s.heartbeat, sqlHeartbeat},
		{&s.deleteClient, sqlDeleteClient},
		{&s.rescueStale, strings.Replace(sqlRescue, "{stuck}", sqlRescueStale, 1)},
		{&s.rescueAll, strings.Replace(sqlRescue, "{stuck}", sqlRescueAll, 1)},
		{&s.expire, sqlExpire},
		{&s.returnTasks, sqlReturnTasks},
		{&s.pruneTasks, sqlPruneTasks},
		{&s.pruneResults, sqlPruneResults},
		{&s.pruneEvents, sqlPruneEvents},
		{&s.rotationGen, sqlRotationGen},
		{&s.rotationSlots, sqlRotationSlots},
		{&s.rotationEnd, sqlRotationEnd},
		{&s.rotationStart, sqlRotationStart},
		{&s.rotationEmpty, sqlRotationEmpty},
		{&s.rotationRestore, sqlRotationRestore},
		{&s.retireLock, sqlRetireLock},
		{&s.retireUnlock, sqlRetireUnlock},
		{&s.retireTry, sqlRetireTry},
	} {
		*p.dst = r.Replace(p.sql)
	}
	for i := range rotatingPartitions {
		gen := int16(i + 1)
		part := strings.NewReplacer("{part}", partitionTable(schema, "tasks", gen),
			"{results_part}", partitionTable(schema, "results", gen))
		s.partitionDrained[i] = r.Replace(part.Replace(sqlPartitionDrained))
		s.partitionKeep[i] = r.Replace(part.Replace(sqlPartitionKeep))
		s.partitionLock[i] = part.Replace(sqlPartitionLock)
		s.partitionTruncate[i] = part.Replace(sqlPartitionTruncate)
		for j, parent := range partitionTables {
			one := strings.NewReplacer("{parent}", table(schema, parent), "{part}", partitionTable(schema, parent, gen),
				"{gen}", fmt.Sprint(gen))
			s.partitionDetach[i][j] = one.Replace(sqlPartitionDetach)
			s.partitionFinalize[i][j] = one.Replace(sqlPartitionFinalize)
			s.partitionAttach[i][j] = one.Replace(sqlPartitionAttach)
		}
	}
	for i := range s.copyTasks {
		cols := copyShape(i).columns()
		s.copyTasks[i] = "COPY " + table(schema, "tasks") + " (" + strings.Join(cols, ", ") + ") FROM STDIN (FORMAT binary)"
	}
	for k := range s.claim {
		s.claim[k] = r.Replace(strings.Replace(sqlClaim, "{locked}", claimLocked(k), 1))
		s.claimEvents[k] = r.Replace(strings.Replace(sqlClaimEvents, "{locked}", claimLocked(k), 1))
	}
	return s
}

// Channel returns the NOTIFY channel name for schema and topic. Channel names
// are identifiers (at most 63 bytes); long schemas are shortened by a hash.
func Channel(schema, topic string) string {
	name := schema + "_" + topic
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(schema))
	return "omniq_" + hex.EncodeToString(sum[:8]) + "_" + topic
}

// NOTIFY topics.
const (
	topicInsert   = "insert"   // payload: queue name, a space, earliest run_at (µs since the epoch); tasks became runnable
	topicControl  = "control"  // payload: JSON control message (cancel, pause, resume)
	topicComplete = "complete" // payload: empty; a completion batch committed
)

// sqlInsert inserts a batch of tasks given as parallel arrays. $28 says which
// go to the rotating partition new tasks go to; the rest go to the sticky
// one, tasks_g0 (see InsertParams.rotates), where the unique index is. Unique
// tasks that collide with an existing row return that row's id, flagged
// duplicate (the existing row's id is not one of the batch's).
const sqlInsert = `
WITH input AS (
	SELECT * FROM unnest(
		$1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::text[], $8::jsonb[],
		$9::smallint[], $10::text[], $11::timestamptz[], $12::int[], $13::interval[], $14::text[],
		$15::timestamptz[], $16::interval[], $17::text[], $18::bool[], $19::jsonb[], $20::interval[],
		$21::bool[], $22::bytea[], $23::text[], $24::uuid[], $25::timestamptz[], $26::jsonb[], $28::bool[]
	) AS i(id, kind, queue, args, codec, name, description, tags, priority, status, run_at,
	       max_attempts, retry_delay, retry_backoff, expires_at, timeout, depends_on, run_anyway,
	       callback, result_ttl, store_result, unique_key, unique_states, schedule_id, scheduled_at, metadata, rotating)
), rows AS (
	SELECT id, kind, queue, args, codec, name, description,
		CASE WHEN tags IS NULL THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(tags)) END AS tags,
		priority, status, coalesce(run_at, now()) AS run_at, max_attempts, retry_delay, retry_backoff, expires_at,
		timeout, coalesce(depends_on::uuid[], '{}') AS depends_on, run_anyway, callback, result_ttl, store_result,
		unique_key, unique_states::text[] AS unique_states, schedule_id, scheduled_at, coalesce(metadata, '{}') AS metadata,
		CASE WHEN status = 'cancelled' THEN now() END AS completed_at,
		CASE WHEN status = 'cancelled' THEN jsonb_build_array(jsonb_build_object('attempt', 0, 'at', now(), 'error', 'a dependency did not succeed')) ELSE '[]' END AS errors,
		rotating
	FROM input
), sticky AS (
	INSERT INTO {tasks_g0} (id, kind, queue, args, codec, name, description, tags, priority, status, run_at,
		max_attempts, retry_delay, retry_backoff, expires_at, timeout, depends_on, run_anyway, callback,
		result_ttl, store_result, unique_key, unique_states, schedule_id, scheduled_at, metadata, completed_at, errors)
	SELECT id, kind, queue, args, codec, name, description, tags, priority, status, run_at,
		max_attempts, retry_delay, retry_backoff, expires_at, timeout, depends_on, run_anyway, callback,
		result_ttl, store_result, unique_key, unique_states, schedule_id, scheduled_at, metadata, completed_at, errors
	FROM rows WHERE NOT rotating
	ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND status = ANY (unique_states)
	DO UPDATE SET unique_key = excluded.unique_key
	RETURNING id, unique_key, kind, queue, status
), rotated AS (
	INSERT INTO {tasks} (id, kind, queue, args, codec, name, description, tags, priority, status, run_at,
		max_attempts, retry_delay, retry_backoff, expires_at, timeout, depends_on, run_anyway, callback,
		result_ttl, store_result, metadata, completed_at, errors, gen)
	SELECT id, kind, queue, args, codec, name, description, tags, priority, status, run_at,
		max_attempts, retry_delay, retry_backoff, expires_at, timeout, depends_on, run_anyway, callback,
		result_ttl, store_result, metadata, completed_at, errors,
		coalesce((SELECT gen FROM {rotation} WHERE current), 0)
	FROM rows WHERE rotating
	RETURNING id, unique_key, kind, queue, status
), ins AS (
	SELECT *, id <> ALL ($1::uuid[]) AS duplicate FROM sticky
	UNION ALL SELECT *, false FROM rotated
), ev AS (
	INSERT INTO {events} (type, task_id, kind, queue, message)
	SELECT 'enqueued', id, kind, queue, status FROM ins WHERE NOT duplicate AND $27::bool
)
SELECT id, unique_key, duplicate FROM ins`

// sqlCopyEvents records the enqueued events of tasks written by COPY.
const sqlCopyEvents = `
INSERT INTO {events} (type, task_id, kind, queue, message)
SELECT 'enqueued', id, kind, queue, 'pending' FROM unnest($1::uuid[], $2::text[], $3::text[]) AS i(id, kind, queue)`

// sqlNotify sends each payload of $2 on channel $1 (PostgreSQL folds
// identical notifications within a transaction).
const sqlNotify = `SELECT pg_notify($1, q) FROM unnest($2::text[]) AS q`

// sqlWake wakes the producers of queues $2 on the insert channel $1: one
// NOTIFY per queue. The payload is the queue, a space, and the earliest
// run_at of the tasks made runnable ($3, or the transaction's now(), which
// tasks inserted without a run_at take) in microseconds since the Unix
// epoch: a producer moves its claim cursors back to it, so a task enqueued by
// a transaction that committed long after it began is claimed at once (see
// producer.notified). A payload of the queue alone (SQL written by hand)
// only wakes.
const sqlWake = `SELECT pg_notify($1, q || ' ' || ` + notifyRunAt + `) FROM unnest($2::text[], $3::timestamptz[]) AS n(q, r)`

// notifyRunAt renders least(r, now()) for a NOTIFY payload; r may be NULL.
const notifyRunAt = `floor(extract(epoch FROM least(r, now())) * 1000000)::bigint`

// sqlClaim moves up to $2 runnable tasks of queue $1 to running, for client $3,
// and returns them. {locked} picks and locks them: claimLocked renders it, for
// a scan of the whole runnable range or one that starts at the producer's
// cursors. It writes no 'executing' events (sqlClaimEvents does), so the
// UPDATE returns its rows itself; with the events' INSERT beside it, they
// would go through a CTE's tuplestore first.
//
// The UPDATE finds the locked tasks by claimedTasks, not by a join.
//
// A claim runs after sqlClaimSettings, in the same implicit transaction.
const sqlClaim = `
WITH {locked}
UPDATE {tasks} t SET status = 'running', attempt = t.attempt + 1, started_at = now(),
	worker_id = $3, heartbeat_at = now()
WHERE ` + claimedTasks + `
RETURNING {task_columns}`

// claimedTasks is how a claim's UPDATE finds the tasks its locked CTE chose:
// their ids as an array, an index condition on each partition's primary key,
// and their gens. Ids are unique within a partition, not across them: a
// preset id (InsertOpts.ID) goes to tasks_g0 even when a task of a rotating
// partition has the same id, say the finished task it repeats. So the UPDATE
// also requires a runnable task of the claim's queue, which keeps such a twin
// untouched unless it is itself runnable in this queue, and then claiming it
// is right (the UPDATE waits for its row lock and re-checks it; a row beyond
// the claim's n waits among the producer's tasks claimed ahead). The status
// is compared with an array the planner cannot read, so that no partial
// index of runnable tasks (whose scan would read every runnable task of the
// partition) looks usable; TestClaimLeavesATwinInAnotherPartition.
//
// Why not a join to locked: the claim's generic plan is made once per
// connection and kept until a partition of tasks is truncated or analyzed,
// often while the next rotating partition is empty. Once an ANALYZE has
// recorded that partition as empty, the planner joined the locked tasks to
// it by scanning its whole primary key for each of them, and kept that plan
// while the partition filled: in a long-horizon run, after the recovery
// phase's VACUUM ANALYZE, claims read the whole current partition per task
// (19,770 blocks to claim 10 tasks of 2,000; 470 ms to claim 8 of 50,000)
// and completed 50 to 300 tasks a second of 1,000 offered for a minute,
// until a truncation made the plan anew. An array condition is not a join:
// each partition's only path is its primary key
// (TestPlansMadeOverAnEmptyPartition). A (id, gen) row comparison
// against an array of pairs cost a claim of 1,000 tasks a million record
// comparisons (-n: 6,000 jobs/s against 21,700).
const claimedTasks = `t.id = ANY (ARRAY(SELECT id FROM locked)) AND t.gen = ANY (ARRAY(SELECT gen FROM locked))
	AND t.queue = $1 AND t.status = ANY ((SELECT '{pending,retry}'::text[])::text[])`

// sqlClaimEvents is sqlClaim writing an 'executing' event for each task it
// claims (EventsAll).
const sqlClaimEvents = `
WITH {locked}, claimed AS (
	UPDATE {tasks} t SET status = 'running', attempt = t.attempt + 1, started_at = now(),
		worker_id = $3, heartbeat_at = now()
	WHERE ` + claimedTasks + `
	RETURNING t.*
), ev AS (
	INSERT INTO {events} (type, task_id, kind, queue, worker_id, attempt, schedule_id)
	SELECT 'executing', id, kind, queue, worker_id, attempt, schedule_id FROM claimed
)
SELECT {task_columns} FROM claimed`

// sqlGenericPlans precedes each claim (in sqlClaimSettings) and each small
// completion batch (see completer.write), in the same implicit transaction
// (one pipelined round trip): the claim runs its generic plan, made once per connection and again
// only when a partition of tasks is truncated, and that plan looks tasks up
// by index and joins them by nested loop. Left to itself the planner planned
// every claim anew (about 1.4 ms with tasks' partitions, a claim's whole cost
// at a few tasks), because the generic plan it would otherwise keep hashes a
// partition to join the locked rows, which it guesses by LIMIT $2 to be many;
// and a generic plan made while a partition was empty would scan it whole
// once it had filled. JIT is off: a plan that still needs a Seq Scan costs
// past jit_above_cost under enable_seqscan off, and compiling it took
// hundreds of milliseconds a run (see sqlDepsGuard).
const sqlGenericPlans = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
	set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
	set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true)`

// sqlClaimSettings precedes each claim: sqlGenericPlans' settings, and a
// claim that takes tasks commits without waiting for its WAL to be flushed
// (synchronous_commit off for its own transaction). A claim lost in a server
// crash leaves its tasks pending, claimed again after the restart, which
// at-least-once delivery allows; a task that ran is run again, as after any
// crash. The completion, which is flushed, flushes the claim before it: WAL
// is written in order. The wait saved is a flush per claim, on the path from
// a task's enqueue to its start.
const sqlClaimSettings = sqlGenericPlans + `, set_config('synchronous_commit', 'off', true)`

// sqlCustomPlans precedes a large completion batch (see completer.write): the
// rest of its transaction plans each statement for its parameters, joining by
// nested loop.
const sqlCustomPlans = `SELECT set_config('plan_cache_mode', 'force_custom_plan', true),
	set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),
	set_config('jit', 'off', true)`

// sqlBehindCursor finds the earliest runnable task of queue $1 and priority
// $2 behind the claim cursor ($3, $4); see producer.sweep.
const sqlBehindCursor = `
SELECT run_at FROM {tasks}
WHERE queue = $1 AND priority = $2::smallint AND status IN ('pending', 'retry') AND run_at <= now()
	AND (run_at, id) < ($3::timestamptz, $4::uuid)
ORDER BY run_at, id
LIMIT 1`

// claimRunnable is what every claim branch requires of a task.
const claimRunnable = `queue = $1 AND status IN ('pending', 'retry') AND run_at <= now()
		AND (expires_at IS NULL OR expires_at > now())
		AND NOT EXISTS (SELECT 1 FROM {queues} q WHERE q.name = $1 AND q.paused_at IS NOT NULL)`

// maxCursors is how many priorities of a queue a producer keeps a claim
// cursor for; tasks of other priorities are found by scanning their range.
const maxCursors = 3

// claimLocked renders the locked CTE of sqlClaim for k cursors (0 ≤ k ≤
// maxCursors), given as parameters $4+3j (priority), $5+3j (run_at) and
// $6+3j (id), priorities in descending order.
//
// Why cursors: a claim leaves its tasks' old entries in tasks_runnable_idx,
// dead, ahead of every live entry of their priority. Vacuum removes them,
// but while a long transaction holds back the xmin horizon it cannot, and a
// scan from the start of the range walks (and visits the heap for) every one:
// 600,000 of them cost 200 ms per claim. Starting each priority's scan at
// the position of the producer's last claim of that priority skips them.
// The ranges between the cursors' priorities are scanned whole, so a task of
// a new priority is never missed. Each branch is a CTE of its own because
// FOR UPDATE is not allowed under UNION; a CTE runs only as far as the
// Append above it reads, so a branch after a full one locks nothing.
func claimLocked(k int) string {
	if k == 0 {
		return `locked AS (
	SELECT id, gen FROM {tasks}
	WHERE ` + claimRunnable + `
	ORDER BY priority DESC, run_at, id
	LIMIT $2
	FOR UPDATE SKIP LOCKED
)`
	}
	var b strings.Builder
	branch := func(name, cond, order string) {
		fmt.Fprintf(&b, "%s AS (\n\tSELECT id, gen FROM {tasks}\n\tWHERE %s\n\t\tAND %s\n\tORDER BY %s\n\tLIMIT $2\n\tFOR UPDATE SKIP LOCKED\n), ",
			name, claimRunnable, cond, order)
	}
	var names []string
	for j := 0; j < k; j++ {
		p, r, id := 4+3*j, 5+3*j, 6+3*j
		gap := fmt.Sprintf("priority > $%d::smallint", p)
		if j > 0 {
			gap += fmt.Sprintf(" AND priority < $%d::smallint", p-3)
		}
		branch(fmt.Sprintf("gap%d", j), gap, "priority DESC, run_at, id")
		branch(fmt.Sprintf("at%d", j), fmt.Sprintf("priority = $%d::smallint AND (run_at, id) > ($%d::timestamptz, $%d::uuid)", p, r, id), "run_at, id")
		names = append(names, fmt.Sprintf("gap%d", j), fmt.Sprintf("at%d", j))
	}
	branch("rest", fmt.Sprintf("priority < $%d::smallint", 4+3*(k-1)), "priority DESC, run_at, id")
	names = append(names, "rest")
	b.WriteString("locked AS (\n\t")
	for i, n := range names {
		if i > 0 {
			b.WriteString("\n\tUNION ALL ")
		}
		b.WriteString("SELECT id, gen FROM " + n)
	}
	b.WriteString("\n\tLIMIT $2\n)")
	return b.String()
}

// sqlComplete writes a batch of outcomes: the task transition, the result and
// the event, in one statement. An outcome applies only while the task is still
// running the same attempt, so a rescued or cancelled task is not overwritten.
//
// A cancel request (cancel_requested_at, set by Engine.Cancel while the task
// ran) ends the task cancelled when its outcome would run it again, a retry,
// a snooze or a task claimed ahead and given back: the request's NOTIFY may
// not have reached the executor before the attempt ended, and the task must
// not run again after a Cancel that returned "running". Such a row is told by
// its written status differing from the outcome's, and gets the result and
// the event of a cancel; the batch's later statements read the status as
// written (see Engine.completionBatch).
//
// The result and event rows read the outcome from the UPDATE's RETURNING
// rather than joining the updated rows back to the input, two joins fewer
// whose plans depend on guessed array lengths (see completer.write).
const sqlComplete = `
WITH o AS (
	SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::timestamptz[], $5::jsonb[],
		$6::timestamptz[], $7::jsonb[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int[], $13::text[],
		$16::smallint[])
	AS o(id, attempt, status, run_at, err, finished_at, result, result_codec, result_status, error,
	     traceback, attempt_adj, event, gen)
), upd AS (
	UPDATE {tasks} t SET
		status = CASE WHEN t.cancel_requested_at IS NOT NULL AND o.status IN ('pending', 'retry') THEN 'cancelled'
			ELSE o.status END,
		run_at = coalesce(o.run_at, t.run_at),
		completed_at = CASE WHEN o.status IN ('success', 'error', 'cancelled') OR t.cancel_requested_at IS NOT NULL
			THEN o.finished_at END,
		attempt = t.attempt + o.attempt_adj,
		errors = CASE WHEN o.err IS NULL THEN t.errors ELSE t.errors || jsonb_build_array(o.err) END
	FROM o
	-- (SELECT 'running') is 'running' that the planner cannot match to the
	-- partial index tasks_running_idx: with it, the planner hashed every
	-- running task (all of a backlog: 100,000+) for each batch instead of
	-- looking up the batch's ids by primary key.
	-- t.gen = o.gen makes the lookup one of the primary key, (id, gen): by
	-- id alone the planner, not knowing ids unique, may hash a partition.
	WHERE t.id = o.id AND t.gen = o.gen AND t.status = (SELECT 'running') AND t.attempt = o.attempt
	RETURNING t.id, t.gen, t.kind, t.queue, t.status, t.store_result, t.result_ttl, t.started_at, t.created_at,
		t.worker_id, t.attempt, t.schedule_id, t.run_at,
		o.attempt AS o_attempt, o.attempt_adj, o.finished_at, o.result, o.result_codec, o.traceback,
		CASE WHEN t.status <> o.status THEN 'cancelled' ELSE o.result_status END AS result_status,
		CASE WHEN t.status <> o.status THEN 'cancelled by request' ELSE o.error END AS error,
		CASE WHEN t.status <> o.status THEN 'cancelled' ELSE o.event END AS event,
		o.event = '' AS unstarted
), res AS (
	INSERT INTO {results} (task_id, gen, status, result, codec, error, traceback, started_at, completed_at,
		execution_time, worker_id, attempt, expires_at)
	SELECT upd.id, upd.gen, upd.result_status, upd.result, upd.result_codec, upd.error, upd.traceback, upd.started_at,
		upd.finished_at, upd.finished_at - upd.started_at, upd.worker_id, upd.attempt,
		upd.finished_at + coalesce(upd.result_ttl, $14::interval)
	FROM upd
	WHERE upd.store_result AND upd.status IN ('success', 'error', 'cancelled')
	ON CONFLICT (task_id, gen) DO UPDATE SET status = excluded.status, result = excluded.result,
		codec = excluded.codec, error = excluded.error, traceback = excluded.traceback,
		started_at = excluded.started_at, completed_at = excluded.completed_at,
		execution_time = excluded.execution_time, worker_id = excluded.worker_id,
		attempt = excluded.attempt, expires_at = excluded.expires_at
), ev AS (
	INSERT INTO {events} (time, type, task_id, kind, queue, worker_id, schedule_id, attempt, execution_time,
		error, level, data, enqueued_at, started_at)
	SELECT upd.finished_at, upd.event, upd.id, upd.kind, upd.queue, upd.worker_id, upd.schedule_id, upd.o_attempt,
		upd.finished_at - upd.started_at, upd.error,
		CASE WHEN upd.event IN ('error', 'retry') THEN 'error' WHEN upd.event = 'cancelled' THEN 'warning' ELSE 'info' END,
		CASE WHEN upd.event IN ('retry', 'snoozed') THEN jsonb_build_object('run_at', upd.run_at) ELSE '{}'::jsonb END,
		-- At the default level the outcome row is compact: it stands for the
		-- attempt's executing transition (started_at) and, on the first
		-- attempt, the task's enqueued one (enqueued_at); see events.Expand.
		CASE WHEN $15::text = 'default' AND upd.o_attempt = 1 AND (upd.attempt_adj = 0 OR upd.unstarted) THEN upd.created_at END,
		CASE WHEN $15::text = 'default' AND NOT upd.unstarted THEN upd.started_at END
	FROM upd
	-- A task claimed ahead and given back unstarted has no event (''):
	-- nothing happened to it that a reader of its history would see. Ended
	-- by a cancel request instead, it was enqueued and cancelled.
	WHERE upd.event <> '' AND CASE $15::text WHEN 'all' THEN true WHEN 'default' THEN true
		WHEN 'failures' THEN upd.event IN ('error', 'retry', 'cancelled') ELSE false END
)
SELECT id, status FROM upd`

// sqlDepsLock makes the dependency statements of concurrent transactions
// (completion batches of this client's writers and of other clients, the
// tasks Engine.afterTerminal ends) take turns: it precedes them, in the same
// transaction, and holds a lock of the schema's until that commits. Without
// it, two transactions that each end one of a waiting task's two
// dependencies could each look before the other committed, each see the
// other's dependency unfinished, and neither release the task. The
// statements after it take their snapshot once it is granted, so the later
// of the two sees the earlier's commit. $1 names the schema.
//
// It, sqlReleaseDeps and sqlCancelDeps do nothing while no task of the
// schema has ever waited for dependencies (dependency_state, migration 012):
// with none there is nothing to release or cancel, and the lock and the
// index probes cost a completion batch 2 ms of server time per 1,000 tasks.
const sqlDepsLock = `SELECT pg_advisory_xact_lock(hashtextextended('omniq.dependencies:' || $1, 0))
WHERE ` + sqlDepsGuard

// sqlDepsGuard is true once some task has waited for dependencies, and when
// the row that says so is missing (deleted or truncated by hand). It
// references no table of its statement's query, so the planner makes it a
// one-time filter at the top of the plan: while it is false nothing under it
// runs. The row is read by its key: under the generic plans' enable_seqscan
// off, a Seq Scan's cost put the statement past jit_above_cost, and JIT
// compiled it every time (300 ms).
const sqlDepsGuard = `coalesce((SELECT waiting_seen FROM {dependency_state} WHERE id), true)`

// sqlReleaseDeps makes waiting tasks runnable once their dependencies are done.
// It runs as its own statement after sqlComplete in the same transaction, so
// its snapshot sees dependents inserted while the completion waited on their
// FOR SHARE lock.
//
// The dependents are found by one probe of the waiting-dependents GIN index
// per finished id (the LATERAL with OFFSET 0 keeps the planner from turning
// it into a scan of all tasks, which it otherwise picks for large batches: a
// full scan per completion batch).
const sqlReleaseDeps = `
WITH cand AS (
	SELECT DISTINCT w.id, w.gen FROM unnest($1::uuid[]) AS c(id)
	CROSS JOIN LATERAL (
		SELECT w.id, w.gen FROM {tasks} w WHERE w.gen = 0 AND w.status = 'waiting' AND w.depends_on @> ARRAY[c.id]
		OFFSET 0) AS w
	WHERE ` + sqlDepsGuard + `
), rel AS (
	UPDATE {tasks} w SET status = 'pending', run_at = greatest(w.run_at, now())
FROM cand
WHERE w.id = cand.id AND w.gen = cand.gen AND w.status = 'waiting'
	AND NOT EXISTS (
		SELECT 1 FROM {tasks} d WHERE d.id = ANY (w.depends_on)
			AND CASE WHEN w.run_anyway THEN d.status NOT IN ('success', 'error', 'cancelled', 'expired')
				ELSE d.status <> 'success' END)
	RETURNING w.queue, w.run_at
)
SELECT pg_notify($2, queue || ' ' || ` + notifyRunAt + `) FROM (SELECT queue, min(run_at) AS r FROM rel GROUP BY queue) AS q`

// sqlCancelDeps cancels the waiting dependents of tasks that failed, and
// theirs in turn, naming the dependency that failed. Each term finds the
// dependents of its tasks by one probe of the waiting-dependents GIN index
// per task, as sqlReleaseDeps does: joined the other way, the planner walked
// every task of tasks_g0 by its primary key for the recursive term, which
// runs once even when the first found nothing.
const sqlCancelDeps = `
WITH RECURSIVE doomed(id, gen, cause) AS (
	SELECT w.id, w.gen, f.id FROM {tasks} f
	CROSS JOIN LATERAL (
		SELECT w.id, w.gen FROM {tasks} w WHERE w.gen = 0 AND w.status = 'waiting' AND NOT w.run_anyway
			AND w.depends_on @> ARRAY[f.id]
		OFFSET 0) AS w
	WHERE f.id = ANY ($1::uuid[]) AND ` + sqlDepsGuard + ` AND f.status IN ('error', 'cancelled', 'expired')
	UNION
	SELECT w.id, w.gen, d.id FROM doomed d
	CROSS JOIN LATERAL (
		SELECT w.id, w.gen FROM {tasks} w WHERE w.gen = 0 AND w.status = 'waiting' AND NOT w.run_anyway
			AND w.depends_on @> ARRAY[d.id]
		OFFSET 0) AS w
), upd AS (
	UPDATE {tasks} t SET status = 'cancelled', completed_at = now(),
		errors = t.errors || jsonb_build_array(jsonb_build_object('attempt', t.attempt, 'at', now(),
			'error', 'dependency ' || d.cause || ' did not succeed'))
	FROM (SELECT DISTINCT ON (id) id, gen, cause FROM doomed) d
	WHERE t.id = d.id AND t.gen = d.gen AND t.status = 'waiting'
	RETURNING t.id, t.kind, t.queue, d.cause
), ev AS (
	INSERT INTO {events} (type, task_id, kind, queue, message, level)
	SELECT 'cancelled', id, kind, queue, 'dependency ' || cause || ' did not succeed', 'warning'
	FROM upd WHERE $2::text <> 'none'
)
SELECT id FROM upd`

// sqlFireCallbacks enqueues the callback task of each parent in $1 that has
// one, once: the callback's id is derived from the parent's, so a replay of
// the same completion inserts nothing.
const sqlFireCallbacks = `
WITH ins AS (
	INSERT INTO {tasks} (id, kind, queue, args, priority, metadata)
SELECT ($2::uuid[])[i], p.callback ->> 'kind', coalesce(p.callback ->> 'queue', p.queue),
	coalesce(p.callback -> 'args', '{}'), coalesce((p.callback ->> 'priority')::smallint, 0),
	jsonb_build_object('parent_id', p.id, 'parent_status', p.status, 'parent_result', r.result)
FROM unnest($1::uuid[]) WITH ORDINALITY AS c(id, i)
CROSS JOIN LATERAL (SELECT * FROM {tasks} p WHERE p.id = c.id LIMIT 1) AS p -- a key lookup per id, never a scan
LEFT JOIN {results} r ON r.task_id = p.id AND r.gen = p.gen
WHERE p.callback IS NOT NULL
	AND (p.status = 'success' OR (p.status IN ('error', 'cancelled', 'expired')
		AND coalesce((p.callback ->> 'on_failure')::bool, false)))
	ON CONFLICT (id, gen) DO NOTHING
	RETURNING queue, run_at
)
SELECT pg_notify($3, queue || ' ' || ` + notifyRunAt + `) FROM (SELECT queue, min(run_at) AS r FROM ins GROUP BY queue) AS q`

const sqlHeartbeat = `
INSERT INTO {clients} (id, hostname, pid, queues) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), queues = excluded.queues`

const sqlDeleteClient = `DELETE FROM {clients} WHERE id = $1`

// sqlRescue returns running tasks whose client stopped heartbeating (or never
// registered) to retry, or to error when they are out of attempts. SKIP LOCKED
// keeps two rescuers from acting on the same row.
//
// {stuck} is either the tasks of the clients whose heartbeat is stale, found
// by worker_id (rescueStale: it reads only their index entries, so it stays
// cheap while a pinned xmin horizon keeps the dead entries of finished tasks
// in tasks_running_idx), or every running task without a live client
// (rescueAll: walks the whole index; run every RescueAfter, not every tick).
const sqlRescue = `
WITH stuck AS (
	{stuck}
	LIMIT $2
	FOR UPDATE SKIP LOCKED
), upd AS (
	UPDATE {tasks} t SET
		status = CASE WHEN t.cancel_requested_at IS NOT NULL THEN 'cancelled'
			WHEN t.attempt >= t.max_attempts THEN 'error' ELSE 'retry' END,
		run_at = now(),
		completed_at = CASE WHEN t.cancel_requested_at IS NOT NULL OR t.attempt >= t.max_attempts THEN now() END,
		errors = t.errors || jsonb_build_array(jsonb_build_object('attempt', t.attempt, 'at', now(),
			'error', 'rescued: client ' || coalesce(t.worker_id, '?') || ' stopped heartbeating'))
	FROM stuck WHERE t.id = stuck.id AND t.gen = stuck.gen
	RETURNING t.id, t.kind, t.queue, t.worker_id, t.attempt, t.status, t.started_at, t.created_at
), ev AS (
	INSERT INTO {events} (type, task_id, kind, queue, worker_id, attempt, message, level, enqueued_at, started_at)
	SELECT 'rescued', id, kind, queue, worker_id, attempt, 'client stopped heartbeating; now ' || status, 'warning',
		CASE WHEN $3::text = 'default' AND attempt = 1 THEN created_at END,
		CASE WHEN $3::text = 'default' THEN started_at END
	FROM upd WHERE $3::text <> 'none'
)
SELECT id, queue, status FROM upd`

// sqlExpire ends tasks whose TTL passed before they started.
const sqlExpire = `
WITH due AS (
	SELECT id, gen FROM {tasks}
	WHERE gen = 0 AND expires_at <= now() AND status IN ('pending', 'retry', 'waiting') -- TTLs are sticky
	LIMIT $1
	FOR UPDATE SKIP LOCKED
), upd AS (
	UPDATE {tasks} t SET status = 'expired', completed_at = now()
	FROM due WHERE t.id = due.id AND t.gen = due.gen
	RETURNING t.id, t.kind, t.queue
), ev AS (
	INSERT INTO {events} (type, task_id, kind, queue, message, level)
	SELECT 'expired', id, kind, queue, 'TTL passed before the task started', 'warning'
	FROM upd WHERE $2::text <> 'none'
)
SELECT id FROM upd`

const sqlRescueStale = `SELECT t.id, t.gen FROM {tasks} t
	WHERE t.status = 'running' AND t.heartbeat_at < now() - $1::interval
		AND t.worker_id = ANY (ARRAY(SELECT c.id FROM {clients} c WHERE c.heartbeat_at < now() - $1::interval))`

const sqlRescueAll = `SELECT t.id, t.gen FROM {tasks} t
	WHERE t.status = 'running' AND t.heartbeat_at < now() - $1::interval
		AND NOT EXISTS (SELECT 1 FROM {clients} c WHERE c.id = t.worker_id AND c.heartbeat_at >= now() - $1::interval)`

// sqlReturnTasks puts tasks this client was running back to the queue at once
// (hard stop, or claims whose reply was lost), without using up the attempt;
// a task with a cancel request ends cancelled instead.
const sqlReturnTasks = `
WITH upd AS (
	UPDATE {tasks} t SET
		status = CASE WHEN t.cancel_requested_at IS NOT NULL THEN 'cancelled' ELSE 'retry' END,
		completed_at = CASE WHEN t.cancel_requested_at IS NOT NULL THEN now() END,
		run_at = now(), attempt = t.attempt - 1,
		errors = t.errors || jsonb_build_array(jsonb_build_object('attempt', t.attempt, 'at', now(),
			'error', 'interrupted: client ' || t.worker_id || ' stopped'))
	WHERE t.id = ANY ($1::uuid[]) AND t.status = 'running' AND t.worker_id = $2
	RETURNING t.id, t.kind, t.queue, t.status, t.attempt, t.started_at
), ev AS (
	INSERT INTO {events} (type, task_id, kind, queue, worker_id, attempt, message, level, started_at)
	SELECT CASE WHEN status = 'cancelled' THEN 'cancelled' ELSE 'retry' END, id, kind, queue, $2, attempt + 1,
		CASE WHEN status = 'cancelled' THEN 'cancelled by request; its client stopped'
			ELSE 'returned to the queue by a stopping client' END, 'warning',
		CASE WHEN $3::text = 'default' THEN started_at END
	FROM upd WHERE $3::text <> 'none'
)
SELECT id, queue, status FROM upd`

// Retention deletes in bounded batches so no statement holds locks for long.
// It deletes tasks of the sticky partition (gen 0) only: the rotating ones are
// retired whole by Engine.Rotate.
// Each table is deleted in an order that follows time (tasks by completed_at,
// results by expires_at, events by id) from a lower bound, where the last
// batch stopped, so a batch does not walk the entries of rows deleted before
// it that vacuum has not removed yet (all of them, while a long transaction
// holds back the horizon). A row committed late below its bound is deleted
// once the bound is reset (see Engine.Prune).
const sqlPruneTasks = `
WITH gone AS (
	DELETE FROM {tasks} WHERE gen = 0 AND (id, gen) IN (
		SELECT id, gen FROM {tasks}
		WHERE gen = 0 AND status IN ('success', 'error', 'cancelled', 'expired')
			AND completed_at >= $3 AND completed_at < now() - $1::interval
		ORDER BY completed_at LIMIT $2
		FOR UPDATE SKIP LOCKED)
	RETURNING id, completed_at
), res AS (
	DELETE FROM {results} r USING gone WHERE r.task_id = gone.id AND r.gen = 0 AND r.expires_at IS NULL
)
SELECT count(*), coalesce(max(completed_at), $3) FROM gone`

const sqlPruneResults = `
WITH gone AS (
	DELETE FROM {results} WHERE task_id IN (
		SELECT task_id FROM {results} WHERE expires_at >= $2 AND expires_at < now()
		ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
	RETURNING expires_at
)
SELECT count(*), coalesce(max(expires_at), $2) FROM gone`

// Events are taken in id order, the next $2 above the bound, and those of
// them older than the retention are deleted: a filter on time in the scan
// itself would read every event younger than the retention (all of them, in
// a database younger than it) on every pass. Ids follow time closely (an
// event's time is taken a moment before its insert), so the first batch that
// is not all old enough ends the pass.
const sqlPruneEvents = `
WITH next AS (
	SELECT id, time FROM {events} WHERE id > $3 ORDER BY id LIMIT $2
), gone AS (
	-- = ANY (ARRAY(...)): a lookup per id, never a scan of the table.
	DELETE FROM {events} WHERE id = ANY (ARRAY(SELECT id FROM next WHERE time < now() - $1::interval))
	RETURNING id
)
SELECT count(*), coalesce(max(id), $3) FROM gone`
