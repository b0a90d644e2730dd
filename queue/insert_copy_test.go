package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/omniqhq/omniq/codec"
	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/jobs"
)

type copyArgs struct {
	N int `json:"n"`
}

func (copyArgs) Kind() string { return "copy_test" }

// testEngine is an engine on db with the root package's defaults, not started.
func testEngine(db *pgtest.DB, events string) *Engine {
	return New(db.Pool, Config{
		Schema:       db.Schema,
		ID:           "test",
		MaxAttempts:  4,
		RetryDelay:   time.Second,
		RetryBackoff: jobs.BackoffFixed,
		EventLevel:   events,
	}, nil, codec.NewManager())
}

func prepareN(t testing.TB, e *Engine, n int, opts func(i int) *jobs.InsertOpts) []*InsertParams {
	t.Helper()
	ps := make([]*InsertParams, n)
	for i := range ps {
		var o *jobs.InsertOpts
		if opts != nil {
			o = opts(i)
		}
		p, err := e.Prepare(copyArgs{N: i}, o)
		if err != nil {
			t.Fatalf("Prepare: %v", err)
		}
		ps[i] = p
	}
	return ps
}

// TestInsertCopy: a large plain batch goes by COPY and lands exactly as the
// INSERT path would write it: run_at by the database clock unless given,
// options kept, enqueued events at level all, one transaction.
func TestInsertCopy(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	e := testEngine(db, EventsAll)
	later := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	ps := prepareN(t, e, copyMinRows+10, func(i int) *jobs.InsertOpts {
		o := &jobs.InsertOpts{Priority: i % 3, Tags: []string{"bulk"}, Metadata: map[string]any{"i": i}}
		if i%2 == 1 {
			o.RunAt = later
			o.Queue = "other"
			o.Timeout = time.Minute
		}
		return o
	})
	if !copyable(ps) {
		t.Fatal("the batch does not qualify for COPY")
	}
	res, err := e.Insert(ctx, db.Pool, ps)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	for i, r := range res {
		if r.ID != ps[i].ID || r.Duplicate || r.Status != jobs.StatusPending {
			t.Fatalf("result %d = %+v, want id %s pending", i, r, ps[i].ID)
		}
	}
	var n, runNow, runLater, events int
	err = db.Pool.QueryRow(ctx, `SELECT count(*),
			count(*) FILTER (WHERE queue = 'default' AND run_at <= now() AND timeout IS NULL AND tags = '{bulk}' AND metadata ? 'i'),
			count(*) FILTER (WHERE queue = 'other' AND run_at = $1 AND timeout = '1 minute' AND status = 'pending'),
			(SELECT count(*) FROM `+db.Table("events")+` WHERE type = 'enqueued')
		FROM `+db.Table("tasks"), later).Scan(&n, &runNow, &runLater, &events)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ps) || runNow+runLater != n || events != n {
		t.Fatalf("rows=%d now=%d later=%d events=%d, want %d in all", n, runNow, runLater, events, len(ps))
	}
}

// TestInsertCopyInCallerTx: a COPY batch in a rolled-back transaction leaves
// nothing; a duplicate id fails the whole batch with ErrInvalidInput.
func TestInsertCopyInCallerTx(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	e := testEngine(db, EventsDefault)
	ps := prepareN(t, e, copyMinRows, nil)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Insert(ctx, tx, ps); err != nil {
		t.Fatalf("Insert in tx: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countTasks(t, db); n != 0 {
		t.Fatalf("%d tasks after rollback, want 0", n)
	}
	if _, err := e.Insert(ctx, db.Pool, ps[:1]); err != nil {
		t.Fatal(err)
	}
	_, err = e.Insert(ctx, db.Pool, ps)
	if !errors.Is(err, jobs.ErrInvalidInput) {
		t.Fatalf("Insert with an existing id: err = %v, want ErrInvalidInput", err)
	}
	if n := countTasks(t, db); n != 1 {
		t.Fatalf("%d tasks after the failed batch, want 1", n)
	}
}

func countTasks(t *testing.T, db *pgtest.DB) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+db.Table("tasks")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
