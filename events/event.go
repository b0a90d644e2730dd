package events

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Type names what happened. The values are what the events table stores.
type Type string

// Event types of tasks.
const (
	Enqueued  Type = "enqueued"  // a task was inserted (level all; derived at default)
	Executing Type = "executing" // a worker claimed an attempt (level all; derived at default)
	Completed Type = "completed" // an attempt succeeded; the task is done
	Error     Type = "error"     // an attempt failed and the task will not run again
	Retry     Type = "retry"     // an attempt failed (or was interrupted) and will run again
	Cancelled Type = "cancelled" // cancelled by request, by its worker, or by a failed dependency
	Expired   Type = "expired"   // its TTL passed before it started
	Rescued   Type = "rescued"   // its client stopped heartbeating while it ran
	Snoozed   Type = "snoozed"   // its worker asked to run it again later, without using an attempt
)

// Event types of schedules and queues.
const (
	SchedulePaused  Type = "schedule_paused"
	ScheduleResumed Type = "schedule_resumed"
	ScheduleFired   Type = "schedule_fired"
	ScheduleExpired Type = "schedule_expired"
	QueuePaused     Type = "queue_paused"
	QueueResumed    Type = "queue_resumed"
)

// Types lists every event type.
var Types = []Type{Enqueued, Executing, Completed, Error, Retry, Cancelled, Expired, Rescued, Snoozed,
	SchedulePaused, ScheduleResumed, ScheduleFired, ScheduleExpired, QueuePaused, QueueResumed}

// Valid reports whether t is a known event type.
func (t Type) Valid() bool {
	for _, k := range Types {
		if t == k {
			return true
		}
	}
	return false
}

// Level is an event's severity.
type Level string

// Levels, as stored.
const (
	LevelDebug   Level = "debug"
	LevelInfo    Level = "info"
	LevelWarning Level = "warning"
	LevelError   Level = "error"
)

// Valid reports whether l is a known level.
func (l Level) Valid() bool {
	switch l {
	case LevelDebug, LevelInfo, LevelWarning, LevelError:
		return true
	}
	return false
}

// Event is one row of the events table, or one transition derived from a
// compact row (see Expand).
type Event struct {
	// ID is the row's id. Ids grow with insertion, not with commit order.
	// Events derived from one compact row share its id.
	ID         int64
	Time       time.Time
	Type       Type
	TaskID     uuid.UUID // uuid.Nil for queue and schedule events
	Kind       string
	Queue      string
	WorkerID   string
	ScheduleID uuid.UUID // uuid.Nil when none
	Attempt    int
	Message    string
	// Data holds the type's details as a JSON object: run_at of a retry or a
	// snooze.
	Data          json.RawMessage
	ExecutionTime time.Duration
	Error         string
	Source        string
	Level         Level
	// EnqueuedAt and StartedAt are the transitions a compact outcome row
	// stands for (see Expand): the task's enqueue, on its first attempt's
	// outcome, and the attempt's start. Zero when the row stands for none.
	EnqueuedAt time.Time
	StartedAt  time.Time
	// Derived marks an event made by Expand from a compact row rather than
	// read as a row of its own.
	Derived bool
}
