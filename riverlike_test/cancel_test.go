package riverlike_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// A task cancelled from the client before it runs is cancelled at once and
// never worked.
// River: https://riverqueue.com/docs/cancelling-jobs (Cancelling a job from the client, Client.JobCancel)
func TestClientCancelOfPendingTaskPreventsRun(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	var ran record[int]
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		ran.add(t.Args.N)
		return nil
	}), nil)
	doomed := enqueue(t, c, jobArgs{N: 1}, nil)
	st, err := c.Cancel(ctx, doomed.ID)
	if err != nil || st != omniq.StatusCancelled {
		t.Fatalf("Cancel of a pending task: %s, %v; want cancelled", st, err)
	}
	start(t, c)
	marker := enqueue(t, c, jobArgs{N: 2}, nil) // enqueued after: once it ran, the cancelled one had its chance
	waitStatus(t, c, marker.ID, omniq.StatusSuccess)
	if got := ran.all(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("ran %v, want only the marker 2", got)
	}
	if row := task(t, c, doomed.ID); row.Status != omniq.StatusCancelled || row.Attempt != 0 || row.CompletedAt == nil {
		t.Fatalf("cancelled task: %s, attempt %d, completed_at %v", row.Status, row.Attempt, row.CompletedAt)
	}
	if _, err := c.Cancel(ctx, doomed.ID); !errors.Is(err, omniq.ErrFinished) {
		t.Fatalf("second Cancel: %v, want ErrFinished", err)
	}
	if _, err := c.Cancel(ctx, uuid.New()); !errors.Is(err, omniq.ErrNotFound) {
		t.Fatalf("Cancel of an unknown task: %v, want ErrNotFound", err)
	}
}

// A running task cancelled from a client (here another, insert-only client,
// as from a web process) has its work context cancelled wherever it runs,
// ends cancelled and is not retried.
// River: https://riverqueue.com/docs/cancelling-jobs (Jobs still running)
func TestClientCancelOfRunningTaskCancelsItsContext(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	var runs record[int]
	worker := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		runs.add(t.Attempt)
		if t.Args.Msg != "block" {
			return nil
		}
		started <- struct{}{}
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	}), nil)
	start(t, worker)
	web := newClient(t, db, nil, nil)
	res := enqueue(t, web, jobArgs{Msg: "block"}, &omniq.InsertOpts{MaxAttempts: 5})
	recv(t, started, "the task to start")
	st, err := web.Cancel(ctx, res.ID)
	if err != nil || st != omniq.StatusRunning {
		t.Fatalf("Cancel of a running task: %s, %v; want running (cancel requested)", st, err)
	}
	if err := recv(t, ended, "the work context to be cancelled"); !errors.Is(err, context.Canceled) {
		t.Fatalf("work context ended with %v, want Canceled", err)
	}
	row := waitStatus(t, web, res.ID, omniq.StatusCancelled)
	if row.Attempt != 1 {
		t.Fatalf("cancelled at attempt %d", row.Attempt)
	}
	// Not retried: a later task runs, the cancelled one does not run again.
	waitStatus(t, worker, enqueue(t, web, jobArgs{N: 1}, nil).ID, omniq.StatusSuccess)
	if n := runs.len(); n != 2 {
		t.Fatalf("%d runs, want the cancelled one once and the later one once", n)
	}
}

// A task that is not running can be deleted, with its result; a running one
// cannot (River: ErrJobRunning; OmniQ: an error saying to cancel it first).
// River: https://pkg.go.dev/github.com/riverqueue/river#Client.JobDelete
func TestDeleteTaskRemovesItButNotWhileRunning(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		if t.Args.Msg == "block" {
			started <- struct{}{}
			<-release
		}
		t.SetResult("done")
		return nil
	}), nil)
	pending := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{Queue: "unworked"})
	if err := c.DeleteTask(ctx, pending.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Task(ctx, pending.ID); !errors.Is(err, omniq.ErrNotFound) {
		t.Fatalf("deleted pending task: %v, want ErrNotFound", err)
	}

	start(t, c)
	finished := enqueue(t, c, jobArgs{}, nil)
	waitStatus(t, c, finished.ID, omniq.StatusSuccess)
	if _, err := c.Result(ctx, finished.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTask(ctx, finished.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Result(ctx, finished.ID); !errors.Is(err, omniq.ErrNotFound) {
		t.Fatalf("result of a deleted task: %v, want ErrNotFound", err)
	}

	running := enqueue(t, c, jobArgs{Msg: "block"}, nil)
	recv(t, started, "the task to start")
	if err := c.DeleteTask(ctx, running.ID); err == nil {
		t.Fatal("deleted a running task")
	}
	close(release)
	waitStatus(t, c, running.ID, omniq.StatusSuccess)
	if err := c.DeleteTask(ctx, uuid.New()); !errors.Is(err, omniq.ErrNotFound) {
		t.Fatalf("DeleteTask of an unknown task: %v, want ErrNotFound", err)
	}
}

// A finished task (given up, cancelled or done) can be run again by hand.
// River: https://pkg.go.dev/github.com/riverqueue/river#Client.JobRetry
func TestRetryRunsAFinishedTaskAgain(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	fail := make(chan bool, 2)
	fail <- true
	fail <- false
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		if <-fail {
			return errors.New("broken until a fix is deployed")
		}
		return nil
	}), nil)
	start(t, c)
	res := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{MaxAttempts: 1})
	waitStatus(t, c, res.ID, omniq.StatusError)
	if err := c.Retry(context.Background(), res.ID); err != nil {
		t.Fatal(err)
	}
	row := waitStatus(t, c, res.ID, omniq.StatusSuccess)
	if row.Attempt != 2 || len(row.Errors) != 1 {
		t.Fatalf("retried task: attempt %d, errors %+v", row.Attempt, row.Errors)
	}
}
