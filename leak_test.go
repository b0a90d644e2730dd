package omniq_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// TestNoGoroutineLeakAcrossStartStop starts and stops clients every way a
// client can be stopped, with and without connections killed under it, and
// checks that every goroutine they started has ended.
//
// Not parallel, on purpose: goleak sees every goroutine of the process, and
// parallel tests only run once the sequential ones are done.
func TestNoGoroutineLeakAcrossStartStop(t *testing.T) {
	db := pgtest.New(t)
	ignore := goleak.IgnoreCurrent() // the harness's pool and paused parallel tests
	ctx := context.Background()
	app := "leak-" + db.Schema

	func() {
		cfg, err := pgxpool.ParseConfig(db.URL)
		if err != nil {
			t.Fatal(err)
		}
		cfg.MaxConns = 6
		cfg.ConnConfig.RuntimeParams["application_name"] = app
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var clients []*omniq.Client
		defer func() {
			// On failure too: a client left running would keep pool.Close waiting.
			for _, c := range clients {
				_ = c.StopAndCancel(ctx)
			}
		}()

		var mu sync.Mutex
		blockOn := map[int]bool{} // N of tasks that wait for their context
		started := make(chan int, 100)
		rec := &recorder{fn: func(ctx context.Context, t *omniq.Task[echoArgs]) error {
			mu.Lock()
			block := blockOn[t.Args.N]
			mu.Unlock()
			started <- t.Args.N
			if block {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}}
		client := func(workers bool) *omniq.Client {
			cfg := &omniq.Config{
				Schema:              db.Schema,
				FetchPollInterval:   50 * time.Millisecond,
				MaintenanceInterval: 50 * time.Millisecond,
				HeartbeatInterval:   50 * time.Millisecond,
				RescueAfter:         time.Minute,
				Log:                 omniq.LogConfig{Level: "error"},
			}
			if workers {
				cfg.Workers = workersWith(rec)
				cfg.Queues = map[string]omniq.QueueConfig{"default": {MaxWorkers: 5}}
			}
			c, err := omniq.NewClient(pool, cfg)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, c)
			return c
		}
		enqueue := func(c *omniq.Client, n int, block bool) {
			for range n {
				mu.Lock()
				id := len(blockOn)
				blockOn[id] = block
				mu.Unlock()
				if _, err := c.Enqueue(ctx, echoArgs{N: id}, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		awaitStarts := func(n int) {
			for range n {
				select {
				case <-started:
				case <-time.After(20 * time.Second):
					t.Fatal("a task did not start")
				}
			}
		}
		drain := func() {
			for {
				select {
				case <-started:
				default:
					return
				}
			}
		}
		running := func() int {
			var n int
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Table("tasks")+" WHERE status IN ('pending', 'running', 'retry')").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}

		// Graceful stop after work.
		c := client(true)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		enqueue(c, 20, false)
		awaitStarts(20)
		waitFor(t, 20*time.Second, "tasks to finish", func() bool { return running() == 0 })
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}

		// StopAndCancel with tasks running.
		c = client(true)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		enqueue(c, 3, true)
		awaitStarts(3)
		if err := c.StopAndCancel(ctx); err != nil {
			t.Fatal(err)
		}

		// Stop whose ctx ends with tasks running (the returned ones again).
		c = client(true)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		awaitStarts(3)
		stopCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_ = c.Stop(stopCtx)
		cancel()
		drain()
		mu.Lock()
		for k := range blockOn {
			blockOn[k] = false
		}
		mu.Unlock()

		// Every connection killed mid-run, then stopped from several goroutines.
		c = client(true)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		enqueue(c, 30, false)
		if _, err := pool.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", app); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "tasks to finish after the kill", func() bool {
			var n int
			err := pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Table("tasks")+" WHERE status IN ('pending', 'running', 'retry')").Scan(&n)
			return err == nil && n == 0
		})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if err := c.Stop(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		drain()

		// An insert-only client that waited for a result (it starts a LISTEN).
		worker := client(true)
		if err := worker.Start(ctx); err != nil {
			t.Fatal(err)
		}
		inserter := client(false)
		// The pool may still hold a connection killed above: the first use of
		// it fails (the caller sees the error; nothing is written).
		var res *omniq.EnqueueResult
		waitFor(t, 10*time.Second, "an enqueue to succeed", func() bool {
			var err error
			res, err = inserter.Enqueue(ctx, echoArgs{N: -1}, nil)
			return err == nil
		})
		waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err = inserter.WaitResult(waitCtx, res.ID)
		cancel()
		if err != nil {
			t.Fatalf("WaitResult: %v", err)
		}
		if err := inserter.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := worker.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		// A client that was never started stops cleanly too.
		if err := client(true).Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}()

	goleak.VerifyNone(t, ignore)
}
