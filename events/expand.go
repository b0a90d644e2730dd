package events

import (
	"encoding/json"
	"time"
)

// compactData is what a compact outcome row carries in data at the default
// level: the times of the transitions it stands for.
type compactData struct {
	EnqueuedAt *time.Time `json:"enqueued_at"`
	StartedAt  *time.Time `json:"started_at"`
}

// outcome reports whether t ends an attempt (and so may stand for the
// executing transition before it).
func outcome(t Type) bool {
	switch t {
	case Completed, Error, Retry, Cancelled, Snoozed, Rescued:
		return true
	}
	return false
}

// Expand returns the transitions e stands for, oldest first. At the default
// level an outcome row is compact: it carries started_at (the attempt's
// executing transition) and, on the first attempt's outcome, enqueued_at
// (the task's enqueued transition); Expand makes those into Derived events
// placed before e. A task cancelled before its attempt started (claimed
// ahead, then cancelled while it waited for a worker) has no started_at, and
// no executing transition. Any other event expands to itself.
func Expand(e Event) []Event {
	if !outcome(e.Type) || len(e.Data) == 0 {
		return []Event{e}
	}
	var d compactData
	if err := json.Unmarshal(e.Data, &d); err != nil || (d.StartedAt == nil && d.EnqueuedAt == nil) {
		return []Event{e}
	}
	out := make([]Event, 0, 3)
	if d.EnqueuedAt != nil {
		out = append(out, Event{ID: e.ID, Time: *d.EnqueuedAt, Type: Enqueued, TaskID: e.TaskID, Kind: e.Kind,
			Queue: e.Queue, ScheduleID: e.ScheduleID, Data: json.RawMessage(`{}`), Source: e.Source,
			Level: LevelInfo, Derived: true})
	}
	if d.StartedAt != nil {
		out = append(out, Event{ID: e.ID, Time: *d.StartedAt, Type: Executing, TaskID: e.TaskID, Kind: e.Kind,
			Queue: e.Queue, WorkerID: e.WorkerID, ScheduleID: e.ScheduleID, Attempt: e.Attempt,
			Data: json.RawMessage(`{}`), Source: e.Source, Level: LevelInfo, Derived: true})
	}
	return append(out, e)
}
