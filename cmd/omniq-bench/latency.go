package main

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// runLatency measures enqueue-to-start latency on an idle queue: one task
// every --latency-every, each enqueued in its own transaction (Enqueue), so
// every start is a LISTEN/NOTIFY wake-up, not a poll of a backlog.
func (b *bench) runLatency(ctx context.Context) error {
	o := b.o
	w := &counter{allStarted: make(chan struct{})}
	client, err := b.newClient(w)
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = client.Stop(sctx)
	}()
	// Let the LISTEN connection settle before the first task.
	time.Sleep(200 * time.Millisecond)

	var call histogram
	tick := time.NewTicker(o.latencyEvery)
	defer tick.Stop()
	report := time.NewTicker(progressPeriod)
	defer report.Stop()
	deadline := time.After(o.latency)
	sent, last := 0, w.latency.Snapshot()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case <-report.C:
			s := w.latency.Snapshot()
			d := s.Sub(last)
			last = s
			b.printf("bench: latency sent [ %6d ] started [ %6d ] enqueue-to-start p50=%s p95=%s p99=%s\n",
				sent, w.worked.Load(), ms(d.Quantile(0.50)), ms(d.Quantile(0.95)), ms(d.Quantile(0.99)))
		case <-tick.C:
			sent++
			t0 := time.Now()
			if _, err := client.Enqueue(ctx, BenchArgs{Num: sent, At: t0.UnixNano()}, nil); err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
			call.Record(time.Since(t0))
		}
	}
	// Wait for the last few to start.
	for end := time.Now().Add(5 * time.Second); w.worked.Load() < int64(sent) && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	s, c := w.latency.Snapshot(), call.Snapshot()
	b.printf("bench: idle latency: tasks=%d started=%d every=%s\n", sent, w.worked.Load(), o.latencyEvery)
	b.printf("bench: enqueue-to-start latency p50=%s p95=%s p99=%s max≤%s (n=%d)\n",
		ms(s.Quantile(0.50)), ms(s.Quantile(0.95)), ms(s.Quantile(0.99)), ms(s.Quantile(1)), s.Count())
	b.printf("bench: Enqueue() call p50=%s p99=%s\n", ms(c.Quantile(0.50)), ms(c.Quantile(0.99)))
	return nil
}

// runEnqueueMany measures EnqueueMany throughput: N small tasks in calls of
// --batch, no client started.
func (b *bench) runEnqueueMany(ctx context.Context) error {
	o := b.o
	client, err := b.newClient(&counter{allStarted: make(chan struct{})})
	if err != nil {
		return err
	}
	var (
		call  histogram
		done  atomic.Int64
		next  atomic.Int64 // tasks handed out
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	cpu0 := b.cpuNow(ctx)
	start := time.Now()
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(progressPeriod)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case now := <-t.C:
				b.printf("bench: enqueued [ %10d ] %.0f tasks/s\n", done.Load(), float64(done.Load())/now.Sub(start).Seconds())
			}
		}
	}()
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				hi := next.Add(int64(o.batch))
				lo := hi - int64(o.batch)
				if lo >= int64(o.enqueueMany) {
					return
				}
				k := int(min(hi, int64(o.enqueueMany)) - lo)
				num := int(lo)
				t0 := time.Now()
				if err := b.insert(ctx, client, k, &num); err != nil {
					errMu.Lock()
					first = cmp.Or(first, err)
					errMu.Unlock()
					return
				}
				call.Record(time.Since(t0))
				done.Add(int64(k))
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	if first != nil {
		return fmt.Errorf("enqueue many: %w", first)
	}
	num := int(done.Load())
	elapsed := time.Since(start)
	clientCPU, serverCPU := b.cpuNow(ctx).since(cpu0)
	var rows int64
	q := `SELECT count(*) FROM ` + pgx.Identifier{o.schema, "tasks"}.Sanitize()
	if err := b.pool.QueryRow(ctx, q).Scan(&rows); err != nil {
		return fmt.Errorf("count: %w", err)
	}
	c := call.Snapshot()
	b.printf("bench: EnqueueMany total=%d batch=%d concurrency=%d rows_in_table=%d elapsed=%s overall tasks/s [ %10.1f ] call p50=%s p99=%s\n",
		num, o.batch, o.concurrency, rows, elapsed.Round(time.Millisecond), float64(num)/elapsed.Seconds(), ms(c.Quantile(0.5)), ms(c.Quantile(0.99)))
	b.printCPU(clientCPU, serverCPU, int64(num), elapsed)
	return nil
}
