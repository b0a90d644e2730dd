package omniq_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// pauseWindow is how long a paused queue is watched for tasks that should
// not start: many fetch polls (the clients below poll every 50ms) and the
// NOTIFY of every enqueue fall inside it.
const pauseWindow = 600 * time.Millisecond

// counter is a worker of echoArgs that counts runs per queue.
type counter struct {
	omniq.WorkerDefaults[echoArgs]
	runs  atomic.Int64
	block chan struct{} // when non-nil, tasks with Msg "block" wait on it
}

func (c *counter) Work(ctx context.Context, t *omniq.Task[echoArgs]) error {
	c.runs.Add(1)
	if t.Args.Msg == "block" && c.block != nil {
		select {
		case <-c.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func pauseClient(t *testing.T, db *pgtest.DB, w *counter, queues ...string) *omniq.Client {
	t.Helper()
	workers := omniq.NewWorkers()
	omniq.AddWorker[echoArgs](workers, w)
	return newClient(t, db, workers, func(c *omniq.Config) {
		c.FetchPollInterval = 50 * time.Millisecond
		c.Queues = map[string]omniq.QueueConfig{}
		for _, q := range queues {
			c.Queues[q] = omniq.QueueConfig{MaxWorkers: 5}
		}
	})
}

func enqueueIn(t *testing.T, c *omniq.Client, queue string, n int, msg string) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		res, err := c.Enqueue(context.Background(), echoArgs{N: i, Msg: msg}, &omniq.InsertOpts{Queue: queue})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = res.ID
	}
	return ids
}

// stillPending checks that none of ids starts within pauseWindow.
func stillPending(t *testing.T, c *omniq.Client, ids []uuid.UUID) {
	t.Helper()
	deadline := time.Now().Add(pauseWindow)
	for time.Now().Before(deadline) {
		for _, id := range ids {
			row, err := c.Task(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if row.Status != omniq.StatusPending {
				t.Fatalf("task %s of a paused queue is %s", id, row.Status)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPausePersistsForClientsStartedLater(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	admin := newClient(t, db, nil, nil) // insert-only
	ctx := context.Background()
	if err := admin.PauseQueue(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	if err := admin.PauseQueue(ctx, "default"); err != nil { // twice is fine
		t.Fatalf("pause a paused queue: %v", err)
	}
	ids := enqueueIn(t, admin, "default", 3, "")

	// A client started after the pause honours it, and so does the next one.
	for range 2 {
		w := &counter{}
		c := pauseClient(t, db, w, "default")
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		stillPending(t, admin, ids)
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if w.runs.Load() != 0 {
			t.Fatalf("%d runs in a paused queue", w.runs.Load())
		}
	}

	w := &counter{}
	c := pauseClient(t, db, w, "default")
	start(t, c)
	stillPending(t, admin, ids)
	if err := admin.ResumeQueue(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		waitStatus(t, admin, id, omniq.StatusSuccess, 10*time.Second)
	}
	if err := admin.ResumeQueue(ctx, "default"); err != nil {
		t.Fatalf("resume a running queue: %v", err)
	}
	var paused, resumed int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE type = 'queue_paused'), count(*) FILTER (WHERE type = 'queue_resumed')
		FROM `+db.Table("events")).Scan(&paused, &resumed); err != nil {
		t.Fatal(err)
	}
	if paused == 0 || resumed == 0 {
		t.Fatalf("events: %d queue_paused, %d queue_resumed", paused, resumed)
	}
	if err := admin.PauseQueue(ctx, "no spaces"); !errors.Is(err, omniq.ErrInvalidInput) {
		t.Fatalf("pause of an invalid queue name: %v", err)
	}
}

func TestPauseTakesEffectAcrossClients(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	block := make(chan struct{})
	wa, wb := &counter{block: block}, &counter{block: block}
	a := pauseClient(t, db, wa, "default", "other")
	b := pauseClient(t, db, wb, "default", "other")
	start(t, a)
	start(t, b)
	admin := newClient(t, db, nil, nil)

	// Work in flight when the queue is paused finishes; nothing new starts.
	running := enqueueIn(t, admin, "default", 2, "block")
	waitFor(t, 10*time.Second, "two tasks to start", func() bool { return wa.runs.Load()+wb.runs.Load() == 2 })
	if err := admin.PauseQueue(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	close(block)
	for _, id := range running {
		waitStatus(t, admin, id, omniq.StatusSuccess, 10*time.Second)
	}
	waiting := enqueueIn(t, admin, "default", 10, "")
	others := enqueueIn(t, admin, "other", 5, "") // another queue is not paused
	for _, id := range others {
		waitStatus(t, admin, id, omniq.StatusSuccess, 10*time.Second)
	}
	stillPending(t, admin, waiting)

	if err := admin.ResumeQueue(ctx, "default"); err != nil {
		t.Fatal(err)
	}
	for _, id := range waiting {
		waitStatus(t, admin, id, omniq.StatusSuccess, 10*time.Second)
	}
	if total := wa.runs.Load() + wb.runs.Load(); total != 17 {
		t.Fatalf("%d runs, want 17", total)
	}
}
