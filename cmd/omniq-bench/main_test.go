package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
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
