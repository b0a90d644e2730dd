package queue

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq/codec"
	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/jobs"
)

// aheadRig is a started engine of one worker slot on the default queue whose
// worker returns at once, except for tasks of priority blockPriority, which
// wait for a send on release (or their context).
type aheadRig struct {
	e       *Engine
	db      *pgtest.DB
	started chan uuid.UUID // each blocking task as it starts
	release chan struct{}  // a send releases one blocking task
}

const blockPriority = 3

// newAheadRig starts the rig, its producer warmed up to claim one ahead.
func newAheadRig(t *testing.T, hold time.Duration) *aheadRig {
	t.Helper()
	r := &aheadRig{db: pgtest.New(t), started: make(chan uuid.UUID, 10), release: make(chan struct{})}
	reg := jobs.NewRegistry()
	if err := jobs.Register(reg, jobs.WorkFunc(func(ctx context.Context, task *jobs.Task[copyArgs]) error {
		if task.Priority == blockPriority {
			r.started <- task.ID
			select {
			case <-r.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	r.e = New(r.db.Pool, Config{
		Schema: r.db.Schema, ID: "ahead-test", Queues: map[string]int{DefaultQueue: 1},
		MaxAttempts: 4, RetryDelay: time.Second, RetryBackoff: jobs.BackoffFixed, EventLevel: EventsAll,
		EventRetention: time.Hour, FinishedRetention: time.Hour,
		FetchCooldown: time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
		HeartbeatInterval: time.Second, RescueAfter: 15 * time.Second, MaintenanceInterval: time.Second,
		CompleterBatchSize: 1000, CompleterFlushInterval: 2 * time.Millisecond,
	}, reg, codec.NewManager())
	r.e.aheadHold = hold
	if err := r.e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.e.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	r.warmUp(t)
	return r
}

// warmUp runs tasks that return at once until the producer claims ahead:
// its slot's time per task is then far below a claim's round trip.
func (r *aheadRig) warmUp(t *testing.T) {
	t.Helper()
	p := r.e.producers[DefaultQueue]
	pgtest.WaitFor(t, 10*time.Second, "the producer to claim ahead", func() bool {
		insertN(t, r.e, r.db, 20, nil)
		pgtest.WaitFor(t, 10*time.Second, "the warm-up tasks to finish", func() bool { return r.count(t, "status <> 'success'") == 0 })
		p.slotMu.Lock()
		defer p.slotMu.Unlock()
		return p.claimAhead() == 1
	})
}

func (r *aheadRig) count(t *testing.T, where string, args ...any) int {
	t.Helper()
	var n int
	if err := r.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table(r.db.Schema, "tasks")+` WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// blockThenTwo inserts, in one statement, a blocking task and two that are
// not: the producer claims the first and, ahead, the next. It returns once
// the first has started.
func (r *aheadRig) blockThenTwo(t *testing.T) (block, f1, f2 uuid.UUID) {
	t.Helper()
	ids := insertN(t, r.e, r.db, 3, func(i int) *jobs.InsertOpts {
		if i == 0 {
			return &jobs.InsertOpts{Priority: blockPriority}
		}
		return &jobs.InsertOpts{Priority: 2 - i}
	})
	select {
	case id := <-r.started:
		if id != ids[0] {
			t.Fatalf("started %s, want the blocking task %s", id, ids[0])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking task did not start")
	}
	// A hold of seconds cannot have given the second back yet.
	if r.e.aheadHold >= time.Second && r.count(t, "id = $1 AND status = 'running'", ids[1]) != 1 {
		t.Fatal("the second task is not claimed ahead while the first blocks the slot")
	}
	return ids[0], ids[1], ids[2]
}

func (r *aheadRig) events(t *testing.T, id uuid.UUID) []string {
	t.Helper()
	rows, err := r.db.Pool.Query(context.Background(), `SELECT type FROM `+table(r.db.Schema, "events")+` WHERE task_id = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		types = append(types, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return types
}

// TestClaimAheadGivesBackWhatFindsNoSlot: with one slot and tasks far
// shorter than a claim, the producer claims one task beyond its slot; when
// the slot is then held by a long task, the task claimed ahead is given back
// after the hold, its attempt unused and no event but the claim's, and none
// is claimed ahead again until the slot frees. Then both wait only for the
// slot, and run once each.
func TestClaimAheadGivesBackWhatFindsNoSlot(t *testing.T) {
	t.Parallel()
	r := newAheadRig(t, 100*time.Millisecond)
	block, f1, f2 := r.blockThenTwo(t)
	pgtest.WaitFor(t, 10*time.Second, "the task claimed ahead to be given back", func() bool {
		return r.count(t, "id = $1 AND status = 'pending' AND attempt = 0 AND errors = '[]'", f1) == 1
	})
	if got := r.events(t, f1); len(got) != 2 || got[0] != "enqueued" || got[1] != "executing" {
		t.Fatalf("events of the task given back: %v, want [enqueued executing] (claimed ahead, then given back without one)", got)
	}
	// Given back, it is not claimed ahead again while the slot is held: the
	// producer claims nothing ahead until a slot frees (and each claim of it
	// would write an executing event, counted below).
	p := r.e.producers[DefaultQueue]
	p.slotMu.Lock()
	off, ahead := p.aheadOff, p.claimAhead()
	p.slotMu.Unlock()
	if !off || ahead != 0 {
		t.Fatalf("after a give-back: aheadOff %v, claimAhead %d; want true, 0 until a slot frees", off, ahead)
	}
	r.release <- struct{}{}
	pgtest.WaitFor(t, 10*time.Second, "all three to succeed", func() bool {
		return r.count(t, "id = ANY($1) AND status = 'success' AND attempt = 1", []uuid.UUID{block, f1, f2}) == 3
	})
	if got := r.events(t, f1); len(got) != 4 || got[2] != "executing" || got[3] != "completed" {
		t.Fatalf("events of the task given back, once done: %v, want [enqueued executing executing completed]", got)
	}
}

// TestClaimAheadCancel: a cancel request reaches a task claimed ahead and
// still waiting: it ends cancelled without running.
func TestClaimAheadCancel(t *testing.T) {
	t.Parallel()
	r := newAheadRig(t, time.Minute)
	_, f1, f2 := r.blockThenTwo(t)
	if st, err := r.e.Cancel(context.Background(), r.db.Pool, f1); err != nil || st != jobs.StatusRunning {
		t.Fatalf("Cancel of the task claimed ahead: %s, %v; want running (a request), nil", st, err)
	}
	r.release <- struct{}{}
	pgtest.WaitFor(t, 10*time.Second, "the cancelled task to end, the other to succeed", func() bool {
		return r.count(t, "id = $1 AND status = 'cancelled'", f1) == 1 && r.count(t, "id = $1 AND status = 'success'", f2) == 1
	})
	if got := r.events(t, f1); len(got) != 3 || got[2] != "cancelled" {
		t.Fatalf("events of the cancelled task: %v, want [enqueued executing cancelled]", got)
	}
}

// TestClaimAheadGivenBackAtStop: a stopping client starts nothing more: what
// it claimed ahead is given back, unstarted and its attempt unused, while
// the task it runs is let finish.
func TestClaimAheadGivenBackAtStop(t *testing.T) {
	t.Parallel()
	r := newAheadRig(t, time.Minute)
	block, g1, _ := r.blockThenTwo(t)
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- r.e.Stop(ctx)
	}()
	pgtest.WaitFor(t, 10*time.Second, "the task claimed ahead to be given back", func() bool {
		return r.count(t, "id = $1 AND status = 'pending' AND attempt = 0", g1) == 1
	})
	r.release <- struct{}{}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := r.count(t, "id = $1 AND status = 'success'", block); n != 1 {
		t.Fatal("the running task did not finish during Stop")
	}
	if n := r.count(t, "id = $1 AND status = 'pending' AND attempt = 0", g1); n != 1 {
		row, err := r.e.Task(context.Background(), r.db.Pool, g1)
		t.Fatalf("the task claimed ahead is %s, attempt %d, after the client stopped (%v), events %v; want pending, 0", row.Status, row.Attempt, err, r.events(t, g1))
	}
}
