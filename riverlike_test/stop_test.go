package riverlike_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// Stop stops fetching and waits for running tasks to finish of their own
// accord, with their contexts left alone, and records their outcomes.
// River: https://riverqueue.com/docs/graceful-shutdown (Client.Stop)
func TestStopLetsRunningTasksFinish(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	var ctxErr atomic.Value
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		started <- struct{}{}
		<-release
		if err := ctx.Err(); err != nil {
			ctxErr.Store(err)
		}
		return nil
	}), nil)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a := enqueue(t, c, jobArgs{N: 1}, nil)
	b := enqueue(t, c, jobArgs{N: 2}, nil)
	recv(t, started, "the first task to start")
	recv(t, started, "the second task to start")

	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(ctx) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned while tasks were running: %v", err)
	case <-time.After(quietWindow):
	}
	late := enqueue(t, c, jobArgs{N: 3}, nil) // Stop has begun: no new fetch
	close(release)
	if err := recv(t, stopped, "Stop to return after the tasks finished"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err, _ := ctxErr.Load().(error); err != nil {
		t.Fatalf("a graceful stop cancelled a running task's context: %v", err)
	}
	for _, id := range []*omniq.EnqueueResult{a, b} {
		if row := task(t, c, id.ID); row.Status != omniq.StatusSuccess || row.Attempt != 1 {
			t.Fatalf("task after graceful stop: %s at attempt %d, want success at 1", row.Status, row.Attempt)
		}
	}
	if row := task(t, c, late.ID); row.Status != omniq.StatusPending {
		t.Fatalf("task enqueued during Stop is %s, want pending", row.Status)
	}
}

// StopAndCancel cancels running tasks' contexts at once, waits for them to
// return, and leaves them runnable at once by another client. OmniQ does not
// count the interrupted attempt (the task goes back as retry at attempt 0);
// in River the cancelled job's error counts as an attempt and it is retried
// on the normal schedule.
// River: https://riverqueue.com/docs/graceful-shutdown (Client.StopAndCancel)
func TestStopAndCancelCancelsContextsAndReturnsTasks(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	started := make(chan struct{}, 3)
	var cancelled atomic.Int32
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		started <- struct{}{}
		<-ctx.Done()
		if errors.Is(ctx.Err(), context.Canceled) {
			cancelled.Add(1)
		}
		return ctx.Err()
	}), nil)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res := make([]*omniq.EnqueueResult, 3)
	for i := range res {
		res[i] = enqueue(t, c, jobArgs{N: i}, nil)
	}
	for range res {
		recv(t, started, "three tasks to start")
	}
	// No deadline on the stop: only the cancelled contexts can end the tasks.
	stopped := make(chan error, 1)
	go func() { stopped <- c.StopAndCancel(ctx) }()
	if err := recv(t, stopped, "StopAndCancel to return"); err != nil {
		t.Fatalf("StopAndCancel: %v", err)
	}
	if n := cancelled.Load(); n != 3 {
		t.Fatalf("%d of 3 running tasks saw their context cancelled", n)
	}
	for _, r := range res {
		row := task(t, c, r.ID)
		if row.Status != omniq.StatusRetry || row.Attempt != 0 || row.RunAt.After(time.Now()) {
			t.Fatalf("task after StopAndCancel: %s, attempt %d, run_at %s; want retry, 0, due now", row.Status, row.Attempt, row.RunAt)
		}
	}
	next := newClient(t, db, workFn(func(context.Context, *omniq.Task[jobArgs]) error { return nil }), func(cfg *omniq.Config) {
		cfg.RescueAfter = time.Hour // returned tasks must not need a rescue
	})
	start(t, next)
	for _, r := range res {
		if row := waitStatus(t, next, r.ID, omniq.StatusSuccess); row.Attempt != 1 {
			t.Fatalf("task finished at attempt %d, want 1", row.Attempt)
		}
	}
}

// A task left running by a client that stopped heartbeating (crashed, lost
// its network) is rescued by another client and run again; the rescue is
// recorded in its error history. OmniQ rescues after RescueAfter of silence
// from the client (default 15s); River's rescuer waits RescueStuckJobsAfter,
// one hour by default, measured from the job's attempt start.
// River: https://riverqueue.com/docs/maintenance-services (Rescuer) and
// https://riverqueue.com/docs/reliable-workers
func TestStuckTaskOfDeadClientIsRescued(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	// The victim claims the task and then goes silent: its heartbeat comes
	// every hour, so to everyone else it is dead while its worker hangs.
	victim := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		started <- struct{}{}
		<-release
		return nil
	}), func(cfg *omniq.Config) {
		cfg.ID = "victim"
		cfg.Queues = map[string]omniq.QueueConfig{"default": {MaxWorkers: 1}}
		cfg.HeartbeatInterval = time.Hour
		cfg.RescueAfter = 2 * time.Hour
	})
	if err := victim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(release)
		if err := victim.Stop(context.Background()); err != nil {
			t.Errorf("victim Stop: %v", err)
		}
	}()
	res := enqueue(t, victim, jobArgs{}, nil)
	recv(t, started, "the victim to claim the task")

	rescuer := newClient(t, db, workFn(func(context.Context, *omniq.Task[jobArgs]) error { return nil }), func(cfg *omniq.Config) {
		cfg.ID = "rescuer"
		cfg.RescueAfter = 500 * time.Millisecond
	})
	start(t, rescuer)
	row := waitStatus(t, rescuer, res.ID, omniq.StatusSuccess)
	if row.Attempt != 2 || row.WorkerID != "rescuer" || len(row.Errors) != 1 ||
		!strings.Contains(row.Errors[0].Error, "rescued: client victim stopped heartbeating") {
		t.Fatalf("rescued task: attempt %d by %q, errors %+v", row.Attempt, row.WorkerID, row.Errors)
	}
	evs, err := rescuer.Events(context.Background(), omniq.EventFilter{TaskID: res.ID, Types: []omniq.EventType{omniq.EventRescued}})
	if err != nil || len(evs) != 1 {
		t.Fatalf("rescued events: %v, %v; want one", evs, err)
	}
	// At the default event level the rescued row stands for the task's
	// enqueue and the victim's start of attempt 1.
	if evs[0].EnqueuedAt.IsZero() || evs[0].StartedAt.IsZero() || evs[0].StartedAt.Before(evs[0].EnqueuedAt) {
		t.Fatalf("rescued event: enqueued at %v, started at %v; want both, in that order", evs[0].EnqueuedAt, evs[0].StartedAt)
	}
	if n := pgtest.Scalar[int](t, db.Pool, "SELECT count(*) FROM "+db.Table("events")+
		" WHERE type = 'rescued' AND enqueued_at IS NOT NULL AND started_at IS NOT NULL AND data = '{}'"); n != 1 {
		t.Fatalf("%d rescued rows with their times in columns, want 1", n)
	}
}
