// Package riverlike_test proves, through OmniQ's public API only, the
// behaviours River's documentation promises its users. Each test names one
// behaviour and links the River page it comes from; where OmniQ differs on
// purpose, the test asserts OmniQ's behaviour and its comment says how River
// differs. README.md in this directory maps River's pages to the tests.
package riverlike_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// Every wait below is bounded by this deadline; conditions are polled.
const waitTimeout = 15 * time.Second

// quietWindow is how long a test watches for something that must not happen
// (a paused queue starting a task, a third task starting in a queue of two).
// It spans several fetch polls (50ms) and maintenance passes (50ms).
const quietWindow = 400 * time.Millisecond

// jobArgs is the args type of most tests.
type jobArgs struct {
	N   int    `json:"n"`
	Msg string `json:"msg,omitempty"`
}

func (jobArgs) Kind() string { return "riverlike_job" }

// otherArgs is a second kind, registered by nobody unless a test says so.
type otherArgs struct {
	ID int `json:"id"`
}

func (otherArgs) Kind() string { return "riverlike_other" }

// workFn registers f as the worker of jobArgs.
func workFn(f func(ctx context.Context, t *omniq.Task[jobArgs]) error) *omniq.Workers {
	w := omniq.NewWorkers()
	omniq.AddWorker(w, omniq.WorkFunc(f))
	return w
}

// newClient returns a client on db's schema with test timings: fetch polls
// and maintenance every 50ms, heartbeat every 100ms, rescue after a second,
// retries after 50ms, logging at error only. With workers and no queue set
// by mutate, it works queue "default" with 10 workers; without workers it is
// insert-only.
func newClient(t testing.TB, db *pgtest.DB, workers *omniq.Workers, mutate func(*omniq.Config)) *omniq.Client {
	t.Helper()
	cfg := &omniq.Config{
		Schema:              db.Schema,
		Workers:             workers,
		FetchPollInterval:   50 * time.Millisecond,
		MaintenanceInterval: 50 * time.Millisecond,
		HeartbeatInterval:   100 * time.Millisecond,
		RescueAfter:         time.Second,
		RetryDelay:          50 * time.Millisecond,
		Log:                 omniq.LogConfig{Level: "error"},
	}
	if workers != nil {
		cfg.Queues = map[string]omniq.QueueConfig{"default": {MaxWorkers: 10}}
	}
	if mutate != nil {
		mutate(cfg)
	}
	c, err := omniq.NewClient(db.Pool, cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// start starts c and stops it gracefully at cleanup (bounded: a task still
// running after 10s is cancelled).
func start(t testing.TB, c *omniq.Client) {
	t.Helper()
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Stop: %v", err)
		}
	})
}

// waitFor polls cond until it holds, failing the test at timeout.
var waitFor = pgtest.WaitFor

// task reads a task, failing the test on error.
func task(t testing.TB, c *omniq.Client, id uuid.UUID) *omniq.TaskRow {
	t.Helper()
	row, err := c.Task(context.Background(), id)
	if err != nil {
		t.Fatalf("Task(%s): %v", id, err)
	}
	return row
}

// waitStatus waits until task id has status want and returns its row.
func waitStatus(t testing.TB, c *omniq.Client, id uuid.UUID, want omniq.Status) *omniq.TaskRow {
	t.Helper()
	var last *omniq.TaskRow
	deadline := time.Now().Add(waitTimeout)
	for {
		last = task(t, c, id)
		if last.Status == want {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s is %s after %s, want %s (attempt %d, errors %+v)",
				id, last.Status, waitTimeout, want, last.Attempt, last.Errors)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// enqueue inserts one task, failing the test on error.
func enqueue(t testing.TB, c *omniq.Client, args omniq.Args, opts *omniq.InsertOpts) *omniq.EnqueueResult {
	t.Helper()
	res, err := c.Enqueue(context.Background(), args, opts)
	if err != nil {
		t.Fatalf("Enqueue(%+v, %+v): %v", args, opts, err)
	}
	return res
}

// recv waits for the next value of ch, failing the test at the deadline.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("channel closed while waiting for %s", what)
		}
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
	}
	panic("unreachable")
}

// record holds values from concurrent workers.
type record[T any] struct {
	mu   sync.Mutex
	vals []T
}

func (l *record[T]) add(v T) {
	l.mu.Lock()
	l.vals = append(l.vals, v)
	l.mu.Unlock()
}

func (l *record[T]) all() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.vals...)
}

func (l *record[T]) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.vals)
}

// count counts the rows of one of db's tables matching where (a SQL condition
// with $1… parameters).
func count(t testing.TB, db *pgtest.DB, table, where string, args ...any) int {
	t.Helper()
	var n int
	q := "SELECT count(*) FROM " + db.Table(table)
	if where != "" {
		q += " WHERE " + where
	}
	if err := db.Pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}
