package queue

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/jobs"
)

// TestConcurrentCompletionsReleaseSharedDependent: two completion batches
// in flight at once (the completer's two writers, or two clients), each
// ending one of a waiting task's two dependencies, release it: the second
// batch's dependency statements wait for the first to commit, then see its
// outcome. Without the wait each looked while the other was uncommitted and
// the task stayed waiting for good.
func TestConcurrentCompletionsReleaseSharedDependent(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e := testEngine(db, EventsDefault)
	deps := insertN(t, e, db, 2, nil)
	waiting := insertN(t, e, db, 1, func(int) *jobs.InsertOpts { return &jobs.InsertOpts{DependsOn: deps} })[0]
	claimed := claimAll(t, newProducer(e, DefaultQueue, 10), 10)
	if len(claimed) != 2 {
		t.Fatalf("claimed %d tasks, want the 2 dependencies", len(claimed))
	}
	outcomeOf := func(row *jobs.TaskRow) []*outcome {
		return []*outcome{{id: row.ID, gen: row.Partition, attempt: row.Attempt, status: jobs.StatusSuccess,
			finishedAt: time.Now(), resultStatus: jobs.ResultSuccess, event: "completed", queue: row.Queue, noCallback: true}}
	}
	first, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback(context.Background()) //nolint:errcheck
	if err := first.SendBatch(ctx, e.completionBatch(outcomeOf(claimed[0]))).Close(); err != nil {
		t.Fatalf("first batch: %v", err)
	}
	var secondPID atomic.Uint32
	secondDone := make(chan error, 1)
	go func() {
		secondDone <- pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			secondPID.Store(tx.Conn().PgConn().PID())
			return tx.SendBatch(ctx, e.completionBatch(outcomeOf(claimed[1]))).Close()
		})
	}()
	// The second batch either waits for the first (the lock) or, were there
	// none, runs to its end; either way commit the first only then.
	var done error
	finished := false
	pgtest.WaitFor(t, 10*time.Second, "the second batch to wait on the first or finish", func() bool {
		select {
		case done = <-secondDone:
			finished = true
			return true
		default:
		}
		var waits bool
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = $1`,
			int32(secondPID.Load())).Scan(&waits); err != nil {
			t.Fatal(err)
		}
		return waits
	})
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !finished {
		done = <-secondDone
	}
	if done != nil {
		t.Fatalf("second batch: %v", done)
	}
	var status string
	if err := db.Pool.QueryRow(ctx, "SELECT status FROM "+db.Table("tasks")+" WHERE id = $1", waiting).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != "pending" {
		t.Fatalf("the dependent of two tasks completed by concurrent batches is %s, want pending", status)
	}
}
