package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/jobs"
)

// TestHotStatementsNeverJIT: the claim's and the completion batches'
// statements, under the settings that precede them, need no Seq Scan those
// settings forbid and are never compiled by JIT. Under enable_seqscan off a
// plan that still needs a Seq Scan costs past jit_above_cost, and compiling
// it took hundreds of milliseconds a run.
func TestHotStatementsNeverJIT(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	e := testEngine(db, EventsDefault)
	ids := insertN(t, e, db, 3, nil)
	type stmt struct {
		name, settings, sql string
		args                []any
	}
	// The claim's batch is its settings, then the claim.
	claim := newProducer(e, DefaultQueue, 10).claimBatch(10).QueuedQueries
	stmts := []stmt{{"claim", claim[0].SQL, claim[1].SQL, claim[1].Arguments}}
	// Every statement of a completion batch, a success, a retry and a
	// failure, with callbacks asked for, small (generic plans) and large.
	now := time.Now()
	batch := []*outcome{
		{id: ids[0], gen: 1, attempt: 1, status: jobs.StatusSuccess, finishedAt: now, resultStatus: jobs.ResultSuccess, event: "completed"},
		{id: ids[1], gen: 1, attempt: 1, status: jobs.StatusRetry, runAt: &now, finishedAt: now, event: "retry"},
		{id: ids[2], gen: 1, attempt: 1, status: jobs.StatusError, finishedAt: now, resultStatus: jobs.ResultError, event: "error"},
	}
	for i, q := range e.completionBatch(batch).QueuedQueries {
		stmts = append(stmts, stmt{fmt.Sprintf("completion statement %d, small batch", i), sqlGenericPlans, q.SQL, q.Arguments},
			stmt{fmt.Sprintf("completion statement %d, large batch", i), sqlCustomPlans, q.SQL, q.Arguments})
	}
	for _, c := range stmts {
		x := explainUnder(t, db, c.settings, c.sql, c.args...)
		if x.JIT != nil {
			t.Errorf("%s is compiled by JIT (cost %.0f)", c.name, x.Plan.Cost)
		}
		if x.Plan.Cost >= 1e9 {
			t.Errorf("%s needs a Seq Scan the settings disable (cost %.0f)", c.name, x.Plan.Cost)
		}
	}
}

// TestPlansMadeOverAnEmptyPartition: the claim's and the completion's
// generic plans are made once per connection and kept until a partition of
// tasks is truncated or analyzed, so they are often made while the next
// rotating partition is empty, and an ANALYZE of that empty partition
// (autovacuum's, or a VACUUM ANALYZE) tells the planner it holds nothing.
// The plans must still look the batch's tasks up by key once that partition
// has filled. The claim's first form joined the locked tasks to tasks and,
// over a partition planned as empty, scanned the whole partition for each
// locked task (19,770 blocks for 10 tasks of 2,000): in a long-horizon run
// the claims of the minute after such an ANALYZE took 100 tasks/s of 1,000
// offered.
func TestPlansMadeOverAnEmptyPartition(t *testing.T) {
	t.Parallel()
	const n, batch = 2000, 10
	fill := func(t *testing.T, db *pgtest.DB, status string, attempt int) []uuid.UUID {
		t.Helper()
		rows, err := db.Pool.Query(context.Background(), "INSERT INTO "+partitionTable(db.Schema, "tasks", 2)+
			` (id, kind, queue, gen, run_at, status, attempt)
			SELECT gen_random_uuid(), 'bench', $1, 2, now() - interval '1 minute', $2, $3 FROM generate_series(1, $4)
			RETURNING id`, DefaultQueue, status, attempt, n)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	t.Run("claim", func(t *testing.T) {
		t.Parallel()
		_, db, e := engineTest(t, EventsDefault)
		sql, args := newProducer(e, DefaultQueue, batch).claimStatement(batch)
		plan := planAfter(t, db, sqlClaimSettings, sql, args, func() []any {
			fill(t, db, "pending", 0)
			return args
		})
		if plan.Rows != batch {
			t.Fatalf("the claim took %d tasks, want %d", plan.Rows, batch)
		}
		// By key, 10 tasks cost under 200 blocks (the root's count includes
		// its children's).
		if blocks := plan.Hit + plan.Read; blocks > 400 {
			t.Errorf("claiming %d of %d tasks with a plan made while their partition was empty read %d blocks, want under 400", batch, n, blocks)
		}
	})
	t.Run("completion", func(t *testing.T) {
		t.Parallel()
		_, db, e := engineTest(t, EventsDefault)
		outcomes := func(ids []uuid.UUID) []*outcome {
			out := make([]*outcome, len(ids))
			for i, id := range ids {
				out[i] = &outcome{id: id, gen: 2, attempt: 1, status: jobs.StatusSuccess, finishedAt: time.Now(),
					resultStatus: jobs.ResultSuccess, event: "completed", queue: DefaultQueue}
			}
			return out
		}
		complete := e.completionBatch(outcomes(make([]uuid.UUID, batch))).QueuedQueries[0]
		plan := planAfter(t, db, sqlGenericPlans, complete.SQL, complete.Arguments, func() []any {
			return e.completionBatch(outcomes(fill(t, db, "running", 1)[:batch])).QueuedQueries[0].Arguments
		})
		if plan.Rows != batch {
			t.Fatalf("the completion wrote %d tasks, want %d", plan.Rows, batch)
		}
		if blocks := plan.Hit + plan.Read; blocks > 400 {
			t.Errorf("completing %d of %d tasks with a plan made while their partition was empty read %d blocks, want under 400", batch, n, blocks)
		}
	})
}

// planAfter makes sql's generic plan on one connection, under settings (a
// statement run first in each transaction), while the rotating partition
// tasks_g2 is empty and analyzed; then runs fill, which adds rows but
// changes no table's shape, so the plan stays cached; and returns EXPLAIN
// ANALYZE of sql through that plan with fill's arguments, rolled back.
func planAfter(t *testing.T, db *pgtest.DB, settings, sql string, args []any, fill func() []any) planNode {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "ANALYZE "+partitionTable(db.Schema, "tasks", 2)); err != nil {
		t.Fatal(err)
	}
	desc, err := conn.Conn().Prepare(ctx, "cached", sql)
	if err != nil {
		t.Fatal(err)
	}
	// EXECUTE takes no parameters of the extended protocol: the arguments
	// go in as literals, each rendered by the server from its type.
	execute := func(args []any) string {
		lits := make([]string, len(args))
		for i, a := range args {
			var typ string
			if err := conn.QueryRow(ctx, "SELECT format_type($1, NULL)", desc.ParamOIDs[i]).Scan(&typ); err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRow(ctx, "SELECT quote_nullable($1::"+typ+")", a).Scan(&lits[i]); err != nil {
				t.Fatalf("argument %d (%s): %v", i+1, typ, err)
			}
		}
		return "EXECUTE cached(" + strings.Join(lits, ", ") + ")"
	}
	var out []byte
	inTx := func(stmt string, scan bool) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		if _, err := tx.Exec(ctx, settings); err != nil {
			t.Fatal(err)
		}
		if !scan {
			_, err = tx.Exec(ctx, stmt)
		} else {
			err = tx.QueryRow(ctx, stmt).Scan(&out)
		}
		if err != nil {
			t.Fatalf("%.60s: %v", stmt, err)
		}
	}
	inTx("EXPLAIN "+execute(args), false) // makes and caches the generic plan; runs nothing
	inTx("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+execute(fill()), true)
	var plans []explained
	if err := json.Unmarshal(out, &plans); err != nil {
		t.Fatal(err)
	}
	return plans[0].Plan
}

// TestClaimLeavesATwinInAnotherPartition: ids are unique within a partition
// of tasks, not across them; a task enqueued with a preset id that another
// partition's task already has (a repeat of a finished task) lives in
// tasks_g0 beside it. A claim that locks one of the two, and another task of
// the twin's partition, must not move the twin.
func TestClaimLeavesATwinInAnotherPartition(t *testing.T) {
	t.Parallel()
	ctx, db, e := engineTest(t, EventsDefault)
	rotating := insertN(t, e, db, 1, nil)[0]
	sticky := insertN(t, e, db, 1, func(int) *jobs.InsertOpts { return &jobs.InsertOpts{ID: uuid.Must(uuid.NewV7())} })[0]
	// The twin: the rotating task's id, finished, in tasks_g0.
	if _, err := db.Pool.Exec(ctx, "INSERT INTO "+db.Table("tasks")+
		` (id, kind, queue, status, attempt, completed_at) VALUES ($1, 'bench', $2, 'success', 1, now())`, rotating, DefaultQueue); err != nil {
		t.Fatal(err)
	}
	claimed := claimAll(t, newProducer(e, DefaultQueue, 10), 10)
	got := map[uuid.UUID]int16{}
	for _, row := range claimed {
		got[row.ID] = row.Partition
	}
	if len(claimed) != 2 || got[rotating] == 0 || got[sticky] != 0 {
		t.Fatalf("claimed %v (id: partition), want the rotating task and the sticky one", got)
	}
	var status string
	var attempt int
	if err := db.Pool.QueryRow(ctx, "SELECT status, attempt FROM "+db.Table("tasks")+" WHERE id = $1 AND gen = 0", rotating).
		Scan(&status, &attempt); err != nil {
		t.Fatal(err)
	}
	if status != "success" || attempt != 1 {
		t.Fatalf("the twin in tasks_g0 after the claim: %s, attempt %d; want success, attempt 1 (untouched)", status, attempt)
	}
}
