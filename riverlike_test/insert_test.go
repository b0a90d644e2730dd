package riverlike_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// A task inserted in a transaction exists, and is worked, only once the
// transaction commits: before it, no other session sees it.
// River: https://riverqueue.com/docs/transactional-enqueueing
func TestInsertTxCommitMakesTaskVisibleAndWorked(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	db.Exec(t, "CREATE TABLE "+db.Table("orders")+" (id int PRIMARY KEY)")
	ran := make(chan int, 1)
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		ran <- t.Args.N
		return nil
	}), nil)
	start(t, c)

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "INSERT INTO "+db.Table("orders")+" VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	res, err := c.EnqueueTx(ctx, tx, jobArgs{N: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Uncommitted: invisible to the client's own pool, so not worked.
	if _, err := c.Task(ctx, res.ID); !errors.Is(err, omniq.ErrNotFound) {
		t.Fatalf("uncommitted task visible outside its transaction: %v", err)
	}
	select {
	case n := <-ran:
		t.Fatalf("task %d worked before its transaction committed", n)
	case <-time.After(quietWindow):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := recv(t, ran, "the committed task to run"); n != 7 {
		t.Fatalf("worked args %d, want 7", n)
	}
	waitStatus(t, c, res.ID, omniq.StatusSuccess)
}

// A task inserted in a transaction that rolls back leaves no task (and no
// event) behind.
// River: https://riverqueue.com/docs/transactional-enqueueing
func TestInsertTxRollbackLeavesNoTask(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	c := newClient(t, db, nil, func(cfg *omniq.Config) { cfg.EventLevel = "all" })

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.EnqueueTx(ctx, tx, jobArgs{N: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Task(ctx, res.ID); !errors.Is(err, omniq.ErrNotFound) {
		t.Fatalf("Task after rollback: %v, want ErrNotFound", err)
	}
	if n := count(t, db, "tasks", ""); n != 0 {
		t.Fatalf("%d tasks after rollback", n)
	}
	if n := count(t, db, "events", ""); n != 0 {
		t.Fatalf("%d events after rollback", n)
	}
}

// EnqueueMany inserts a batch, each task with its own options, and every task
// of it is worked.
// River: https://riverqueue.com/docs/batch-job-insertion (InsertMany)
func TestInsertManyInsertsAndWorksEveryTask(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var got record[int]
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		got.add(t.Args.N)
		return nil
	}), nil)
	const n = 50
	params := make([]omniq.EnqueueParams, n)
	for i := range params {
		params[i] = omniq.EnqueueParams{Args: jobArgs{N: i}}
	}
	params[n-1].Opts = &omniq.InsertOpts{Priority: 3, Tags: []string{"last"}}
	results, err := c.EnqueueMany(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != n {
		t.Fatalf("%d results for %d tasks", len(results), n)
	}
	if row := task(t, c, results[n-1].ID); row.Priority != 3 || !slices.Equal(row.Tags, []string{"last"}) {
		t.Fatalf("per-task options lost: priority %d, tags %v", row.Priority, row.Tags)
	}
	start(t, c)
	waitFor(t, waitTimeout, "every task of the batch to run", func() bool { return got.len() >= n })
	ran := got.all()
	slices.Sort(ran)
	for i, v := range ran {
		if v != i {
			t.Fatalf("ran %v, want 0..%d once each", ran, n-1)
		}
	}
}

// EnqueueManyTx is transactional like EnqueueTx: a rolled-back batch leaves
// nothing.
// River: https://riverqueue.com/docs/batch-job-insertion (InsertManyTx)
func TestInsertManyTxRollbackLeavesNoTask(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	c := newClient(t, db, nil, nil)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	params := []omniq.EnqueueParams{{Args: jobArgs{N: 1}}, {Args: jobArgs{N: 2}}, {Args: otherArgs{ID: 3}}}
	if _, err := c.EnqueueManyTx(ctx, tx, params); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "tasks", ""); n != 0 {
		t.Fatalf("%d tasks after a rolled-back batch", n)
	}
}

// A task scheduled for a future time waits (OmniQ status pending, River's
// "scheduled") and is worked once that time has come, not before.
// River: https://riverqueue.com/docs/scheduled-jobs (InsertOpts.ScheduledAt; OmniQ: RunAt / RunIn)
func TestScheduledTaskRunsNotBeforeItsTime(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	started := make(chan time.Time, 2)
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		started <- time.Now()
		return nil
	}), nil)
	start(t, c)
	runAt := time.Now().Add(700 * time.Millisecond)
	res := enqueue(t, c, jobArgs{N: 1}, &omniq.InsertOpts{RunAt: runAt})
	row := task(t, c, res.ID)
	if d := row.RunAt.Sub(runAt); row.Status != omniq.StatusPending || d < -time.Millisecond || d > time.Millisecond {
		t.Fatalf("scheduled task: status %s, run_at %s; want pending at %s", row.Status, row.RunAt, runAt)
	}
	far := enqueue(t, c, jobArgs{N: 2}, &omniq.InsertOpts{RunIn: time.Hour})
	// Compared by wall clock, as the database schedules: with both monotonic
	// readings kept, a step of the machine's clock during the wait made a
	// task started after run_at by the wall clock look early.
	at := recv(t, started, "the scheduled task to run").Round(0)
	if at.Before(runAt.Round(0)) {
		t.Fatalf("scheduled task ran at %s, before its time %s", at.Format(time.StampMicro), runAt.Format(time.StampMicro))
	}
	waitStatus(t, c, res.ID, omniq.StatusSuccess)
	if row := task(t, c, far.ID); row.Status != omniq.StatusPending {
		t.Fatalf("task due in an hour is %s", row.Status)
	}
}

// Among available tasks, the most urgent runs first. OmniQ: a higher
// Priority number runs first (any smallint, default 0). River differs on
// purpose: its priority 1 is the most urgent and 4 the least.
// River: https://riverqueue.com/docs/inserting-and-working-jobs and
// https://pkg.go.dev/github.com/riverqueue/river#InsertOpts (Priority)
func TestHigherPriorityRunsFirst(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var order record[int]
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		order.add(t.Priority)
		return nil
	}), func(cfg *omniq.Config) {
		cfg.Queues = map[string]omniq.QueueConfig{"default": {MaxWorkers: 1}}
	})
	// Inserted least urgent first, so insertion order cannot explain the result.
	for _, p := range []int{-5, 0, 1, 4, 10} {
		enqueue(t, c, jobArgs{N: p}, &omniq.InsertOpts{Priority: p})
	}
	start(t, c)
	waitFor(t, waitTimeout, "five tasks", func() bool { return order.len() == 5 })
	if got := order.all(); !slices.Equal(got, []int{10, 4, 1, 0, -5}) {
		t.Fatalf("ran priorities in order %v, want 10 4 1 0 -5 (higher first)", got)
	}
}

// A client without workers inserts any kind and works nothing; a client with
// workers, elsewhere, works what it inserted.
// River: https://riverqueue.com/docs/insert-only-clients
func TestInsertOnlyClientInsertsWithoutWorkers(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	inserter := newClient(t, db, nil, nil)
	if len(inserter.Config().Queues) != 0 {
		t.Fatalf("insert-only client works queues %v", inserter.Config().Queues)
	}
	// Started or not, it works nothing.
	start(t, inserter)
	res := enqueue(t, inserter, jobArgs{N: 1}, nil)
	// Any kind, even one no client has a worker for, in a queue nobody works.
	other := enqueue(t, inserter, otherArgs{ID: 2}, &omniq.InsertOpts{Queue: "elsewhere"})
	time.Sleep(quietWindow) // give a (wrong) worker the chance to run it
	if row := task(t, inserter, res.ID); row.Status != omniq.StatusPending {
		t.Fatalf("insert-only client's task is %s, want pending", row.Status)
	}
	worker := newClient(t, db, workFn(func(context.Context, *omniq.Task[jobArgs]) error { return nil }), nil)
	start(t, worker)
	waitStatus(t, worker, res.ID, omniq.StatusSuccess)
	if row, err := worker.Task(ctx, other.ID); err != nil || row.Status != omniq.StatusPending {
		t.Fatalf("task of a queue nobody works: %+v, %v; want pending", row, err)
	}
}

// A plain function can be a worker.
// River: https://riverqueue.com/docs/work-functions (river.WorkFunc)
func TestWorkFuncRunsTask(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	w := omniq.NewWorkers()
	omniq.AddWorker(w, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[otherArgs]) error {
		t.SetResult(map[string]int{"double": 2 * t.Args.ID})
		return nil
	}))
	c := newClient(t, db, w, nil)
	start(t, c)
	res := enqueue(t, c, otherArgs{ID: 21}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	r, err := c.WaitResult(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]int
	if err := c.DecodeResult(r, &out); err != nil {
		t.Fatal(err)
	}
	if r.Status != omniq.ResultSuccess || out["double"] != 42 {
		t.Fatalf("result %s %v, want success {double: 42}", r.Status, out)
	}
}

// A worker records output that is kept with the finished task and can be read
// back. OmniQ stores it in the results table (SetResult, Result, WaitResult);
// River stores it on the job row's metadata (RecordOutput).
// River: https://riverqueue.com/docs/recorded-output
func TestRecordedOutputIsStored(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		t.SetResult(map[string]any{"n": t.Args.N, "msg": "done " + t.Args.Msg})
		return nil
	}), nil)
	start(t, c)
	res := enqueue(t, c, jobArgs{N: 5, Msg: "x"}, nil)
	waitStatus(t, c, res.ID, omniq.StatusSuccess)
	r, err := c.Result(context.Background(), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		N   int    `json:"n"`
		Msg string `json:"msg"`
	}
	if err := c.DecodeResult(r, &out); err != nil {
		t.Fatal(err)
	}
	if out.N != 5 || out.Msg != "done x" {
		t.Fatalf("recorded output %+v", out)
	}
}
