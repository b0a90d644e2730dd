package periodic

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq/codec"
	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/jobs"
	"github.com/omniqhq/omniq/queue"
)

// testClock is the injectable clock: tests move time instead of waiting.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type ping struct {
	N int `json:"n"`
}

func (ping) Kind() string { return "ping" }

func newService(t *testing.T, db *pgtest.DB, clk *testClock) *Service {
	t.Helper()
	eng := queue.New(db.Pool, queue.Config{
		Schema: db.Schema, MaxAttempts: 4, RetryDelay: time.Second, RetryBackoff: jobs.BackoffFixed,
		EventLevel: queue.EventsDefault,
	}, nil, codec.NewManager())
	cfg := Config{Schema: db.Schema, Pool: db.Pool, Engine: eng, Codec: codec.NewManager(), EventLevel: queue.EventsDefault}
	if clk != nil {
		cfg.Now = clk.Now
	}
	return New(cfg)
}

type tick struct {
	At     time.Time
	Status string
}

// ticksOf lists the tasks of a schedule by scheduled time.
func ticksOf(t *testing.T, db *pgtest.DB, name string) []tick {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT t.scheduled_at, t.status FROM `+db.Table("tasks")+` t
		JOIN `+db.Table("schedules")+` s ON s.id = t.schedule_id WHERE s.name = $1 ORDER BY t.scheduled_at`, name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tick, error) {
		var k tick
		err := r.Scan(&k.At, &k.Status)
		k.At = k.At.UTC()
		return k, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fire(t *testing.T, s *Service) int {
	t.Helper()
	n, _, err := s.FireDue(context.Background())
	if err != nil {
		t.Fatalf("FireDue: %v", err)
	}
	return n
}

func countEvents(t *testing.T, db *pgtest.DB, typ string) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+db.Table("events")+` WHERE type = $1`, typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Each kind fires at its ticks, driven by the test clock.
func TestFireEachKind(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	clk := &testClock{t: utc("2026-03-01T10:00:30Z")}
	s := newService(t, db, clk)
	for _, spec := range []Spec{
		{Name: "cron", Cron: "*/2 * * * *", Timezone: "Europe/Paris"},
		{Name: "interval", Interval: 90 * time.Second},
		{Name: "timestamp", At: utc("2026-03-01T10:03:00Z")},
		{Name: "once", Once: true},
		{Name: "capped", Cron: "* * * * *", MaxRuns: 2},
	} {
		spec.Args = ping{N: 1}
		if _, err := s.Create(ctx, spec); err != nil {
			t.Fatalf("Create %s: %v", spec.Name, err)
		}
	}
	// Walk the clock over six minutes, one fire every 10 seconds.
	for at := clk.Now(); at.Before(utc("2026-03-01T10:06:05Z")); at = at.Add(10 * time.Second) {
		clk.Set(at)
		fire(t, s)
	}
	want := map[string][]string{
		"cron":      {"10:02:00", "10:04:00", "10:06:00"},
		"interval":  {"10:02:00", "10:03:30", "10:05:00"},
		"timestamp": {"10:03:00"},
		"once":      {"10:00:30"},
		"capped":    {"10:01:00", "10:02:00"},
	}
	for name, w := range want {
		got := ticksOf(t, db, name)
		if len(got) != len(w) {
			t.Errorf("%s: fired %v, want %v", name, got, w)
			continue
		}
		for i := range w {
			if got[i].At.Format(time.TimeOnly) != w[i] {
				t.Errorf("%s: tick %d at %s, want %s", name, i, got[i].At.Format(time.TimeOnly), w[i])
			}
		}
	}
	for name, status := range map[string]Status{"cron": StatusActive, "interval": StatusActive,
		"timestamp": StatusExpired, "once": StatusExpired, "capped": StatusExpired} {
		sc, err := s.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Status != status || sc.RunCount != len(want[name]) {
			t.Errorf("%s: status %s run_count %d, want %s %d", name, sc.Status, sc.RunCount, status, len(want[name]))
		}
		if status == StatusExpired && sc.NextRunAt != nil {
			t.Errorf("%s: expired with next_run_at %s", name, sc.NextRunAt)
		}
	}
	if n := countEvents(t, db, EventFired); n != 10 {
		t.Errorf("schedule_fired events: %d, want 10", n)
	}
	if n := countEvents(t, db, EventExpired); n != 3 {
		t.Errorf("schedule_expired events: %d, want 3", n)
	}
}

// After downtime the default fires once for the missed ticks; Backfill N
// fires up to N of them too.
func TestFireBackfill(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	clk := &testClock{t: utc("2026-03-01T10:00:00Z")}
	s := newService(t, db, clk)
	for _, spec := range []Spec{
		{Name: "once", Interval: time.Minute, Args: ping{}},
		{Name: "backfill", Cron: "* * * * *", Backfill: 3, Args: ping{}},
	} {
		if _, err := s.Create(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	clk.Set(utc("2026-03-01T10:10:30Z")) // every client was down for ten ticks
	if n := fire(t, s); n != 1+4 {
		t.Fatalf("fired %d tasks, want 5", n)
	}
	if got := ticksOf(t, db, "once"); len(got) != 1 || got[0].At != utc("2026-03-01T10:10:00Z") {
		t.Errorf("once: %v", got)
	}
	got := ticksOf(t, db, "backfill")
	if len(got) != 4 || got[0].At != utc("2026-03-01T10:07:00Z") || got[3].At != utc("2026-03-01T10:10:00Z") {
		t.Errorf("backfill: %v", got)
	}
	// And both carry on at the next tick, on the original grid.
	for _, name := range []string{"once", "backfill"} {
		sc, _ := s.Get(ctx, name)
		if !sc.NextRunAt.Equal(utc("2026-03-01T10:11:00Z")) {
			t.Errorf("%s: next_run_at %s", name, sc.NextRunAt)
		}
	}
	if n := fire(t, s); n != 0 {
		t.Errorf("fired %d more at the same time", n)
	}
}

// NoOverlap skips ticks while the schedule's previous task is unfinished.
func TestFireNoOverlap(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	clk := &testClock{t: utc("2026-03-01T10:00:00Z")}
	s := newService(t, db, clk)
	if _, err := s.Create(ctx, Spec{Name: "solo", Interval: time.Minute, NoOverlap: true, Args: ping{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, Spec{Name: "crowd", Interval: time.Minute, Args: ping{}}); err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{"10:01:00", "10:02:00", "10:03:00"} {
		clk.Set(utc("2026-03-01T" + at + "Z"))
		fire(t, s)
	}
	if got := ticksOf(t, db, "solo"); len(got) != 1 {
		t.Fatalf("solo fired %d times while its task was pending, want 1: %v", len(got), got)
	}
	if got := ticksOf(t, db, "crowd"); len(got) != 3 {
		t.Fatalf("crowd fired %d, want 3", len(got))
	}
	if n := countEvents(t, db, EventSkipped); n != 2 {
		t.Errorf("schedule_skipped events: %d, want 2", n)
	}
	// The previous task finishes: the next tick fires.
	db.Exec(t, `UPDATE `+db.Table("tasks")+` SET status = 'success', completed_at = now()`)
	clk.Set(utc("2026-03-01T10:04:00Z"))
	fire(t, s)
	got := ticksOf(t, db, "solo")
	if len(got) != 2 || got[1].At != utc("2026-03-01T10:04:00Z") {
		t.Fatalf("solo after its task finished: %v", got)
	}
}

// A client that dies between claim and commit loses no tick and doubles
// none: its transaction (task insert and advance together) rolls back, the
// locks go with it, and the next client fires the same tick once.
func TestFireKilledBetweenClaimAndCommit(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	clk := &testClock{t: utc("2026-03-01T10:00:00Z")}
	a, b := newService(t, db, clk), newService(t, db, clk)
	if _, err := a.Create(ctx, Spec{Name: "s", Interval: time.Minute, Args: ping{}}); err != nil {
		t.Fatal(err)
	}
	clk.Set(utc("2026-03-01T10:01:00Z"))

	// a is killed: its connection is terminated after the task was inserted
	// and the schedule advanced, before COMMIT. The terminate waits (up to
	// 10s) for the backend to be gone, so its locks are released before b
	// looks: the client hears of the kill before the backend has exited.
	a.afterInsert = func(ctx context.Context, tx pgx.Tx) {
		pid := tx.Conn().PgConn().PID()
		var gone bool
		if err := db.Pool.QueryRow(ctx, `SELECT pg_terminate_backend($1, 10000)`, pid).Scan(&gone); err != nil || !gone {
			t.Errorf("terminate %d: gone %v, %v", pid, gone, err)
		}
	}
	if _, _, err := a.FireDue(ctx); err == nil {
		t.Fatal("FireDue of the killed client succeeded")
	}
	if got := ticksOf(t, db, "s"); len(got) != 0 {
		t.Fatalf("the killed fire left tasks: %v", got)
	}
	if n := fire(t, b); n != 1 {
		t.Fatalf("b fired %d, want the tick once", n)
	}

	// a stalls between claim and commit while b looks: b skips the locked
	// schedule rather than fire it again, and a's commit fires it once.
	clk.Set(utc("2026-03-01T10:02:00Z"))
	stalled, release := make(chan struct{}), make(chan struct{})
	a.afterInsert = func(context.Context, pgx.Tx) { close(stalled); <-release }
	done := make(chan error)
	go func() { _, _, err := a.FireDue(ctx); done <- err }()
	<-stalled
	n, handled, err := b.FireDue(ctx)
	if err != nil || n != 0 || handled != 0 {
		t.Fatalf("b while a holds the schedule: %d tasks, %d schedules, %v", n, handled, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// a rolled back by a cancelled context: same as a kill.
	clk.Set(utc("2026-03-01T10:03:00Z"))
	cctx, cancel := context.WithCancel(ctx)
	a.afterInsert = func(context.Context, pgx.Tx) { cancel() }
	if _, _, err := a.FireDue(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fire: %v", err)
	}
	a.afterInsert = nil
	// The cancelled fire's backend may still hold the schedule's row lock
	// for a moment after the client gave up on it (SKIP LOCKED then skips
	// it): fire until the tick lands, with a deadline.
	pgtest.WaitFor(t, 10*time.Second, "the tick of the cancelled fire to be fired again", func() bool { return fire(t, a) > 0 })

	got := ticksOf(t, db, "s")
	want := []time.Time{utc("2026-03-01T10:01:00Z"), utc("2026-03-01T10:02:00Z"), utc("2026-03-01T10:03:00Z")}
	if len(got) != len(want) {
		t.Fatalf("ticks %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].At.Equal(want[i]) {
			t.Fatalf("ticks %v, want %v", got, want)
		}
	}
	sc, _ := b.Get(ctx, "s")
	if sc.RunCount != 3 {
		t.Fatalf("run_count %d, want 3", sc.RunCount)
	}
}

// The unique index refuses a second task for a tick even if the code tried.
func TestUniqueTickIndex(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	clk := &testClock{t: utc("2026-03-01T10:00:00Z")}
	s := newService(t, db, clk)
	if _, err := s.Create(ctx, Spec{Name: "s", Interval: time.Minute, Args: ping{}}); err != nil {
		t.Fatal(err)
	}
	clk.Set(utc("2026-03-01T10:01:00Z"))
	fire(t, s)
	// Put the schedule back on the tick it just fired, as a bug would.
	db.Exec(t, `UPDATE `+db.Table("schedules")+` SET next_run_at = '2026-03-01T10:01:00Z'`)
	if _, _, err := s.FireDue(ctx); err == nil {
		t.Fatal("a second fire of the same tick succeeded")
	}
	if got := ticksOf(t, db, "s"); len(got) != 1 {
		t.Fatalf("ticks %v", got)
	}
}

// Pause keeps a schedule from firing; Resume restarts it from now without
// a burst of the ticks it slept through.
func TestPauseResumeNoBurst(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	clk := &testClock{t: utc("2026-03-01T10:00:00Z")}
	s := newService(t, db, clk)
	if _, err := s.Create(ctx, Spec{Name: "s", Cron: "* * * * *", Backfill: 100, Args: ping{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pause(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	clk.Set(utc("2026-03-01T10:30:30Z"))
	if n := fire(t, s); n != 0 {
		t.Fatalf("a paused schedule fired %d", n)
	}
	sc, err := s.Resume(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if !sc.NextRunAt.Equal(utc("2026-03-01T10:31:00Z")) || sc.Status != StatusActive || sc.ResumedAt == nil {
		t.Fatalf("resumed: %+v", sc)
	}
	if n := fire(t, s); n != 0 {
		t.Fatalf("resume burst: %d tasks", n)
	}
	if countEvents(t, db, EventPaused) != 1 || countEvents(t, db, EventResumed) != 1 {
		t.Fatal("missing pause/resume events")
	}
}
