package queue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/jobs"
)

// BenchmarkClaimComplete measures the engine's two hot statements without
// goroutines in between: claim a batch, then write its outcomes as the
// completer does (one pipelined batch). One op is one task; claim-µs/task and
// complete-µs/task split the time between them.
//
//	go test -run '^$' -bench ClaimComplete -count 6 ./queue/ | benchstat -
func BenchmarkClaimComplete(b *testing.B) {
	for _, c := range []struct {
		batch   int
		events  string
		results bool
	}{
		{100, EventsDefault, true},
		{1000, EventsDefault, true},
		{100, EventsNone, false},
		{1000, EventsNone, false},
		{100, EventsAll, true},
	} {
		name := fmt.Sprintf("batch=%d/events=%s/results=%v", c.batch, c.events, c.results)
		b.Run(name, func(b *testing.B) {
			db := pgtest.New(b)
			ctx := context.Background()
			e := testEngine(db, c.events)
			e.cfg.DisableResults = !c.results
			e.completer = newCompleter(e)
			// Enough tasks for every iteration, inserted untimed by COPY.
			for left := b.N; left > 0; left -= 5000 {
				ps := prepareN(b, e, max(min(left, 5000), copyMinRows), nil)
				if _, err := e.Insert(ctx, db.Pool, ps); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := db.Pool.Exec(ctx, "ANALYZE "+db.Table("tasks")); err != nil {
				b.Fatal(err)
			}
			var claimT, completeT time.Duration
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(c.batch, b.N-done)
				t0 := time.Now()
				claim := e.sql.claim[0]
				if c.events == EventsAll {
					claim = e.sql.claimEvents[0]
				}
				rows, err := db.Pool.Query(ctx, claim, DefaultQueue, n, e.cfg.ID)
				if err != nil {
					b.Fatal(err)
				}
				claimed, err := pgx.CollectRows(rows, scanTask)
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				batch := make([]*outcome, len(claimed))
				for i, row := range claimed {
					batch[i] = &outcome{id: row.ID, gen: row.Partition, attempt: row.Attempt, status: jobs.StatusSuccess, finishedAt: t1,
						resultStatus: jobs.ResultSuccess, event: "completed", queue: row.Queue}
				}
				if err := e.completer.write(ctx, batch); err != nil {
					b.Fatal(err)
				}
				claimT += t1.Sub(t0)
				completeT += time.Since(t1)
				done += len(claimed)
				if len(claimed) == 0 {
					b.Fatal("nothing left to claim")
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(claimT.Microseconds())/float64(b.N), "claim-µs/task")
			b.ReportMetric(float64(completeT.Microseconds())/float64(b.N), "complete-µs/task")
		})
	}
}
