package omniq

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/omniqhq/omniq/jobs"
	"github.com/omniqhq/omniq/periodic"
	"github.com/omniqhq/omniq/queue"
)

// ScheduleSpec declares a schedule: when it fires (exactly one of Cron,
// Interval, At or Once) and the task it enqueues (Args and Opts). See
// periodic.Spec for every field.
type ScheduleSpec = periodic.Spec

// Schedule is a schedule as stored in the schedules table.
type Schedule = periodic.Schedule

// ScheduleFilter selects schedules for Client.Schedules.
type ScheduleFilter = periodic.Filter

// ScheduleType is cron, interval, timestamp or once.
type ScheduleType = periodic.Type

// ScheduleStatus is active, paused, expired or cancelled.
type ScheduleStatus = periodic.Status

// Schedule types and statuses.
const (
	ScheduleCron      = periodic.TypeCron
	ScheduleInterval  = periodic.TypeInterval
	ScheduleTimestamp = periodic.TypeTimestamp
	ScheduleOnce      = periodic.TypeOnce

	ScheduleActive    = periodic.StatusActive
	SchedulePaused    = periodic.StatusPaused
	ScheduleExpired   = periodic.StatusExpired
	ScheduleCancelled = periodic.StatusCancelled
)

// ErrScheduleDone: the schedule expired or was cancelled; it cannot be
// paused or resumed.
var ErrScheduleDone = periodic.ErrScheduleDone

// scheduleService fires due schedules while the client runs, and upserts the
// schedules declared in Config at Start.
type scheduleService struct {
	c   *Client
	svc *periodic.Service
}

func newScheduleService(c *Client) *scheduleService {
	// Any client fires any schedule: a kind this client has no worker for is
	// enqueued as an insert-only client would, for the clients that work it.
	insertOnly := queue.New(c.pool, engineConfig(Config{
		Schema: c.cfg.Schema, ID: c.cfg.ID, TaskTimeout: c.cfg.TaskTimeout, TaskTTL: c.cfg.TaskTTL,
		ResultTTL: c.cfg.ResultTTL, DisableResults: c.cfg.DisableResults, MaxAttempts: c.cfg.MaxAttempts,
		RetryDelay: c.cfg.RetryDelay, RetryBackoff: c.cfg.RetryBackoff, EventLevel: c.cfg.EventLevel,
	}, c.log), nil, c.codec)
	reg := c.cfg.Workers.registry()
	prepare := func(kind, codecName string, data []byte, o jobs.InsertOpts) (*queue.InsertParams, error) {
		if c.cfg.Workers.hasAny() {
			if _, ok := reg.Lookup(kind); !ok {
				return insertOnly.PrepareEncoded(kind, codecName, data, o)
			}
		}
		return c.engine.PrepareEncoded(kind, codecName, data, o)
	}
	svc := periodic.New(periodic.Config{
		Schema:     c.cfg.Schema,
		Pool:       c.pool,
		Engine:     c.engine,
		Codec:      c.codec,
		Prepare:    prepare,
		EventLevel: c.cfg.EventLevel,
		Logger:     componentLogger(c.log, c.cfg.Log, "periodic"),
	})
	return &scheduleService{c: c, svc: svc}
}

// start upserts the schedules declared in Config, then starts the loop.
func (s *scheduleService) start(ctx context.Context) error {
	if _, _, err := s.svc.Upsert(ctx, s.c.cfg.Schedules); err != nil {
		return err
	}
	s.svc.Start()
	return nil
}

func (s *scheduleService) stop(ctx context.Context) error {
	s.svc.Stop()
	return nil
}

// validateSchedules checks Config.Schedules without a database: names
// present and unique, timing and limits valid. Kinds and options are checked
// at Start, against the client's workers.
func (c *Config) validateSchedules() []*ConfigError {
	var errs []*ConfigError
	seen := map[string]bool{}
	for i, spec := range c.Schedules {
		field := "Schedules[" + strconv.Itoa(i) + "]"
		if spec.Name == "" {
			errs = append(errs, &ConfigError{Field: field + ".Name", Reason: "a declared schedule needs a name: it is upserted by it"})
			continue
		}
		field = fmt.Sprintf("Schedules[%q]", spec.Name)
		if seen[spec.Name] {
			errs = append(errs, &ConfigError{Field: field, Value: spec.Name, Reason: "declared twice"})
			continue
		}
		seen[spec.Name] = true
		if err := periodic.Validate(spec); err != nil {
			var ie *jobs.InputError
			if errors.As(err, &ie) {
				errs = append(errs, &ConfigError{Field: field + "." + ie.Field, Value: valueString(ie.Value), Reason: ie.Reason})
			} else {
				errs = append(errs, &ConfigError{Field: field, Reason: err.Error()})
			}
		}
	}
	return errs
}

func valueString(v any) string {
	if v == nil {
		return ""
	}
	s := fmt.Sprint(v)
	if u, err := strconv.Unquote(s); err == nil {
		return u // ConfigError quotes it again
	}
	return s
}

// CreateSchedule stores a new schedule; every started client fires it. The
// name must be unused (an empty name becomes the new id). Bad input (an
// invalid cron expression, an unknown time zone, an interval under a second,
// negative MaxRuns, a kind this client has no worker for when it has
// workers, a taken name) is an error wrapping ErrInvalidInput, and nothing
// is stored.
func (c *Client) CreateSchedule(ctx context.Context, spec ScheduleSpec) (*Schedule, error) {
	return c.schedules.svc.Create(ctx, spec)
}

// Schedule reads a schedule by id or name.
func (c *Client) Schedule(ctx context.Context, idOrName string) (*Schedule, error) {
	return c.schedules.svc.Get(ctx, idOrName)
}

// Schedules lists schedules matching f, by name.
func (c *Client) Schedules(ctx context.Context, f ScheduleFilter) ([]*Schedule, error) {
	return c.schedules.svc.List(ctx, f)
}

// PauseSchedule stops a schedule firing, on every client, until
// ResumeSchedule. It writes paused_at and a schedule_paused event.
func (c *Client) PauseSchedule(ctx context.Context, idOrName string) (*Schedule, error) {
	return c.schedules.svc.Pause(ctx, idOrName)
}

// ResumeSchedule restarts a paused schedule with its next run computed from
// now: ticks missed while paused are not fired.
func (c *Client) ResumeSchedule(ctx context.Context, idOrName string) (*Schedule, error) {
	return c.schedules.svc.Resume(ctx, idOrName)
}

// CancelSchedule ends a schedule for good; it stays readable until deleted.
func (c *Client) CancelSchedule(ctx context.Context, idOrName string) (*Schedule, error) {
	return c.schedules.svc.Cancel(ctx, idOrName)
}

// DeleteSchedule removes a schedule; its tasks stay.
func (c *Client) DeleteSchedule(ctx context.Context, idOrName string) error {
	return c.schedules.svc.Delete(ctx, idOrName)
}

// LatestResult returns the newest stored result of a schedule's tasks (by
// tick), as the plan's get_latest; ErrNotFound when none has one.
func (c *Client) LatestResult(ctx context.Context, scheduleIDOrName string) (*TaskResult, error) {
	id, err := c.schedules.svc.LatestResultTask(ctx, scheduleIDOrName)
	if err != nil {
		return nil, err
	}
	return c.engine.Result(ctx, c.pool, id)
}
