package omniq_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/migrations"
)

type tickArgs struct {
	Label string `json:"label"`
}

func (tickArgs) Kind() string { return "tick" }

type strangerArgs struct{}

func (strangerArgs) Kind() string { return "stranger" }

func tickWorkers() *omniq.Workers {
	w := omniq.NewWorkers()
	omniq.AddWorker(w, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[tickArgs]) error {
		t.SetResult(map[string]any{"label": t.Args.Label, "tick": t.ScheduledAt.UTC().Format(time.RFC3339)})
		return nil
	}))
	return w
}

func getSchedule(t *testing.T, c *omniq.Client, name string) *omniq.Schedule {
	t.Helper()
	sc, err := c.Schedule(context.Background(), name)
	if err != nil {
		t.Fatalf("Schedule(%q): %v", name, err)
	}
	return sc
}

func scheduleTasks(t *testing.T, c *omniq.Client, sc *omniq.Schedule) []*omniq.TaskRow {
	t.Helper()
	rows, err := c.Tasks(context.Background(), omniq.TaskFilter{ScheduleID: &sc.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// Each kind fires at the right times on a real client, and its tasks run.
func TestSchedulesFireEachKind(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	c := newClient(t, db, tickWorkers(), nil)
	start(t, c)
	created := time.Now()
	for _, spec := range []omniq.ScheduleSpec{
		{Name: "cron", Cron: "*/1 * * * * *", MaxRuns: 2, Args: tickArgs{Label: "cron"}},
		{Name: "interval", Interval: time.Second, MaxRuns: 2, Args: tickArgs{Label: "interval"}},
		{Name: "timestamp", At: created.Add(1500 * time.Millisecond), Args: tickArgs{Label: "timestamp"}},
		{Name: "once", Once: true, Args: tickArgs{Label: "once"}},
	} {
		if _, err := c.CreateSchedule(ctx, spec); err != nil {
			t.Fatalf("CreateSchedule %s: %v", spec.Name, err)
		}
	}
	waitFor(t, 15*time.Second, "every schedule expired", func() bool {
		list, err := c.Schedules(ctx, omniq.ScheduleFilter{Statuses: []omniq.ScheduleStatus{omniq.ScheduleExpired}})
		if err != nil {
			t.Fatal(err)
		}
		return len(list) == 4
	})
	for name, n := range map[string]int{"cron": 2, "interval": 2, "timestamp": 1, "once": 1} {
		sc := getSchedule(t, c, name)
		tasks := scheduleTasks(t, c, sc)
		if len(tasks) != n || sc.RunCount != n {
			t.Fatalf("%s: %d tasks, run_count %d, want %d", name, len(tasks), sc.RunCount, n)
		}
		for i, task := range tasks {
			at := task.ScheduledAt
			switch name {
			case "cron":
				if at.Nanosecond() != 0 || (i > 0 && at.Sub(*tasks[i-1].ScheduledAt) != time.Second) {
					t.Errorf("cron tick %d at %s: not consecutive whole seconds", i, at)
				}
			case "interval":
				if want := sc.CreatedAt.Add(time.Duration(i+1) * time.Second); at.Sub(want).Abs() > 50*time.Millisecond {
					t.Errorf("interval tick %d at %s, want about %s (created + %ds)", i, at, want, i+1)
				}
			case "timestamp":
				if !at.Equal(created.Add(1500 * time.Millisecond).Truncate(time.Microsecond)) {
					t.Errorf("timestamp tick at %s", at)
				}
			}
			waitStatus(t, c, task.ID, omniq.StatusSuccess, 10*time.Second)
		}
	}
	// LatestResult is the result of the newest tick.
	sc := getSchedule(t, c, "cron")
	res, err := c.LatestResult(ctx, sc.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := c.DecodeResult(res, &v); err != nil {
		t.Fatal(err)
	}
	if want := sc.LastRunAt; v["label"] != "cron" || v["tick"] != scheduleTasks(t, c, sc)[1].ScheduledAt.UTC().Format(time.RFC3339) || want == nil {
		t.Fatalf("latest result %v", v)
	}
	if _, err := c.LatestResult(ctx, "nope"); !errors.Is(err, omniq.ErrNotFound) {
		t.Fatalf("LatestResult of no schedule: %v", err)
	}
}

// Three clients on one schedule for twenty ticks: exactly one task per tick.
func TestSchedulesThreeClientsOneTaskPerTick(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	const ticks = 20
	clients := make([]*omniq.Client, 3)
	for i := range clients {
		clients[i] = newClient(t, db, nil, nil)
	}
	// Backfill makes the test strict: a tick fired late by a busy machine
	// is still fired, so any gap below is a lost tick.
	sc, err := clients[0].CreateSchedule(ctx, omniq.ScheduleSpec{Name: "every-second", Cron: "*/1 * * * * *", Backfill: 5, Args: tickArgs{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		start(t, c)
	}
	waitFor(t, 3*ticks*time.Second, "twenty ticks", func() bool { return getSchedule(t, clients[0], sc.Name).RunCount >= ticks })
	if _, err := clients[1].CancelSchedule(ctx, sc.Name); err != nil {
		t.Fatal(err)
	}
	sc = getSchedule(t, clients[2], sc.Name)
	tasks := scheduleTasks(t, clients[0], sc)
	if len(tasks) != sc.RunCount || len(tasks) < ticks {
		t.Fatalf("%d tasks for run_count %d", len(tasks), sc.RunCount)
	}
	for i := 1; i < len(tasks); i++ {
		if d := tasks[i].ScheduledAt.Sub(*tasks[i-1].ScheduledAt); d != time.Second {
			t.Fatalf("ticks %s and %s are %s apart: a tick was doubled or lost", tasks[i-1].ScheduledAt, tasks[i].ScheduledAt, d)
		}
	}
	var events int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+db.Table("events")+` WHERE type = 'schedule_fired' AND schedule_id = $1`, sc.ID).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != len(tasks) {
		t.Fatalf("%d schedule_fired events for %d tasks", events, len(tasks))
	}
}

// Pause, resume and cancel are rows: a restarted client honours them.
func TestSchedulesStatePersistsAcrossRestart(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	first := newClient(t, db, nil, nil)
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"paused", "cancelled", "running"} {
		if _, err := first.CreateSchedule(ctx, omniq.ScheduleSpec{Name: name, Interval: time.Second, Args: tickArgs{}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := first.PauseSchedule(ctx, "paused"); err != nil {
		t.Fatal(err)
	}
	if _, err := first.CancelSchedule(ctx, "cancelled"); err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	second := newClient(t, db, nil, nil)
	start(t, second)
	waitFor(t, 10*time.Second, "the active schedule fires twice", func() bool { return getSchedule(t, second, "running").RunCount >= 2 })
	paused, cancelled := getSchedule(t, second, "paused"), getSchedule(t, second, "cancelled")
	if paused.Status != omniq.SchedulePaused || paused.PausedAt == nil || paused.RunCount != 0 {
		t.Fatalf("paused: %+v", paused)
	}
	if cancelled.Status != omniq.ScheduleCancelled || cancelled.NextRunAt != nil || cancelled.RunCount != 0 {
		t.Fatalf("cancelled: %+v", cancelled)
	}
	if _, err := second.ResumeSchedule(ctx, "cancelled"); !errors.Is(err, omniq.ErrScheduleDone) {
		t.Fatalf("resume a cancelled schedule: %v", err)
	}
	if _, err := second.ResumeSchedule(ctx, "paused"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the resumed schedule fires", func() bool { return getSchedule(t, second, "paused").RunCount >= 1 })

	// Delete removes the row; the tasks stay.
	running := getSchedule(t, second, "running")
	if err := second.DeleteSchedule(ctx, "running"); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Schedule(ctx, running.ID.String()); !errors.Is(err, omniq.ErrNotFound) {
		t.Fatalf("deleted schedule: %v", err)
	}
	if len(scheduleTasks(t, second, running)) == 0 {
		t.Fatal("deleting a schedule deleted its tasks")
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM `+db.Table("events")+` WHERE type IN ('schedule_paused', 'schedule_resumed', 'schedule_cancelled', 'schedule_deleted')`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("schedule events: %d, %v", n, err)
	}
}

// Schedules declared in Config are upserted by name at Start.
func TestSchedulesDeclaredInConfig(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	declare := func(spec omniq.ScheduleSpec) *omniq.Client {
		c := newClient(t, db, tickWorkers(), func(cfg *omniq.Config) { cfg.Schedules = []omniq.ScheduleSpec{spec} })
		if err := c.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	spec := omniq.ScheduleSpec{Name: "nightly", Cron: "0 3 * * *", Timezone: "Europe/Paris", Args: tickArgs{Label: "v1"},
		Opts: &omniq.InsertOpts{Queue: "reports", Priority: 5, MaxAttempts: 2, Timeout: time.Minute}}
	c := declare(spec)
	v1 := getSchedule(t, c, "nightly")
	if v1.Type != omniq.ScheduleCron || v1.Queue != "reports" || v1.Priority != 5 || v1.Options.MaxAttempts != 2 || v1.Options.Timeout != "1m0s" {
		t.Fatalf("declared: %+v", v1)
	}
	// The same spec again writes nothing.
	c = declare(spec)
	if again := getSchedule(t, c, "nightly"); !again.UpdatedAt.Equal(v1.UpdatedAt) {
		t.Fatalf("an unchanged spec rewrote the row")
	}
	// A pause made at run time survives a changed spec; the timing moves.
	if _, err := c.PauseSchedule(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	spec.Cron, spec.Args = "0 4 * * *", tickArgs{Label: "v2"}
	c = declare(spec)
	v2 := getSchedule(t, c, "nightly")
	if v2.ID != v1.ID || v2.Cron != "0 4 * * *" || v2.Status != omniq.SchedulePaused || !strings.Contains(string(v2.Args), "v2") ||
		v2.NextRunAt.Equal(*v1.NextRunAt) {
		t.Fatalf("changed spec: %+v", v2)
	}
	if h := v2.NextRunAt.In(mustZone(t, "Europe/Paris")).Hour(); h != 4 {
		t.Fatalf("next run at %s: hour %d in Paris, want 4", v2.NextRunAt, h)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// Every bad input is a clear error and changes nothing stored.
func TestSchedulesBadInput(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	c := newClient(t, db, tickWorkers(), nil)
	if _, err := c.CreateSchedule(ctx, omniq.ScheduleSpec{Name: "taken", Cron: "@hourly", Args: tickArgs{}}); err != nil {
		t.Fatal(err)
	}
	stored := func() string {
		var s string
		if err := db.Pool.QueryRow(ctx, `SELECT coalesce(string_agg(name || ':' || status || ':' || updated_at::text, ','), '') FROM `+db.Table("schedules")).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := stored()
	for _, tc := range []struct {
		spec omniq.ScheduleSpec
		says []string
	}{
		{omniq.ScheduleSpec{Name: "a", Cron: "*/5 * * *", Args: tickArgs{}}, []string{`"*/5 * * *"`, "expected 5 to 6 fields, found 4"}},
		{omniq.ScheduleSpec{Name: "a", Cron: "0 25 * * *", Args: tickArgs{}}, []string{`"0 25 * * *"`, "above maximum"}},
		{omniq.ScheduleSpec{Name: "a", Cron: "@daily", Timezone: "Europe/Atlantis", Args: tickArgs{}}, []string{"Timezone", `"Europe/Atlantis"`, "unknown time zone"}},
		{omniq.ScheduleSpec{Name: "a", Type: omniq.ScheduleInterval, Args: tickArgs{}}, []string{"Interval", "must be positive"}},
		{omniq.ScheduleSpec{Name: "a", Interval: -time.Minute, Args: tickArgs{}}, []string{"Interval", "must be positive"}},
		{omniq.ScheduleSpec{Name: "a", Once: true, MaxRuns: -1, Args: tickArgs{}}, []string{"MaxRuns"}},
		{omniq.ScheduleSpec{Name: "a", Once: true, Args: strangerArgs{}}, []string{"kind", `"stranger"`, "no worker is registered"}},
		{omniq.ScheduleSpec{Name: "a", Once: true, Args: tickArgs{}, Opts: &omniq.InsertOpts{Queue: "no spaces"}}, []string{"queue"}},
		{omniq.ScheduleSpec{Name: "a", Once: true, Args: tickArgs{}, Opts: &omniq.InsertOpts{RunIn: time.Hour}}, []string{"RunAt"}},
		{omniq.ScheduleSpec{Name: "taken", Once: true, Args: tickArgs{}}, []string{"Name", `"taken"`, "already exists"}},
	} {
		_, err := c.CreateSchedule(ctx, tc.spec)
		if !errors.Is(err, omniq.ErrInvalidInput) {
			t.Errorf("%+v: got %v, want ErrInvalidInput", tc.spec, err)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%q does not say %q", err, s)
			}
		}
	}
	if after := stored(); after != before {
		t.Fatalf("bad input changed the table:\n%s\n%s", before, after)
	}
	if _, err := c.Schedule(ctx, "missing"); !errors.Is(err, omniq.ErrNotFound) {
		t.Errorf("missing schedule: %v", err)
	}
	if _, err := c.PauseSchedule(ctx, "missing"); !errors.Is(err, omniq.ErrNotFound) {
		t.Errorf("pause missing schedule: %v", err)
	}

	// Declared in Config: timing errors at NewClient, the kind at Start,
	// and in both cases nothing is written.
	_, err := omniq.NewClient(db.Pool, &omniq.Config{Schema: db.Schema, Schedules: []omniq.ScheduleSpec{
		{Name: "x", Cron: "every day", Args: tickArgs{}},
		{Name: "x", Once: true, Args: tickArgs{}},
		{Cron: "@daily", Args: tickArgs{}},
	}})
	for _, s := range []string{`Schedules["x"].Cron`, `"every day"`, "declared twice", "Schedules[2].Name"} {
		if !errors.Is(err, omniq.ErrInvalidConfig) || !strings.Contains(err.Error(), s) {
			t.Errorf("declared schedules: %v does not say %q", err, s)
		}
	}
	bad := newClient(t, db, tickWorkers(), func(cfg *omniq.Config) {
		cfg.Schedules = []omniq.ScheduleSpec{{Name: "fine", Once: true, Args: tickArgs{}}, {Name: "unknown-kind", Once: true, Args: strangerArgs{}}}
	})
	if err := bad.Start(ctx); !errors.Is(err, omniq.ErrInvalidInput) || !strings.Contains(err.Error(), `"stranger"`) {
		t.Fatalf("Start with an unknown declared kind: %v", err)
	}
	if after := stored(); after != before {
		t.Fatalf("a failed Start changed the table:\n%s\n%s", before, after)
	}
}

// TestSchedulesIdleCost measures what 100 idle schedules cost a started
// client, in transactions per second on a database of its own (so other
// tests do not count), against the same client with no schedule. It is a
// measurement, not a check: run it with OMNIQ_MEASURE_IDLE=1 and -v.
func TestSchedulesIdleCost(t *testing.T) {
	if os.Getenv("OMNIQ_MEASURE_IDLE") == "" {
		t.Skip("set OMNIQ_MEASURE_IDLE=1 to measure")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	const dbName = "omniq_idle_measure"
	_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
	cfg, err := pgx.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = dbName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.Migrate(ctx, conn, "omniq", migrations.Latest()); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	pcfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	pcfg.ConnConfig.Database = dbName
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	commits := func() int64 {
		var n int64
		if err := admin.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = $1`, dbName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	measure := func(label string, schedules int) {
		c, err := omniq.NewClient(pool, &omniq.Config{Schema: "omniq", Log: omniq.LogConfig{Level: "error"}})
		if err != nil {
			t.Fatal(err)
		}
		for i := range schedules {
			if _, err := c.CreateSchedule(ctx, omniq.ScheduleSpec{Name: fmt.Sprintf("%s-%d", label, i), Cron: "0 3 * * *", Args: tickArgs{}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // settle; stats reach pg_stat_database with a delay
		const window = 30 * time.Second
		before := commits()
		time.Sleep(window)
		after := commits()
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d schedules, %.2f commits/s over %s", label, schedules, float64(after-before)/window.Seconds(), window)
	}
	measure("none", 0)
	measure("idle", 100)
}
