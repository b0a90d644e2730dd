package riverlike_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// A client works only the queues in its config; tasks go to the queue their
// InsertOpts (or their args' InsertOpts) name.
// River: https://riverqueue.com/docs/multiple-queues
func TestClientWorksOnlyItsConfiguredQueues(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var queues record[string]
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		queues.add(t.Queue)
		return nil
	}), func(cfg *omniq.Config) {
		cfg.Queues = map[string]omniq.QueueConfig{"email": {MaxWorkers: 2}, "reports": {MaxWorkers: 2}}
	})
	start(t, c)
	email := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{Queue: "email"})
	reports := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{Queue: "reports"})
	elsewhere := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{Queue: "billing"})
	byDefault := enqueue(t, c, jobArgs{}, nil)
	waitStatus(t, c, email.ID, omniq.StatusSuccess)
	waitStatus(t, c, reports.ID, omniq.StatusSuccess)
	time.Sleep(quietWindow)
	for _, id := range []uuid.UUID{elsewhere.ID, byDefault.ID} {
		if row := task(t, c, id); row.Status != omniq.StatusPending {
			t.Fatalf("task of queue %q, which this client does not work, is %s", row.Queue, row.Status)
		}
	}
	if row := task(t, c, byDefault.ID); row.Queue != "default" {
		t.Fatalf("task without a queue went to %q, want default", row.Queue)
	}
	if got := queues.len(); got != 2 {
		t.Fatalf("worked %d tasks (%v), want 2", got, queues.all())
	}
}

// A queue's MaxWorkers caps how many of its tasks one client runs at once:
// never more, and all of them when there is work.
// River: https://riverqueue.com/docs/multiple-queues (QueueConfig.MaxWorkers)
func TestQueueMaxWorkersIsNeverExceeded(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	const maxWorkers = 3
	var running, peak atomic.Int32
	release := make(chan struct{})
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		return nil
	}), func(cfg *omniq.Config) {
		cfg.Queues = map[string]omniq.QueueConfig{"limited": {MaxWorkers: maxWorkers}}
	})
	ids := make([]uuid.UUID, 10)
	for i := range ids {
		ids[i] = enqueue(t, c, jobArgs{N: i}, &omniq.InsertOpts{Queue: "limited"}).ID
	}
	start(t, c)
	waitFor(t, waitTimeout, "the queue to fill its workers", func() bool { return running.Load() == maxWorkers })
	time.Sleep(quietWindow) // several fetch polls: none may start a fourth task
	if p := peak.Load(); p != maxWorkers {
		t.Fatalf("%d tasks ran at once in a queue of MaxWorkers %d", p, maxWorkers)
	}
	close(release)
	for _, id := range ids {
		waitStatus(t, c, id, omniq.StatusSuccess)
	}
	if p := peak.Load(); p != maxWorkers {
		t.Fatalf("%d tasks ran at once in a queue of MaxWorkers %d", p, maxWorkers)
	}
}

// A paused queue starts no task until it is resumed, whichever client paused
// it; other queues carry on.
// River: https://riverqueue.com/docs/pausing-queues (QueuePause, QueueResume)
func TestPausedQueueStartsNothingUntilResumed(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	var ran atomic.Int32
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		ran.Add(1)
		return nil
	}), func(cfg *omniq.Config) {
		cfg.Queues = map[string]omniq.QueueConfig{"paused": {MaxWorkers: 5}, "open": {MaxWorkers: 5}}
	})
	start(t, c)
	admin := newClient(t, db, nil, nil) // pausing is a database-wide switch: any client may flip it
	if err := admin.PauseQueue(ctx, "paused"); err != nil {
		t.Fatal(err)
	}
	held := make([]uuid.UUID, 3)
	for i := range held {
		held[i] = enqueue(t, admin, jobArgs{N: i}, &omniq.InsertOpts{Queue: "paused"}).ID
	}
	open := enqueue(t, admin, jobArgs{}, &omniq.InsertOpts{Queue: "open"})
	waitStatus(t, c, open.ID, omniq.StatusSuccess)
	time.Sleep(quietWindow)
	for _, id := range held {
		if row := task(t, c, id); row.Status != omniq.StatusPending {
			t.Fatalf("task of a paused queue is %s", row.Status)
		}
	}
	if n := ran.Load(); n != 1 {
		t.Fatalf("%d tasks ran while their queue was paused", n-1)
	}
	if err := admin.ResumeQueue(ctx, "paused"); err != nil {
		t.Fatal(err)
	}
	for _, id := range held {
		waitStatus(t, c, id, omniq.StatusSuccess)
	}
}
