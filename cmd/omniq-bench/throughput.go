package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq"
)

// BenchArgs is the bench task: a number, and when it was enqueued (Unix
// nanoseconds) so the worker can measure enqueue-to-start latency.
type BenchArgs struct {
	Num int   `json:"num"`
	At  int64 `json:"at"`
}

// Kind is the same as river bench's.
func (BenchArgs) Kind() string { return "benchmark" }

// counter is the no-op worker: it counts and records latency.
type counter struct {
	omniq.WorkerDefaults[BenchArgs]
	worked atomic.Int64
	left   atomic.Int64
	last   atomic.Int64 // Unix nanoseconds of the last start
	// total, when positive, is the task count after which allStarted closes.
	total      int64
	allStarted chan struct{}
	latency    histogram
}

func (w *counter) Work(_ context.Context, t *omniq.Task[BenchArgs]) error {
	now := time.Now()
	if t.Args.At > 0 {
		w.latency.Record(now.Sub(time.Unix(0, t.Args.At)))
	}
	if w.worked.Add(1) == w.total {
		close(w.allStarted)
	}
	w.left.Add(-1)
	w.last.Store(now.UnixNano())
	return nil
}

const (
	minAvailable   = 75_000 // river bench's minJobs: continuous mode keeps this many available
	progressPeriod = 2 * time.Second
)

// insert enqueues n tasks in batches of --batch, numbering them from *num.
func (b *bench) insert(ctx context.Context, c *omniq.Client, n int, num *int) error {
	params := make([]omniq.EnqueueParams, 0, b.o.batch)
	for n > 0 {
		k := min(n, b.o.batch)
		params = params[:0]
		at := time.Now().UnixNano()
		for range k {
			*num++
			params = append(params, omniq.EnqueueParams{Args: BenchArgs{Num: *num, At: at}})
		}
		if _, err := c.EnqueueMany(ctx, params); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// runThroughput is river bench: -n N (preload, work down) or --duration D
// (insert while working), progress every 2s, overall jobs/s at the end.
func (b *bench) runThroughput(ctx context.Context) error {
	o := b.o
	w := &counter{total: int64(o.n), allStarted: make(chan struct{})}
	client, err := b.newClient(w)
	if err != nil {
		return err
	}
	num := 0
	var inserted atomic.Int64
	insCtx, stopInserting := context.WithCancel(ctx)
	defer stopInserting()
	var inserter sync.WaitGroup
	var insertErr error
	if o.n > 0 {
		t0 := time.Now()
		if err := b.insert(ctx, client, o.n, &num); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		inserted.Store(int64(o.n))
		w.left.Store(int64(o.n))
		b.printf("bench: inserted %d tasks in %s (%.0f tasks/s)\n", o.n, time.Since(t0).Round(time.Millisecond), float64(o.n)/time.Since(t0).Seconds())
	} else {
		// river bench: every 250ms, top the available tasks up to 75,000.
		ready := make(chan struct{})
		inserter.Add(1)
		go func() {
			defer inserter.Done()
			first := true
			for {
				for w.left.Load() < minAvailable {
					if err := b.insert(insCtx, client, o.batch, &num); err != nil {
						if insCtx.Err() == nil {
							insertErr = err
						}
						if first {
							close(ready)
						}
						return
					}
					inserted.Add(int64(o.batch))
					w.left.Add(int64(o.batch))
				}
				if first {
					close(ready)
					first = false
				}
				select {
				case <-insCtx.Done():
					return
				case <-time.After(250 * time.Millisecond):
				}
			}
		}()
		<-ready
		if insertErr != nil {
			return fmt.Errorf("insert: %w", insertErr)
		}
	}

	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	succeeded0, err := b.countSucceeded(ctx)
	if err != nil {
		return err
	}
	cpu0 := b.cpuNow(ctx)
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		return err
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return client.Stop(sctx)
	}
	defer stop()

	tick := time.NewTicker(progressPeriod)
	defer tick.Stop()
	var lastWorked, lastInserted int64
	lastLat := w.latency.Snapshot()
	var end time.Time
loop:
	for i := 0; ; i++ {
		if o.duration > 0 && time.Duration(i)*progressPeriod >= o.duration {
			end = time.Now()
			break
		}
		worked, ins := w.worked.Load(), inserted.Load()
		lat := w.latency.Snapshot()
		d := lat.Sub(lastLat)
		period := progressPeriod
		if i == 0 {
			period = 0
		}
		b.printf("bench: jobs started [ %10d ], inserted [ %10d ], job/sec [ %10.1f ] [%s] latency p50=%s p99=%s\n",
			worked-lastWorked, ins-lastInserted, float64(worked-lastWorked)/progressPeriod.Seconds(), period,
			ms(d.Quantile(0.50)), ms(d.Quantile(0.99)))
		lastWorked, lastInserted, lastLat = worked, ins, lat
		select {
		case <-ctx.Done():
			end = time.Unix(0, w.last.Load())
			break loop
		case <-w.allStarted:
			// Every task has started; the run ends when the last
			// completion is committed, as river bench counts completions.
			t, err := b.waitFinished(ctx, int64(o.n))
			if err != nil {
				return err
			}
			end = t
			break loop
		case <-tick.C:
		}
	}
	// Jobs worked are jobs whose completion committed, as river bench
	// counts them: all of them in -n mode, counted in the table otherwise.
	clientCPU, serverCPU := b.cpuNow(ctx).since(cpu0)
	worked := int64(o.n)
	if o.n == 0 {
		n, err := b.countSucceeded(ctx)
		if err != nil {
			return err
		}
		worked = n - succeeded0
	}
	stopInserting()
	inserter.Wait()
	if err := stop(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	elapsed := end.Sub(start)
	all := w.latency.Snapshot()
	b.printf("bench: total jobs worked [ %10d ], total jobs inserted [ %10d ], overall jobs/s [ %10.1f ], running %s\n",
		worked, inserted.Load(), float64(worked)/elapsed.Seconds(), elapsed)
	b.printf("bench: enqueue-to-start latency p50=%s p95=%s p99=%s (n=%d)\n",
		ms(all.Quantile(0.50)), ms(all.Quantile(0.95)), ms(all.Quantile(0.99)), all.Count())
	b.printCPU(clientCPU, serverCPU, worked, elapsed)
	return insertErr
}

// waitFinished polls until n tasks have committed success and returns when.
func (b *bench) waitFinished(ctx context.Context, n int64) (time.Time, error) {
	q := `SELECT count(*) FROM ` + pgx.Identifier{b.o.schema, "tasks"}.Sanitize() + ` WHERE status IN ('pending', 'retry', 'running')`
	deadline := time.Now().Add(time.Minute)
	for {
		var open int64
		if err := b.pool.QueryRow(ctx, q).Scan(&open); err != nil {
			return time.Time{}, fmt.Errorf("count open tasks: %w", err)
		}
		if open == 0 {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%d tasks still open a minute after the last one started", open)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// printCPU prints CPU per task: a measure that a busy neighbour disturbs far
// less than the wall-clock rate.
func (b *bench) printCPU(client, server time.Duration, n int64, elapsed time.Duration) {
	if n <= 0 {
		return
	}
	per := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(n) }
	b.printf("bench: cpu per task: client %.1fµs, server %.1fµs, total %.1fµs (%.2f cores busy of the run's %s)\n",
		per(client), per(server), per(client+server), float64(client+server)/float64(elapsed), elapsed.Round(time.Millisecond))
}

// countSucceeded counts the tasks whose success has committed.
func (b *bench) countSucceeded(ctx context.Context) (int64, error) {
	var n int64
	q := `SELECT count(*) FROM ` + pgx.Identifier{b.o.schema, "tasks"}.Sanitize() + ` WHERE status = 'success'`
	if err := b.pool.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("count finished tasks: %w", err)
	}
	return n, nil
}

// startCPUProfile writes a CPU profile to path (none when path is empty)
// until the returned function is called.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
