package riverlike_test

import (
	"context"
	"testing"
	"time"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// accountArgs carries its kind's unique options, as River's
// JobArgsWithInsertOpts does: one reconciliation per account per day.
type accountArgs struct {
	Account int `json:"account"`
}

func (accountArgs) Kind() string { return "riverlike_reconcile" }

func (accountArgs) InsertOpts() omniq.InsertOpts {
	return omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true, ByPeriod: 24 * time.Hour}}
}

func expectDuplicate(t *testing.T, what string, first, got *omniq.EnqueueResult) {
	t.Helper()
	if !got.Duplicate || got.ID != first.ID {
		t.Fatalf("%s: %+v, want a duplicate of %s", what, got, first.ID)
	}
}

func expectInserted(t *testing.T, what string, first, got *omniq.EnqueueResult) {
	t.Helper()
	if got.Duplicate || got.ID == first.ID {
		t.Fatalf("%s: %+v, want a new task", what, got)
	}
}

// Unique by args: a second insert with the same args (and kind) is skipped
// and returns the existing task; other args insert.
// River: https://riverqueue.com/docs/unique-jobs (ByArgs)
func TestUniqueByArgsSkipsDuplicateInsert(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, nil)
	opts := &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true}}
	first := enqueue(t, c, jobArgs{N: 1}, opts)
	if first.Duplicate {
		t.Fatal("first insert reported as a duplicate")
	}
	expectDuplicate(t, "same args", first, enqueue(t, c, jobArgs{N: 1}, opts))
	expectInserted(t, "other args", first, enqueue(t, c, jobArgs{N: 2}, opts))
	// Args-level options, as River's JobArgsWithInsertOpts example.
	acct := enqueue(t, c, accountArgs{Account: 1}, nil)
	expectDuplicate(t, "same account, args-level options", acct, enqueue(t, c, accountArgs{Account: 1}, nil))
	expectInserted(t, "other account", acct, enqueue(t, c, accountArgs{Account: 2}, nil))
	if n := count(t, db, "tasks", ""); n != 4 {
		t.Fatalf("%d tasks, want 4", n)
	}
}

// Unique by period: one task per period. OmniQ buckets by the task's run
// time (RunAt, or now).
// River: https://riverqueue.com/docs/unique-jobs (ByPeriod)
func TestUniqueByPeriodAllowsOnePerPeriod(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, nil)
	hour := time.Now().Add(48 * time.Hour).Truncate(time.Hour)
	at := func(d time.Duration) *omniq.InsertOpts {
		return &omniq.InsertOpts{RunAt: hour.Add(d), Unique: &omniq.UniqueOpts{ByPeriod: time.Hour}}
	}
	first := enqueue(t, c, jobArgs{N: 1}, at(time.Minute))
	expectDuplicate(t, "same hour, even with other args (not by args)", first, enqueue(t, c, jobArgs{N: 2}, at(59*time.Minute)))
	expectInserted(t, "next hour", first, enqueue(t, c, jobArgs{N: 1}, at(61*time.Minute)))
}

// Unique by queue: the same task may exist once per queue.
// River: https://riverqueue.com/docs/unique-jobs (ByQueue)
func TestUniqueByQueueAllowsOnePerQueue(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, nil)
	in := func(q string) *omniq.InsertOpts {
		return &omniq.InsertOpts{Queue: q, Unique: &omniq.UniqueOpts{ByArgs: true, ByQueue: true}}
	}
	first := enqueue(t, c, jobArgs{N: 1}, in("a"))
	expectDuplicate(t, "same queue", first, enqueue(t, c, jobArgs{N: 1}, in("a")))
	expectInserted(t, "other queue", first, enqueue(t, c, jobArgs{N: 1}, in("b")))
}

// Unique by state: uniqueness holds only among tasks in the listed states.
// By default a finished (success) task still counts, as River's default
// states include completed; listing only unfinished states lets a new task in
// once the old one is done. The unfinished states are mandatory in both.
// OmniQ's states are pending/waiting/running/retry/success...; River's
// available/scheduled/running/retryable/completed/pending.
// River: https://riverqueue.com/docs/unique-jobs (ByState)
func TestUniqueByStateCountsOnlyListedStates(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, workFn(func(context.Context, *omniq.Task[jobArgs]) error { return nil }), nil)
	start(t, c)
	byDefault := &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true}}
	unfinished := &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true,
		ByStatus: []omniq.Status{omniq.StatusPending, omniq.StatusWaiting, omniq.StatusRunning, omniq.StatusRetry}}}

	a := enqueue(t, c, jobArgs{N: 1}, byDefault)
	waitStatus(t, c, a.ID, omniq.StatusSuccess)
	expectDuplicate(t, "after success, default states", a, enqueue(t, c, jobArgs{N: 1}, byDefault))

	b := enqueue(t, c, jobArgs{N: 2}, unfinished)
	waitStatus(t, c, b.ID, omniq.StatusSuccess)
	expectInserted(t, "after success, unfinished states only", b, enqueue(t, c, jobArgs{N: 2}, unfinished))

	// A state set missing a mandatory unfinished state is refused.
	_, err := c.Enqueue(context.Background(), jobArgs{N: 3}, &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true, ByStatus: []omniq.Status{omniq.StatusSuccess}}})
	if err == nil {
		t.Fatal("a unique state set without pending and running was accepted")
	}
}
