//go:build unix

package omniq_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/migrations"
)

// These tests do the damage for real: a worker process is SIGKILLed, a
// client's connections are terminated by the server, the server restarts.
// What they check is what a queue promises: every committed task ends in
// success, nothing runs more often than the damage forces it to.

// runArgs is a task that records each run and then sleeps.
type runArgs struct {
	N       int `json:"n"`
	SleepMS int `json:"sleep_ms"`
}

func (runArgs) Kind() string { return "robust_run" }

// runWorker records every run of a task as a row of the runs table (so a
// process that dies keeps its record), then sleeps SleepMS or until cancelled.
type runWorker struct {
	omniq.WorkerDefaults[runArgs]
	pool   *pgxpool.Pool
	runs   string // quoted runs table
	worker string // who ran it
}

func (w *runWorker) Work(ctx context.Context, t *omniq.Task[runArgs]) error {
	if _, err := w.pool.Exec(ctx, "INSERT INTO "+w.runs+" (task_id, attempt, worker) VALUES ($1, $2, $3)",
		t.ID, t.Attempt, w.worker); err != nil {
		return fmt.Errorf("record run: %w", err)
	}
	select {
	case <-time.After(time.Duration(t.Args.SleepMS) * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// memWorker counts runs in memory, for tests where the database itself is
// what fails (a run must not depend on it).
type memWorker struct {
	omniq.WorkerDefaults[runArgs]
	mu   sync.Mutex
	runs map[uuid.UUID]int
}

func (w *memWorker) Work(ctx context.Context, t *omniq.Task[runArgs]) error {
	w.mu.Lock()
	if w.runs == nil {
		w.runs = map[uuid.UUID]int{}
	}
	w.runs[t.ID]++
	w.mu.Unlock()
	select {
	case <-time.After(time.Duration(t.Args.SleepMS) * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *memWorker) count() (tasks, runs int, twice []uuid.UUID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, n := range w.runs {
		runs += n
		if n > 1 {
			twice = append(twice, id)
		}
	}
	return len(w.runs), runs, twice
}

func createRunsTable(t *testing.T, db *pgtest.DB) string {
	t.Helper()
	name := db.Table("runs")
	db.Exec(t, "CREATE TABLE "+name+" (task_id uuid NOT NULL, attempt int NOT NULL, worker text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())")
	return name
}

// appPool opens a pool whose sessions carry application_name app, so a test
// can find (and kill) exactly its connections.
func appPool(t testing.TB, url, app string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func enqueueRuns(t *testing.T, c *omniq.Client, n, sleepMS int) {
	t.Helper()
	params := make([]omniq.EnqueueParams, n)
	for i := range params {
		params[i] = omniq.EnqueueParams{Args: runArgs{N: i, SleepMS: sleepMS}}
	}
	for i := 0; i < n; i += 500 {
		if _, err := c.EnqueueMany(context.Background(), params[i:min(i+500, n)]); err != nil {
			t.Fatal(err)
		}
	}
}

func countStatus(t testing.TB, db *pgtest.DB, status omniq.Status) int {
	return pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+db.Table("tasks")+" WHERE status = $1", status)
}

// Environment of a worker process (TestHelperWorkerProcess).
const (
	helperEnvURL    = "OMNIQ_HELPER_URL"
	helperEnvSchema = "OMNIQ_HELPER_SCHEMA"
	helperEnvID     = "OMNIQ_HELPER_ID"
)

// TestHelperWorkerProcess is not a test: it is the body of a worker process
// that other tests start by re-executing the test binary. It works the
// default queue of a schema, recording runs in its runs table, until SIGTERM
// (a graceful stop) or SIGKILL.
func TestHelperWorkerProcess(t *testing.T) {
	url := os.Getenv(helperEnvURL)
	if url == "" {
		t.Skip("only runs as a worker process started by another test")
	}
	schema, id := os.Getenv(helperEnvSchema), os.Getenv(helperEnvID)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	pool := appPool(t, url, id, 6)
	w := &runWorker{pool: pool, runs: pgx.Identifier{schema, "runs"}.Sanitize(), worker: id}
	workers := omniq.NewWorkers()
	omniq.AddWorker[runArgs](workers, w)
	c, err := omniq.NewClient(pool, &omniq.Config{
		Schema: schema, ID: id, Workers: workers,
		Queues:              map[string]omniq.QueueConfig{"default": {MaxWorkers: 20}},
		FetchPollInterval:   100 * time.Millisecond,
		MaintenanceInterval: 100 * time.Millisecond,
		HeartbeatInterval:   100 * time.Millisecond,
		RescueAfter:         time.Second,
		Log:                 omniq.LogConfig{Level: "warn"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Stop(stopCtx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// workerProcess is a running TestHelperWorkerProcess.
type workerProcess struct {
	id   string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func startWorkerProcess(t *testing.T, db *pgtest.DB, id string) *workerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWorkerProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), helperEnvURL+"="+db.URL, helperEnvSchema+"="+db.Schema, helperEnvID+"="+id)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker process: %v", err)
	}
	p := &workerProcess{id: id, cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		p.done <- nil // later waits return at once
		if t.Failed() {
			t.Logf("worker process %s output:\n%s", id, out.String())
		}
	})
	// It is ready once its client row exists.
	waitFor(t, 30*time.Second, "worker process "+id+" to register", func() bool {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("worker process %s exited early: %v\n%s", id, err, out.String())
		default:
		}
		return pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+db.Table("clients")+" WHERE id = $1", id) == 1
	})
	return p
}

func (p *workerProcess) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(timeout):
		t.Fatalf("worker process %s did not exit within %s", p.id, timeout)
		return nil
	}
}

// sessionsOf counts the server sessions of application app.
func sessionsOf(t testing.TB, pool *pgxpool.Pool, app string) int {
	return pgtest.Scalar[int](t, pool, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app)
}

func TestSIGKILLMidBatchLosesNothing(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	runs := createRunsTable(t, db)
	ctx := context.Background()
	const n = 200
	enqueueRuns(t, newClient(t, db, nil, nil), n, 30)

	victim := startWorkerProcess(t, db, "victim-"+db.Schema)
	waitFor(t, 60*time.Second, "the victim to start 50 runs", func() bool {
		return pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+runs) >= 50
	})
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := victim.wait(t, 10*time.Second); err == nil {
		t.Fatal("the victim exited cleanly; want killed")
	}
	// Its sessions may finish a statement already sent; wait until they are gone.
	waitFor(t, 10*time.Second, "the victim's sessions to end", func() bool { return sessionsOf(t, db.Pool, victim.id) == 0 })
	rows, err := db.Pool.Query(ctx, "SELECT id FROM "+db.Table("tasks")+" WHERE status = 'running' AND worker_id = $1", victim.id)
	if err != nil {
		t.Fatal(err)
	}
	inFlight, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	if len(inFlight) == 0 {
		t.Fatal("the victim was running nothing when killed; the test did not kill mid-batch")
	}
	killed := map[uuid.UUID]bool{}
	for _, id := range inFlight {
		killed[id] = true
	}
	before := countStatus(t, db, omniq.StatusSuccess)

	w := &runWorker{pool: db.Pool, runs: runs, worker: "rescuer"}
	workers := omniq.NewWorkers()
	omniq.AddWorker[runArgs](workers, w)
	rescuer := newClient(t, db, workers, func(c *omniq.Config) {
		c.Queues = map[string]omniq.QueueConfig{"default": {MaxWorkers: 20}}
	})
	start(t, rescuer)
	waitFor(t, 60*time.Second, "every task to succeed", func() bool { return countStatus(t, db, omniq.StatusSuccess) == n })

	rows, err = db.Pool.Query(ctx, `SELECT t.id, t.attempt, t.errors::text, count(r.task_id),
		count(*) FILTER (WHERE r.worker = $1)
		FROM `+db.Table("tasks")+` t LEFT JOIN `+runs+` r ON r.task_id = t.id GROUP BY t.id, t.gen`, victim.id)
	if err != nil {
		t.Fatal(err)
	}
	twice := 0
	for rows.Next() {
		var (
			id                 uuid.UUID
			attempt, nRun, nVi int
			errs               string
		)
		if err := rows.Scan(&id, &attempt, &errs, &nRun, &nVi); err != nil {
			t.Fatal(err)
		}
		switch {
		case nRun == 0:
			t.Errorf("task %s succeeded without a recorded run", id)
		case nRun > 2:
			t.Errorf("task %s ran %d times", id, nRun)
		case nRun == 2 && !killed[id]:
			t.Errorf("task %s ran twice but was not running on the killed process", id)
		case nRun == 2:
			twice++
			if nVi != 1 || attempt != 2 || !strings.Contains(errs, "rescued: client "+victim.id) {
				t.Errorf("task %s ran twice: %d by the victim, attempt %d, errors %s", id, nVi, attempt, errs)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rescued := pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+db.Table("events")+" WHERE type = 'rescued'")
	t.Logf("killed with %d tasks in flight, %d finished before; %d ran twice; %d rescued events; total runs %d",
		len(killed), before, twice, rescued, pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+runs))
	if rescued == 0 {
		t.Error("no rescued event recorded")
	}
}

func TestManyProcessesShareQueuesWithoutDuplicates(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	runs := createRunsTable(t, db)
	const n, procs = 900, 3
	ps := make([]*workerProcess, procs)
	for i := range ps {
		ps[i] = startWorkerProcess(t, db, fmt.Sprintf("proc%d-%s", i, db.Schema))
	}
	enqueueRuns(t, newClient(t, db, nil, nil), n, 2)
	waitFor(t, 60*time.Second, "every task to succeed", func() bool { return countStatus(t, db, omniq.StatusSuccess) == n })
	for _, p := range ps {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range ps {
		if err := p.wait(t, 20*time.Second); err != nil {
			t.Errorf("worker process %s: graceful stop failed: %v\n%s", p.id, err, p.out.String())
		}
	}
	total := pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+runs)
	distinct := pgtest.Scalar[int](t, db.Pool, "SELECT count(DISTINCT task_id) FROM "+runs)
	if total != n || distinct != n {
		t.Fatalf("%d runs of %d distinct tasks, want %d once each", total, distinct, n)
	}
	rows, err := db.Pool.Query(context.Background(), "SELECT worker, count(*) FROM "+runs+" GROUP BY worker ORDER BY worker")
	if err != nil {
		t.Fatal(err)
	}
	share := map[string]int{}
	for rows.Next() {
		var w string
		var c int
		if err := rows.Scan(&w, &c); err != nil {
			t.Fatal(err)
		}
		share[w] = c
	}
	t.Logf("runs per process: %v", share)
	if len(share) < 2 {
		t.Errorf("only %d process did any work: %v", len(share), share)
	}
	if left := pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+db.Table("clients")); left != 0 {
		t.Errorf("%d client rows left after graceful stops", left)
	}
}

func TestTerminatedConnectionsLoseNothing(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	app := "term-" + db.Schema
	pool := appPool(t, db.URL, app, 8)
	w := &memWorker{}
	workers := omniq.NewWorkers()
	omniq.AddWorker[runArgs](workers, w)
	c, err := omniq.NewClient(pool, &omniq.Config{
		Schema: db.Schema, Workers: workers,
		Queues:              map[string]omniq.QueueConfig{"default": {MaxWorkers: 10}},
		FetchPollInterval:   time.Hour, // only NOTIFY (or a reconnect) wakes a producer
		MaintenanceInterval: 100 * time.Millisecond,
		HeartbeatInterval:   100 * time.Millisecond,
		RescueAfter:         time.Minute, // the client lives: nothing may be rescued
		Log:                 omniq.LogConfig{Level: "error"},
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	waitFor(t, 10*time.Second, "the LISTEN session", func() bool {
		return pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'", app) > 0
	})
	const n = 600
	inserter := newClient(t, db, nil, nil)
	enqueueRuns(t, inserter, n, 5)

	terminate := func() int {
		return pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app)
	}
	killedTotal, rounds := 0, 0
	for _, at := range []int{100, 200, 300, 400, 500} {
		waitFor(t, 60*time.Second, fmt.Sprintf("%d tasks done", at), func() bool {
			tasks, _, _ := w.count()
			return tasks >= at
		})
		k := terminate()
		killedTotal += k
		rounds++
	}
	waitFor(t, 60*time.Second, "every task to succeed", func() bool { return countStatus(t, db, omniq.StatusSuccess) == n })

	// The LISTEN session came back: a task enqueued now runs, with nothing polling.
	waitFor(t, 30*time.Second, "LISTEN to be restored", func() bool {
		return pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'", app) > 0
	})
	last, err := inserter.Enqueue(context.Background(), runArgs{N: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, inserter, last.ID, omniq.StatusSuccess, 30*time.Second)

	tasks, total, twice := w.count()
	t.Logf("%d rounds terminated %d sessions; %d tasks ran %d times", rounds, killedTotal, tasks, total)
	if killedTotal < rounds {
		t.Errorf("terminated only %d sessions in %d rounds", killedTotal, rounds)
	}
	if tasks != n+1 || total != n+1 {
		t.Errorf("%d tasks ran %d times (twice: %v), want %d once each", tasks, total, twice, n+1)
	}
	if bad := pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+db.Table("tasks")+" WHERE attempt <> 1"); bad != 0 {
		t.Errorf("%d tasks used more than one attempt", bad)
	}
}

// cluster is a throwaway PostgreSQL server of one test's own.
type cluster struct {
	bin, data, url string
	port           int
	cred           *syscall.Credential
}

// newCluster starts a throwaway server, or skips the test saying why it cannot.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	bin := os.Getenv("OMNIQ_TEST_PG_BIN")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	for _, tool := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			t.Skipf("cannot run a throwaway PostgreSQL: %v (set OMNIQ_TEST_PG_BIN to its bin directory)", err)
		}
	}
	cl := &cluster{bin: bin}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run its tools as the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("cannot run a throwaway PostgreSQL as root without a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cl.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "omniq-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cl.data = filepath.Join(dir, "data")
	if err := os.Mkdir(cl.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if cl.cred != nil {
		if err := os.Chown(cl.data, int(cl.cred.Uid), int(cl.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl.port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	if out, err := cl.run("initdb", "-D", cl.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		t.Skipf("cannot run a throwaway PostgreSQL: initdb: %v\n%s", err, out)
	}
	cl.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", cl.port)
	if out, err := cl.start(); err != nil {
		t.Fatalf("start throwaway PostgreSQL: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = cl.run("pg_ctl", "-D", cl.data, "-m", "immediate", "-w", "stop") })
	return cl
}

func (cl *cluster) run(tool string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(cl.bin, tool), args...)
	cmd.Dir = cl.data
	if cl.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cl.cred}
	}
	return cmd.CombinedOutput()
}

func (cl *cluster) start() ([]byte, error) {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40 -c shared_buffers=16MB",
		cl.port, cl.data)
	return cl.run("pg_ctl", "-D", cl.data, "-l", filepath.Join(cl.data, "server.log"), "-o", opts, "-w", "-t", "30", "start")
}

func (cl *cluster) stop() ([]byte, error) {
	return cl.run("pg_ctl", "-D", cl.data, "-m", "fast", "-w", "-t", "30", "stop")
}

func TestDatabaseRestartLosesNothing(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, cl.url)
	if err != nil {
		t.Fatal(err)
	}
	const schema = "omniq"
	err = migrations.Migrate(ctx, conn, schema, migrations.Latest())
	_ = conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool := appPool(t, cl.url, "restart", 8)
	w := &memWorker{}
	workers := omniq.NewWorkers()
	omniq.AddWorker[runArgs](workers, w)
	c, err := omniq.NewClient(pool, &omniq.Config{
		Schema: schema, Workers: workers,
		Queues:              map[string]omniq.QueueConfig{"default": {MaxWorkers: 10}},
		FetchPollInterval:   time.Hour, // only NOTIFY (or a reconnect) wakes a producer
		MaintenanceInterval: 100 * time.Millisecond,
		HeartbeatInterval:   100 * time.Millisecond,
		RescueAfter:         time.Minute, // the client lives: nothing may be rescued
		Log:                 omniq.LogConfig{Level: "error"},
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	const n = 400
	params := make([]omniq.EnqueueParams, n)
	for i := range params {
		params[i] = omniq.EnqueueParams{Args: runArgs{N: i, SleepMS: 5}}
	}
	if _, err := c.EnqueueMany(ctx, params); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "100 tasks to run", func() bool {
		tasks, _, _ := w.count()
		return tasks >= 100
	})
	if out, err := cl.stop(); err != nil {
		t.Fatalf("stop server: %v\n%s", err, out)
	}
	time.Sleep(500 * time.Millisecond) // deliberate downtime: clients must see refused connections
	if out, err := cl.start(); err != nil {
		t.Fatalf("restart server: %v\n%s", err, out)
	}
	succeeded := func() int {
		var k int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM omniq.tasks WHERE status = 'success'").Scan(&k); err != nil {
			return -1 // the pool may hand out a connection from before the restart once
		}
		return k
	}
	waitFor(t, 30*time.Second, "every task to succeed", func() bool { return succeeded() == n })
	// The pool may hand out a connection from before the restart once: the
	// caller sees that error, so try again as a caller would.
	var last *omniq.EnqueueResult
	waitFor(t, 10*time.Second, "an enqueue to succeed", func() bool {
		last, err = c.Enqueue(ctx, runArgs{N: -1}, nil)
		return err == nil
	})
	waitFor(t, 30*time.Second, "the last task to succeed", func() bool {
		row, err := c.Task(ctx, last.ID)
		return err == nil && row.Status == omniq.StatusSuccess
	})
	tasks, total, twice := w.count()
	t.Logf("%d tasks ran %d times across a restart", tasks, total)
	if tasks != n+1 || total != n+1 {
		t.Errorf("%d tasks ran %d times (twice: %v), want %d once each", tasks, total, twice, n+1)
	}
}

// blocker is a worker whose tasks block until released, counting starts.
type blocker struct {
	omniq.WorkerDefaults[runArgs]
	started  chan uuid.UUID
	release  chan struct{}
	stubborn bool // ignore ctx cancellation
	sawCtx   atomic.Int32
}

func newBlocker(stubborn bool) *blocker {
	return &blocker{started: make(chan uuid.UUID, 100), release: make(chan struct{}), stubborn: stubborn}
}

func (b *blocker) Work(ctx context.Context, t *omniq.Task[runArgs]) error {
	b.started <- t.ID
	if b.stubborn {
		<-b.release
		return nil
	}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		b.sawCtx.Add(1)
		return ctx.Err()
	}
}

func (b *blocker) waitStarted(t *testing.T, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for len(ids) < n {
		select {
		case id := <-b.started:
			ids = append(ids, id)
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d tasks started", len(ids), n)
		}
	}
	return ids
}

func blockerClient(t *testing.T, db *pgtest.DB, b *blocker, app string) *omniq.Client {
	t.Helper()
	workers := omniq.NewWorkers()
	omniq.AddWorker[runArgs](workers, b)
	pool := db.Pool
	if app != "" {
		pool = appPool(t, db.URL, app, 8)
	}
	c, err := omniq.NewClient(pool, &omniq.Config{
		Schema: db.Schema, Workers: workers,
		FetchPollInterval:   100 * time.Millisecond,
		MaintenanceInterval: 100 * time.Millisecond,
		HeartbeatInterval:   100 * time.Millisecond,
		RescueAfter:         time.Minute, // a returned task must not wait for rescue
		Log:                 omniq.LogConfig{Level: "warn"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func enqueueN(t *testing.T, c *omniq.Client, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		res, err := c.Enqueue(context.Background(), runArgs{N: i}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = res.ID
	}
	return ids
}

// assertRunnableNow checks that tasks went back to the queue at once, with
// their attempt not used up.
func assertRunnableNow(t *testing.T, db *pgtest.DB, ids []uuid.UUID) {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT id, status, attempt, run_at <= now(), errors::text
		FROM `+db.Table("tasks")+` WHERE id = ANY($1)`, ids)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var (
			id      uuid.UUID
			status  string
			attempt int
			due     bool
			errs    string
		)
		if err := rows.Scan(&id, &status, &attempt, &due, &errs); err != nil {
			t.Fatal(err)
		}
		seen++
		if status != "retry" || attempt != 0 || !due || !strings.Contains(errs, "interrupted") {
			t.Errorf("task %s: status %s, attempt %d, due now %v, errors %s; want retry, 0, true, interrupted", id, status, attempt, due, errs)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != len(ids) {
		t.Fatalf("found %d of %d tasks", seen, len(ids))
	}
}

func TestGracefulStopFinishesRunningWork(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	b := newBlocker(false)
	app := "graceful-" + db.Schema
	c := blockerClient(t, db, b, app)
	ids := enqueueN(t, c, 3)
	b.waitStarted(t, 3)
	if pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'", app) != 1 {
		t.Fatal("no LISTEN session while running")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned while tasks ran: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(b.release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Stop did not return after the tasks finished")
	}
	if b.sawCtx.Load() != 0 {
		t.Fatal("a graceful stop cancelled a running task")
	}
	for _, id := range ids {
		if row, err := c.Task(context.Background(), id); err != nil || row.Status != omniq.StatusSuccess || row.Attempt != 1 {
			t.Fatalf("task %s after graceful stop: %+v, %v", id, row, err)
		}
	}
	if n := pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'", app); n != 0 {
		t.Fatalf("%d LISTEN sessions left after Stop", n)
	}
	if n := pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+db.Table("clients")); n != 0 {
		t.Fatalf("%d client rows left after Stop", n)
	}
}

func TestHardStopReturnsTasksAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		stubborn bool
		stop     func(c *omniq.Client) error
	}{
		{"StopAndCancel", false, func(c *omniq.Client) error { return c.StopAndCancel(context.Background()) }},
		{"Stop with expiring ctx", false, func(c *omniq.Client) error {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			return c.Stop(ctx)
		}},
		{"StopAndCancel, worker ignores ctx", true, func(c *omniq.Client) error { return c.StopAndCancel(context.Background()) }},
		{"Stop with expiring ctx, worker ignores ctx", true, func(c *omniq.Client) error {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			return c.Stop(ctx)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.New(t)
			b := newBlocker(tc.stubborn)
			defer close(b.release) // lets a stubborn worker end
			c := blockerClient(t, db, b, "")
			ids := enqueueN(t, c, 3)
			b.waitStarted(t, 3)
			if err := tc.stop(c); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("stop: %v", err)
			}
			if !tc.stubborn && b.sawCtx.Load() != 3 {
				t.Fatalf("%d of 3 tasks saw their context cancelled", b.sawCtx.Load())
			}
			assertRunnableNow(t, db, ids)

			// Another client runs them at once: no rescue wait.
			b2 := newBlocker(false)
			close(b2.release)
			c2 := blockerClient(t, db, b2, "")
			defer func() { _ = c2.Stop(context.Background()) }()
			for _, id := range ids {
				row := waitStatus(t, c2, id, omniq.StatusSuccess, 10*time.Second)
				if row.Attempt != 1 {
					t.Fatalf("task %s ended at attempt %d, want 1", id, row.Attempt)
				}
				// The returned attempt's row stands for its start too.
				want := []omniq.EventType{omniq.EventExecuting, omniq.EventRetry, omniq.EventEnqueued, omniq.EventExecuting, omniq.EventCompleted}
				waitFor(t, 10*time.Second, "the completed event", func() bool { return len(taskEvents(t, c2, id, true)) >= len(want) })
				if got := types(taskEvents(t, c2, id, true)); !slices.Equal(got, want) {
					t.Fatalf("task %s: expanded events %v, want %v", id, got, want)
				}
			}
			if n := pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+db.Table("events")+
				" WHERE type = 'retry' AND started_at IS NOT NULL AND NOT data ? 'started_at'"); n != len(ids) {
				t.Fatalf("%d retry rows with started_at in its column, want %d", n, len(ids))
			}
		})
	}
}

func TestStopTwiceAndConcurrently(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	b := newBlocker(false)
	c := blockerClient(t, db, b, "")
	enqueueN(t, c, 2)
	b.waitStarted(t, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				errs <- c.Stop(context.Background())
			case 1:
				errs <- c.StopAndCancel(context.Background())
			default:
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				if err := c.Stop(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent stop: %v", err)
		}
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after stop: %v", err)
	}
	if err := c.StopAndCancel(context.Background()); err != nil {
		t.Fatalf("StopAndCancel after stop: %v", err)
	}
	if n := pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+db.Table("tasks")+" WHERE status = 'running'"); n != 0 {
		t.Fatalf("%d tasks still running after stop", n)
	}
}

func TestUnwritableOutcomeDoesNotBlockCompletions(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rec := &recorder{fn: func(ctx context.Context, t *omniq.Task[echoArgs]) error {
		switch t.Args.Msg {
		case "nul-error":
			return omniq.NoRetry(errors.New("bad \x00 byte"))
		case "utf8-error":
			return omniq.NoRetry(errors.New("bad \xff\xfe bytes"))
		case "nul-result":
			t.SetResult("a\x00b")
		}
		return nil
	}}
	c := newClient(t, db, workersWith(rec), func(c *omniq.Config) { c.CompleterFlushInterval = 50 * time.Millisecond })
	start(t, c)
	var ids []uuid.UUID
	for i, msg := range []string{"nul-error", "ok", "utf8-error", "ok", "nul-result", "ok"} {
		res, err := c.Enqueue(context.Background(), echoArgs{N: i, Msg: msg}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	want := []omniq.Status{omniq.StatusError, omniq.StatusSuccess, omniq.StatusError, omniq.StatusSuccess, omniq.StatusError, omniq.StatusSuccess}
	for i, id := range ids {
		row := waitStatus(t, c, id, want[i], 20*time.Second)
		if want[i] == omniq.StatusError && (len(row.Errors) != 1 || !strings.Contains(row.Errors[0].Error, "bad") && !strings.Contains(row.Errors[0].Error, "result")) {
			t.Errorf("task %d errors: %+v", i, row.Errors)
		}
	}
}

// A claim can commit just as its connection is lost: the rows it returned are
// never read, and the client, alive and heartbeating, does not know it owns
// them. The state that leaves is made here directly: a task running under a
// live client's id that the client is not running.
func TestLostClaimReplyIsReclaimed(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rec := &recorder{}
	id := "lost-claim-" + db.Schema
	c := newClient(t, db, workersWith(rec), func(c *omniq.Config) {
		c.ID = id
		c.FetchPollInterval = time.Hour
	})
	start(t, c)
	task := uuid.Must(uuid.NewV7())
	db.Exec(t, `INSERT INTO `+db.Table("tasks")+` (id, kind, args, status, attempt, started_at, worker_id, heartbeat_at)
		VALUES ($1, 'echo', '{"n": 1}', 'running', 1, now() - interval '2 seconds', $2, now())`, task, id)
	row := waitStatus(t, c, task, omniq.StatusSuccess, 20*time.Second)
	if row.Attempt != 1 || len(rec.ran()) != 1 {
		t.Fatalf("orphan ran %d times, ended at attempt %d; want once, attempt 1", len(rec.ran()), row.Attempt)
	}
}
