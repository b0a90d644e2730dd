package omniq_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// Benchmarks of the public API against a real PostgreSQL. Compare changes
// with benchstat:
//
//	go test -run '^$' -bench . -count 6 . > new.txt && benchstat old.txt new.txt
//
// cmd/omniq-bench is the end-to-end benchmark, comparable with `river bench`.

type benchArgs struct {
	N int `json:"n"`
}

func (benchArgs) Kind() string { return "bench" }

func benchClient(b *testing.B, mutate func(*omniq.Config)) (*omniq.Client, *pgtest.DB) {
	b.Helper()
	db := pgtest.New(b)
	w := omniq.NewWorkers()
	omniq.AddWorker(w, omniq.WorkFunc(func(context.Context, *omniq.Task[benchArgs]) error { return nil }))
	return newClient(b, db, w, mutate), db
}

func BenchmarkEnqueue(b *testing.B) {
	c, _ := benchClient(b, nil)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Enqueue(ctx, benchArgs{N: i}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnqueueTx(b *testing.B) {
	c, db := benchClient(b, nil)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.EnqueueTx(ctx, tx, benchArgs{N: i}, nil); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueueMany: one op is one task; batches of 100 go by multi-row
// INSERT, of 5,000 by COPY.
func BenchmarkEnqueueMany(b *testing.B) {
	for _, size := range []int{100, 5000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			c, _ := benchClient(b, nil)
			ctx := context.Background()
			params := make([]omniq.EnqueueParams, size)
			b.ResetTimer()
			for done := 0; done < b.N; done += size {
				k := min(size, b.N-done)
				for i := range k {
					params[i] = omniq.EnqueueParams{Args: benchArgs{N: done + i}}
				}
				if _, err := c.EnqueueMany(ctx, params[:k]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// BenchmarkFetchAndComplete is the engine's throughput: b.N tasks inserted
// untimed, then a started client works them down; the clock stops when the
// last completion has committed.
func BenchmarkFetchAndComplete(b *testing.B) {
	for _, c := range []struct {
		name    string
		results bool
		events  string
	}{{"results=on/events=default", true, "default"}, {"results=off/events=none", false, "none"}} {
		b.Run(c.name, func(b *testing.B) {
			var worked atomic.Int64
			db := pgtest.New(b)
			w := omniq.NewWorkers()
			omniq.AddWorker(w, omniq.WorkFunc(func(context.Context, *omniq.Task[benchArgs]) error {
				worked.Add(1)
				return nil
			}))
			client := newClient(b, db, w, func(cfg *omniq.Config) {
				cfg.Queues = map[string]omniq.QueueConfig{"default": {MaxWorkers: 1000}}
				cfg.FetchCooldown, cfg.FetchPollInterval = 2*time.Millisecond, 20*time.Millisecond
				cfg.DisableResults, cfg.EventLevel = !c.results, c.events
			})
			ctx := context.Background()
			params := make([]omniq.EnqueueParams, 0, 5000)
			for done := 0; done < b.N; done += len(params) {
				params = params[:0]
				for i := range min(5000, b.N-done) {
					params = append(params, omniq.EnqueueParams{Args: benchArgs{N: done + i}})
				}
				if _, err := client.EnqueueMany(ctx, params); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			start(b, client)
			open := func() int {
				var n int
				err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+db.Table("tasks")+` WHERE status <> 'success'`).Scan(&n)
				if err != nil {
					b.Fatal(err)
				}
				return n
			}
			waitFor(b, 5*time.Minute, "every task started", func() bool { return worked.Load() >= int64(b.N) })
			for open() > 0 {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
