package omniq

import (
	"context"

	"github.com/omniqhq/omniq/events"
)

// The event log, re-exported from the events package.
type (
	// Event is one transition of a task, schedule or queue.
	Event = events.Event
	// EventType names what happened.
	EventType = events.Type
	// EventLevel is an event's severity.
	EventLevel = events.Level
	// EventFilter selects events for Events and Subscribe.
	EventFilter = events.Filter
	// Stats is the state of every queue (Client.Stats).
	Stats = events.Stats
	// QueueStats is one queue's state.
	QueueStats = events.QueueStats
)

// Event types.
const (
	EventEnqueued        = events.Enqueued
	EventExecuting       = events.Executing
	EventCompleted       = events.Completed
	EventError           = events.Error
	EventRetry           = events.Retry
	EventCancelled       = events.Cancelled
	EventExpired         = events.Expired
	EventRescued         = events.Rescued
	EventSnoozed         = events.Snoozed
	EventSchedulePaused  = events.SchedulePaused
	EventScheduleResumed = events.ScheduleResumed
	EventScheduleFired   = events.ScheduleFired
	EventScheduleExpired = events.ScheduleExpired
	EventQueuePaused     = events.QueuePaused
	EventQueueResumed    = events.QueueResumed
)

// Event levels.
const (
	EventLevelDebug   = events.LevelDebug
	EventLevelInfo    = events.LevelInfo
	EventLevelWarning = events.LevelWarning
	EventLevelError   = events.LevelError
)

// Events lists the events matching f: oldest first (newest with f.Desc), at
// most f.Limit rows (default 100), after the cursor f.AfterID. Pass the last
// event's ID as the next page's AfterID. What is recorded depends on
// Config.EventLevel (see package events).
func (c *Client) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	return c.events.Store().List(ctx, c.pool, f)
}

// Subscribe delivers the events matching f as they commit, each exactly
// once, on a channel closed when ctx ends. It starts with what commits after
// the call, or, when f.AfterID > 0, with the committed events above it.
// Compact rows are expanded into the transitions they stand for. A slow
// reader does not slow the queue: when the channel's buffer (1024) is full,
// the subscription waits and later reads what it missed from the table.
// See events.Hub.Subscribe.
func (c *Client) Subscribe(ctx context.Context, f EventFilter) (<-chan Event, error) {
	return c.events.Subscribe(ctx, f, events.DefaultBuffer)
}

// Stats reports per queue: tasks per status, tasks finished in the last
// minute, and the age of the oldest due task. The view queue_stats in the
// client's schema answers the same in SQL.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	return c.events.Store().Stats(ctx, c.pool)
}
