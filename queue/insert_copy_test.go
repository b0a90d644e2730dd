package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	return pgtest.Scalar[int](t, db.Pool, `SELECT count(*) FROM `+db.Table("tasks"))
}

// TestCopyMatchesInsert: the binary COPY writes every column as the INSERT
// path does, for every kind of value a plain task can carry: NULLs and
// empty strings, text arrays with quotes, commas and non-ASCII, negative
// priorities, sub-millisecond intervals, times with nanoseconds, JSON in
// callbacks and metadata, and the partition by due time and TTL.
func TestCopyMatchesInsert(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	e := testEngine(db, EventsDefault)
	due := time.Now().Add(90 * time.Minute).Add(123456789 * time.Nanosecond)
	past := time.Now().Add(-time.Hour).Add(987 * time.Nanosecond)
	off := false
	viaCopy := prepareN(t, e, copyMinRows, func(i int) *jobs.InsertOpts {
		o := &jobs.InsertOpts{Priority: i%7 - 3}
		switch i % 5 {
		case 1:
			o.Name, o.Description = fmt.Sprintf("task %d", i), "a description, with \"quotes\""
			o.Tags = []string{"a", `with "quote", comma and {brace}`, "ünïcødé"}
			o.RunAt = due
			o.Queue = "q.b:c-d"
		case 2:
			o.Tags = []string{"one"}
			o.MaxAttempts, o.RetryDelay, o.RetryBackoff = 9, 1500*time.Microsecond+700, jobs.BackoffExponential
			o.Timeout, o.ResultTTL, o.StoreResult = 2*time.Second+3*time.Microsecond, 36*time.Hour, &off
			o.RunAt = past
			o.Metadata = map[string]any{"with": "run_at"}
		case 3:
			o.TTL = time.Minute // a TTL keeps the task in the sticky partition
			o.Callback = &jobs.Callback{Kind: "copy_test", Args: json.RawMessage(`{"n": -1, "s": "ü"}`), Queue: "cb", Priority: 2, OnFailure: true}
			o.Metadata = map[string]any{"nested": map[string]any{"list": []any{1, "two", nil}}, "i": i}
		case 4:
			o.Metadata = map[string]any{}
			o.Description = "only a description"
		}
		return o
	})
	// The same tasks under other ids, by the INSERT path (batches below
	// copyMinRows).
	viaInsert := make([]*InsertParams, len(viaCopy))
	for i, p := range viaCopy {
		c := *p
		id, err := e.ids.next()
		if err != nil {
			t.Fatal(err)
		}
		c.ID = id
		viaInsert[i] = &c
	}
	if _, err := e.Insert(ctx, db.Pool, viaCopy); err != nil {
		t.Fatalf("Insert by COPY: %v", err)
	}
	for i := 0; i < len(viaInsert); i += 100 {
		if _, err := e.Insert(ctx, db.Pool, viaInsert[i:i+100]); err != nil {
			t.Fatalf("Insert by INSERT: %v", err)
		}
	}
	rows := func(ps []*InsertParams) map[string]string {
		t.Helper()
		ids := make([][16]byte, len(ps))
		for i, p := range ps {
			ids[i] = p.ID
		}
		// id and created_at differ by design; run_at too where the database
		// clock set it.
		rs, err := db.Pool.Query(ctx, `SELECT args->>'n',
			(to_jsonb(t) - 'id' - 'created_at' - CASE WHEN run_at < now() - interval '30 minutes' OR run_at > now() THEN '' ELSE 'run_at' END)::text
			FROM `+db.Table("tasks")+` t WHERE id = ANY ($1)`, ids)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for rs.Next() {
			var n, row string
			if err := rs.Scan(&n, &row); err != nil {
				t.Fatal(err)
			}
			m[n] = row
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	got, want := rows(viaCopy), rows(viaInsert)
	if len(got) != len(viaCopy) || len(want) != len(viaCopy) {
		t.Fatalf("read %d rows by COPY and %d by INSERT, want %d each", len(got), len(want), len(viaCopy))
	}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("task %s\n by COPY:   %s\n by INSERT: %s", n, got[n], w)
		}
	}
}

// TestCopyBadMetadata: metadata that cannot be encoded fails the batch with
// an error that names the field, and nothing of it is stored.
func TestCopyBadMetadata(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	e := testEngine(db, EventsDefault)
	ps := prepareN(t, e, copyMinRows*3, func(i int) *jobs.InsertOpts {
		if i == copyMinRows*3-1 { // late in the stream: after rows were sent
			return &jobs.InsertOpts{Metadata: map[string]any{"f": func() {}}}
		}
		return nil
	})
	_, err := e.Insert(context.Background(), db.Pool, ps)
	var ie *jobs.InputError
	if !errors.As(err, &ie) || ie.Field != "Metadata" {
		t.Fatalf("Insert: err = %v, want an InputError for Metadata", err)
	}
	if n := countTasks(t, db); n != 0 {
		t.Fatalf("%d tasks after the failed batch, want 0", n)
	}
}
