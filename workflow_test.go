package omniq_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

type stepArgs struct {
	Name string `json:"name"`
	Fail bool   `json:"fail,omitempty"`
}

func (stepArgs) Kind() string { return "step" }

// stepLog records when each task started and finished.
type stepLog struct {
	omniq.WorkerDefaults[stepArgs]
	mu       sync.Mutex
	started  map[uuid.UUID]time.Time
	finished map[uuid.UUID]time.Time
	order    []string
}

func newStepLog() *stepLog {
	return &stepLog{started: map[uuid.UUID]time.Time{}, finished: map[uuid.UUID]time.Time{}}
}

func (l *stepLog) Work(ctx context.Context, t *omniq.Task[stepArgs]) error {
	l.mu.Lock()
	l.started[t.ID] = time.Now()
	l.order = append(l.order, t.Args.Name)
	l.mu.Unlock()
	if t.Args.Fail {
		return omniq.NoRetry(errors.New("step " + t.Args.Name + " failed"))
	}
	t.SetResult(t.Args.Name + " done")
	l.mu.Lock()
	l.finished[t.ID] = time.Now()
	l.mu.Unlock()
	return nil
}

func stepClient(t *testing.T, db *pgtest.DB, log *stepLog) *omniq.Client {
	w := omniq.NewWorkers()
	omniq.AddWorker[stepArgs](w, log)
	return newClient(t, db, w, nil)
}

func newID(t testing.TB) uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func step(name string, id uuid.UUID, deps ...uuid.UUID) omniq.EnqueueParams {
	return omniq.EnqueueParams{Args: stepArgs{Name: name}, Opts: &omniq.InsertOpts{ID: id, DependsOn: deps}}
}

func TestDependenciesChainFanOutFanIn(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	log := newStepLog()
	c := stepClient(t, db, log)
	ctx := context.Background()
	a, b, c1, c2, c3, d := newID(t), newID(t), newID(t), newID(t), newID(t), newID(t)
	// a → b → {c1, c2, c3} → d
	res, err := c.EnqueueMany(ctx, []omniq.EnqueueParams{
		step("d", d, c1, c2, c3), step("c1", c1, b), step("c2", c2, b), step("c3", c3, b), step("b", b, a), step("a", a),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []omniq.Status{omniq.StatusWaiting, omniq.StatusWaiting, omniq.StatusWaiting, omniq.StatusWaiting, omniq.StatusWaiting, omniq.StatusPending}
	for i, r := range res {
		if r.Status != want[i] {
			t.Fatalf("task %d inserted %s, want %s", i, r.Status, want[i])
		}
	}
	start(t, c)
	waitStatus(t, c, d, omniq.StatusSuccess, 15*time.Second)
	log.mu.Lock()
	defer log.mu.Unlock()
	order := strings.Join(log.order, ",")
	if !strings.HasPrefix(order, "a,b,") || !strings.HasSuffix(order, ",d") || len(log.order) != 6 {
		t.Fatalf("ran in order %s", order)
	}
}

func TestDependenciesDAGOfAThousandNodes(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	log := newStepLog()
	c := stepClient(t, db, log)
	ctx := context.Background()
	const n = 1000
	ids := make([]uuid.UUID, n)
	deps := make([][]uuid.UUID, n)
	params := make([]omniq.EnqueueParams, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range ids {
		ids[i] = newID(t)
		for k := 0; k < 3 && i > 0; k++ {
			deps[i] = append(deps[i], ids[rng.IntN(i)])
		}
	}
	// Enqueue in shuffled order: the batch resolves the graph itself.
	for j, i := range rng.Perm(n) {
		params[j] = step(fmt.Sprint(i), ids[i], deps[i]...)
	}
	if _, err := c.EnqueueMany(ctx, params); err != nil {
		t.Fatal(err)
	}
	start(t, c)
	waitFor(t, 60*time.Second, "the DAG to finish", func() bool {
		var done int
		err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Table("tasks")+" WHERE status = 'success'").Scan(&done)
		return err == nil && done == n
	})
	log.mu.Lock()
	defer log.mu.Unlock()
	for i := range ids {
		for _, d := range deps[i] {
			if log.started[ids[i]].Before(log.finished[d]) {
				t.Fatalf("node %d started before its dependency %s finished", i, d)
			}
		}
	}
}

func TestDependencyFailureCancelsDependentsUnlessRunAnyway(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	log := newStepLog()
	c := stepClient(t, db, log)
	ctx := context.Background()
	a, b, cc, join := newID(t), newID(t), newID(t), newID(t)
	_, err := c.EnqueueMany(ctx, []omniq.EnqueueParams{
		{Args: stepArgs{Name: "a", Fail: true}, Opts: &omniq.InsertOpts{ID: a}},
		step("b", b, a),
		step("c", cc, b),
		{Args: stepArgs{Name: "join"}, Opts: &omniq.InsertOpts{ID: join, DependsOn: []uuid.UUID{a, b}, RunAnyway: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	waitStatus(t, c, a, omniq.StatusError, 10*time.Second)
	for _, id := range []uuid.UUID{b, cc} {
		row := waitStatus(t, c, id, omniq.StatusCancelled, 10*time.Second)
		if len(row.Errors) == 0 || !strings.Contains(row.Errors[len(row.Errors)-1].Error, "did not succeed") {
			t.Fatalf("cancelled dependent has errors %+v, want the reason", row.Errors)
		}
	}
	waitStatus(t, c, join, omniq.StatusSuccess, 10*time.Second)
	// A dependent enqueued after its dependency failed is cancelled at once.
	res, err := c.Enqueue(ctx, stepArgs{Name: "late"}, &omniq.InsertOpts{DependsOn: []uuid.UUID{a}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != omniq.StatusCancelled {
		t.Fatalf("late dependent of a failed task inserted %s, want cancelled", res.Status)
	}
	// And one whose dependency already succeeded is runnable at once.
	res, err = c.Enqueue(ctx, stepArgs{Name: "after-join"}, &omniq.InsertOpts{DependsOn: []uuid.UUID{join}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != omniq.StatusPending {
		t.Fatalf("dependent of a finished task inserted %s, want pending", res.Status)
	}
}

func TestCancelWaitingDependencyCancelsDependents(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := stepClient(t, db, newStepLog())
	ctx := context.Background()
	a, b := newID(t), newID(t)
	if _, err := c.EnqueueMany(ctx, []omniq.EnqueueParams{
		{Args: stepArgs{Name: "a"}, Opts: &omniq.InsertOpts{ID: a, RunIn: time.Hour}},
		step("b", b, a),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cancel(ctx, a); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, b, omniq.StatusCancelled, 5*time.Second)
}

// A dependency finishing while its dependent is being inserted must never
// leave the dependent waiting forever.
func TestDependencyRaceNeverStrandsADependent(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := stepClient(t, db, newStepLog())
	ctx := context.Background()
	start(t, c)
	const pairs = 2000
	var wg sync.WaitGroup
	errs := make(chan error, pairs)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < pairs/4; i++ {
				parent, err := c.Enqueue(ctx, stepArgs{Name: "p"}, nil)
				if err != nil {
					errs <- err
					return
				}
				// The parent is running or finishing right now.
				if _, err := c.Enqueue(ctx, stepArgs{Name: "child"}, &omniq.InsertOpts{DependsOn: []uuid.UUID{parent.ID}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			rows, _ := db.Pool.Query(ctx, "SELECT kind, status, attempt, depends_on::text, (SELECT string_agg(status, ',') FROM "+db.Table("tasks")+" d WHERE d.id = ANY(t.depends_on)) FROM "+db.Table("tasks")+" t WHERE status <> 'success' LIMIT 5")
			for rows.Next() {
				v, _ := rows.Values()
				t.Log(v...)
			}
		}
	}()
	waitFor(t, 60*time.Second, "every task to succeed", func() bool {
		var open int
		err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Table("tasks")+" WHERE status <> 'success'").Scan(&open)
		return err == nil && open == 0
	})
}

func TestDependencyGraphErrorsWriteNothing(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := stepClient(t, db, newStepLog())
	ctx := context.Background()
	a, b, self := newID(t), newID(t), newID(t)
	cases := map[string][]omniq.EnqueueParams{
		"cycle":        {step("a", a, b), step("b", b, a)},
		"self":         {step("self", self, self)},
		"unknown id":   {step("a", a, uuid.New())},
		"duplicate id": {step("a", a), step("a2", a)},
	}
	for name, params := range cases {
		_, err := c.EnqueueMany(ctx, params)
		if !errors.Is(err, omniq.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
	if n := countTasks(t, db); n != 0 {
		t.Fatalf("rejected graphs wrote %d tasks", n)
	}
}

type notifyArgs struct {
	Note string `json:"note"`
}

func (notifyArgs) Kind() string { return "notify" }

func TestCallbacksFireOncePerParent(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var mu sync.Mutex
	var got []map[string]any
	log := newStepLog()
	w := omniq.NewWorkers()
	omniq.AddWorker[stepArgs](w, log)
	omniq.AddWorker(w, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[notifyArgs]) error {
		mu.Lock()
		got = append(got, map[string]any{"note": t.Args.Note, "parent": t.Metadata["parent_id"],
			"status": t.Metadata["parent_status"], "result": t.Metadata["parent_result"]})
		mu.Unlock()
		return nil
	}))
	c := newClient(t, db, w, nil)
	ctx := context.Background()
	onSuccess, err := c.NewCallback(notifyArgs{Note: "ok"}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	onFailure, err := c.NewCallback(notifyArgs{Note: "failed"}, "", true)
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.Enqueue(ctx, stepArgs{Name: "good"}, &omniq.InsertOpts{Callback: onSuccess})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := c.Enqueue(ctx, stepArgs{Name: "bad", Fail: true}, &omniq.InsertOpts{Callback: onFailure})
	if err != nil {
		t.Fatal(err)
	}
	silent, err := c.Enqueue(ctx, stepArgs{Name: "silent", Fail: true}, &omniq.InsertOpts{Callback: onSuccess})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	waitFor(t, 10*time.Second, "two callbacks", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	waitStatus(t, c, silent.ID, omniq.StatusError, 10*time.Second)

	// Running the parent again does not fire its callback a second time.
	if err := c.Retry(ctx, good.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the retried parent", func() bool {
		row, err := c.Task(ctx, good.ID)
		return err == nil && row.Status == omniq.StatusSuccess && row.Attempt == 2
	})
	var callbacks int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Table("tasks")+" WHERE kind = 'notify'").Scan(&callbacks); err != nil {
		t.Fatal(err)
	}
	if callbacks != 2 {
		t.Fatalf("%d callback tasks, want 2", callbacks)
	}
	mu.Lock()
	defer mu.Unlock()
	byNote := map[string]map[string]any{}
	for _, g := range got {
		byNote[g["note"].(string)] = g
	}
	if ok := byNote["ok"]; ok["parent"] != good.ID.String() || ok["status"] != "success" || ok["result"] != "good done" {
		t.Fatalf("success callback saw %v", ok)
	}
	if f := byNote["failed"]; f["parent"] != bad.ID.String() || f["status"] != "error" {
		t.Fatalf("failure callback saw %v", f)
	}
}

func TestWaitResultManyWaiters(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := stepClient(t, db, newStepLog())
	ctx := context.Background()
	const n = 10000
	params := make([]omniq.EnqueueParams, n)
	for i := range params {
		params[i] = omniq.EnqueueParams{Args: stepArgs{Name: fmt.Sprint(i)}}
	}
	var res []omniq.EnqueueResult
	for i := 0; i < n; i += 1000 {
		r, err := c.EnqueueMany(ctx, params[i:i+1000])
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r...)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, r := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.WaitResult(waitCtx, r.ID)
			if err != nil {
				errs <- err
				return
			}
			var v string
			if err := c.DecodeResult(got, &v); err != nil || v != fmt.Sprint(i)+" done" {
				errs <- fmt.Errorf("task %d: result %q, %v", i, v, err)
			}
		}()
	}
	start(t, c)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// An unknown task and a cancelled context return at once.
	if _, err := c.WaitResult(ctx, uuid.New()); !errors.Is(err, omniq.ErrNotFound) {
		t.Fatalf("WaitResult of an unknown task: %v", err)
	}
	done, cancelNow := context.WithCancel(ctx)
	cancelNow()
	pending, err := c.Enqueue(ctx, stepArgs{Name: "later"}, &omniq.InsertOpts{RunIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitResult(done, pending.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitResult with a cancelled context: %v", err)
	}
}

type payArgs struct {
	Order    int  `json:"order"`
	Rollback bool `json:"rollback"`
}

func (payArgs) Kind() string { return "pay" }

func TestCompleteTxCommitsWithTheBusinessWrite(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	db.Exec(t, "CREATE TABLE "+db.Table("payments")+" (order_id int PRIMARY KEY)")
	w := omniq.NewWorkers()
	omniq.AddWorker(w, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[payArgs]) error {
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "INSERT INTO "+db.Table("payments")+" VALUES ($1)", t.Args.Order); err != nil {
			return err
		}
		if err := omniq.CompleteTx(ctx, tx, t, map[string]int{"paid": t.Args.Order}); err != nil {
			return err
		}
		if t.Args.Rollback && t.Attempt == 1 {
			return errors.New("rolled back after CompleteTx")
		}
		return tx.Commit(ctx)
	}))
	c := newClient(t, db, w, nil)
	ctx := context.Background()
	committed, err := c.Enqueue(ctx, payArgs{Order: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rolledBack, err := c.Enqueue(ctx, payArgs{Order: 2, Rollback: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	waitStatus(t, c, committed.ID, omniq.StatusSuccess, 10*time.Second)
	r, err := c.Result(ctx, committed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Value) != `{"paid": 1}` {
		t.Fatalf("result %s", r.Value)
	}
	// The first attempt's completion rolled back with its payment: the task
	// was retried, and the second attempt committed both.
	row := waitStatus(t, c, rolledBack.ID, omniq.StatusSuccess, 10*time.Second)
	if row.Attempt != 2 {
		t.Fatalf("attempt %d, want 2", row.Attempt)
	}
	var payments int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Table("payments")).Scan(&payments); err != nil {
		t.Fatal(err)
	}
	if payments != 2 {
		t.Fatalf("%d payments, want 2", payments)
	}
	if err := omniq.CompleteTx(ctx, pgx.Tx(nil), &omniq.Task[payArgs]{}, nil); err == nil {
		t.Fatal("CompleteTx with a nil tx succeeded")
	}
}

func TestEnqueueFromSQLIsPickedUpByNotify(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	log := newStepLog()
	w := omniq.NewWorkers()
	omniq.AddWorker[stepArgs](w, log)
	c := newClient(t, db, w, func(c *omniq.Config) { c.FetchPollInterval = time.Hour })
	start(t, c)
	ctx := context.Background()
	fn := pgx.Identifier{db.Schema, "enqueue"}.Sanitize()
	var id uuid.UUID
	err := db.Pool.QueryRow(ctx, `SELECT `+fn+`('step', '{"name": "from-sql"}', priority => 3, tags => '{sql}')`).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	// The poll interval is an hour: only the function's NOTIFY wakes the worker.
	row := waitStatus(t, c, id, omniq.StatusSuccess, 10*time.Second)
	if row.Priority != 3 || len(row.Tags) != 1 || row.Tags[0] != "sql" || id.Version() != 7 {
		t.Fatalf("task from SQL: %+v (id version %d)", row, id.Version())
	}
	for _, bad := range []struct{ call, want string }{
		{`('')`, "invalid kind"},
		{`('step', queue => 'no spaces')`, "invalid queue"},
		{`('step', priority => 99999)`, "invalid priority"},
		{`('step', max_attempts => 0)`, "invalid max_attempts"},
		{`('step', args => NULL)`, "invalid args"},
		{`('step', timeout => '-1s')`, "invalid timeout"},
	} {
		_, err := db.Pool.Exec(ctx, `SELECT `+fn+bad.call)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("enqueue%s: %v, want %q", bad.call, err, bad.want)
		}
	}
	var n int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+db.Table("tasks")).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d tasks after rejected calls (%v), want 1", n, err)
	}
}
