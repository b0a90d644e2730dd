package queue

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
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
	ctx, db, e := engineTest(t, EventsDefault)
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

// TestCancelRequestOutlivesRetryAndGiveBack: a Cancel that finds a task
// running writes cancel_requested_at and a NOTIFY; if the attempt ends in a
// retry, or (claimed ahead) the task is given back unstarted, before the
// executor hears of it, the completion ends the task cancelled rather than
// making it runnable again with the request lost. It gets a cancel's result
// and event, its failure callback fires and its waiting dependent is
// cancelled, as for any cancel.
func TestCancelRequestOutlivesRetryAndGiveBack(t *testing.T) {
	t.Parallel()
	ctx, db, e := engineTest(t, EventsDefault)
	claimed, dependents := runningParents(t, e, db, 2, nil)
	for _, row := range claimed {
		if st, err := e.Cancel(ctx, db.Pool, row.ID); err != nil || st != jobs.StatusRunning {
			t.Fatalf("Cancel of a running task: %s, %v", st, err)
		}
	}
	now := time.Now()
	retryAt := now.Add(time.Hour)
	retry, giveBack := claimed[0], claimed[1]
	batch := []*outcome{
		{id: retry.ID, gen: retry.Partition, attempt: retry.Attempt, status: jobs.StatusRetry, runAt: &retryAt,
			errEntry: attemptError(retry.Attempt, now, errors.New("boom"), ""), finishedAt: now, errMsg: "boom",
			event: "retry", queue: retry.Queue},
		{id: giveBack.ID, gen: giveBack.Partition, attempt: giveBack.Attempt, status: jobs.StatusPending,
			runAt: &giveBack.RunAt, attemptAdj: -1, finishedAt: now, queue: giveBack.Queue},
	}
	if err := db.Pool.SendBatch(ctx, e.completionBatch(batch)).Close(); err != nil {
		t.Fatalf("completion batch: %v", err)
	}
	for i, row := range claimed {
		var status, resStatus string
		var attempt int
		var completed bool
		if err := db.Pool.QueryRow(ctx, "SELECT t.status, t.attempt, t.completed_at IS NOT NULL, coalesce(r.status, '') FROM "+
			db.Table("tasks")+" t LEFT JOIN "+db.Table("results")+" r ON r.task_id = t.id WHERE t.id = $1", row.ID).
			Scan(&status, &attempt, &completed, &resStatus); err != nil {
			t.Fatal(err)
		}
		wantAttempt := row.Attempt + batch[i].attemptAdj
		if status != "cancelled" || !completed || resStatus != "cancelled" || attempt != wantAttempt {
			t.Errorf("%s outcome after a cancel request: status %s, completed_at set %v, result %q, attempt %d; want cancelled, true, cancelled, %d",
				batch[i].status, status, completed, resStatus, attempt, wantAttempt)
		}
		var evTypes []string
		rows, err := db.Pool.Query(ctx, "SELECT type || ':' || level || ':' || (enqueued_at IS NOT NULL)::text || ':' || (started_at IS NOT NULL)::text || ':' || data::text FROM "+
			db.Table("events")+" WHERE task_id = $1 ORDER BY id", row.ID)
		if err != nil {
			t.Fatal(err)
		}
		if evTypes, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			t.Fatal(err)
		}
		// The retried attempt ran (started_at); the given-back one did not.
		// The compact row's times are columns (migration 013); data is empty.
		want := []string{"cancelled:warning:true:" + strconv.FormatBool(i == 0) + ":{}"}
		if !slices.Equal(evTypes, want) {
			t.Errorf("%s outcome after a cancel request: events %v, want %v", batch[i].status, evTypes, want)
		}
		var depStatus string
		if err := db.Pool.QueryRow(ctx, "SELECT status FROM "+db.Table("tasks")+" WHERE id = $1", dependents[i]).Scan(&depStatus); err != nil {
			t.Fatal(err)
		}
		if depStatus != "cancelled" {
			t.Errorf("the dependent of a task cancelled by request is %s, want cancelled", depStatus)
		}
		var callbacks int
		if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Table("tasks")+" WHERE id = $1 AND kind = 'after'",
			callbackID(row.ID)).Scan(&callbacks); err != nil {
			t.Fatal(err)
		}
		if callbacks != 1 {
			t.Errorf("the failure callback of a task cancelled by request: %d tasks, want 1", callbacks)
		}
	}
}

// runningParents inserts n tasks with a failure callback (opts may change
// each one's options further), one waiting dependent of each, and claims
// the n: it returns them, running, in insertion order, and the dependents.
func runningParents(t *testing.T, e *Engine, db *pgtest.DB, n int, opts func(i int, o *jobs.InsertOpts)) ([]*jobs.TaskRow, []uuid.UUID) {
	t.Helper()
	parents := insertN(t, e, db, n, func(i int) *jobs.InsertOpts {
		o := &jobs.InsertOpts{Callback: &jobs.Callback{Kind: "after", OnFailure: true}}
		if opts != nil {
			opts(i, o)
		}
		return o
	})
	dependents := make([]uuid.UUID, n)
	for i, p := range parents {
		dependents[i] = insertN(t, e, db, 1, func(int) *jobs.InsertOpts { return &jobs.InsertOpts{DependsOn: []uuid.UUID{p}} })[0]
	}
	claimed := claimAll(t, newProducer(e, DefaultQueue, 10), 10)
	if len(claimed) != n {
		t.Fatalf("claimed %d tasks, want the %d parents", len(claimed), n)
	}
	byID := make(map[uuid.UUID]*jobs.TaskRow, n)
	for _, row := range claimed {
		byID[row.ID] = row
	}
	for i, id := range parents {
		claimed[i] = byID[id]
	}
	return claimed, dependents
}

// engineTest is how engine tests start: a schema of their own, a context
// that ends with the test (within a minute), and an engine, not started.
func engineTest(t *testing.T, events string) (context.Context, *pgtest.DB, *Engine) {
	t.Helper()
	db := pgtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx, db, testEngine(db, events)
}
