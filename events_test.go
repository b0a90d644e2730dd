package omniq_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// evArgs drives evWorker: Fail attempts fail (retryable) before success;
// Fatal fails at once without retry.
type evArgs struct {
	Fail  int  `json:"fail"`
	Fatal bool `json:"fatal"`
}

func (evArgs) Kind() string { return "ev" }

func evWorkers() *omniq.Workers {
	w := omniq.NewWorkers()
	omniq.AddWorker(w, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[evArgs]) error {
		if t.Args.Fatal {
			return omniq.NoRetry(errors.New("fatal"))
		}
		if t.Attempt <= t.Args.Fail {
			return fmt.Errorf("attempt %d fails", t.Attempt)
		}
		return nil
	}))
	return w
}

func types(evs []omniq.Event) []omniq.EventType {
	out := make([]omniq.EventType, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func taskEvents(t *testing.T, c *omniq.Client, id uuid.UUID, expand bool) []omniq.Event {
	t.Helper()
	evs, err := c.Events(context.Background(), omniq.EventFilter{TaskID: id, Expand: expand, Limit: 1000})
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	return evs
}

// Every transition leaves exactly the expected rows at each level, and the
// expanded view is the same full history at "all" and "default".
func TestEventsPerLevel(t *testing.T) {
	t.Parallel()
	const (
		ok    = "ok"
		flaky = "flaky"
		bad   = "bad"
	)
	args := map[string]evArgs{ok: {}, flaky: {Fail: 1}, bad: {Fatal: true}}
	full := map[string][]omniq.EventType{
		ok:    {omniq.EventEnqueued, omniq.EventExecuting, omniq.EventCompleted},
		flaky: {omniq.EventEnqueued, omniq.EventExecuting, omniq.EventRetry, omniq.EventExecuting, omniq.EventCompleted},
		bad:   {omniq.EventEnqueued, omniq.EventExecuting, omniq.EventError},
	}
	stored := map[string]map[string][]omniq.EventType{
		"all": full,
		"default": {
			ok:    {omniq.EventCompleted},
			flaky: {omniq.EventRetry, omniq.EventCompleted},
			bad:   {omniq.EventError},
		},
		"failures": {ok: {}, flaky: {omniq.EventRetry}, bad: {omniq.EventError}},
		"none":     {ok: {}, flaky: {}, bad: {}},
	}
	for _, level := range []string{"all", "default", "failures", "none"} {
		t.Run(level, func(t *testing.T) {
			t.Parallel()
			db := pgtest.New(t)
			c := newClient(t, db, evWorkers(), func(cfg *omniq.Config) { cfg.EventLevel = level })
			ctx := context.Background()
			// One task of each shape enqueued alone, and a batch of each.
			ids := map[uuid.UUID]string{}
			for _, name := range []string{ok, flaky, bad} {
				r, err := c.Enqueue(ctx, args[name], &omniq.InsertOpts{MaxAttempts: 2})
				if err != nil {
					t.Fatal(err)
				}
				ids[r.ID] = name
			}
			var batch []omniq.EnqueueParams
			var names []string
			for i := 0; i < 5; i++ {
				for _, name := range []string{ok, flaky, bad} {
					batch = append(batch, omniq.EnqueueParams{Args: args[name], Opts: &omniq.InsertOpts{MaxAttempts: 2}})
					names = append(names, name)
				}
			}
			rs, err := c.EnqueueMany(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rs {
				ids[r.ID] = names[i]
			}
			start(t, c)
			for id, name := range ids {
				want := omniq.StatusSuccess
				if name == bad {
					want = omniq.StatusError
				}
				waitStatus(t, c, id, want, 20*time.Second)
			}
			// Outcomes are written by the completer: wait for the last row.
			for id, name := range ids {
				want := stored[level][name]
				waitFor(t, 10*time.Second, "events of "+name, func() bool {
					return len(taskEvents(t, c, id, false)) >= len(want)
				})
				if got := types(taskEvents(t, c, id, false)); !slices.Equal(got, want) {
					t.Errorf("%s task: stored events %v, want %v", name, got, want)
				}
				if level == "default" {
					// A compact row keeps its times in columns, not in data.
					for i, e := range taskEvents(t, c, id, false) {
						if e.StartedAt.IsZero() || e.EnqueuedAt.IsZero() != (i > 0) || (e.Type == omniq.EventCompleted && string(e.Data) != "{}") {
							t.Errorf("%s task: stored %s row enqueued %v, started %v, data %s; want started, enqueued on the first row only, data {}",
								name, e.Type, e.EnqueuedAt, e.StartedAt, e.Data)
						}
					}
				}
				if level == "all" || level == "default" {
					evs := taskEvents(t, c, id, true)
					if got := types(evs); !slices.Equal(got, full[name]) {
						t.Errorf("%s task: expanded events %v, want %v", name, got, full[name])
					}
					for i := 1; i < len(evs); i++ {
						if evs[i].Time.Before(evs[i-1].Time) {
							t.Errorf("%s task: event %d (%s at %v) before event %d (%s at %v)", name,
								i, evs[i].Type, evs[i].Time, i-1, evs[i-1].Type, evs[i-1].Time)
						}
					}
					last := evs[len(evs)-1]
					if last.Kind != "ev" || last.Queue != "default" || last.WorkerID == "" || last.Attempt != 1+args[name].Fail {
						t.Errorf("%s task: last event %+v lacks its fields", name, last)
					}
					if last.Type == omniq.EventCompleted && last.ExecutionTime <= 0 {
						t.Errorf("%s task: completed event without execution time", name)
					}
				}
			}
		})
	}
}

// An enqueue rolled back with its transaction leaves no event.
func TestEventsRolledBackEnqueue(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, func(cfg *omniq.Config) { cfg.EventLevel = "all" })
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnqueueTx(ctx, tx, evArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnqueueManyTx(ctx, tx, []omniq.EnqueueParams{{Args: evArgs{}}, {Args: evArgs{}}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := c.Events(ctx, omniq.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Fatalf("events after rollback: %v", types(evs))
	}
	// The committed twin leaves its event.
	if _, err := c.Enqueue(ctx, evArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	if evs, _ = c.Events(ctx, omniq.EventFilter{}); len(evs) != 1 || evs[0].Type != omniq.EventEnqueued {
		t.Fatalf("events after commit: %v", types(evs))
	}
}

type evOther struct{}

func (evOther) Kind() string { return "ev_other" }

func TestEventsFiltersAndPaging(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, func(cfg *omniq.Config) { cfg.EventLevel = "all" })
	ctx := context.Background()
	var ids []uuid.UUID
	for i := 0; i < 10; i++ {
		r, err := c.Enqueue(ctx, evArgs{}, &omniq.InsertOpts{Queue: "q1"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	before := time.Now()
	time.Sleep(5 * time.Millisecond) // a boundary between the two groups' times
	for i := 0; i < 5; i++ {
		if _, err := c.Enqueue(ctx, evOther{}, &omniq.InsertOpts{Queue: "q2"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.PauseQueue(ctx, "q2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cancel(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	count := func(f omniq.EventFilter) int {
		t.Helper()
		evs, err := c.Events(ctx, f)
		if err != nil {
			t.Fatalf("Events(%+v): %v", f, err)
		}
		return len(evs)
	}
	for _, tc := range []struct {
		name string
		f    omniq.EventFilter
		want int
	}{
		{"all", omniq.EventFilter{}, 17},
		{"task", omniq.EventFilter{TaskID: ids[0]}, 2},
		{"kind", omniq.EventFilter{Kinds: []string{"ev_other"}}, 5},
		{"queue", omniq.EventFilter{Queues: []string{"q2"}}, 6},
		{"queues", omniq.EventFilter{Queues: []string{"q1", "q2"}}, 17},
		{"type", omniq.EventFilter{Types: []omniq.EventType{omniq.EventQueuePaused, omniq.EventCancelled}}, 2},
		{"level", omniq.EventFilter{Levels: []omniq.EventLevel{omniq.EventLevelWarning}}, 1},
		{"since", omniq.EventFilter{Since: before}, 7},
		{"until", omniq.EventFilter{Until: before}, 10},
		{"queue and type", omniq.EventFilter{Queues: []string{"q1"}, Types: []omniq.EventType{omniq.EventEnqueued}}, 10},
		{"limit", omniq.EventFilter{Limit: 3}, 3},
	} {
		if got := count(tc.f); got != tc.want {
			t.Errorf("%s: %d events, want %d", tc.name, got, tc.want)
		}
	}
	// Paging oldest first and newest first visits every event once, in order.
	for _, desc := range []bool{false, true} {
		var seen []int64
		f := omniq.EventFilter{Limit: 4, Desc: desc}
		for {
			page, err := c.Events(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				seen = append(seen, e.ID)
			}
			f.AfterID = page[len(page)-1].ID
		}
		if len(seen) != 17 {
			t.Fatalf("desc=%v: paged %d events, want 17", desc, len(seen))
		}
		sorted := slices.IsSortedFunc(seen, func(a, b int64) int {
			if desc {
				return int(b - a)
			}
			return int(a - b)
		})
		if !sorted || len(slices.Compact(slices.Clone(seen))) != len(seen) {
			t.Fatalf("desc=%v: ids %v not strictly ordered", desc, seen)
		}
	}
	if _, err := c.Events(ctx, omniq.EventFilter{Types: []omniq.EventType{"nope"}}); !errors.Is(err, omniq.ErrInvalidInput) {
		t.Errorf("unknown type: %v, want ErrInvalidInput", err)
	}
	if _, err := c.Events(ctx, omniq.EventFilter{Limit: 10001}); !errors.Is(err, omniq.ErrInvalidInput) {
		t.Errorf("too large a limit: %v, want ErrInvalidInput", err)
	}
}

// collector reads a subscription into a map counting each event's deliveries.
type collector struct {
	mu    sync.Mutex
	count map[string]int
	total int
}

func eventKey(e omniq.Event) string {
	if e.TaskID == uuid.Nil {
		return fmt.Sprintf("row %d %s", e.ID, e.Type)
	}
	return fmt.Sprintf("%s %s %d", e.TaskID, e.Type, e.Attempt)
}

func collect(ch <-chan omniq.Event) *collector {
	c := &collector{count: map[string]int{}}
	go func() {
		for e := range ch {
			c.mu.Lock()
			c.count[eventKey(e)]++
			c.total++
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *collector) snapshot() (distinct, total int, dups []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, n := range c.count {
		if n > 1 {
			dups = append(dups, k)
		}
	}
	return len(c.count), c.total, dups
}

// terminateListener kills the notifier's LISTEN connection of schema.
func terminateListener(t *testing.T, db *pgtest.DB) int {
	t.Helper()
	var n int
	err := db.Pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE query LIKE 'LISTEN%' AND position($1 IN query) > 0 AND pid <> pg_backend_pid()`, db.Schema).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A subscriber sees every event of 10,000 tasks exactly once, though its
// LISTEN connection is killed in the middle.
func TestSubscribeEveryEventOnceAcrossReconnect(t *testing.T) {
	t.Parallel()
	const tasks = 10000
	db := pgtest.New(t)
	c := newClient(t, db, evWorkers(), func(cfg *omniq.Config) {
		cfg.Queues = map[string]omniq.QueueConfig{"default": {MaxWorkers: 100}}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := c.Subscribe(ctx, omniq.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	got := collect(ch)
	start(t, c)
	killed := 0
	for i := 0; i < tasks; i += 1000 {
		batch := make([]omniq.EnqueueParams, 1000)
		for j := range batch {
			batch[j] = omniq.EnqueueParams{Args: evArgs{}}
		}
		if _, err := c.EnqueueMany(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if i == tasks/2 {
			waitFor(t, 10*time.Second, "the LISTEN connection", func() bool {
				killed = terminateListener(t, db)
				return killed > 0
			})
		}
	}
	// Each task: enqueued, executing, completed (the last two derived from
	// its compact row at the default level).
	waitFor(t, 90*time.Second, "every event", func() bool {
		d, _, _ := got.snapshot()
		return d >= 3*tasks
	})
	// Anything late would be a duplicate: look once more after a catch-up.
	terminateListener(t, db)
	time.Sleep(200 * time.Millisecond)
	d, total, dups := got.snapshot()
	if d != 3*tasks || total != 3*tasks || len(dups) > 0 {
		t.Fatalf("%d distinct events, %d delivered, duplicates %v; want %d once each", d, total, dups[:min(len(dups), 5)], 3*tasks)
	}
}

// A transaction that commits after another may hold smaller event ids; the
// subscriber still gets its events, once.
func TestSubscribeLateCommitWithSmallerID(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, func(cfg *omniq.Config) { cfg.EventLevel = "all" })
	start(t, c) // an insert-only client: Stop releases the LISTEN connection
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := c.Subscribe(ctx, omniq.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	txA, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txA.Rollback(ctx)
	a, err := c.EnqueueTx(ctx, txA, evArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Enqueue(ctx, evArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := func() omniq.Event {
		t.Helper()
		select {
		case e := <-ch:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10s")
		}
		return omniq.Event{}
	}
	eb := next()
	if eb.TaskID != b.ID {
		t.Fatalf("first event is of %s, want the committed task %s", eb.TaskID, b.ID)
	}
	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	ea := next()
	if ea.TaskID != a.ID || ea.ID >= eb.ID {
		t.Fatalf("second event: task %s id %d; want task %s with an id below %d", ea.TaskID, ea.ID, a.ID, eb.ID)
	}
	select {
	case e := <-ch:
		t.Fatalf("unexpected event %+v", e)
	case <-time.After(1500 * time.Millisecond): // past a fallback poll
	}
}

// A subscriber that does not read does not slow the queue, and once it
// reads it gets everything, once; AfterID replays from a cursor.
func TestSubscribeSlowReaderAndAfterID(t *testing.T) {
	t.Parallel()
	const tasks = 1500 // 4,500 events: the 1,024 buffer fills
	db := pgtest.New(t)
	c := newClient(t, db, evWorkers(), func(cfg *omniq.Config) {
		cfg.Queues = map[string]omniq.QueueConfig{"default": {MaxWorkers: 100}}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := c.Subscribe(ctx, omniq.EventFilter{Types: []omniq.EventType{omniq.EventEnqueued, omniq.EventExecuting, omniq.EventCompleted}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	batch := make([]omniq.EnqueueParams, tasks)
	for j := range batch {
		batch[j] = omniq.EnqueueParams{Args: evArgs{}}
	}
	if _, err := c.EnqueueMany(ctx, batch); err != nil {
		t.Fatal(err)
	}
	// Nobody reads ch: the queue finishes regardless.
	waitFor(t, 60*time.Second, "every task done", func() bool {
		st, err := c.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Total.Success == tasks
	})
	got := collect(ch)
	waitFor(t, 30*time.Second, "every event", func() bool {
		d, _, _ := got.snapshot()
		return d >= 3*tasks
	})
	time.Sleep(200 * time.Millisecond)
	if d, total, dups := got.snapshot(); d != 3*tasks || total != 3*tasks || len(dups) > 0 {
		t.Fatalf("%d distinct, %d delivered, %d duplicated; want %d once each", d, total, len(dups), 3*tasks)
	}

	// AfterID: the committed rows above the cursor, then what comes next.
	rows, err := c.Events(ctx, omniq.EventFilter{Limit: 10000})
	if err != nil || len(rows) != tasks {
		t.Fatalf("Events: %d rows, %v", len(rows), err)
	}
	sub2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	ch2, err := c.Subscribe(sub2, omniq.EventFilter{AfterID: rows[tasks-11].ID, Types: []omniq.EventType{omniq.EventCompleted}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		select {
		case e := <-ch2:
			if e.ID != rows[tasks-10+i].ID || e.Type != omniq.EventCompleted {
				t.Fatalf("replayed event %d: %+v, want row %d", i, e, rows[tasks-10+i].ID)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("replay stalled")
		}
	}
	cancel2()
	for range ch2 { // closed when its context ends
	}
}

// Retention deletes the events older than EventRetention, and only those.
func TestEventRetention(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, nil, func(cfg *omniq.Config) {
		cfg.EventLevel = "all"
		cfg.EventRetention = time.Hour
	})
	ctx := context.Background()
	ev := db.Table("events")
	if _, err := db.Pool.Exec(ctx, `INSERT INTO `+ev+` (time, type, queue)
SELECT now() - interval '2 hours' - i * interval '1 second', 'queue_paused', 'old' FROM generate_series(1, 2500) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO `+ev+` (time, type, queue)
SELECT now() - interval '59 minutes', 'queue_resumed', 'young' FROM generate_series(1, 3)`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enqueue(ctx, evArgs{}, nil); err != nil {
		t.Fatal(err)
	}
	counts, err := c.CleanupExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Events != 2500 {
		t.Errorf("CleanupExpired deleted %d events, want 2500", counts.Events)
	}
	evs, err := c.Events(ctx, omniq.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := types(evs); !slices.Equal(got, []omniq.EventType{omniq.EventQueueResumed, omniq.EventQueueResumed, omniq.EventQueueResumed, omniq.EventEnqueued}) {
		t.Errorf("left after retention: %v", got)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, evWorkers(), nil)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.Enqueue(ctx, evArgs{}, &omniq.InsertOpts{Queue: "later"}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.Enqueue(ctx, evArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.PauseQueue(ctx, "idle"); err != nil {
		t.Fatal(err)
	}
	start(t, c)
	waitStatus(t, c, r.ID, omniq.StatusSuccess, 10*time.Second)
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]omniq.QueueStats{}
	for _, q := range st.Queues {
		byName[q.Queue] = q
	}
	if q := byName["default"]; q.Success != 1 || q.SucceededLastMinute != 1 || q.Pending != 0 {
		t.Errorf("default: %+v", q)
	}
	if q := byName["later"]; q.Pending != 3 || q.OldestPendingAge <= 0 {
		t.Errorf("later: %+v", q)
	}
	if q := byName["idle"]; !q.Paused || q.Pending != 0 {
		t.Errorf("idle: %+v", q)
	}
	if st.Total.Pending != 3 || st.Total.Success != 1 || st.Total.OldestPendingAge != byName["later"].OldestPendingAge {
		t.Errorf("total: %+v", st.Total)
	}
	// The same in SQL, for an operator.
	var pending, success int
	if err := db.Pool.QueryRow(ctx, `SELECT sum(pending), sum(success) FROM `+db.Table("queue_stats")).Scan(&pending, &success); err != nil {
		t.Fatal(err)
	}
	if pending != 3 || success != 1 {
		t.Errorf("queue_stats view: pending %d success %d", pending, success)
	}
}
