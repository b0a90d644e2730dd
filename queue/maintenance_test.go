package queue

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/jobs"
)

// TestPruneStartsWhereItStopped: while another transaction holds back the
// xmin horizon, the finished tasks retention deleted stay in
// tasks_finished_idx. The next pass starts at the newest completed_at the
// last one deleted and does not visit them; a pass from the start would
// visit every one. Measured in buffers of the index (EXPLAIN ANALYZE).
func TestPruneStartsWhereItStopped(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	e := testEngine(db, EventsNone)
	e.cfg.FinishedRetention = time.Minute
	pinHorizon(t, db)

	// finish marks n new tasks finished, ago and 200ms apart before it.
	// Their preset ids put them in the sticky partition, the one retention
	// prunes row by row (the rotating ones are truncated: TestRotate…).
	finish := func(n int, ago time.Duration) {
		t.Helper()
		ids := insertN(t, e, db, n, func(int) *jobs.InsertOpts { return &jobs.InsertOpts{ID: uuid.Must(uuid.NewV7())} })
		if _, err := db.Pool.Exec(ctx, `UPDATE `+table(db.Schema, "tasks")+` t
			SET status = 'success', completed_at = now() - $2::interval - u.n * interval '200ms'
			FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n) WHERE t.id = u.id`, ids, ago); err != nil {
			t.Fatal(err)
		}
	}
	const deleted = 3000
	finish(deleted, 2*time.Hour)
	c, err := e.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tasks != deleted {
		t.Fatalf("first pass deleted %d tasks, want %d", c.Tasks, deleted)
	}
	finish(50, time.Hour)
	args := []any{e.cfg.FinishedRetention, maintenanceBatch}
	fromBound := explainBuffers(t, db, "tasks_finished_idx", e.sql.pruneTasks, append(args, e.maint.pruneTaskFrom)...)
	fromStart := explainBuffers(t, db, "tasks_finished_idx", e.sql.pruneTasks, append(args, time.Time{})...)
	t.Logf("buffers touched: from the bound %d, from the start %d (%d deleted entries)", fromBound, fromStart, deleted)
	if fromStart < 10 {
		t.Fatalf("a pass from the start touched only %d buffers: the horizon was not pinned?", fromStart)
	}
	if fromBound*5 > fromStart {
		t.Fatalf("the pass from the bound touched %d buffers, from the start %d: it walks deleted entries", fromBound, fromStart)
	}
	if c, err = e.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Tasks != 50 {
		t.Fatalf("second pass deleted %d tasks, want 50", c.Tasks)
	}
	// A task whose completion committed below the bound waits for the
	// reset, after which retention starts at the oldest row again.
	finish(1, 3*time.Hour)
	if c, err = e.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Tasks != 0 {
		t.Fatalf("pass before the reset deleted %d tasks below the bound, want 0", c.Tasks)
	}
	e.maint.pruneSince = time.Time{}
	if c, err = e.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Tasks != 1 {
		t.Fatalf("pass after the reset deleted %d tasks, want 1", c.Tasks)
	}
}

// TestPruneEventsReadsABatch: when no event is old enough to delete, a
// retention pass reads one batch of events, not every event in the table.
func TestPruneEventsReadsABatch(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	e := testEngine(db, EventsNone)
	e.cfg.EventRetention = time.Hour
	// Enough young events that a scan of them all costs more than the
	// lookup of a batch, as in any table retention matters for.
	const old, young = 3 * maintenanceBatch, 50 * maintenanceBatch
	if _, err := db.Pool.Exec(ctx, `INSERT INTO `+table(db.Schema, "events")+` (type, time)
		SELECT 'test', now() - $2::interval + i * interval '1ms' FROM generate_series(1, $1) AS i`,
		old, 2*e.cfg.EventRetention); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO `+table(db.Schema, "events")+` (type)
		SELECT 'test' FROM generate_series(1, $1)`, young); err != nil {
		t.Fatal(err)
	}
	c, err := e.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Events != old {
		t.Fatalf("deleted %d old events, want %d", c.Events, old)
	}
	read := explain(t, db, e.sql.pruneEvents, e.cfg.EventRetention, maintenanceBatch, e.maint.pruneEventFrom).tableRows("events")
	if read > maintenanceBatch {
		t.Fatalf("a pass with nothing to delete read %d events; want at most a batch (%d) of the %d young ones", read, maintenanceBatch, young)
	}
	var left int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+table(db.Schema, "events")).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != young {
		t.Fatalf("%d events left, want the %d young ones", left, young)
	}
}

// TestRescueEndsWhatCannotRunAgain: the rescuer returns a dead client's
// running task to retry, but one out of attempts ends error and one with a
// cancel request its client never acted on ends cancelled; for those two, as
// after a completion, the waiting dependent is cancelled and the failure
// callback fires. The retried task's dependent keeps waiting.
func TestRescueEndsWhatCannotRunAgain(t *testing.T) {
	t.Parallel()
	ctx, db, e := engineTest(t, EventsDefault)
	e.cfg.RescueAfter = time.Millisecond
	parents, dependents := runningParents(t, e, db, 3, func(i int, o *jobs.InsertOpts) {
		if i == 1 {
			o.MaxAttempts = 1
		}
	})
	if st, err := e.Cancel(ctx, db.Pool, parents[2].ID); err != nil || st != jobs.StatusRunning {
		t.Fatalf("Cancel of a running task: %s, %v", st, err)
	}
	// No clients row: the claiming client is dead to the rescuer.
	if _, err := db.Pool.Exec(ctx, "UPDATE "+db.Table("tasks")+" SET heartbeat_at = now() - interval '1 minute' WHERE status = 'running'"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Rescue(ctx); err != nil || n != 3 {
		t.Fatalf("Rescue: %d, %v; want 3 rescued", n, err)
	}
	for i, want := range []struct{ parent, dependent string }{{"retry", "waiting"}, {"error", "cancelled"}, {"cancelled", "cancelled"}} {
		var parent, dependent string
		var callbacks int
		if err := db.Pool.QueryRow(ctx, "SELECT (SELECT status FROM "+db.Table("tasks")+" WHERE id = $1), (SELECT status FROM "+
			db.Table("tasks")+" WHERE id = $2), (SELECT count(*) FROM "+db.Table("tasks")+" WHERE id = $3)",
			parents[i].ID, dependents[i], callbackID(parents[i].ID)).Scan(&parent, &dependent, &callbacks); err != nil {
			t.Fatal(err)
		}
		wantCallbacks := 1
		if want.parent == "retry" {
			wantCallbacks = 0
		}
		if parent != want.parent || dependent != want.dependent || callbacks != wantCallbacks {
			t.Errorf("rescued task %d: %s, its dependent %s, %d callbacks; want %s, %s, %d",
				i, parent, dependent, callbacks, want.parent, want.dependent, wantCallbacks)
		}
	}
}

// TestReturnTasksHonoursCancelRequest: a stopping client returns its running
// tasks to the queue, but one with a cancel request ends cancelled, and its
// dependent with it.
func TestReturnTasksHonoursCancelRequest(t *testing.T) {
	t.Parallel()
	ctx, db, e := engineTest(t, EventsDefault)
	parents, dependents := runningParents(t, e, db, 2, nil)
	if _, err := e.Cancel(ctx, db.Pool, parents[1].ID); err != nil {
		t.Fatal(err)
	}
	if err := e.returnTasks(ctx, []uuid.UUID{parents[0].ID, parents[1].ID}); err != nil {
		t.Fatal(err)
	}
	var got []string
	ids := []uuid.UUID{parents[0].ID, dependents[0], parents[1].ID, dependents[1]}
	rows, err := db.Pool.Query(ctx, "SELECT status FROM "+db.Table("tasks")+" WHERE id = ANY ($1) ORDER BY array_position($1, id)", ids)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if want := []string{"retry", "waiting", "cancelled", "cancelled"}; !slices.Equal(got, want) {
		t.Errorf("returned and its dependent, returned with a cancel request and its dependent: %v, want %v", got, want)
	}
}
