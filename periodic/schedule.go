package periodic

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq/jobs"
)

// Type is how a schedule computes its ticks.
type Type string

// Schedule types, as the plan has them.
const (
	TypeCron      Type = "cron"      // a cron expression in a time zone
	TypeInterval  Type = "interval"  // every Interval, anchored to the previous scheduled tick
	TypeTimestamp Type = "timestamp" // once, at At
	TypeOnce      Type = "once"      // once, as soon as possible
)

// Status is where a schedule is in its life.
type Status string

// Schedule statuses.
const (
	StatusActive    Status = "active"
	StatusPaused    Status = "paused"
	StatusExpired   Status = "expired"   // max runs reached, or a one-shot fired
	StatusCancelled Status = "cancelled" // by CancelSchedule
)

// ErrScheduleDone is returned when a schedule that has expired or was
// cancelled is paused or resumed: it will not fire again.
var ErrScheduleDone = errors.New("omniq: schedule is expired or cancelled")

// Event types written by schedules.
const (
	EventFired     = "schedule_fired"
	EventExpired   = "schedule_expired"
	EventSkipped   = "schedule_skipped" // a tick not fired: no-overlap, or its template failed
	EventPaused    = "schedule_paused"
	EventResumed   = "schedule_resumed"
	EventCancelled = "schedule_cancelled"
	EventCreated   = "schedule_created"
	EventUpdated   = "schedule_updated"
	EventDeleted   = "schedule_deleted"
)

// Spec declares a schedule: when it fires and the task it enqueues.
//
// Exactly one of Cron, Interval, At and Once says when; Type may name it
// explicitly, else it follows from the field set.
type Spec struct {
	// Name is unique among schedules; Config-declared schedules are upserted
	// by it. CreateSchedule uses the new id when it is empty.
	Name string
	Type Type
	// Cron: five fields (min hour dom month dow), an optional leading seconds
	// field, or a descriptor (@hourly, @daily, @every 90s, …), read in
	// Timezone (an IANA name; default UTC).
	Cron     string
	Timezone string
	// Interval fires every Interval (at least MinInterval), the first tick one
	// Interval after creation; each tick is the previous scheduled tick plus
	// Interval, so it never drifts.
	Interval time.Duration
	// At fires once at that time (at once if it has passed).
	At time.Time
	// Once fires once, as soon as a client's scheduler sees it.
	Once bool

	// Args and Opts are the task template. Opts may not set ID, RunAt, RunIn
	// or DependsOn: each tick makes a new task to run now.
	Args jobs.Args
	Opts *jobs.InsertOpts

	// MaxRuns expires the schedule after that many tasks; 0 is unlimited.
	MaxRuns int
	// Backfill is how many missed ticks are fired, besides the newest, after
	// the schedule could not fire for a while (every client down). 0, the
	// default, fires once for all of them and carries on.
	Backfill int
	// NoOverlap skips a tick while the schedule's previous task has not
	// finished (pending, waiting, running or retry).
	NoOverlap bool

	Tags        []string
	Description string
}

// Schedule is a schedule as stored.
type Schedule struct {
	ID       uuid.UUID
	Name     string
	Type     Type
	Cron     string
	Timezone string
	Interval time.Duration
	At       *time.Time // run_at of a timestamp schedule

	// The task template: Args as stored (jsonb text) by Codec.
	Kind     string
	Queue    string
	Args     []byte
	Codec    string
	Priority int
	Options  TaskOptions

	MaxRuns   int // 0: unlimited
	RunCount  int
	Backfill  int
	NoOverlap bool

	Status    Status
	LastRunAt *time.Time // when it last fired (database clock)
	NextRunAt *time.Time // the next tick; nil once expired or cancelled
	PausedAt  *time.Time
	ResumedAt *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time

	Tags        []string
	Description string
}

// Filter selects schedules for List. Zero fields do not filter.
type Filter struct {
	Statuses []Status
	Types    []Type
	Kinds    []string
	Tag      string
	// Limit defaults to 100, at most 10,000.
	Limit int
}

// TaskOptions are the enqueue options of a schedule's template other than
// queue and priority (which have columns), as stored in schedules.options.
// Durations are Go duration strings so the JSON reads well in SQL.
type TaskOptions struct {
	MaxAttempts  int              `json:"max_attempts,omitempty"`
	RetryDelay   string           `json:"retry_delay,omitempty"`
	RetryBackoff jobs.Backoff     `json:"retry_backoff,omitempty"`
	Timeout      string           `json:"timeout,omitempty"`
	TTL          string           `json:"ttl,omitempty"`
	Name         string           `json:"name,omitempty"`
	Description  string           `json:"description,omitempty"`
	Tags         []string         `json:"tags,omitempty"`
	Metadata     map[string]any   `json:"metadata,omitempty"`
	StoreResult  *bool            `json:"store_result,omitempty"`
	ResultTTL    string           `json:"result_ttl,omitempty"`
	Callback     *jobs.Callback   `json:"callback,omitempty"`
	Unique       *jobs.UniqueOpts `json:"unique,omitempty"`
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func parseDur(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

// optionsOf splits a template's options into the stored form.
func optionsOf(o jobs.InsertOpts) (TaskOptions, error) {
	switch {
	case o.ID != uuid.Nil:
		return TaskOptions{}, invalid("Opts.ID", o.ID, "a schedule makes a new task each tick; it cannot preset the id")
	case !o.RunAt.IsZero() || o.RunIn != 0:
		return TaskOptions{}, invalid("Opts.RunAt", nil, "a schedule's task runs at its tick; RunAt and RunIn cannot be set")
	case len(o.DependsOn) > 0:
		return TaskOptions{}, invalid("Opts.DependsOn", nil, "a schedule's task cannot depend on other tasks")
	}
	return TaskOptions{
		MaxAttempts:  o.MaxAttempts,
		RetryDelay:   durString(o.RetryDelay),
		RetryBackoff: o.RetryBackoff,
		Timeout:      durString(o.Timeout),
		TTL:          durString(o.TTL),
		Name:         o.Name,
		Description:  o.Description,
		Tags:         o.Tags,
		Metadata:     o.Metadata,
		StoreResult:  o.StoreResult,
		ResultTTL:    durString(o.ResultTTL),
		Callback:     o.Callback,
		Unique:       o.Unique,
	}, nil
}

// InsertOpts returns the template's enqueue options.
func (s *Schedule) InsertOpts() (jobs.InsertOpts, error) {
	o := s.Options
	out := jobs.InsertOpts{
		Queue:        s.Queue,
		Priority:     s.Priority,
		MaxAttempts:  o.MaxAttempts,
		RetryBackoff: o.RetryBackoff,
		Name:         o.Name,
		Description:  o.Description,
		Tags:         o.Tags,
		Metadata:     o.Metadata,
		StoreResult:  o.StoreResult,
		Callback:     o.Callback,
		Unique:       o.Unique,
	}
	for _, d := range []struct {
		dst *time.Duration
		s   string
	}{{&out.RetryDelay, o.RetryDelay}, {&out.Timeout, o.Timeout}, {&out.TTL, o.TTL}, {&out.ResultTTL, o.ResultTTL}} {
		v, err := parseDur(d.s)
		if err != nil {
			return jobs.InsertOpts{}, fmt.Errorf("schedule %s: options: %w", s.Name, err)
		}
		*d.dst = v
	}
	return out, nil
}

func (o TaskOptions) json() ([]byte, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, invalid("Opts", nil, "cannot be stored as JSON: "+err.Error())
	}
	return b, nil
}

// typeOf returns the schedule type spec declares, checking that exactly one
// timing field is set.
func typeOf(s *Spec) (Type, error) {
	var set []Type
	if s.Cron != "" {
		set = append(set, TypeCron)
	}
	if s.Interval != 0 {
		set = append(set, TypeInterval)
	}
	if !s.At.IsZero() {
		set = append(set, TypeTimestamp)
	}
	if s.Once {
		set = append(set, TypeOnce)
	}
	switch {
	case s.Type != "":
		switch s.Type {
		case TypeCron, TypeInterval, TypeTimestamp, TypeOnce:
		default:
			return "", invalid("Type", fmt.Sprintf("%q", s.Type), `use "cron", "interval", "timestamp" or "once"`)
		}
		if len(set) > 1 || (len(set) == 1 && set[0] != s.Type) {
			return "", invalid("Type", fmt.Sprintf("%q", s.Type), fmt.Sprintf("does not match the timing fields set (%v)", set))
		}
		return s.Type, nil
	case len(set) == 0:
		return "", invalid("Cron", nil, "a schedule needs one of Cron, Interval, At or Once")
	case len(set) > 1:
		return "", invalid("Cron", nil, fmt.Sprintf("set only one of Cron, Interval, At or Once (got %v)", set))
	}
	return set[0], nil
}
