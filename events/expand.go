package events

import (
	"encoding/json"
	"time"
)

// outcome reports whether t ends an attempt (and so may stand for the
// executing transition before it).
func outcome(t Type) bool {
	switch t {
	case Completed, Error, Retry, Cancelled, Snoozed, Rescued:
		return true
	}
	return false
}

// compactFromData reads EnqueuedAt and StartedAt of an outcome row written
// before migration 013, which kept them in data as enqueued_at and
// started_at. Data that holds neither, or does not parse, leaves them zero.
func (e *Event) compactFromData() {
	if !outcome(e.Type) || len(e.Data) == 0 {
		return
	}
	var d struct {
		EnqueuedAt *time.Time `json:"enqueued_at"`
		StartedAt  *time.Time `json:"started_at"`
	}
	if json.Unmarshal(e.Data, &d) != nil {
		return
	}
	if d.EnqueuedAt != nil {
		e.EnqueuedAt = *d.EnqueuedAt
	}
	if d.StartedAt != nil {
		e.StartedAt = *d.StartedAt
	}
}

// Expand returns the transitions e stands for, oldest first. At the default
// level an outcome row is compact: it carries StartedAt (the attempt's
// executing transition) and, on the first attempt's outcome, EnqueuedAt (the
// task's enqueued transition); Expand makes those into Derived events placed
// before e. A task cancelled before its attempt started (claimed ahead, then
// cancelled while it waited for a worker) has no StartedAt, and no executing
// transition. Any other event expands to itself.
func Expand(e Event) []Event {
	if !outcome(e.Type) || (e.StartedAt.IsZero() && e.EnqueuedAt.IsZero()) {
		return []Event{e}
	}
	out := make([]Event, 0, 3)
	if !e.EnqueuedAt.IsZero() {
		out = append(out, Event{ID: e.ID, Time: e.EnqueuedAt, Type: Enqueued, TaskID: e.TaskID, Kind: e.Kind,
			Queue: e.Queue, ScheduleID: e.ScheduleID, Data: json.RawMessage(`{}`), Source: e.Source,
			Level: LevelInfo, Derived: true})
	}
	if !e.StartedAt.IsZero() {
		out = append(out, Event{ID: e.ID, Time: e.StartedAt, Type: Executing, TaskID: e.TaskID, Kind: e.Kind,
			Queue: e.Queue, WorkerID: e.WorkerID, ScheduleID: e.ScheduleID, Attempt: e.Attempt,
			Data: json.RawMessage(`{}`), Source: e.Source, Level: LevelInfo, Derived: true})
	}
	return append(out, e)
}
