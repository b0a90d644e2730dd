package periodic

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // every client must read a schedule's zone the same way, whatever its host has installed

	"github.com/robfig/cron/v3"

	"github.com/omniqhq/omniq/jobs"
)

// MinInterval is the shortest interval an interval schedule may have, the
// resolution of cron's seconds field.
const MinInterval = time.Second

// cronParser accepts five fields, an optional leading seconds field, and the
// descriptors (@hourly, @every 90s, …).
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// timing computes a schedule's ticks. It is pure: the caller passes the time.
type timing struct {
	typ      Type
	cron     cron.Schedule
	loc      *time.Location
	interval time.Duration
	at       time.Time
}

func invalid(field string, value any, reason string) error {
	return &jobs.InputError{Field: field, Value: value, Reason: reason}
}

// ParseCron parses a cron expression as schedules do, in zone tz ("" is
// UTC). The error, an *jobs.InputError, quotes the expression and says what is
// wrong with it.
func ParseCron(expr, tz string) (cron.Schedule, error) {
	loc, err := loadZone(tz)
	if err != nil {
		return nil, err
	}
	return parseCron(expr, loc)
}

func parseCron(expr string, loc *time.Location) (cron.Schedule, error) {
	q := fmt.Sprintf("%q", expr)
	trimmed := strings.TrimSpace(expr)
	if trimmed == "" {
		return nil, invalid("Cron", q, "empty cron expression")
	}
	if strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ=") {
		return nil, invalid("Cron", q, "give the time zone in Timezone, not in the expression")
	}
	s, err := cronParser.Parse(trimmed)
	if err != nil {
		return nil, invalid("Cron", q, err.Error()+
			" (use five fields \"min hour dom month dow\", six with a leading seconds field, or a descriptor such as @hourly or @every 90s)")
	}
	// A spec such as "0 0 30 2 *" (February 30th) never fires: robfig returns
	// the zero time when it finds nothing within five years.
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, loc)).IsZero() {
		return nil, invalid("Cron", q, "never fires (no matching date)")
	}
	return s, nil
}

func loadZone(tz string) (*time.Location, error) {
	switch tz {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, invalid("Timezone", `"Local"`, "name a zone such as Europe/Paris: clients on different hosts would read Local differently")
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, invalid("Timezone", fmt.Sprintf("%q", tz), "unknown time zone (use an IANA name such as Europe/Paris)")
	}
	return loc, nil
}

// next returns the first tick strictly after t. anchor is a known tick of an
// interval schedule (its grid); other types ignore it. It returns the zero
// time when there is no further tick.
func (tm *timing) next(t, anchor time.Time) time.Time {
	switch tm.typ {
	case TypeCron:
		n := tm.cron.Next(t.In(tm.loc))
		if n.IsZero() {
			return n
		}
		return n.UTC()
	case TypeInterval:
		if t.Before(anchor) {
			return anchor
		}
		k := t.Sub(anchor) / tm.interval
		return anchor.Add((k + 1) * tm.interval).UTC()
	}
	return time.Time{}
}

// first is the first tick of a new (or resumed) schedule at now.
func (tm *timing) first(now time.Time) time.Time {
	switch tm.typ {
	case TypeCron:
		return tm.next(now, time.Time{})
	case TypeInterval:
		return now.Add(tm.interval).UTC()
	case TypeTimestamp:
		return tm.at.UTC()
	default: // once
		return now.UTC()
	}
}

// plan is what a due schedule does at now.
type plan struct {
	fire   []time.Time // ticks to fire, oldest first
	missed int         // due ticks not fired (at least this many)
	next   time.Time   // next_run_at after this fire; zero when none
	expire bool        // the schedule ends: max_runs reached or a one-shot fired
}

// maxWindowTicks bounds the ticks walked for one schedule in one fire, so a
// long downtime of an every-second cron costs a bounded amount of work.
const maxWindowTicks = 100_000

// planDue decides what a schedule whose next_run_at (due) is not after now
// fires: the newest due tick, and up to backfill missed ticks before it; none
// when busy (no-overlap and the previous task is unfinished). maxRuns 0 is
// unlimited.
func (tm *timing) planDue(due, now time.Time, backfill, maxRuns, runCount int, busy bool) plan {
	if tm.typ == TypeTimestamp || tm.typ == TypeOnce {
		if busy {
			// A one-shot has no previous task; busy cannot apply, but be safe:
			// try again later rather than lose the only tick.
			return plan{next: due}
		}
		return plan{fire: []time.Time{due}, expire: true}
	}
	ticks, total := tm.dueTicks(due, now, backfill+1)
	p := plan{next: tm.next(ticks[len(ticks)-1], due)}
	if busy {
		p.missed = total
		return p
	}
	p.fire = ticks
	if maxRuns > 0 {
		left := max(maxRuns-runCount, 0)
		if len(p.fire) > left {
			p.fire = p.fire[len(p.fire)-left:]
		}
		if runCount+len(p.fire) >= maxRuns {
			p.expire = true
		}
	}
	p.missed = total - len(p.fire)
	if p.expire || p.next.IsZero() {
		p.next, p.expire = time.Time{}, true
	}
	return p
}

// dueTicks returns the newest keep ticks in [due, now], oldest first (at
// least one: due itself is a tick), and how many ticks that range holds (a
// lower bound when the range is too long to walk).
func (tm *timing) dueTicks(due, now time.Time, keep int) ([]time.Time, int) {
	if tm.typ == TypeInterval {
		k := int(now.Sub(due) / tm.interval) // ticks after due that are not after now
		n := min(keep, k+1)
		ticks := make([]time.Time, n)
		for i := range n {
			ticks[i] = due.Add(time.Duration(k-n+1+i) * tm.interval).UTC()
		}
		return ticks, k + 1
	}
	// Cron has no "previous tick": walk forward from a start that widens until
	// it holds keep ticks or reaches due.
	for window := time.Hour; ; window *= 4 {
		start, exact := now.Add(-window), false
		if !start.After(due) {
			start, exact = due, true
		}
		var ticks []time.Time
		total := 0
		t := start
		if exact {
			ticks, total = append(ticks, due), 1
		}
		for steps := 0; steps < maxWindowTicks; steps++ {
			t = tm.next(t, due)
			if t.IsZero() || t.After(now) {
				break
			}
			ticks = append(ticks, t)
			total++
			if len(ticks) > keep {
				ticks = ticks[1:]
			}
		}
		if exact || len(ticks) >= keep {
			if !exact {
				total++ // due itself lies before the window
			}
			return ticks, total
		}
	}
}
