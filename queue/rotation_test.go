package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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
	// Results of gen 1's tasks: one that goes with its task, one whose own
	// expiry is an hour ahead, and so outlives the partition.
	exec(`INSERT INTO `+table(db.Schema, "results")+` (task_id, gen, status) VALUES ($1, 1, 'success')`, ids[0])
	exec(`INSERT INTO `+table(db.Schema, "results")+` (task_id, gen, status, expires_at)
		VALUES ($1, 1, 'success', now() + interval '1 hour')`, ids[1])

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
	if n := count(`SELECT count(*) FROM ` + table(db.Schema, "results_g1")); n != 0 {
		t.Fatalf("%d results of truncated tasks remain in results_g1", n)
	}
	if after := count(`SELECT pg_relation_size('` + table(db.Schema, "results_g1") + `')`); after != 0 {
		t.Fatalf("results_g1's file: %d bytes after the truncation, want none", after)
	}
	var kept []uuid.UUID
	rows, err := db.Pool.Query(ctx, `SELECT task_id FROM `+table(db.Schema, "results")+` WHERE gen = 0`)
	if err == nil {
		kept, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	}
	if err != nil || len(kept) != 1 || kept[0] != ids[1] {
		t.Fatalf("results_g0 holds %v (%v), want only %s, the result whose expiry is ahead", kept, err, ids[1])
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

// TestRetireDetachesWhatReadersHold: a REPEATABLE READ transaction that read
// tasks holds a share lock on every partition until it ends, so Rotate
// cannot truncate a drained one; it hands it to Retire, which detaches it
// while the reader lives (inserts and claims go on meanwhile), then truncates
// it and attaches it again, empty. A Retire interrupted while it waits leaves
// the partition detaching; the next Rotate hands it over again, and Retire
// finishes as soon as the transactions older than it end, whatever later
// ones do.
func TestRetireDetachesWhatReadersHold(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	// Cleanups run last first: this one, which ends the readers and any
	// Retire still waiting, before pgtest closes the pool they hold.
	t.Cleanup(cancel)
	e := testEngine(db, EventsNone)
	e.cfg.FinishedRetention = time.Minute
	tasks, rotation, g1 := table(db.Schema, "tasks"), table(db.Schema, "tasks_rotation"), table(db.Schema, "tasks_g1")
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// The states of tasks_g1 and results_g1.
	state := func() string {
		t.Helper()
		s, err := e.partitionStates(ctx, db.Pool, 1)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(s[:], " ")
	}
	// Gen 1 drained: its tasks finished two hours ago, gen 2 current.
	ids := insertN(t, e, db, 100, nil)
	exec(`UPDATE `+tasks+` SET status = 'success', completed_at = now() - interval '2 hours' WHERE id = ANY($1)`, ids)
	exec(`UPDATE ` + rotation + ` SET current = false, ended_at = now() - interval '2 hours' WHERE gen = 1`)
	exec(`UPDATE ` + rotation + ` SET current = true, started_at = now() WHERE gen = 2`)
	exec(`INSERT INTO `+table(db.Schema, "results")+` (task_id, gen, status) SELECT unnest($1::uuid[]), 1, 'success'`, ids)

	reader := func() pgx.Tx {
		t.Helper()
		tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback(context.Background()) }) //nolint:errcheck // a no-op once ended
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+tasks).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	// Rotate skips its pass while a Retire's session holds the lock, which
	// an interrupted one's closing connection may still do for a moment.
	rotateHandsOver := func() {
		t.Helper()
		pgtest.WaitFor(t, 10*time.Second, "Rotate to hand the partition to Retire", func() bool {
			if n, err := e.Rotate(ctx); err != nil || n != 0 {
				t.Fatalf("Rotate: %d, %v; want 0 truncated, no error", n, err)
			}
			select {
			case gen := <-e.retireReq:
				if gen != 1 {
					t.Fatalf("Rotate handed partition %d to Retire, want 1", gen)
				}
				return true
			default:
				return false
			}
		})
	}

	// First: a reader holds the lock; Retire is interrupted while it waits.
	first := reader()
	rotateHandsOver()
	rctx, stop := context.WithCancel(ctx)
	interrupted := make(chan error, 1)
	go func() { interrupted <- e.Retire(rctx, 1) }()
	pgtest.WaitFor(t, 10*time.Second, "the detach to begin", func() bool { return state() == "detaching attached" })
	// The hot path goes on: a task is inserted to gen 2 and claimed.
	insertN(t, e, db, 1, nil)
	if got := claimAll(t, newProducer(e, DefaultQueue, 10), 10); len(got) != 1 {
		t.Fatalf("claimed %d tasks while a partition detaches, want 1", len(got))
	}
	stop()
	if err := <-interrupted; err == nil {
		t.Fatal("Retire returned no error when interrupted while it waited")
	}
	// Retire returns as soon as its context ends; the server learns of it
	// by a cancel request that may arrive after the reader ends below, and
	// the DETACH would then finish. Wait until the server has ended it.
	pgtest.WaitFor(t, 10*time.Second, "the server to end the interrupted DETACH", func() bool {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE state = 'active' AND query ILIKE '%DETACH PARTITION%' AND strpos(query, $1) > 0`, g1).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	if err := first.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != "detaching attached" {
		t.Fatalf("after the interrupted Retire tasks_g1 and results_g1 are %s, want detaching and attached", s)
	}

	// Then: the next Rotate hands it over again, and Retire finishes. Its
	// FINALIZE waits for the transactions whose snapshot is older than its
	// own (the second reader's, unless no transaction id was assigned
	// between the two), not for one that began after it.
	second := reader()
	rotateHandsOver()
	finished := make(chan error, 1)
	go func() { finished <- e.Retire(ctx, 1) }()
	var retired error
	done := false
	pgtest.WaitFor(t, 10*time.Second, "Retire to finish, or to wait for the reader", func() bool {
		select {
		case retired = <-finished:
			done = true
			return true
		default:
		}
		var waits bool
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_stat_activity
			WHERE query LIKE '%DETACH PARTITION%FINALIZE%' AND wait_event_type = 'Lock'`).Scan(&waits); err != nil {
			t.Fatal(err)
		}
		return waits
	})
	if !done {
		reader() // a later one, open to the end
		if err := second.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		retired = <-finished
	}
	if retired != nil {
		t.Fatalf("Retire: %v", retired)
	}
	if s := state(); s != "attached attached" {
		t.Fatalf("after Retire tasks_g1 and results_g1 are %s, want attached", s)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+g1).Scan(&n); err != nil || n != 0 {
		t.Fatalf("gen 1 holds %d tasks after Retire (%v), want 0", n, err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+table(db.Schema, "results")).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d results of gen 1's tasks remain after Retire (%v), want 0", n, err)
	}
	var empty bool
	if err := db.Pool.QueryRow(ctx, `SELECT ended_at IS NULL AND NOT current FROM `+rotation+` WHERE gen = 1`).Scan(&empty); err != nil || !empty {
		t.Fatalf("gen 1 not marked empty after Retire (%v)", err)
	}
	// Attached again, it takes tasks when it is current.
	exec(`UPDATE ` + rotation + ` SET current = false WHERE gen = 2`)
	exec(`UPDATE ` + rotation + ` SET current = true, started_at = now() WHERE gen = 1`)
	if got := genOf(t, db, insertN(t, e, db, 1, nil)[0]); got != 1 {
		t.Fatalf("a task inserted after Retire went to gen %d, want 1", got)
	}
}
