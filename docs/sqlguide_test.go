package docs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// guideArgs is the one task kind of the populated schema: Mode "ok"
// succeeds with a result, "fail" returns an error.
type guideArgs struct {
	Mode string `json:"mode"`
}

func (guideArgs) Kind() string { return "sqlguide" }

// block is one ```sql block of SQL.md.
type block struct {
	n       int    // 1-based, in file order
	line    int    // line of the opening fence
	heading string // the section it is under
	sql     string
}

func (b block) String() string {
	first, _, _ := strings.Cut(strings.TrimSpace(b.sql), "\n")
	return fmt.Sprintf("SQL.md block %d (line %d, %q): %s", b.n, b.line, b.heading, first)
}

// sqlBlocks extracts the ```sql blocks of a Markdown file.
func sqlBlocks(t *testing.T, path string) []block {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out     []block
		heading string
		cur     *block
		body    strings.Builder
	)
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.sql = body.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line)
			body.WriteString("\n")
		case strings.TrimSpace(line) == "```sql":
			cur = &block{n: len(out) + 1, line: i + 1, heading: heading}
			body.Reset()
		case strings.HasPrefix(line, "#"):
			heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
		}
	}
	if cur != nil {
		t.Fatalf("SQL.md: the sql block at line %d is not closed", cur.line)
	}
	return out
}

var psqlVar = regexp.MustCompile(`:'([A-Za-z_][A-Za-z0-9_]*)'`)

// render makes a block runnable: the test schema for omniq., literals for
// psql variables. It fails on a variable it has no value for.
func render(t *testing.T, b block, schema string, vars map[string]string) string {
	t.Helper()
	sql := strings.ReplaceAll(b.sql, "omniq.", pgx.Identifier{schema}.Sanitize()+".")
	var missing []string
	sql = psqlVar.ReplaceAllStringFunc(sql, func(m string) string {
		name := psqlVar.FindStringSubmatch(m)[1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	})
	if len(missing) > 0 {
		t.Errorf("%s: no value for psql variable(s) %v; add them to the test's vars", b, missing)
	}
	return sql
}

// run executes sql in a transaction it rolls back, so every block sees the
// same populated schema, and returns the rows as text, as psql shows them.
func run(ctx context.Context, pool *pgxpool.Pool, sql string) ([][]string, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		raw := rows.RawValues()
		row := make([]string, len(raw))
		for i, v := range raw {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = string(v)
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// populated is a schema holding tasks in every state the guide asks about.
type populated struct {
	db                                                     *pgtest.DB
	success, failed, retrying, pending, scheduled, waiting uuid.UUID
	cancelled, stuck, fired                                uuid.UUID
	scheduleName, deadClient                               string
}

func populate(t *testing.T) *populated {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db := pgtest.New(t)
	p := &populated{db: db, scheduleName: "sqlguide-once", deadClient: "sqlguide-dead-client"}

	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, tk *omniq.Task[guideArgs]) error {
		if tk.Args.Mode == "fail" {
			return errors.New("disk full")
		}
		tk.SetResult(map[string]bool{"ok": true})
		return nil
	}))
	c := startGuideClient(ctx, t, db, workers)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := c.Stop(ctx); err != nil {
				t.Errorf("Stop: %v", err)
			}
		}
	}
	defer stop()

	enqueue := func(mode string, opts *omniq.InsertOpts) uuid.UUID {
		t.Helper()
		res, err := c.Enqueue(ctx, guideArgs{Mode: mode}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	waitResult := func(id uuid.UUID, want omniq.ResultStatus) {
		t.Helper()
		r, err := c.WaitResult(ctx, id)
		if err != nil {
			t.Fatalf("WaitResult(%s): %v", id, err)
		}
		if r.Status != want {
			t.Fatalf("task %s ended %s, want %s", id, r.Status, want)
		}
	}
	waitStatus := func(id uuid.UUID, want omniq.Status) { t.Helper(); waitTaskStatus(ctx, t, c, id, want) }

	p.success = enqueue("ok", nil)
	waitResult(p.success, omniq.ResultSuccess)
	p.failed = enqueue("fail", &omniq.InsertOpts{MaxAttempts: 3, RetryDelay: 10 * time.Millisecond})
	waitResult(p.failed, omniq.ResultError)
	p.retrying = enqueue("fail", &omniq.InsertOpts{MaxAttempts: 5, RetryDelay: time.Hour})
	waitStatus(p.retrying, omniq.StatusRetry)
	p.pending = enqueue("ok", &omniq.InsertOpts{Queue: "reports"}) // no client works "reports"
	if err := c.PauseQueue(ctx, "reports"); err != nil {
		t.Fatal(err)
	}
	p.scheduled = enqueue("ok", &omniq.InsertOpts{RunIn: time.Hour})
	p.waiting = enqueue("ok", &omniq.InsertOpts{DependsOn: []uuid.UUID{p.scheduled}})
	p.cancelled = enqueue("ok", &omniq.InsertOpts{RunIn: time.Hour})
	if _, err := c.Cancel(ctx, p.cancelled); err != nil {
		t.Fatal(err)
	}
	sc, err := c.CreateSchedule(ctx, omniq.ScheduleSpec{Name: p.scheduleName, Once: true, Args: guideArgs{Mode: "ok"}})
	if err != nil {
		t.Fatal(err)
	}
	for p.fired == uuid.Nil {
		ts, err := c.Tasks(ctx, omniq.TaskFilter{ScheduleID: &sc.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) > 0 && ts[0].Status == omniq.StatusSuccess {
			p.fired = ts[0].ID
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the schedule did not fire a task that succeeded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop() // no maintenance from here on: it would rescue the stuck task

	// A task whose client died mid-run: claimed an hour ago by a client that
	// has not heartbeated since.
	p.stuck = enqueue("ok", &omniq.InsertOpts{Queue: "stuck"})
	db.Exec(t, "INSERT INTO "+db.Table("clients")+" (id, hostname, pid, queues, started_at, heartbeat_at) "+
		"VALUES ($1, 'gone', 1, '{stuck}', now() - interval '2 hours', now() - interval '1 hour')", p.deadClient)
	db.Exec(t, "UPDATE "+db.Table("tasks")+" SET status = 'running', attempt = 1, worker_id = $2, "+
		"started_at = now() - interval '1 hour', heartbeat_at = now() - interval '1 hour' WHERE id = $1", p.stuck, p.deadClient)
	return p
}

// check says what one block must return against the populated schema.
type check struct {
	contains string            // identifies the block (whitespace-insensitive)
	vars     map[string]string // overrides of the default variables
	want     []string          // values some row must hold, each in a cell of its own
	rows     int               // with want empty: the exact number of rows
}

// startGuideClient starts a client on db that works "default" with fast polls.
func startGuideClient(ctx context.Context, t *testing.T, db *pgtest.DB, workers *omniq.Workers) *omniq.Client {
	t.Helper()
	c, err := omniq.NewClient(db.Pool, &omniq.Config{
		Schema:              db.Schema,
		Workers:             workers,
		Queues:              map[string]omniq.QueueConfig{"default": {MaxWorkers: 10}},
		FetchPollInterval:   20 * time.Millisecond,
		MaintenanceInterval: 100 * time.Millisecond,
		Log:                 omniq.LogConfig{Disabled: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitTaskStatus waits until task id has status want, until ctx ends.
func waitTaskStatus(ctx context.Context, t *testing.T, c *omniq.Client, id uuid.UUID, want omniq.Status) *omniq.TaskRow {
	t.Helper()
	for {
		row, err := c.Task(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if row.Status == want {
			return row
		}
		if ctx.Err() != nil {
			t.Fatalf("task %s is %s, want %s", id, row.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestSQLGuide runs every query of SQL.md against a schema holding tasks in
// every state, and checks that the main ones find what they are about.
func TestSQLGuide(t *testing.T) {
	t.Parallel()
	blocks := sqlBlocks(t, "SQL.md")
	if len(blocks) < 20 {
		t.Fatalf("SQL.md has %d sql blocks; expected the whole guide", len(blocks))
	}
	p := populate(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vars := map[string]string{
		"task_id":       p.failed.String(),
		"schedule_name": p.scheduleName,
		"queue":         "default",
	}
	with := func(k, v string) map[string]string { return map[string]string{k: v} }
	id := func(u uuid.UUID) string { return u.String() }

	for _, b := range blocks {
		rows, err := run(ctx, p.db.Pool, render(t, b, p.db.Schema, vars))
		if err != nil {
			t.Errorf("%s\nfails: %v", b, err)
			continue
		}
		t.Logf("block %d: %d rows", b.n, len(rows))
	}

	checks := []check{
		// What is stuck.
		{contains: "LEFT JOIN omniq.clients c ON c.id = t.worker_id", want: []string{id(p.stuck), p.deadClient}},
		{contains: "now() - started_at AS running_for", want: []string{id(p.stuck)}},
		{contains: "FROM omniq.clients ORDER BY heartbeat_at", want: []string{p.deadClient}},
		{contains: "AS worked", want: []string{"reports", "t"}},
		{contains: "coalesce(d.status, 'missing')", want: []string{id(p.waiting), id(p.scheduled), "pending"}},
		// What failed.
		{contains: "WHERE status = 'error' AND completed_at > now() - interval '1 day'", want: []string{id(p.failed), "disk full"}},
		{contains: "GROUP BY 1, 2 ORDER BY tasks DESC", want: []string{"sqlguide", "disk full", "1"}},
		{contains: "WHERE e.at > now() - interval '1 hour'", want: []string{id(p.failed), "3", "disk full"}},
		{contains: "r.status IN ('error', 'cancelled', 'timeout')", want: []string{id(p.failed), "error", "disk full"}},
		{contains: "t.status IN ('cancelled', 'expired')", want: []string{id(p.cancelled), "cancelled"}},
		// What runs when.
		{contains: "ORDER BY queue, priority DESC, run_at, id", want: []string{id(p.pending), "reports"}},
		{contains: "ORDER BY queue, priority DESC, run_at, id", want: []string{id(p.retrying), "retry"}},
		{contains: "run_at > now() GROUP BY 1, 2", want: []string{"default"}}, // scheduled and retrying
		{contains: "run_at AS retry_at", want: []string{id(p.retrying), "disk full"}},
		{contains: "FROM omniq.schedules ORDER BY status", want: []string{p.scheduleName}},
		// Depth and throughput.
		{contains: "SELECT queue, status, count(*)", want: []string{"reports", "pending", "1"}},
		{contains: "FROM omniq.queue_stats", want: []string{"reports", "t"}},
		{contains: "count(*) FILTER (WHERE status <> 'success') AS failed", want: []string{"default"}},
		{contains: "count(*) FILTER (WHERE type = 'completed') AS completed", want: []string{"default"}},
		{contains: "AS slowest", want: []string{"sqlguide"}},
		{contains: "AS p95_wait", want: []string{"default"}},
		// One task's history.
		{contains: "SELECT * FROM omniq.tasks WHERE id = :'task_id'", want: []string{id(p.failed), "error"}},
		{contains: "WHERE task_id = :'task_id' ORDER BY id", rows: 3}, // two retries and the error
		{contains: "e.trace", rows: 3},
		{contains: "FROM omniq.results WHERE task_id = :'task_id'", want: []string{"error", "disk full", "3"}},
		{contains: "'depends on' AS relation", vars: with("task_id", id(p.scheduled)), want: []string{"dependent", id(p.waiting), "waiting"}},
		{contains: "'depends on' AS relation", vars: with("task_id", id(p.waiting)), want: []string{"depends on", id(p.scheduled), "pending"}},
		// A schedule's runs.
		{contains: "t.scheduled_at AS tick", want: []string{id(p.fired), "success"}},
		{contains: "AS last_task_status", want: []string{p.scheduleName, "success"}},
		{contains: "e.type LIKE 'schedule%'", want: []string{"schedule_fired", id(p.fired)}},
		// Acting by SQL.
		{contains: "WHERE id = :'task_id' AND status IN ('success', 'error'", want: []string{id(p.failed)}},
		{contains: "WHERE queue = :'queue' AND status = 'error'", want: []string{"1"}},
		{contains: "SET status = 'cancelled', completed_at = now()", vars: with("task_id", id(p.pending)), want: []string{id(p.pending)}},
		{contains: "SET status = 'cancelled', completed_at = now()", vars: with("task_id", id(p.scheduled)), rows: 0}, // it has a dependent
		{contains: "SET status = 'cancelled', completed_at = now()", vars: with("task_id", id(p.stuck)), rows: 0},     // running
		{contains: "SET cancel_requested_at = now()", vars: with("task_id", id(p.stuck)), want: []string{id(p.stuck), p.deadClient}},
		{contains: "SET cancel_requested_at = now()", vars: with("task_id", id(p.pending)), rows: 0},
		{contains: "'queue_paused', name", want: []string{"default"}},
		{contains: "'queue_resumed', name", vars: with("queue", "reports"), want: []string{"reports"}},
		{contains: "SELECT omniq.enqueue(", rows: 1},
	}
	for _, c := range checks {
		var found []block
		for _, b := range blocks {
			if strings.Contains(squash(b.sql), squash(c.contains)) {
				found = append(found, b)
			}
		}
		if len(found) != 1 {
			t.Errorf("check %q matches %d blocks of SQL.md, want 1", c.contains, len(found))
			continue
		}
		b := found[0]
		v := map[string]string{}
		for k, x := range vars {
			v[k] = x
		}
		for k, x := range c.vars {
			v[k] = x
		}
		rows, err := run(ctx, p.db.Pool, render(t, b, p.db.Schema, v))
		if err != nil {
			t.Errorf("%s\nwith %v fails: %v", b, c.vars, err)
			continue
		}
		if len(c.want) == 0 {
			if len(rows) != c.rows {
				t.Errorf("%s\nwith %v returned %d rows, want %d: %v", b, c.vars, len(rows), c.rows, rows)
			}
			continue
		}
		if !anyRowHas(rows, c.want) {
			t.Errorf("%s\nwith %v returned no row holding %q; rows: %v", b, c.vars, c.want, rows)
		}
	}
}

// anyRowHas reports whether some row holds every value of want in a cell.
func anyRowHas(rows [][]string, want []string) bool {
	for _, row := range rows {
		ok := true
		for _, w := range want {
			hit := false
			for _, cell := range row {
				if cell == w {
					hit = true
					break
				}
			}
			if !hit {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// findBlock returns the one block of SQL.md containing contains.
func findBlock(t *testing.T, blocks []block, contains string) block {
	t.Helper()
	var found []block
	for _, b := range blocks {
		if strings.Contains(squash(b.sql), squash(contains)) {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%q matches %d blocks of SQL.md, want 1", contains, len(found))
	}
	return found[0]
}

// TestSQLGuideActions commits the guide's retry, cancel and pause statements
// beside a running client, and checks the client does what the guide says.
func TestSQLGuideActions(t *testing.T) {
	t.Parallel()
	blocks := sqlBlocks(t, "SQL.md")
	db := pgtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	started := make(chan uuid.UUID, 1)
	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, tk *omniq.Task[guideArgs]) error {
		switch tk.Args.Mode {
		case "fail-first":
			if tk.Attempt == 1 {
				return omniq.NoRetry(errors.New("disk full"))
			}
		case "block":
			started <- tk.ID
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}))
	c := startGuideClient(ctx, t, db, workers)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})

	enqueue := func(mode string, opts *omniq.InsertOpts) uuid.UUID {
		t.Helper()
		res, err := c.Enqueue(ctx, guideArgs{Mode: mode}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	waitStatus := func(id uuid.UUID, want omniq.Status) *omniq.TaskRow {
		t.Helper()
		return waitTaskStatus(ctx, t, c, id, want)
	}
	// exec commits the block containing contains, with vars, and wants n rows.
	exec := func(contains string, vars map[string]string, n int) [][]string {
		t.Helper()
		b := findBlock(t, blocks, contains)
		rows, err := db.Pool.Query(ctx, render(t, b, db.Schema, vars), pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		var out [][]string
		for rows.Next() {
			var row []string
			for _, v := range rows.RawValues() {
				row = append(row, string(v))
			}
			out = append(out, row)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if len(out) != n {
			t.Fatalf("%s\nwith %v returned %d rows, want %d: %v", b, vars, len(out), n, out)
		}
		return out
	}
	const (
		retryOne      = "WHERE id = :'task_id' AND status IN ('success', 'error'"
		retryQueue    = "WHERE queue = :'queue' AND status = 'error'"
		cancelWaiting = "SET status = 'cancelled', completed_at = now()"
		cancelRunning = "SET cancel_requested_at = now()"
		pause         = "'queue_paused', name"
		resume        = "'queue_resumed', name"
	)

	// Retry a task that failed for good: it runs again, and succeeds.
	failed := enqueue("fail-first", &omniq.InsertOpts{MaxAttempts: 1})
	waitStatus(failed, omniq.StatusError)
	exec(retryOne, map[string]string{"task_id": failed.String()}, 1)
	if row := waitStatus(failed, omniq.StatusSuccess); row.Attempt != 2 {
		t.Errorf("retried task: attempt %d, want 2", row.Attempt)
	}

	// Retry a queue's failures.
	failed2 := enqueue("fail-first", &omniq.InsertOpts{MaxAttempts: 1})
	waitStatus(failed2, omniq.StatusError)
	if rows := exec(retryQueue, map[string]string{"queue": "default"}, 1); rows[0][0] != "1" {
		t.Errorf("queue retry: %v, want 1 retried", rows)
	}
	waitStatus(failed2, omniq.StatusSuccess)

	// Cancel a running task: its client cancels it.
	running := enqueue("block", nil)
	if got := <-started; got != running {
		t.Fatalf("started %s, want %s", got, running)
	}
	exec(cancelRunning, map[string]string{"task_id": running.String()}, 1)
	waitStatus(running, omniq.StatusCancelled)

	// Cancel a task that has not started; refused for one with a dependent.
	later := enqueue("ok", &omniq.InsertOpts{RunIn: time.Hour})
	dependent := enqueue("ok", &omniq.InsertOpts{DependsOn: []uuid.UUID{later}})
	exec(cancelWaiting, map[string]string{"task_id": later.String()}, 0)
	exec(cancelWaiting, map[string]string{"task_id": dependent.String()}, 1)
	waitStatus(dependent, omniq.StatusCancelled)
	exec(cancelWaiting, map[string]string{"task_id": later.String()}, 1)
	waitStatus(later, omniq.StatusCancelled)

	// Pause and resume the queue: the client sees the pause; after the
	// resume it runs the task enqueued meanwhile.
	exec(pause, map[string]string{"queue": "default"}, 1)
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	paused := false
	for _, q := range st.Queues {
		paused = paused || (q.Queue == "default" && q.Paused)
	}
	if !paused {
		t.Errorf("after the SQL pause, Stats says default is not paused: %+v", st.Queues)
	}
	meanwhile := enqueue("ok", nil)
	exec(resume, map[string]string{"queue": "default"}, 1)
	waitStatus(meanwhile, omniq.StatusSuccess)
	exec(resume, map[string]string{"queue": "default"}, 0) // not paused any more
}
