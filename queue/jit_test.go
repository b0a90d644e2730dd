package queue

import (
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
