package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq/internal/pgtest"
)

// TestModes runs every mode briefly on a schema of its own, so the bench
// cannot rot. It checks that each finishes and prints its summary line, not
// how fast it is.
func TestModes(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.NewSchemaName()
	t.Cleanup(func() { pgtest.DropSchema(t, url, schema) })
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "3000", "--workers", "50"}, "overall jobs/s"},
		{[]string{"--duration", "2s", "--workers", "50", "--results", "off", "--events", "none"}, "overall jobs/s"},
		{[]string{"-n", "600", "--preload-finished", "1000", "--events", "all"}, "overall jobs/s"},
		{[]string{"--latency", "1s"}, "enqueue-to-start latency p50="},
		{[]string{"--enqueue-many", "1200", "--batch", "600"}, "overall tasks/s"},
	} {
		o, err := parseFlags(append(c.args, "--database-url", url, "--schema", schema, "--max-conns", "4"))
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		f, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		if err := run(context.Background(), o, f); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		out, _ := os.ReadFile(f.Name())
		f.Close()
		if !strings.Contains(string(out), c.want) {
			t.Errorf("%v: output lacks %q:\n%s", c.args, c.want, out)
		}
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	for _, bad := range [][]string{
		{"-n", "10", "--duration", "1s"},
		{"--results", "maybe"},
		{"--events", "some"},
		{"--workers", "0"},
		{"extra"},
		{"--phases", "clean:1s", "-n", "5"},
		{"--phases", "clean"},
		{"--phases", "clean:0s"},
		{"--phases", "clean:1s,"},
		{"--phases", "clean:1s", "--rate", "0"},
		{"--phases", "clean:1s", "--interval", "0s"},
		{"--phases", "clean:1s", "--work-time", "-1ms"},
		{"--phases", "clean:1s", "--autovacuum", "maybe"},
		{"--phases", "clean:1s", "--reader-tx", "10ms"},
		{"--phases", "clean:1s", "--reader-workers", "-2"},
		{"--reader-workers", "0"},
		{"--phases", "clean:1s", "--finished-retention", "-1s"},
		{"--rate", "100"},
		{"--csv", "x.csv"},
		{"--autovacuum", "on"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
	_, err := parseFlags([]string{"--phases", "clean:10s,vacuum-storm:5s,recovery:5s"})
	if err == nil || !strings.Contains(err.Error(), `"vacuum-storm:5s"`) {
		t.Errorf("unknown phase: error %v, want it to name the bad part", err)
	}
	lh, err := parseFlags([]string{"--phases", " clean:10m, idle-in-tx:10m,readers:1m30s,recovery:5m"})
	if err != nil {
		t.Fatal(err)
	}
	if got := formatPhases(lh.phases); got != "clean:10m0s,idle-in-tx:10m0s,readers:1m30s,recovery:5m0s" {
		t.Errorf("phases %s", got)
	}
	if lh.workers != 8 || lh.rate != 1000 || lh.workTime != time.Millisecond || lh.interval != 5*time.Second ||
		lh.finishedRetention != time.Minute || lh.autovacuum != "as-is" || lh.vacuumAtRecoverySet || lh.fetchCooldown != 0 || lh.readerWorkers != -1 {
		t.Errorf("--phases defaults: %+v", lh)
	}
	o, err := parseFlags([]string{"--latency", "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if o.workers != 100 || o.fetchCooldown != 0 || o.pollInterval != 0 {
		t.Errorf("--latency defaults: workers=%d cooldown=%s poll=%s, want the client's defaults", o.workers, o.fetchCooldown, o.pollInterval)
	}
}

func TestHistogram(t *testing.T) {
	t.Parallel()
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.Record(timeMs(i))
	}
	s := h.Snapshot()
	for _, c := range []struct {
		q    float64
		want int
	}{{0.5, 500}, {0.95, 950}, {0.99, 990}} {
		got := s.Quantile(c.q)
		if d := float64(got-timeMs(c.want)) / float64(timeMs(c.want)); d < 0 || d > 0.02 {
			t.Errorf("p%v = %s, want %dms within 2%%", c.q*100, got, c.want)
		}
	}
	if s.Count() != 1000 {
		t.Errorf("count %d", s.Count())
	}
}

func timeMs(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// TestPhases runs a 20-second long-horizon run, so the mode cannot rot. It
// checks the per-interval lines, the CSV rows of every phase, the per-phase
// summary, and that the idle-in-tx and readers connections really held the
// horizon (their xid or xmin was seen while the phase ran), not how fast it
// is. It leaves autovacuum as it is and asks for the recovery VACUUM, so it
// does not depend on the server's setting.
func TestPhases(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.NewSchemaName()
	t.Cleanup(func() { pgtest.DropSchema(t, url, schema) })
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "lh.csv")
	o, err := parseFlags([]string{"--phases", "clean:5s,idle-in-tx:5s,readers:5s,recovery:5s", "--rate", "200", "--interval", "1s",
		"--reader-tx", "2s", "--reader-workers", "0", "--vacuum-at-recovery", "--csv", csvPath, "--database-url", url, "--schema", schema})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, o, f); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.Name())
	out := string(b)
	t.Logf("output:\n%s", out)

	for _, want := range []string{"ran with autovacuum=", "shared_buffers=", "finished_retention=1m0s",
		"] idle-in-tx  offered", "claim p50 ", "tasks dead ", "| results dead ", "VACUUM (ANALYZE) done in",
		"bench: recovery: interval p95 back within 10% of clean's", "max_parallel_workers_per_gather 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "bench: reader: ") {
		t.Errorf("a reader failed")
	}
	for _, p := range []string{"clean", "idle-in-tx", "readers", "recovery"} {
		if !regexp.MustCompile(`(?m)^bench: summary ` + regexp.QuoteMeta(p) + ` +\d+s +\d+ +\d+ +[\d.]+% `).MatchString(out) {
			t.Errorf("no summary row for phase %s", p)
		}
	}
	for _, p := range []string{"idle-in-tx", "readers"} {
		m := regexp.MustCompile(`(?m)^bench: ` + p + `: horizon held by .* in (\d+) of (\d+) samples`).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("no horizon line for %s", p)
			continue
		}
		if held, _ := strconv.Atoi(m[1]); held == 0 {
			t.Errorf("%s: the horizon was never seen held (%s of %s samples)", p, m[1], m[2])
		}
	}

	csvBytes, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(csvBytes)), "\n")
	if lines[0] != csvHeader {
		t.Errorf("csv header %q", lines[0])
	}
	rows := map[string][][]string{}
	for _, l := range lines[1:] {
		cols := strings.Split(l, ",")
		if len(cols) != 15 {
			t.Fatalf("csv row %q: %d columns", l, len(cols))
		}
		rows[cols[1]] = append(rows[cols[1]], cols)
	}
	for _, p := range []string{"clean", "idle-in-tx", "readers", "recovery"} {
		if len(rows[p]) == 0 {
			t.Errorf("no csv rows for phase %s", p)
		}
	}
	// Dead tuples of tasks during idle-in-tx: reported, not asserted, since
	// the count depends on how many row versions the engine writes per task.
	if r := rows["idle-in-tx"]; len(r) > 0 {
		t.Logf("idle-in-tx: tasks dead tuples %s at its first row, %s at its last", r[0][9], r[len(r)-1][9])
	}
}

// newSampler migrates a schema of the test's own and returns a long-horizon
// run's sampler on it (not started), with the pool it reports on.
func newSampler(t *testing.T) (context.Context, *pgxpool.Pool, *longHorizon) {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.NewSchemaName()
	t.Cleanup(func() { pgtest.DropSchema(t, url, schema) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	o, err := parseFlags([]string{"--phases", "clean:1s", "--database-url", url, "--schema", schema})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := prepareSchema(ctx, pool, o); err != nil {
		t.Fatal(err)
	}
	lh := &longHorizon{bench: &bench{o: o, pool: pool}, w: &lhWorker{}}
	if err := lh.openSampler(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lh.sampler.Close(context.Background()) })
	return ctx, pool, lh
}

// TestSampleBehindALock: a table whose lock is not granted at once does
// not stall the sampler; the sizes are the previous sample's, marked stale.
func TestSampleBehindALock(t *testing.T) {
	t.Parallel()
	ctx, pool, lh := newSampler(t)
	prev, err := lh.sample(ctx, nil, nil)
	if err != nil || prev.stale || len(prev.tables) == 0 {
		t.Fatalf("first sample: %+v, %v", prev, err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // the test's end
	if _, err := tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{lh.o.schema, "queues"}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	s, err := lh.sample(ctx, nil, prev)
	if err != nil {
		t.Fatalf("sample behind a lock: %v", err)
	}
	if !s.stale || len(s.tables) != len(prev.tables) {
		t.Fatalf("sample behind a lock: stale %v, %d tables; want stale, %d", s.stale, len(s.tables), len(prev.tables))
	}
	if _, err := lh.sample(ctx, nil, nil); err == nil {
		t.Fatal("sample behind a lock with no previous sample: no error")
	}
}

// TestStealPercent: the share of the machine's CPU stolen between two
// readings, -1 when the readings cannot say; /proc/stat is read on Linux.
func TestStealPercent(t *testing.T) {
	if got := stealPercent(100, 10, 200, 30); got != 20 {
		t.Errorf("stealPercent(100, 10, 200, 30) = %v, want 20", got)
	}
	if got := stealPercent(100, 10, 100, 10); got != -1 {
		t.Errorf("stealPercent with no time between the readings = %v, want -1", got)
	}
	if got := stealPercent(0, 0, 0, 0); got != -1 {
		t.Errorf("stealPercent of unknown readings = %v, want -1", got)
	}
	if runtime.GOOS == "linux" {
		total, steal, ok := machineCPU()
		if !ok || total <= 0 || steal < 0 || steal > total {
			t.Errorf("machineCPU() = %d, %d, %v; want a positive total, 0 ≤ steal ≤ total", total, steal, ok)
		}
	}
}

// TestSampleSeesLockWaits: an interval's sample names a statement waiting
// for a lock, and the client pool's use, so a stall behind a lock queue or
// an exhausted pool shows in the long-horizon lines.
func TestSampleSeesLockWaits(t *testing.T) {
	t.Parallel()
	ctx, pool, lh := newSampler(t)
	schema := lh.o.schema
	var err error

	// One transaction holds a lock of schedules that a DELETE waits for (and
	// the sample's size reads, which take ACCESS SHARE, do not).
	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(context.Background()) //nolint:errcheck // the test's end
	schedules := pgx.Identifier{schema, "schedules"}.Sanitize()
	if _, err := holder.Exec(ctx, "LOCK TABLE "+schedules+" IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := pool.Exec(ctx, "DELETE FROM "+schedules+" WHERE false")
		waited <- err
	}()
	// The count is the database's: tests of other packages running beside
	// this one may wait for locks of their own, so look for ours.
	var s *sample
	pgtest.WaitFor(t, 10*time.Second, "the sample to name the waiting DELETE", func() bool {
		if s, err = lh.sample(ctx, nil, nil); err != nil {
			t.Fatal(err)
		}
		return s.lockWaits > 0 && strings.HasPrefix(s.lockWait, "relation ") && strings.Contains(s.lockWait, "DELETE FROM "+schedules)
	})
	if s.poolBusy != 2 || s.poolMax != pool.Config().MaxConns {
		t.Errorf("pool %d/%d busy, want 2/%d", s.poolBusy, s.poolMax, pool.Config().MaxConns)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
}
