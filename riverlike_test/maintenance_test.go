package riverlike_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// Finished tasks (done, given up, cancelled) are deleted once older than the
// retention, by the clients' own maintenance, with no call from the
// application; unfinished tasks stay. OmniQ has one FinishedRetention
// (default 24h); River has one per state (completed and cancelled 24h,
// discarded 7 days).
// River: https://riverqueue.com/docs/maintenance-services (Cleaner)
func TestFinishedTasksArePrunedAfterRetention(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		if t.Args.Msg == "fail" {
			return errors.New("fail")
		}
		return nil
	}), func(cfg *omniq.Config) {
		cfg.FinishedRetention = 300 * time.Millisecond
	})
	done := enqueue(t, c, jobArgs{}, nil)
	failed := enqueue(t, c, jobArgs{Msg: "fail"}, &omniq.InsertOpts{MaxAttempts: 1})
	cancelled := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{RunIn: time.Hour})
	if _, err := c.Cancel(ctx, cancelled.ID); err != nil {
		t.Fatal(err)
	}
	waiting := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{RunIn: time.Hour})
	start(t, c)
	for _, id := range []uuid.UUID{done.ID, failed.ID, cancelled.ID} {
		waitFor(t, waitTimeout, "a finished task to be pruned", func() bool {
			_, err := c.Task(ctx, id)
			if err != nil && !errors.Is(err, omniq.ErrNotFound) {
				t.Fatal(err)
			}
			return errors.Is(err, omniq.ErrNotFound)
		})
	}
	if row := task(t, c, waiting.ID); row.Status != omniq.StatusPending {
		t.Fatalf("unfinished task is %s", row.Status)
	}
}

type tickArgs struct{}

func (tickArgs) Kind() string { return "riverlike_tick" }

// A periodic task declared in every client's config is enqueued once per
// tick, not once per client. OmniQ keeps schedules as rows fired
// transactionally by any client; River's periodic enqueuer runs on the
// elected leader only.
// River: https://riverqueue.com/docs/periodic-jobs
func TestPeriodicTaskFiresOncePerTickAcrossClients(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	var ran record[uuid.UUID]
	spec := omniq.ScheduleSpec{Name: "every-second", Cron: "*/1 * * * * *", Backfill: 3, Args: tickArgs{}}
	clients := make([]*omniq.Client, 3)
	for i := range clients {
		w := omniq.NewWorkers()
		omniq.AddWorker(w, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[tickArgs]) error {
			ran.add(t.ID)
			return nil
		}))
		clients[i] = newClient(t, db, w, func(cfg *omniq.Config) { cfg.Schedules = []omniq.ScheduleSpec{spec} })
		start(t, clients[i])
	}
	const ticks = 3
	waitFor(t, waitTimeout, "three ticks to run", func() bool { return ran.len() >= ticks })
	if _, err := clients[0].CancelSchedule(ctx, spec.Name); err != nil {
		t.Fatal(err)
	}
	sc, err := clients[1].Schedule(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := clients[2].Tasks(ctx, omniq.TaskFilter{ScheduleID: &sc.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != sc.RunCount || len(tasks) < ticks {
		t.Fatalf("%d tasks for %d runs of the schedule", len(tasks), sc.RunCount)
	}
	seen := map[time.Time]bool{}
	for _, tk := range tasks {
		if tk.ScheduledAt == nil || seen[*tk.ScheduledAt] {
			t.Fatalf("tick %v enqueued twice (three clients declare the schedule)", tk.ScheduledAt)
		}
		seen[*tk.ScheduledAt] = true
	}
	// And each of those tasks ran once.
	for _, tk := range tasks {
		waitStatus(t, clients[0], tk.ID, omniq.StatusSuccess)
	}
	ids := ran.all()
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	if len(slices.Compact(ids)) != len(ran.all()) {
		t.Fatalf("a periodic task ran twice")
	}
}

// Subscribe delivers, in process, the events of tasks as they happen: here
// the completion of each task, with its kind, queue and attempt. River
// delivers events of the subscribing client's own workers from memory;
// OmniQ reads the events table, so a subscriber sees every client's tasks,
// and compact rows are expanded so enqueued and executing arrive too.
// River: https://riverqueue.com/docs/subscriptions
func TestSubscribeDeliversTaskEvents(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	worker := newClient(t, db, workFn(func(context.Context, *omniq.Task[jobArgs]) error { return nil }), nil)
	start(t, worker)
	watcher := newClient(t, db, nil, nil) // another client: OmniQ's events are the database's
	// Stopped at cleanup so that it releases the LISTEN connection its
	// subscription holds (see README).
	start(t, watcher)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := watcher.Subscribe(ctx, omniq.EventFilter{Kinds: []string{"riverlike_job"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uuid.UUID]bool{}
	for i := range 3 {
		want[enqueue(t, watcher, jobArgs{N: i}, nil).ID] = true
	}
	completed := map[uuid.UUID]bool{}
	var types []omniq.EventType
	for len(completed) < len(want) {
		ev := recv(t, ch, "completed events")
		if !want[ev.TaskID] {
			t.Fatalf("event of an unknown task: %+v", ev)
		}
		types = append(types, ev.Type)
		if ev.Type == omniq.EventCompleted {
			if completed[ev.TaskID] || ev.Queue != "default" || ev.Attempt != 1 {
				t.Fatalf("completed event %+v", ev)
			}
			completed[ev.TaskID] = true
		}
	}
	for _, typ := range []omniq.EventType{omniq.EventEnqueued, omniq.EventExecuting} {
		if !slices.Contains(types, typ) {
			t.Fatalf("events %v lack %s", types, typ)
		}
	}
}

type payArgs struct {
	Order int `json:"order"`
}

func (payArgs) Kind() string { return "riverlike_pay" }

// A worker completes its task in the same transaction as its business
// writes: both commit or neither does (a rolled-back completion leaves the
// task to be retried).
// River: https://riverqueue.com/docs/transactional-job-completion (JobCompleteTx; OmniQ: CompleteTx)
func TestCompleteTxCommitsWithBusinessWrite(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	db.Exec(t, "CREATE TABLE "+db.Table("payments")+" (order_id int, attempt int)")
	w := omniq.NewWorkers()
	omniq.AddWorker(w, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[payArgs]) error {
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, "INSERT INTO "+db.Table("payments")+" VALUES ($1, $2)", t.Args.Order, t.Attempt); err != nil {
			return err
		}
		if err := omniq.CompleteTx(ctx, tx, t, map[string]int{"paid": t.Args.Order}); err != nil {
			return err
		}
		if t.Attempt == 1 {
			return errors.New("crash before commit") // the payment and the completion roll back together
		}
		return tx.Commit(ctx)
	}))
	c := newClient(t, db, w, nil)
	start(t, c)
	res := enqueue(t, c, payArgs{Order: 9}, nil)
	row := waitStatus(t, c, res.ID, omniq.StatusSuccess)
	if row.Attempt != 2 {
		t.Fatalf("completed at attempt %d, want 2 (the first completion rolled back)", row.Attempt)
	}
	if n := count(t, db, "payments", ""); n != 1 {
		t.Fatalf("%d payments, want the committed one only", n)
	}
	if n := count(t, db, "payments", "attempt = 2"); n != 1 {
		t.Fatal("the committed payment is not the second attempt's")
	}
	r, err := c.Result(ctx, res.ID)
	if err != nil || string(r.Value) != `{"paid": 9}` {
		t.Fatalf("result %+v, %v", r, err)
	}
}
