package queue

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/jobs"
)

// genOf returns the partition key of task id.
func genOf(t *testing.T, db *pgtest.DB, id uuid.UUID) int {
	t.Helper()
	var gen int
	if err := db.Pool.QueryRow(context.Background(), `SELECT gen FROM `+table(db.Schema, "tasks")+` WHERE id = $1`,
		id).Scan(&gen); err != nil {
		t.Fatalf("gen of %s: %v", id, err)
	}
	return gen
}

// TestInsertRoutesToPartitions: plain tasks go to the current rotating
// partition, by INSERT and by COPY; tasks whose identity must be unique
// across the table, that wait on others or are due after a rotation go to the
// sticky one.
func TestInsertRoutesToPartitions(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	e := testEngine(db, EventsNone)
	e.cfg.FinishedRetention = time.Minute
	one := func(o *jobs.InsertOpts) uuid.UUID {
		t.Helper()
		return insertN(t, e, db, 1, func(int) *jobs.InsertOpts { return o })[0]
	}
	plain := one(nil)
	for name, c := range map[string]struct {
		id   uuid.UUID
		want int
	}{
		"plain":          {plain, 1},
		"due in 10s":     {one(&jobs.InsertOpts{RunAt: time.Now().Add(10 * time.Second)}), 1},
		"due in an hour": {one(&jobs.InsertOpts{RunAt: time.Now().Add(time.Hour)}), 0},
		"preset id":      {one(&jobs.InsertOpts{ID: uuid.Must(uuid.NewV7())}), 0},
		"with a TTL":     {one(&jobs.InsertOpts{TTL: time.Hour}), 0},
		"unique":         {one(&jobs.InsertOpts{Unique: &jobs.UniqueOpts{ByQueue: true}}), 0},
		"dependent":      {one(&jobs.InsertOpts{DependsOn: []uuid.UUID{plain}}), 0},
		"by COPY":        {insertN(t, e, db, copyMinRows, nil)[0], 1},
	} {
		if got := genOf(t, db, c.id); got != c.want {
			t.Errorf("%s task: gen %d, want %d", name, got, c.want)
		}
	}
}

// TestRotateRetiresDrainedPartitions: while another transaction holds back
// the xmin horizon, a partition whose tasks all finished longer than
// FinishedRetention ago is truncated, and its file with its dead versions
// goes; one task still pending, or a write not yet committed, keeps it.
func TestRotateRetiresDrainedPartitions(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	e := testEngine(db, EventsNone)
	e.cfg.FinishedRetention = time.Minute
	pinHorizon(t, db)
	tasks, rotation, g1 := table(db.Schema, "tasks"), table(db.Schema, "tasks_rotation"), table(db.Schema, "tasks_g1")
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	rotate := func(wantTruncated, wantCurrent int) {
		t.Helper()
		n, err := e.Rotate(ctx)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		var current int
		if err := db.Pool.QueryRow(ctx, `SELECT gen FROM `+rotation+` WHERE current`).Scan(&current); err != nil {
			t.Fatal(err)
		}
		if n != wantTruncated || current != wantCurrent {
			t.Fatalf("Rotate truncated %d partitions and left %d current, want %d and %d", n, current, wantTruncated, wantCurrent)
		}
	}
	count := func(sql string) int {
		t.Helper()
		var n int
		if err := db.Pool.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	ids := insertN(t, e, db, 1000, nil)
	straggler := insertN(t, e, db, 1, nil)[0]
	sticky := insertN(t, e, db, 1, func(int) *jobs.InsertOpts { return &jobs.InsertOpts{ID: uuid.Must(uuid.NewV7())} })[0]
	exec(`INSERT INTO `+table(db.Schema, "results")+` (task_id, status) VALUES ($1, 'success')`, ids[0])

	rotate(0, 1) // gen 1 has not been current for rotateEvery
	exec(`UPDATE ` + rotation + ` SET started_at = now() - interval '1 hour' WHERE gen = 1`)
	rotate(0, 2)
	if got := genOf(t, db, insertN(t, e, db, 1, nil)[0]); got != 2 {
		t.Fatalf("a task inserted after the rotation went to gen %d, want 2", got)
	}

	// Every task of gen 1 finished two hours ago but one.
	exec(`UPDATE `+tasks+` SET status = 'success', completed_at = now() - interval '2 hours' WHERE id = ANY($1)`, ids)
	exec(`UPDATE ` + rotation + ` SET ended_at = now() - interval '2 hours' WHERE gen = 1`)
	rotate(0, 2)
	if n := count(`SELECT count(*) FROM ` + g1); n != 1001 {
		t.Fatalf("gen 1 holds %d tasks after a rotation it was not drained for, want 1001", n)
	}

	// The straggler finishes, but a task written to gen 1 by a transaction
	// still open (an insert that read the rotation before it moved on) keeps
	// the partition until it commits.
	exec(`UPDATE `+tasks+` SET status = 'success', completed_at = now() - interval '2 hours' WHERE id = $1`, straggler)
	late, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Rollback(ctx)
	if _, err := late.Exec(ctx, `INSERT INTO `+tasks+` (id, kind, gen) VALUES (gen_random_uuid(), 'late', 1)`); err != nil {
		t.Fatal(err)
	}
	rotate(0, 2) // not locked in time
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	rotate(0, 2) // locked, but the late task is pending
	if n := count(`SELECT count(*) FROM ` + g1); n != 1002 {
		t.Fatalf("gen 1 holds %d tasks, want 1002", n)
	}

	exec(`UPDATE ` + tasks + ` SET status = 'success', completed_at = now() - interval '2 hours' WHERE kind = 'late'`)
	before := count(`SELECT pg_relation_size('` + g1 + `')`)
	rotate(1, 2)
	if n := count(`SELECT count(*) FROM ` + g1); n != 0 {
		t.Fatalf("gen 1 holds %d tasks after it was truncated", n)
	}
	if after := count(`SELECT pg_relation_size('` + g1 + `')`); after != 0 || before == 0 {
		t.Fatalf("gen 1's file: %d bytes before, %d after the truncation, want some and none", before, after)
	}
	if n := count(`SELECT count(*) FROM ` + table(db.Schema, "results")); n != 0 {
		t.Fatalf("%d results of truncated tasks remain", n)
	}
	if got := genOf(t, db, sticky); got != 0 {
		t.Fatalf("the sticky task is in gen %d", got)
	}
	var empty bool
	if err := db.Pool.QueryRow(ctx, `SELECT ended_at IS NULL AND NOT current FROM `+rotation+` WHERE gen = 1`).Scan(&empty); err != nil || !empty {
		t.Fatalf("gen 1 not marked empty after its truncation (%v)", err)
	}
}

// TestRotateRestoresRotationRows: with tasks_rotation emptied by hand, new
// tasks go to the sticky partition, and Rotate puts the rows back so that
// they rotate again.
func TestRotateRestoresRotationRows(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	e := testEngine(db, EventsNone)
	if _, err := db.Pool.Exec(ctx, `TRUNCATE `+table(db.Schema, "tasks_rotation")); err != nil {
		t.Fatal(err)
	}
	if got := genOf(t, db, insertN(t, e, db, 1, nil)[0]); got != 0 {
		t.Fatalf("with no rotation rows a task went to gen %d, want 0", got)
	}
	for range 2 {
		if _, err := e.Rotate(ctx); err != nil {
			t.Fatalf("Rotate: %v", err)
		}
	}
	if got := genOf(t, db, insertN(t, e, db, 1, nil)[0]); got != 1 {
		t.Fatalf("after Rotate a task went to gen %d, want 1", got)
	}
}
