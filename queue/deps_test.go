package queue

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/jobs"
)

// waitingSeen reads dependency_state (migration 012).
func waitingSeen(t *testing.T, db *pgtest.DB) bool {
	t.Helper()
	return pgtest.Scalar[bool](t, db.Pool, `SELECT waiting_seen FROM `+table(db.Schema, "dependency_state"))
}

// TestDependencyWorkWaitsForAWaitingTask: while no task of the schema has
// waited for dependencies, a completion's dependency statements take no lock
// and look up no dependents; the first waiting task turns them on, and its
// dependency's completion then releases it.
func TestDependencyWorkWaitsForAWaitingTask(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	e := testEngine(db, EventsNone)
	parents := insertN(t, e, db, 3, nil)
	// The ids the release statement looks up dependents of (the rows of its
	// unnest), and the scans of tasks the cancel statement runs under a
	// small batch's settings.
	tasks := partitionTree(t, db, "tasks")
	probes := func() int {
		t.Helper()
		return explain(t, db, e.sql.releaseDeps, uuidBytes(parents), e.insertChannel).nodeRows("Function Scan")
	}
	cancelScans := func() int {
		t.Helper()
		return explainUnder(t, db, sqlGenericPlans, e.sql.cancelDeps, uuidBytes(parents), EventsNone).Plan.scanLoops(tasks)
	}
	locks := func() int {
		t.Helper()
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // read-only
		if _, err := tx.Exec(ctx, e.sql.depsLock, e.sql.schema); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if waitingSeen(t, db) || probes() != 0 || cancelScans() != 0 || locks() != 0 {
		t.Fatalf("before any task waited: waiting_seen %v, dependents of %d tasks looked up, %d scans of tasks to cancel, %d locks; want false, 0, 0, 0",
			waitingSeen(t, db), probes(), cancelScans(), locks())
	}

	child := insertN(t, e, db, 1, func(int) *jobs.InsertOpts { return &jobs.InsertOpts{DependsOn: parents[:1]} })[0]
	if !waitingSeen(t, db) {
		t.Fatal("waiting_seen is false after a task was inserted waiting")
	}
	if n := probes(); n != len(parents) {
		t.Fatalf("the release statement looks up dependents of %d tasks once a task has waited, want %d", n, len(parents))
	}
	if n := cancelScans(); n == 0 {
		t.Fatal("the cancel statement scans no tasks once a task has waited")
	}
	if n := locks(); n != 1 {
		t.Fatalf("the dependency lock statement took %d locks once a task has waited, want 1", n)
	}

	// With the row missing (deleted by hand), the work is done.
	if _, err := db.Pool.Exec(ctx, `DELETE FROM `+table(db.Schema, "dependency_state")); err != nil {
		t.Fatal(err)
	}
	if n, l := probes(), locks(); n != len(parents) || l != 1 {
		t.Fatalf("with dependency_state empty: dependents of %d tasks looked up, %d locks; want %d, 1", n, l, len(parents))
	}

	// The parent completes: the child is released.
	e.completer = newCompleter(e) // not started: write is called directly
	p := newProducer(e, DefaultQueue, 10)
	var parent *jobs.TaskRow
	for _, row := range claimAll(t, p, 10) {
		if row.ID == parents[0] {
			parent = row
		}
	}
	if parent == nil {
		t.Fatal("the parent was not claimed")
	}
	now := time.Now()
	if err := e.completer.write(ctx, []*outcome{{id: parent.ID, gen: parent.Partition, attempt: parent.Attempt,
		status: jobs.StatusSuccess, finishedAt: now, resultStatus: jobs.ResultSuccess, event: "completed", queue: parent.Queue}}); err != nil {
		t.Fatal(err)
	}
	row, err := e.Task(ctx, db.Pool, child)
	if err != nil || row.Status != jobs.StatusPending {
		t.Fatalf("the child after its parent succeeded: %v (%v), want pending", row.Status, err)
	}
}

// TestWaitingTaskByHandSetsFlag: a waiting task written by SQL by hand turns
// the dependency work on as the client's inserts do.
func TestWaitingTaskByHandSetsFlag(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	e := testEngine(db, EventsNone)
	parent := insertN(t, e, db, 1, nil)[0]
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO `+table(db.Schema, "tasks")+` (id, kind, status, depends_on)
		VALUES ($1, 'by_hand', 'waiting', ARRAY[$2::uuid])`, uuid.Must(uuid.NewV7()), parent); err != nil {
		t.Fatal(err)
	}
	if !waitingSeen(t, db) {
		t.Fatal("waiting_seen is false after a waiting task was inserted by hand")
	}
}
