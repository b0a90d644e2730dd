package queue

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
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
