package omniq_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

type echoArgs struct {
	N   int    `json:"n"`
	Msg string `json:"msg,omitempty"`
}

func (echoArgs) Kind() string { return "echo" }

// recorder is a worker that records the tasks it ran, in order.
type recorder struct {
	omniq.WorkerDefaults[echoArgs]
	mu   sync.Mutex
	seen []int
	at   []time.Time
	fn   func(ctx context.Context, t *omniq.Task[echoArgs]) error
}

func (r *recorder) Work(ctx context.Context, t *omniq.Task[echoArgs]) error {
	r.mu.Lock()
	r.seen = append(r.seen, t.Args.N)
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	if r.fn != nil {
		return r.fn(ctx, t)
	}
	t.SetResult(map[string]int{"doubled": 2 * t.Args.N})
	return nil
}

func (r *recorder) ran() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.seen...)
}

func workersWith(r *recorder) *omniq.Workers {
	w := omniq.NewWorkers()
	omniq.AddWorker[echoArgs](w, r)
	return w
}

func countTasks(t *testing.T, db *pgtest.DB) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+db.Table("tasks")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEnqueueTxRollbackLeavesNothing(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, nil)
	ctx := context.Background()

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnqueueTx(ctx, tx, echoArgs{N: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countTasks(t, db); n != 0 {
		t.Fatalf("rolled-back enqueue left %d tasks", n)
	}
	var events int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Table("events")).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 0 {
		t.Fatalf("rolled-back enqueue left %d events", events)
	}
}

func TestEnqueueTxCommitRunsAtOnce(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rec := &recorder{}
	c := newClient(t, db, workersWith(rec), func(c *omniq.Config) { c.FetchPollInterval = time.Hour })
	start(t, c)
	ctx := context.Background()

	// A business write and the task commit together.
	db.Exec(t, "CREATE TABLE "+db.Table("orders")+" (id int)")
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+db.Table("orders")+" VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	res, err := c.EnqueueTx(ctx, tx, echoArgs{N: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Poll interval is an hour: only the NOTIFY can wake the producer.
	row := waitStatus(t, c, res.ID, omniq.StatusSuccess, 10*time.Second)
	if row.Attempt != 1 {
		t.Fatalf("attempt = %d, want 1", row.Attempt)
	}
	r, err := c.Result(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]int
	if err := c.DecodeResult(r, &v); err != nil {
		t.Fatal(err)
	}
	if v["doubled"] != 14 || r.Status != omniq.ResultSuccess {
		t.Fatalf("result = %v (%s), want doubled=14 success", v, r.Status)
	}
}

func TestPriorityHigherRunsFirst(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rec := &recorder{}
	c := newClient(t, db, workersWith(rec), func(c *omniq.Config) {
		c.Queues = map[string]omniq.QueueConfig{"default": {MaxWorkers: 1}}
	})
	ctx := context.Background()
	for _, p := range []int{0, 5, -3, 10, 5} {
		if _, err := c.Enqueue(ctx, echoArgs{N: p}, &omniq.InsertOpts{Priority: p}); err != nil {
			t.Fatal(err)
		}
	}
	start(t, c)
	waitFor(t, 10*time.Second, "5 tasks", func() bool { return len(rec.ran()) == 5 })
	got := fmt.Sprint(rec.ran())
	if got != "[10 5 5 0 -3]" {
		t.Fatalf("ran in order %s, want [10 5 5 0 -3]", got)
	}
}

func TestRunAtWaits(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rec := &recorder{}
	c := newClient(t, db, workersWith(rec), nil)
	start(t, c)
	ctx := context.Background()
	runAt := time.Now().Add(700 * time.Millisecond)
	res, err := c.Enqueue(ctx, echoArgs{N: 1}, &omniq.InsertOpts{RunAt: runAt})
	if err != nil {
		t.Fatal(err)
	}
	row, err := c.Task(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Status != omniq.StatusPending {
		t.Fatalf("status %s, want pending", row.Status)
	}
	waitStatus(t, c, res.ID, omniq.StatusSuccess, 10*time.Second)
	rec.mu.Lock()
	startedAt := rec.at[0]
	rec.mu.Unlock()
	if startedAt.Before(runAt) {
		t.Fatalf("started at %s, before run_at %s", startedAt, runAt)
	}
}

func TestRetriesWithDelayThenError(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rec := &recorder{fn: func(context.Context, *omniq.Task[echoArgs]) error { return errors.New("boom") }}
	c := newClient(t, db, workersWith(rec), nil)
	start(t, c)
	ctx := context.Background()
	const delay = 300 * time.Millisecond
	res, err := c.Enqueue(ctx, echoArgs{N: 1}, &omniq.InsertOpts{MaxAttempts: 3, RetryDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	row := waitStatus(t, c, res.ID, omniq.StatusError, 15*time.Second)
	if row.Attempt != 3 || len(row.Errors) != 3 {
		t.Fatalf("attempt %d with %d errors, want 3 and 3", row.Attempt, len(row.Errors))
	}
	for i, e := range row.Errors {
		if e.Attempt != i+1 || e.Error != "boom" {
			t.Fatalf("error %d = %+v", i, e)
		}
	}
	rec.mu.Lock()
	at := append([]time.Time(nil), rec.at...)
	rec.mu.Unlock()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < delay {
			t.Fatalf("attempt %d started %s after the previous, want at least %s", i+1, gap, delay)
		}
	}
	r, err := c.Result(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != omniq.ResultError || r.Error != "boom" || r.Attempt != 3 {
		t.Fatalf("result %+v", r)
	}
}

func TestCancelPendingAndRunning(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	started := make(chan struct{}, 1)
	rec := &recorder{fn: func(ctx context.Context, t *omniq.Task[echoArgs]) error {
		if t.Args.N == 2 {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}}
	c := newClient(t, db, workersWith(rec), nil)
	ctx := context.Background()

	pending, err := c.Enqueue(ctx, echoArgs{N: 1}, &omniq.InsertOpts{RunIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Cancel(ctx, pending.ID)
	if err != nil || st != omniq.StatusCancelled {
		t.Fatalf("cancel pending: %s, %v", st, err)
	}

	start(t, c)
	running, err := c.Enqueue(ctx, echoArgs{N: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("task never started")
	}
	st, err = c.Cancel(ctx, running.ID)
	if err != nil || st != omniq.StatusRunning {
		t.Fatalf("cancel running: %s, %v", st, err)
	}
	row := waitStatus(t, c, running.ID, omniq.StatusCancelled, 10*time.Second)
	if row.Attempt != 1 {
		t.Fatalf("attempt %d", row.Attempt)
	}
	if _, err := c.Cancel(ctx, running.ID); !errors.Is(err, omniq.ErrFinished) {
		t.Fatalf("cancel of a cancelled task: %v, want ErrFinished", err)
	}
	if _, err := c.Cancel(ctx, uuid.New()); !errors.Is(err, omniq.ErrNotFound) {
		t.Fatalf("cancel of unknown task: %v, want ErrNotFound", err)
	}
}

func TestTTLExpiresUnstartedTask(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rec := &recorder{}
	c := newClient(t, db, workersWith(rec), nil)
	ctx := context.Background()
	res, err := c.Enqueue(ctx, echoArgs{N: 1}, &omniq.InsertOpts{TTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the TTL pass before any client runs
	start(t, c)
	waitStatus(t, c, res.ID, omniq.StatusExpired, 10*time.Second)
	if len(rec.ran()) != 0 {
		t.Fatal("an expired task ran")
	}
}

func TestResultsStoredAndNotStored(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rec := &recorder{}
	c := newClient(t, db, workersWith(rec), nil)
	start(t, c)
	ctx := context.Background()
	no := false
	skipped, err := c.Enqueue(ctx, echoArgs{N: 1}, &omniq.InsertOpts{StoreResult: &no})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := c.Enqueue(ctx, echoArgs{N: 2}, &omniq.InsertOpts{ResultTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, skipped.ID, omniq.StatusSuccess, 10*time.Second)
	waitStatus(t, c, kept.ID, omniq.StatusSuccess, 10*time.Second)
	if _, err := c.Result(ctx, skipped.ID); !errors.Is(err, omniq.ErrNotFound) {
		t.Fatalf("Result of a task that stores none: %v, want ErrNotFound", err)
	}
	r, err := c.Result(ctx, kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.ExpiresAt == nil || r.ExpiresAt.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("result expires_at %v, want about an hour from now", r.ExpiresAt)
	}
	if r.WorkerID == "" || r.StartedAt == nil || r.CompletedAt == nil || r.Attempt != 1 {
		t.Fatalf("result missing fields: %+v", r)
	}
}

func TestTimeoutCancelsAttempt(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rec := &recorder{fn: func(ctx context.Context, t *omniq.Task[echoArgs]) error {
		<-ctx.Done()
		return ctx.Err()
	}}
	c := newClient(t, db, workersWith(rec), nil)
	start(t, c)
	res, err := c.Enqueue(context.Background(), echoArgs{N: 1}, &omniq.InsertOpts{Timeout: 100 * time.Millisecond, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	row := waitStatus(t, c, res.ID, omniq.StatusError, 10*time.Second)
	if !strings.Contains(row.Errors[0].Error, "timed out after 100ms") {
		t.Fatalf("error %q does not name the timeout", row.Errors[0].Error)
	}
	r, err := c.Result(context.Background(), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != omniq.ResultTimeout {
		t.Fatalf("result status %s, want timeout", r.Status)
	}
}

func TestPanicIsAnErrorWithStack(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rec := &recorder{fn: func(context.Context, *omniq.Task[echoArgs]) error { panic("kaboom") }}
	c := newClient(t, db, workersWith(rec), nil)
	start(t, c)
	res, err := c.Enqueue(context.Background(), echoArgs{N: 1}, &omniq.InsertOpts{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	row := waitStatus(t, c, res.ID, omniq.StatusError, 10*time.Second)
	e := row.Errors[0]
	if e.Error != "panic: kaboom" || !strings.Contains(e.Trace, "client_test.go") {
		t.Fatalf("panic recorded as %q with trace %q", e.Error, e.Trace)
	}
	r, err := c.Result(context.Background(), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Traceback, "goroutine") {
		t.Fatalf("result traceback %q", r.Traceback)
	}
}

func TestWorkerErrorsChooseOutcome(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var snoozed atomic.Bool
	rec := &recorder{fn: func(ctx context.Context, t *omniq.Task[echoArgs]) error {
		switch t.Args.Msg {
		case "cancel":
			return omniq.JobCancel(errors.New("not wanted"))
		case "noretry":
			return omniq.NoRetry(errors.New("bad input"))
		case "snooze":
			if !snoozed.Swap(true) {
				return omniq.JobSnooze(200 * time.Millisecond)
			}
		}
		return nil
	}}
	c := newClient(t, db, workersWith(rec), nil)
	start(t, c)
	ctx := context.Background()
	enq := func(msg string) uuid.UUID {
		res, err := c.Enqueue(ctx, echoArgs{Msg: msg}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	cancelled, noRetry, snooze := enq("cancel"), enq("noretry"), enq("snooze")
	if row := waitStatus(t, c, cancelled, omniq.StatusCancelled, 10*time.Second); row.Attempt != 1 {
		t.Fatalf("cancelled after %d attempts", row.Attempt)
	}
	if row := waitStatus(t, c, noRetry, omniq.StatusError, 10*time.Second); row.Attempt != 1 || row.MaxAttempts != 4 {
		t.Fatalf("no-retry ended after %d of %d attempts", row.Attempt, row.MaxAttempts)
	}
	// A snooze does not use up an attempt.
	if row := waitStatus(t, c, snooze, omniq.StatusSuccess, 10*time.Second); row.Attempt != 1 {
		t.Fatalf("snoozed task ended at attempt %d, want 1", row.Attempt)
	}
}

type otherArgs struct{ X int }

func (otherArgs) Kind() string { return "other" }

type badArgs struct{ F func() }

func (badArgs) Kind() string { return "echo" }

func TestBadInputNamesTheField(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, workersWith(&recorder{}), nil)
	ctx := context.Background()
	cases := []struct {
		name string
		args omniq.Args
		opts *omniq.InsertOpts
		want string
	}{
		{"unknown kind", otherArgs{}, nil, `kind "other"`},
		{"unencodable args", badArgs{F: func() {}}, nil, "encode args"},
		{"queue", echoArgs{}, &omniq.InsertOpts{Queue: "no spaces"}, `queue "no spaces"`},
		{"priority", echoArgs{}, &omniq.InsertOpts{Priority: 40000}, "priority 40000"},
		{"negative RunIn", echoArgs{}, &omniq.InsertOpts{RunIn: -time.Second}, "RunIn"},
		{"negative timeout", echoArgs{}, &omniq.InsertOpts{Timeout: -time.Second}, "Timeout"},
		{"negative TTL", echoArgs{}, &omniq.InsertOpts{TTL: -time.Second}, "TTL"},
		{"negative retry delay", echoArgs{}, &omniq.InsertOpts{RetryDelay: -time.Second}, "RetryDelay"},
		{"max attempts", echoArgs{}, &omniq.InsertOpts{MaxAttempts: -1}, "MaxAttempts"},
		{"oversized args", echoArgs{Msg: strings.Repeat("x", 2<<20)}, nil, "too large"},
		{"unknown dependency", echoArgs{}, &omniq.InsertOpts{DependsOn: []uuid.UUID{uuid.New()}}, "no such task"},
	}
	for _, tc := range cases {
		_, err := c.Enqueue(ctx, tc.args, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, omniq.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput naming %q", tc.name, err, tc.want)
		}
	}
	if _, err := c.EnqueueTx(ctx, nil, echoArgs{}, nil); err == nil || !strings.Contains(err.Error(), "nil transaction") {
		t.Errorf("nil tx: %v", err)
	}
	if n := countTasks(t, db); n != 0 {
		t.Fatalf("bad input wrote %d tasks", n)
	}
}

func TestUnknownKindIsRetriedAndDecodeFailureIsNot(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	inserter := newClient(t, db, nil, nil) // insert-only: any kind
	unknown, err := inserter.Enqueue(ctx, otherArgs{X: 1}, &omniq.InsertOpts{MaxAttempts: 5})
	if err != nil {
		t.Fatal(err)
	}
	// Args that cannot decode into echoArgs: n is a string.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO `+db.Table("tasks")+` (id, kind, args) VALUES ($1, 'echo', '{"n": "seven"}')`, uuid.Must(uuid.NewV7())); err != nil {
		t.Fatal(err)
	}
	worker := newClient(t, db, workersWith(&recorder{}), nil)
	start(t, worker)
	waitFor(t, 10*time.Second, "unknown kind to fail once", func() bool {
		row, err := worker.Task(ctx, unknown.ID)
		return err == nil && row.Status == omniq.StatusRetry
	})
	row, _ := worker.Task(ctx, unknown.ID)
	if !strings.Contains(row.Errors[0].Error, `no worker for kind "other"`) {
		t.Fatalf("error %q", row.Errors[0].Error)
	}
	waitFor(t, 10*time.Second, "undecodable task to fail", func() bool {
		rows, err := worker.Tasks(ctx, omniq.TaskFilter{Kinds: []string{"echo"}, Statuses: []omniq.Status{omniq.StatusError}})
		return err == nil && len(rows) == 1 && rows[0].Attempt == 1 && strings.Contains(rows[0].Errors[0].Error, "decode args")
	})
}

func TestTwoClientsNeverRunAnAttemptTwice(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	const n = 3000
	var mu sync.Mutex
	runs := map[uuid.UUID]int{}
	var total atomic.Int64
	rec := &recorder{fn: func(ctx context.Context, t *omniq.Task[echoArgs]) error {
		mu.Lock()
		runs[t.ID]++
		mu.Unlock()
		total.Add(1)
		return nil
	}}
	ctx := context.Background()
	a := newClient(t, db, workersWith(rec), nil)
	b := newClient(t, db, workersWith(rec), nil)
	start(t, a)
	start(t, b)
	params := make([]omniq.EnqueueParams, n)
	for i := range params {
		params[i] = omniq.EnqueueParams{Args: echoArgs{N: i}}
	}
	for i := 0; i < n; i += 500 {
		if _, err := a.EnqueueMany(ctx, params[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, "all tasks to finish", func() bool {
		var done int
		err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Table("tasks")+" WHERE status = 'success'").Scan(&done)
		return err == nil && done == n
	})
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != n || total.Load() != n {
		t.Fatalf("%d distinct tasks ran %d times, want %d once each", len(runs), total.Load(), n)
	}
}
