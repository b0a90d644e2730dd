package queue

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

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

// TestClaimPlanMadeOverAnEmptyPartition: the claim's generic plan is made
// once per connection and kept until a partition of tasks changes shape, so
// it is often made while the next rotating partition is empty, and an
// ANALYZE of that empty partition (autovacuum's, or a VACUUM ANALYZE) tells
// the planner it holds nothing. The plan must still look the claimed tasks
// up by key once that partition has filled. Its first form joined the
// locked tasks to tasks and, over a partition planned as empty, scanned the
// whole partition for each locked task: in a long-horizon run the claims of
// the minute after such an ANALYZE took 100 tasks/s of 1,000 offered.
func TestClaimPlanMadeOverAnEmptyPartition(t *testing.T) {
	t.Parallel()
	ctx, db, e := engineTest(t, EventsDefault)
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	empty := partitionTable(db.Schema, "tasks", 2)
	if _, err := conn.Exec(ctx, "ANALYZE "+empty); err != nil {
		t.Fatal(err)
	}
	sql, args := newProducer(e, DefaultQueue, 10).claimStatement(10)
	if _, err := conn.Exec(ctx, `SELECT set_config('plan_cache_mode', 'force_generic_plan', false),
		set_config('enable_seqscan', 'off', false), set_config('enable_hashjoin', 'off', false),
		set_config('enable_mergejoin', 'off', false), set_config('jit', 'off', false)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "PREPARE claim AS "+sql); err != nil {
		t.Fatal(err)
	}
	// EXPLAIN without ANALYZE makes and caches the generic plan, claiming
	// nothing. EXECUTE takes no parameters of the extended protocol, so
	// format renders the claim's arguments (queue, count, client) as literals.
	if len(args) != 3 {
		t.Fatalf("a new producer's claim has %d arguments, want 3 (no cursors)", len(args))
	}
	var execute string
	if err := conn.QueryRow(ctx, "SELECT format('EXECUTE claim(%L, %s, %L)', $1::text, $2::int, $3::text)", args...).Scan(&execute); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "EXPLAIN "+execute); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	if _, err := db.Pool.Exec(ctx, "INSERT INTO "+empty+` (id, kind, queue, gen, run_at)
		SELECT gen_random_uuid(), 'bench', $1, 2, now() - interval '1 minute' FROM generate_series(1, $2)`, DefaultQueue, n); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	var out []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+execute).Scan(&out); err != nil {
		t.Fatal(err)
	}
	var plans []explained
	if err := json.Unmarshal(out, &plans); err != nil {
		t.Fatal(err)
	}
	plan := plans[0].Plan
	if plan.Rows != 10 {
		t.Fatalf("the claim took %d tasks, want 10", plan.Rows)
	}
	// By key, 10 tasks cost under 200 blocks (the root's count includes its
	// children's); a scan of the partition per task cost 79,221.
	if blocks := plan.Hit + plan.Read; blocks > 400 {
		t.Errorf("claiming 10 of %d tasks with a plan made while their partition was empty read %d blocks, want under 400", n, blocks)
	}
}
