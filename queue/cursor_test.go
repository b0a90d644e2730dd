package queue

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/jobs"
)

func insertN(t *testing.T, e *Engine, db *pgtest.DB, n int, opts func(i int) *jobs.InsertOpts) []uuid.UUID {
	t.Helper()
	res, err := e.Insert(context.Background(), db.Pool, prepareN(t, e, n, opts))
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	ids := make([]uuid.UUID, len(res))
	for i, r := range res {
		ids[i] = r.ID
	}
	return ids
}

// claimAll claims in batches of n until a claim returns nothing.
func claimAll(t *testing.T, p *producer, n int) []*jobs.TaskRow {
	t.Helper()
	var all []*jobs.TaskRow
	for {
		got, err := p.claim(context.Background(), n)
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		if len(got) == 0 {
			return all
		}
		slices.SortFunc(got, byClaimOrder)
		all = append(all, got...)
	}
}

func byClaimOrder(a, b *jobs.TaskRow) int {
	if a.Priority != b.Priority {
		return b.Priority - a.Priority
	}
	if c := a.RunAt.Compare(b.RunAt); c != 0 {
		return c
	}
	return slices.Compare(a.ID[:], b.ID[:])
}

// TestClaimCursorsKeepOrder: claims that start at the producer's cursors
// still take tasks in priority, then run_at order, batch after batch, find a
// task of a priority no cursor covers at once, and find one enqueued behind
// a cursor (a run_at in the past) once the sweep has looked behind it.
func TestClaimCursorsKeepOrder(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	e := testEngine(db, EventsDefault)
	p := newProducer(e, DefaultQueue, 100)
	base := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	insertN(t, e, db, 30, func(i int) *jobs.InsertOpts {
		return &jobs.InsertOpts{Priority: []int{0, 5, 10}[i%3], RunAt: base.Add(time.Duration(i) * time.Millisecond)}
	})
	var got []*jobs.TaskRow
	for len(got) < 30 {
		batch, err := p.claim(context.Background(), 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			t.Fatalf("claimed %d of 30, then nothing", len(got))
		}
		if len(p.cursors) == 0 {
			t.Fatal("no cursor after a claim")
		}
		slices.SortFunc(batch, byClaimOrder)
		got = append(got, batch...)
	}
	if !slices.IsSortedFunc(got, byClaimOrder) {
		t.Fatal("tasks were not claimed in priority, run_at order")
	}

	// A new priority between two cursors, one above them all, and a task
	// behind the priority-0 cursor.
	insertN(t, e, db, 2, func(i int) *jobs.InsertOpts { return &jobs.InsertOpts{Priority: 7} })
	insertN(t, e, db, 1, func(i int) *jobs.InsertOpts { return &jobs.InsertOpts{Priority: 20} })
	late := insertN(t, e, db, 1, func(i int) *jobs.InsertOpts {
		return &jobs.InsertOpts{RunAt: base.Add(-time.Hour)}
	})[0]
	batch, err := p.claim(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(batch, byClaimOrder)
	var prios []int
	for _, r := range batch {
		if r.ID != late {
			prios = append(prios, r.Priority)
		}
	}
	if !slices.Equal(prios, []int{20, 7, 7}) {
		t.Fatalf("claimed priorities %v, want [20 7 7]", prios)
	}
	if len(batch) == 3 {
		// Behind the cursor: found by the sweep, claimed by the next claim.
		if err := p.sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		batch, err = p.claim(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.ContainsFunc(batch, func(r *jobs.TaskRow) bool { return r.ID == late }) {
		t.Fatalf("the task behind the cursor was not claimed after a sweep")
	}
	if rest := claimAll(t, p, 10); len(rest) != 0 {
		t.Fatalf("%d tasks claimed twice or left over", len(rest))
	}
}

// TestClaimCursorSkipsDeadEntries: while another transaction holds back the
// xmin horizon, claimed tasks leave dead entries at the front of the runnable
// index that vacuum cannot remove. A claim from the cursor does not visit
// them; a claim from the start of the range visits every one. Measured in
// buffers the scans of the runnable index touched (EXPLAIN ANALYZE), not time.
func TestClaimCursorSkipsDeadEntries(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	e := testEngine(db, EventsNone)
	p := newProducer(e, DefaultQueue, 1000)

	pinHorizon(t, db)

	// Older than the cursor's lookback, so the claim starts at the cursor.
	const dead = 6000
	base := time.Now().Add(-time.Minute)
	insertN(t, e, db, dead+200, func(i int) *jobs.InsertOpts {
		return &jobs.InsertOpts{RunAt: base.Add(time.Duration(i) * time.Microsecond)}
	})
	if got := claimAll(t, p, 500); len(got) < dead {
		t.Fatalf("claimed %d", len(got))
	}
	// Runnable tasks again, behind the dead entries; the claims below are
	// rolled back so both see the same index.
	insertN(t, e, db, 50, nil)
	sql, args := p.claimStatement(10)
	fromCursor := explainBuffers(t, db, "tasks_runnable_idx", sql, args...)
	fromStart := explainBuffers(t, db, "tasks_runnable_idx", e.sql.claim[0], args[:3]...)
	t.Logf("buffers touched: from the cursor %d, from the start %d (%d dead entries)", fromCursor, fromStart, dead)
	if fromStart < 50 {
		t.Fatalf("a scan from the start touched only %d buffers: the horizon was not pinned?", fromStart)
	}
	// Each partition's index costs a claim a few buffers whatever it holds
	// (tasks has five): about 20 in all.
	if fromCursor*5 > fromStart {
		t.Fatalf("the claim from the cursor touched %d buffers, from the start %d: it walks dead entries", fromCursor, fromStart)
	}
}

// planNode is the part of EXPLAIN (FORMAT JSON) these tests read.
type planNode struct {
	NodeType  string     `json:"Node Type"`
	IndexName string     `json:"Index Name"`
	Hit       int        `json:"Shared Hit Blocks"`
	Relation  string     `json:"Relation Name"`
	Rows      int        `json:"Actual Rows"`
	Removed   int        `json:"Rows Removed by Filter"`
	Rechecked int        `json:"Rows Removed by Index Recheck"`
	Read      int        `json:"Shared Read Blocks"`
	Cost      float64    `json:"Total Cost"`
	Loops     int        `json:"Actual Loops"`
	Plans     []planNode `json:"Plans"`
}

// sum adds up f over every node of the plan.
func (n planNode) sum(f func(planNode) int) int {
	total := f(n)
	for _, c := range n.Plans {
		total += c.sum(f)
	}
	return total
}

// nodeRows sums the rows the plan's nodes of one type returned.
func (n planNode) nodeRows(nodeType string) int {
	return n.sum(func(n planNode) int {
		if n.NodeType == nodeType {
			return n.Rows
		}
		return 0
	})
}

// scanLoops sums the times the plan's scans of the relations named ran.
func (n planNode) scanLoops(names []string) int {
	return n.sum(func(n planNode) int {
		if strings.HasSuffix(n.NodeType, "Scan") && slices.Contains(names, n.Relation) {
			return n.Loops
		}
		return 0
	})
}

// indexBuffers sums the buffers of the plan's scans of the indexes named.
func (n planNode) indexBuffers(names []string) int {
	return n.sum(func(n planNode) int {
		if slices.Contains(names, n.IndexName) {
			return n.Hit + n.Read
		}
		return 0
	})
}

// tableRows sums the rows the plan's scans of the table read, whatever the
// scan: those they returned and those their filter or recheck removed.
func (n planNode) tableRows(table string) int {
	return n.sum(func(n planNode) int {
		if n.Relation == table {
			return n.Rows + n.Removed + n.Rechecked
		}
		return 0
	})
}

// explainBuffers runs EXPLAIN (ANALYZE, BUFFERS) of sql in a transaction it
// rolls back, and returns the buffers its scans of index touched.
func explainBuffers(t *testing.T, db *pgtest.DB, index, sql string, args ...any) int {
	t.Helper()
	return explain(t, db, sql, args...).indexBuffers(partitionTree(t, db, index))
}

// partitionTree names a relation of the test's schema and, when it is
// partitioned (tasks and its indexes), its partitions: a plan scans those.
func partitionTree(t *testing.T, db *pgtest.DB, name string) []string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT $2 UNION SELECT c.relname
		FROM pg_partition_tree($1::regclass) p JOIN pg_class c ON c.oid = p.relid`, table(db.Schema, name), name)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// explain runs EXPLAIN (ANALYZE, BUFFERS) of sql in a transaction it rolls
// back, and returns its plan.
func explain(t *testing.T, db *pgtest.DB, sql string, args ...any) planNode {
	t.Helper()
	return explainUnder(t, db, "", sql, args...).Plan
}

// explained is what explainUnder reads of EXPLAIN's output: the plan, and
// the JIT section, present when the statement was compiled.
type explained struct {
	Plan planNode
	JIT  json.RawMessage
}

// explainUnder is explain run after settings (a statement, or "" for none)
// in the same transaction.
func explainUnder(t *testing.T, db *pgtest.DB, settings, sql string, args ...any) explained {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if settings != "" {
		if _, err := tx.Exec(ctx, settings); err != nil {
			t.Fatalf("%s: %v", settings, err)
		}
	}
	var plan []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
		t.Fatalf("explain: %v", err)
	}
	var out []explained
	if err := json.Unmarshal(plan, &out); err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// pinHorizon holds back the xmin horizon until the test ends: a transaction
// with an xid, left open on its own connection.
func pinHorizon(t *testing.T, db *pgtest.DB) {
	t.Helper()
	ctx := context.Background()
	pin, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pin.Close(ctx) })
	if _, err := pin.Exec(ctx, "BEGIN; SELECT txid_current()"); err != nil {
		t.Fatal(err)
	}
}

// TestClaimSkipsFlushWait: a claim turns synchronous_commit off for its own
// transaction (see sqlClaimSettings), and only for it.
func TestClaimSkipsFlushWait(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	e := testEngine(db, EventsNone)
	p := newProducer(e, DefaultQueue, 10)
	insertN(t, e, db, 2, nil)
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	setting := func() string {
		t.Helper()
		var v string
		if err := conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	session := setting()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
		t.Fatal(err)
	}
	br := tx.SendBatch(ctx, p.claimBatch(10))
	if _, err := br.Exec(); err != nil {
		t.Fatal(err)
	}
	rows, err := br.Query()
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := pgx.CollectRows(rows, scanTask)
	if err == nil {
		err = br.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if got, n := setting(), len(claimed); n != 2 || got != "off" {
		t.Fatalf("claimed %d tasks, synchronous_commit %s after the claim; want 2, off", n, got)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := setting(); got != session {
		t.Fatalf("synchronous_commit is %s after the claim's transaction, %s before it", got, session)
	}
}

// TestInsertNotificationMovesCursorBack: a task whose run_at sits behind a
// producer's cursor, beyond the lookback (here a run_at in the past; also a
// task enqueued by a transaction that committed long after it began), is not
// seen by a claim from the cursor until the insert's notification, which
// carries that run_at, moves the cursor back to it.
func TestInsertNotificationMovesCursorBack(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	e := testEngine(db, EventsNone)
	p := newProducer(e, DefaultQueue, 100)
	e.producers = map[string]*producer{DefaultQueue: p}
	next := listenInserts(t, db, e)

	insertN(t, e, db, 10, nil)
	next()
	if got := claimAll(t, p, 100); len(got) != 10 {
		t.Fatalf("claimed %d of 10", len(got))
	}
	late := insertN(t, e, db, 1, func(int) *jobs.InsertOpts {
		return &jobs.InsertOpts{RunAt: time.Now().Add(-10 * time.Second)}
	})[0]
	payload := next()
	if got := claimAll(t, p, 100); len(got) != 0 {
		t.Fatalf("a claim from the cursor found %d tasks behind it before the notification", len(got))
	}
	e.onInsertNotify(payload)
	got := claimAll(t, p, 100)
	if len(got) != 1 || got[0].ID != late {
		t.Fatalf("after the notification %q the claim found %d tasks, want the late one", payload, len(got))
	}
}

// TestSQLEnqueueNotificationCarriesRunAt: omniq.enqueue's NOTIFY carries the
// task's run_at as the Go client's does, so a task enqueued from SQL by a
// transaction that committed after claims moved past its run_at is claimed
// on that notification.
func TestSQLEnqueueNotificationCarriesRunAt(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	e := testEngine(db, EventsNone)
	p := newProducer(e, DefaultQueue, 100)
	e.producers = map[string]*producer{DefaultQueue: p}
	next := listenInserts(t, db, e)

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var late uuid.UUID
	if err := tx.QueryRow(ctx, `SELECT `+table(db.Schema, "enqueue")+`('sql_task')`).Scan(&late); err != nil {
		t.Fatal(err)
	}
	// The transaction goes on working for longer than the claims' lookback
	// (this is the case under test, not a wait for something), while tasks
	// enqueued after it began are claimed and move the cursor past its now().
	if _, err := tx.Exec(ctx, `SELECT pg_sleep($1)`, (2 * cursorLookback).Seconds()); err != nil {
		t.Fatal(err)
	}
	insertN(t, e, db, 10, nil)
	next()
	if got := claimAll(t, p, 100); len(got) != 10 {
		t.Fatalf("claimed %d of 10", len(got))
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	payload := next()
	if !strings.HasPrefix(payload, DefaultQueue+" ") {
		t.Fatalf("omniq.enqueue's notification is %q, want the queue and a run_at", payload)
	}
	if got := claimAll(t, p, 100); len(got) != 0 {
		t.Fatalf("a claim from the cursor found %d tasks behind it before the notification", len(got))
	}
	e.onInsertNotify(payload)
	got := claimAll(t, p, 100)
	if len(got) != 1 || got[0].ID != late {
		t.Fatalf("after the notification %q the claim found %d tasks, want the one from SQL", payload, len(got))
	}
}

// listenInserts listens on e's insert channel until the test ends and
// returns a function that waits (up to 10s) for the next notification and
// returns its payload.
func listenInserts(t *testing.T, db *pgtest.DB, e *Engine) func() string {
	t.Helper()
	ctx := context.Background()
	listener, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close(ctx) })
	if _, err := listener.Exec(ctx, "LISTEN "+pgx.Identifier{e.insertChannel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	return func() string {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := listener.WaitForNotification(wctx)
		if err != nil {
			t.Fatalf("waiting for an insert notification on %s: %v", e.insertChannel, err)
		}
		return n.Payload
	}
}
