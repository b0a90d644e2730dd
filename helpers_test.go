package omniq_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// newClient returns a client on a fresh schema with fast test timings.
func newClient(t testing.TB, db *pgtest.DB, workers *omniq.Workers, mutate func(*omniq.Config)) *omniq.Client {
	t.Helper()
	cfg := &omniq.Config{
		Schema:              db.Schema,
		Workers:             workers,
		FetchPollInterval:   100 * time.Millisecond,
		MaintenanceInterval: 100 * time.Millisecond,
		HeartbeatInterval:   100 * time.Millisecond,
		RescueAfter:         time.Second,
		RetryDelay:          50 * time.Millisecond,
		Log:                 omniq.LogConfig{Level: "warn"},
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

// start starts c and stops it at cleanup.
func start(t testing.TB, c *omniq.Client) {
	t.Helper()
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
}

// waitFor polls cond until it holds, failing the test at timeout.
var waitFor = pgtest.WaitFor

// waitStatus waits until task id has status want.
func waitStatus(t testing.TB, c *omniq.Client, id uuid.UUID, want omniq.Status, timeout time.Duration) *omniq.TaskRow {
	t.Helper()
	var last *omniq.TaskRow
	waitFor(t, timeout, "task status "+string(want), func() bool {
		row, err := c.Task(context.Background(), id)
		if err != nil {
			t.Fatalf("Task: %v", err)
		}
		last = row
		return row.Status == want
	})
	return last
}
