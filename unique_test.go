package omniq_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

type uniqArgs struct {
	Customer int64  `json:"customer"`
	Note     string `json:"note"`
}

func (uniqArgs) Kind() string { return "uniq" }

func mustEnqueue(t *testing.T, c *omniq.Client, args omniq.Args, opts *omniq.InsertOpts) *omniq.EnqueueResult {
	t.Helper()
	res, err := c.Enqueue(context.Background(), args, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// expectDup checks that second is a duplicate of first.
func expectDup(t *testing.T, what string, first, second *omniq.EnqueueResult) {
	t.Helper()
	if first.Duplicate {
		t.Fatalf("%s: the first enqueue was flagged duplicate", what)
	}
	if !second.Duplicate || second.ID != first.ID {
		t.Fatalf("%s: second enqueue = %+v, want a duplicate of %s", what, second, first.ID)
	}
}

func expectNew(t *testing.T, what string, first, second *omniq.EnqueueResult) {
	t.Helper()
	if first.Duplicate || second.Duplicate || first.ID == second.ID {
		t.Fatalf("%s: %+v and %+v, want two new tasks", what, first, second)
	}
}

func TestUniqueConcurrentEnqueuesYieldOneTask(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, nil)
	const goroutines = 64
	opts := &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true}}
	var (
		wg      sync.WaitGroup
		gate    = make(chan struct{})
		results = make([]*omniq.EnqueueResult, goroutines)
		errs    = make([]error, goroutines)
	)
	for i := range goroutines {
		wg.Go(func() {
			<-gate
			ctx := context.Background()
			if i%2 == 0 {
				results[i], errs[i] = c.Enqueue(ctx, uniqArgs{Customer: 7}, opts)
				return
			}
			// Half inside transactions of their own.
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			defer tx.Rollback(ctx) //nolint:errcheck
			if results[i], errs[i] = c.EnqueueTx(ctx, tx, uniqArgs{Customer: 7}, opts); errs[i] == nil {
				errs[i] = tx.Commit(ctx)
			}
		})
	}
	close(gate)
	wg.Wait()
	inserted := 0
	ids := map[uuid.UUID]bool{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("enqueue %d: %v", i, errs[i])
		}
		ids[r.ID] = true
		if !r.Duplicate {
			inserted++
		}
	}
	if n := countTasks(t, db); n != 1 || inserted != 1 || len(ids) != 1 {
		t.Fatalf("%d tasks, %d enqueues not flagged duplicate, %d distinct ids; want 1, 1, 1", n, inserted, len(ids))
	}
}

func TestUniqueBy(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, nil)

	t.Run("kind only", func(t *testing.T) {
		o := &omniq.InsertOpts{Queue: "kindonly", Unique: &omniq.UniqueOpts{}}
		first := mustEnqueue(t, c, otherArgs{X: 1}, o)
		expectDup(t, "other args, same kind", first, mustEnqueue(t, c, otherArgs{X: 2}, o))
	})
	t.Run("args", func(t *testing.T) {
		o := &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true}}
		first := mustEnqueue(t, c, uniqArgs{Customer: 1, Note: "a"}, o)
		expectDup(t, "same args", first, mustEnqueue(t, c, uniqArgs{Customer: 1, Note: "a"}, o))
		expectNew(t, "other args", first, mustEnqueue(t, c, uniqArgs{Customer: 1, Note: "b"}, o))
		// Ids beyond float64 precision must not collide.
		big := mustEnqueue(t, c, uniqArgs{Customer: 1 << 60}, o)
		expectNew(t, "args differing beyond 2^53", big, mustEnqueue(t, c, uniqArgs{Customer: 1<<60 + 1}, o))
	})
	t.Run("chosen fields", func(t *testing.T) {
		o := &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true, ArgsFields: []string{"customer"}}}
		first := mustEnqueue(t, c, uniqArgs{Customer: 2, Note: "a"}, o)
		expectDup(t, "same field, other note", first, mustEnqueue(t, c, uniqArgs{Customer: 2, Note: "zzz"}, o))
		expectNew(t, "other field", first, mustEnqueue(t, c, uniqArgs{Customer: 3, Note: "a"}, o))
		// ArgsFields alone means by those fields.
		o2 := &omniq.InsertOpts{Queue: "fieldsonly", Unique: &omniq.UniqueOpts{ArgsFields: []string{"customer"}}}
		f2 := mustEnqueue(t, c, uniqArgs{Customer: 8, Note: "a"}, o2)
		expectDup(t, "ArgsFields without ByArgs, same field", f2, mustEnqueue(t, c, uniqArgs{Customer: 8, Note: "b"}, o2))
		expectNew(t, "ArgsFields without ByArgs, other field", f2, mustEnqueue(t, c, uniqArgs{Customer: 9}, o2))
	})
	t.Run("queue", func(t *testing.T) {
		byQueue := func(q string) *omniq.InsertOpts {
			return &omniq.InsertOpts{Queue: q, Unique: &omniq.UniqueOpts{ByArgs: true, ByQueue: true}}
		}
		first := mustEnqueue(t, c, uniqArgs{Customer: 4}, byQueue("q1"))
		expectDup(t, "same queue", first, mustEnqueue(t, c, uniqArgs{Customer: 4}, byQueue("q1")))
		expectNew(t, "other queue", first, mustEnqueue(t, c, uniqArgs{Customer: 4}, byQueue("q2")))
		// Without ByQueue the queue does not matter.
		o := func(q string) *omniq.InsertOpts {
			return &omniq.InsertOpts{Queue: q, Unique: &omniq.UniqueOpts{ByArgs: true}}
		}
		f := mustEnqueue(t, c, uniqArgs{Customer: 5}, o("q1"))
		expectDup(t, "other queue, not by queue", f, mustEnqueue(t, c, uniqArgs{Customer: 5}, o("q2")))
	})
	t.Run("period", func(t *testing.T) {
		hour := time.Now().Add(24 * time.Hour).Truncate(time.Hour)
		o := func(at time.Time) *omniq.InsertOpts {
			return &omniq.InsertOpts{RunAt: at, Unique: &omniq.UniqueOpts{ByArgs: true, ByPeriod: time.Hour}}
		}
		first := mustEnqueue(t, c, uniqArgs{Customer: 6}, o(hour.Add(time.Minute)))
		expectDup(t, "same hour", first, mustEnqueue(t, c, uniqArgs{Customer: 6}, o(hour.Add(59*time.Minute))))
		expectNew(t, "next hour", first, mustEnqueue(t, c, uniqArgs{Customer: 6}, o(hour.Add(61*time.Minute))))
	})
	t.Run("invalid status sets", func(t *testing.T) {
		for _, states := range [][]omniq.Status{
			{omniq.StatusPending},
			{omniq.StatusPending, omniq.StatusWaiting, omniq.StatusRetry}, // no running
			{"bogus"},
		} {
			_, err := c.Enqueue(context.Background(), uniqArgs{}, &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByStatus: states}})
			if !errors.Is(err, omniq.ErrInvalidInput) {
				t.Errorf("ByStatus %v: err %v, want ErrInvalidInput", states, err)
			}
		}
	})
}

func TestUniqueByStatus(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	rec := &recorder{}
	c := newClient(t, db, workersWith(rec), nil)
	start(t, c)
	ctx := context.Background()
	unfinished := []omniq.Status{omniq.StatusPending, omniq.StatusWaiting, omniq.StatusRunning, omniq.StatusRetry}
	byDefault := &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true}}
	whileUnfinished := &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true, ByStatus: unfinished}}

	// Default statuses include success: a finished task still blocks.
	first := mustEnqueue(t, c, echoArgs{N: 1}, byDefault)
	waitStatus(t, c, first.ID, omniq.StatusSuccess, 10*time.Second)
	expectDup(t, "after success, default statuses", first, mustEnqueue(t, c, echoArgs{N: 1}, byDefault))

	// Unique only while unfinished: once it succeeded, a new one goes in.
	a := mustEnqueue(t, c, echoArgs{N: 2}, whileUnfinished)
	waitStatus(t, c, a.ID, omniq.StatusSuccess, 10*time.Second)
	expectNew(t, "after success, unfinished statuses", a, mustEnqueue(t, c, echoArgs{N: 2}, whileUnfinished))

	// A cancelled task is not among the default statuses.
	later := &omniq.InsertOpts{RunIn: time.Hour, Unique: &omniq.UniqueOpts{ByArgs: true}}
	p := mustEnqueue(t, c, echoArgs{N: 3}, later)
	expectDup(t, "pending", p, mustEnqueue(t, c, echoArgs{N: 3}, later))
	if _, err := c.Cancel(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	expectNew(t, "after cancel", p, mustEnqueue(t, c, echoArgs{N: 3}, later))
}

func TestUniqueInTransactions(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, nil)
	ctx := context.Background()
	o := &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true}}

	// A rolled-back unique task blocks nothing.
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rolled, err := c.EnqueueTx(ctx, tx, uniqArgs{Customer: 1}, o)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.EnqueueTx(ctx, tx, uniqArgs{Customer: 1}, o)
	if err != nil {
		t.Fatal(err)
	}
	expectDup(t, "twice in one transaction", rolled, again)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	after := mustEnqueue(t, c, uniqArgs{Customer: 1}, o)
	if after.Duplicate || after.ID == rolled.ID {
		t.Fatalf("after rollback: %+v, want a new task", after)
	}

	// A concurrent transaction waits for the first to decide.
	tx1, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(ctx) //nolint:errcheck
	r1, err := c.EnqueueTx(ctx, tx1, uniqArgs{Customer: 2}, o)
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan *omniq.EnqueueResult, 1)
	go func() {
		r, err := c.Enqueue(ctx, uniqArgs{Customer: 2}, o)
		if err != nil {
			t.Error(err)
		}
		second <- r
	}()
	waitFor(t, 10*time.Second, "the second enqueue to wait on the first's row", func() bool {
		// A backend waiting on a lock that holds one on a table of this
		// test's schema (the query text, cut at 1kB, may not name it).
		return pgtest.Scalar[int](t, db.Pool, `SELECT count(*) FROM pg_locks w WHERE NOT w.granted AND EXISTS (
			SELECT 1 FROM pg_locks r JOIN pg_class c ON c.oid = r.relation JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE r.pid = w.pid AND n.nspname = $1)`, db.Schema) > 0
	})
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	expectDup(t, "concurrent transaction", r1, <-second)
}

func TestUniqueInBatches(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, nil)
	ctx := context.Background()
	u := &omniq.UniqueOpts{ByArgs: true}
	idA := uuid.Must(uuid.NewV7())
	idDup := uuid.Must(uuid.NewV7())
	res, err := c.EnqueueMany(ctx, []omniq.EnqueueParams{
		{Args: uniqArgs{Customer: 1}, Opts: &omniq.InsertOpts{ID: idA, Unique: u}},
		{Args: uniqArgs{Customer: 2}, Opts: &omniq.InsertOpts{Unique: u}},
		{Args: uniqArgs{Customer: 1}, Opts: &omniq.InsertOpts{ID: idDup, Unique: u}}, // same as the first
		{Args: uniqArgs{Customer: 3}},                                                // not unique
		{Args: uniqArgs{Customer: 3}},
		// Depends on the dropped duplicate: must wait for the first instead.
		{Args: uniqArgs{Customer: 4}, Opts: &omniq.InsertOpts{DependsOn: []uuid.UUID{idDup}}},
	})
	if err != nil {
		t.Fatalf("batch with a repeated unique task: %v", err)
	}
	if res[0].Duplicate || res[0].ID != idA || res[1].Duplicate {
		t.Fatalf("results %+v", res)
	}
	expectDup(t, "repeat within a batch", &res[0], &res[2])
	if res[3].Duplicate || res[4].Duplicate || res[3].ID == res[4].ID {
		t.Fatalf("non-unique tasks: %+v, %+v", res[3], res[4])
	}
	if n := countTasks(t, db); n != 5 {
		t.Fatalf("%d tasks, want 5", n)
	}
	dep, err := c.Task(ctx, res[5].ID)
	if err != nil {
		t.Fatal(err)
	}
	if dep.Status != omniq.StatusWaiting || len(dep.DependsOn) != 1 || dep.DependsOn[0] != idA {
		t.Fatalf("dependent of the dropped duplicate: status %s, depends on %v; want waiting on %s", dep.Status, dep.DependsOn, idA)
	}

	// A batch repeating a stored task twice: both are duplicates of it.
	res2, err := c.EnqueueMany(ctx, []omniq.EnqueueParams{
		{Args: uniqArgs{Customer: 1}, Opts: &omniq.InsertOpts{Unique: u}},
		{Args: uniqArgs{Customer: 1}, Opts: &omniq.InsertOpts{Unique: u}},
		{Args: uniqArgs{Customer: 5}, Opts: &omniq.InsertOpts{Unique: u}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res2[0].Duplicate || !res2[1].Duplicate || res2[0].ID != idA || res2[1].ID != idA || res2[2].Duplicate {
		t.Fatalf("second batch: %+v", res2)
	}

	// In a caller's transaction too.
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	res3, err := c.EnqueueManyTx(ctx, tx, []omniq.EnqueueParams{
		{Args: uniqArgs{Customer: 6}, Opts: &omniq.InsertOpts{Unique: u}},
		{Args: uniqArgs{Customer: 6}, Opts: &omniq.InsertOpts{Unique: u}},
	})
	if err != nil {
		t.Fatal(err)
	}
	expectDup(t, "repeat within a batch in a transaction", &res3[0], &res3[1])
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countTasks(t, db); n != 7 {
		t.Fatalf("%d tasks, want 7", n)
	}
}
