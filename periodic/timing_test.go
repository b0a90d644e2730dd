package periodic

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/omniqhq/omniq/jobs"
)

type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

func mustTiming(t *testing.T, spec Spec) *timing {
	t.Helper()
	spec.Args = noopArgs{}
	tm, err := validate(&spec)
	if err != nil {
		t.Fatalf("validate %+v: %v", spec, err)
	}
	return tm
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestCronNext(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cron, tz, after string
		want            []string
	}{
		{"*/15 * * * *", "", "2026-03-01T10:07:00Z", []string{"2026-03-01T10:15:00Z", "2026-03-01T10:30:00Z"}},
		{"*/20 * * * * *", "", "2026-03-01T10:07:00.5Z", []string{"2026-03-01T10:07:20Z", "2026-03-01T10:07:40Z", "2026-03-01T10:08:00Z"}},
		{"@hourly", "", "2026-03-01T10:07:00Z", []string{"2026-03-01T11:00:00Z", "2026-03-01T12:00:00Z"}},
		{"@every 90s", "", "2026-03-01T10:00:00Z", []string{"2026-03-01T10:01:30Z", "2026-03-01T10:03:00Z"}},
		// 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC after the
		// switch to summer time on 2026-03-29.
		{"0 9 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", []string{"2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"}},
		{"0 9 * * *", "Europe/Paris", "2026-03-27T12:00:00Z", []string{"2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z"}},
		{"0 0 * * MON", "America/New_York", "2026-01-01T00:00:00Z", []string{"2026-01-05T05:00:00Z"}},
	} {
		tm := mustTiming(t, Spec{Cron: tc.cron, Timezone: tc.tz})
		at := utc(tc.after)
		for _, w := range tc.want {
			at = tm.next(at, time.Time{})
			if !at.Equal(utc(w)) {
				t.Errorf("%q in %q: got %s, want %s", tc.cron, tc.tz, at, w)
			}
		}
	}
}

func TestFirstTick(t *testing.T) {
	t.Parallel()
	now := utc("2026-03-01T10:07:12.345Z")
	at := utc("2026-04-01T00:00:00Z")
	for _, tc := range []struct {
		spec Spec
		want time.Time
	}{
		{Spec{Cron: "*/5 * * * *"}, utc("2026-03-01T10:10:00Z")},
		{Spec{Interval: 10 * time.Second}, now.Add(10 * time.Second)},
		{Spec{At: at}, at},
		{Spec{At: utc("2020-01-01T00:00:00Z")}, utc("2020-01-01T00:00:00Z")}, // past: fires at once
		{Spec{Once: true}, now},
	} {
		if got := mustTiming(t, tc.spec).first(now); !got.Equal(tc.want) {
			t.Errorf("%+v: first = %s, want %s", tc.spec, got, tc.want)
		}
	}
}

// An interval schedule's ticks stay on the grid of its first tick however
// late it fires: anchored to the scheduled time, never to the fire time.
func TestIntervalAnchoredNoDrift(t *testing.T) {
	t.Parallel()
	tm := mustTiming(t, Spec{Interval: time.Minute})
	due := utc("2026-03-01T10:00:00Z")
	for i := range 100 {
		late := time.Duration(i%7) * 7 * time.Second // fires up to 42s late
		p := tm.planDue(due, due.Add(late), 0, 0, i, false)
		if len(p.fire) != 1 || !p.fire[0].Equal(due) {
			t.Fatalf("tick %d: fired %v, want [%s]", i, p.fire, due)
		}
		if want := due.Add(time.Minute); !p.next.Equal(want) {
			t.Fatalf("tick %d: next %s, want %s", i, p.next, want)
		}
		due = p.next
	}
	if want := utc("2026-03-01T11:40:00Z"); !due.Equal(want) {
		t.Fatalf("after 100 ticks: %s, want %s", due, want)
	}
}

func TestPlanDueMissedTicks(t *testing.T) {
	t.Parallel()
	due := utc("2026-03-01T10:00:00Z")
	now := utc("2026-03-01T10:09:30Z") // ticks 10:00 … 10:09 are due: ten
	for _, spec := range []Spec{{Interval: time.Minute}, {Cron: "* * * * *"}} {
		tm := mustTiming(t, spec)
		// Default: fire once, for the newest tick, and carry on.
		p := tm.planDue(due, now, 0, 0, 0, false)
		if len(p.fire) != 1 || !p.fire[0].Equal(utc("2026-03-01T10:09:00Z")) || p.missed != 9 ||
			!p.next.Equal(utc("2026-03-01T10:10:00Z")) || p.expire {
			t.Errorf("%v once: %+v", spec, p)
		}
		// Backfill 3: the three missed ticks before the newest, and it.
		p = tm.planDue(due, now, 3, 0, 0, false)
		want := []time.Time{utc("2026-03-01T10:06:00Z"), utc("2026-03-01T10:07:00Z"), utc("2026-03-01T10:08:00Z"), utc("2026-03-01T10:09:00Z")}
		if !equalTimes(p.fire, want) || p.missed != 6 || !p.next.Equal(utc("2026-03-01T10:10:00Z")) {
			t.Errorf("%v backfill 3: %+v", spec, p)
		}
		// Backfill beyond what was missed fires all of it.
		p = tm.planDue(due, now, 50, 0, 0, false)
		if len(p.fire) != 10 || p.missed != 0 || !p.fire[0].Equal(due) {
			t.Errorf("%v backfill 50: %d fired, %d missed", spec, len(p.fire), p.missed)
		}
		// MaxRuns caps a backfill and expires the schedule.
		p = tm.planDue(due, now, 5, 10, 8, false)
		if len(p.fire) != 2 || !p.expire || !p.next.IsZero() || !p.fire[1].Equal(utc("2026-03-01T10:09:00Z")) {
			t.Errorf("%v max runs: %+v", spec, p)
		}
		// No overlap, previous task unfinished: nothing fires, and the
		// schedule moves past every due tick.
		p = tm.planDue(due, now, 3, 0, 0, true)
		if len(p.fire) != 0 || p.missed != 10 || !p.next.Equal(utc("2026-03-01T10:10:00Z")) {
			t.Errorf("%v busy: %+v", spec, p)
		}
	}
}

// A long downtime of an every-second cron costs a bounded walk, and still
// fires the right ticks.
func TestPlanDueLongDowntime(t *testing.T) {
	t.Parallel()
	tm := mustTiming(t, Spec{Cron: "* * * * * *"})
	due := utc("2026-01-01T00:00:00Z")
	now := utc("2026-02-01T00:00:00.5Z")
	p := tm.planDue(due, now, 2, 0, 0, false)
	want := []time.Time{utc("2026-01-31T23:59:58Z"), utc("2026-01-31T23:59:59Z"), utc("2026-02-01T00:00:00Z")}
	if !equalTimes(p.fire, want) || !p.next.Equal(utc("2026-02-01T00:00:01Z")) || p.missed < 3000 { // a lower bound: only the last hour is walked
		t.Fatalf("got %+v", p)
	}
	// A yearly cron two years down: the windows widen until they hold a tick.
	tm = mustTiming(t, Spec{Cron: "@yearly"})
	p = tm.planDue(utc("2024-01-01T00:00:00Z"), utc("2026-06-01T00:00:00Z"), 0, 0, 0, false)
	if len(p.fire) != 1 || !p.fire[0].Equal(utc("2026-01-01T00:00:00Z")) || p.missed < 1 || !p.next.Equal(utc("2027-01-01T00:00:00Z")) {
		t.Fatalf("yearly: %+v", p)
	}
}

func TestPlanDueOneShots(t *testing.T) {
	t.Parallel()
	due := utc("2026-03-01T10:00:00Z")
	for _, spec := range []Spec{{At: due}, {Once: true}} {
		p := mustTiming(t, spec).planDue(due, due.Add(time.Hour), 5, 0, 0, false)
		if !equalTimes(p.fire, []time.Time{due}) || !p.expire || !p.next.IsZero() {
			t.Errorf("%+v: %+v", spec, p)
		}
	}
}

func TestValidateBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec       Spec
		field      string
		inMessage  []string
		needsValue bool
	}{
		{Spec{Cron: "* * *"}, "Cron", []string{`"* * *"`, "expected 5 to 6 fields, found 3"}, true},
		{Spec{Cron: "61 * * * *"}, "Cron", []string{`"61 * * * *"`, "above maximum"}, true},
		{Spec{Cron: "@fortnightly"}, "Cron", []string{`"@fortnightly"`, "unrecognized descriptor"}, true},
		{Spec{Cron: "0 0 30 2 *"}, "Cron", []string{`"0 0 30 2 *"`, "never fires"}, true},
		{Spec{Cron: "CRON_TZ=Europe/Paris 0 9 * * *"}, "Cron", []string{"Timezone"}, true},
		{Spec{Cron: "* * * * *", Timezone: "Mars/Olympus"}, "Timezone", []string{`"Mars/Olympus"`, "unknown time zone"}, true},
		{Spec{Cron: "* * * * *", Timezone: "Local"}, "Timezone", []string{"Local"}, true},
		{Spec{Interval: -time.Second}, "Interval", []string{"must be positive"}, true},
		{Spec{Type: TypeInterval}, "Interval", []string{"must be positive"}, true},
		{Spec{Interval: time.Millisecond}, "Interval", []string{"at least 1s"}, true},
		{Spec{Once: true, MaxRuns: -1}, "MaxRuns", []string{"-1"}, true},
		{Spec{Once: true, Backfill: -2}, "Backfill", []string{"-2"}, true},
		{Spec{}, "Cron", []string{"one of Cron, Interval, At or Once"}, false},
		{Spec{Cron: "* * * * *", Once: true}, "Cron", []string{"only one"}, false},
		{Spec{Type: "weekly"}, "Type", []string{`"weekly"`}, true},
		{Spec{Type: TypeCron, Once: true}, "Type", []string{"does not match"}, true},
	} {
		tc.spec.Args = noopArgs{}
		err := Validate(tc.spec)
		var ie *jobs.InputError
		if !errors.As(err, &ie) || !errors.Is(err, jobs.ErrInvalidInput) {
			t.Errorf("%+v: got %v, want an InputError", tc.spec, err)
			continue
		}
		if ie.Field != tc.field {
			t.Errorf("%+v: field %q, want %q (%v)", tc.spec, ie.Field, tc.field, err)
		}
		for _, s := range tc.inMessage {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%+v: %q does not say %q", tc.spec, err, s)
			}
		}
	}
	if err := Validate(Spec{Once: true}); err == nil || !strings.Contains(err.Error(), "Args") {
		t.Errorf("nil args: %v", err)
	}
}

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
