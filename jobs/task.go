package jobs

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Status is a task's place in its lifecycle.
type Status string

// Task statuses. Transitions are the only writes to status.
const (
	StatusPending   Status = "pending"   // waiting for run_at, then runnable
	StatusWaiting   Status = "waiting"   // dependencies not yet met
	StatusRunning   Status = "running"   // claimed by a worker
	StatusSuccess   Status = "success"   // finished without error
	StatusError     Status = "error"     // retries exhausted or not retryable
	StatusRetry     Status = "retry"     // failed; runs again at run_at
	StatusCancelled Status = "cancelled" // cancelled before or while running
	StatusExpired   Status = "expired"   // TTL passed before it ran
)

// Statuses lists every task status.
var Statuses = []Status{StatusPending, StatusWaiting, StatusRunning, StatusSuccess, StatusError, StatusRetry, StatusCancelled, StatusExpired}

// Finished reports whether s is terminal: the task will not run again unless
// retried by hand.
func (s Status) Finished() bool {
	switch s {
	case StatusSuccess, StatusError, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}

// Backoff names a retry delay policy stored with the task.
type Backoff string

// Retry backoffs.
const (
	BackoffFixed       Backoff = "fixed"       // every retry waits RetryDelay
	BackoffExponential Backoff = "exponential" // RetryDelay * 2^(attempt-1), with jitter
)

// AttemptError records one failed attempt.
type AttemptError struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
	Trace   string    `json:"trace,omitempty"`
}

// Callback is a follow-up task enqueued when its parent finishes.
type Callback struct {
	Kind     string          `json:"kind"`
	Args     json.RawMessage `json:"args,omitempty"`
	Queue    string          `json:"queue,omitempty"`
	Priority int             `json:"priority,omitempty"`
	// OnFailure also fires the callback when the parent ends error, cancelled or expired.
	OnFailure bool `json:"on_failure,omitempty"`
}

// TaskRow is a task as stored, with its arguments still encoded.
type TaskRow struct {
	ID           uuid.UUID
	Kind         string
	Queue        string
	EncodedArgs  []byte // as stored in tasks.args (JSON text)
	Codec        string
	Name         string
	Description  string
	Tags         []string
	Priority     int
	Status       Status
	RunAt        time.Time
	CreatedAt    time.Time
	StartedAt    *time.Time
	CompletedAt  *time.Time
	Attempt      int
	MaxAttempts  int
	RetryDelay   time.Duration
	RetryBackoff Backoff
	ExpiresAt    *time.Time
	Timeout      time.Duration
	DependsOn    []uuid.UUID
	RunAnyway    bool
	Callback     *Callback
	ResultTTL    time.Duration
	StoreResult  bool
	ScheduleID   *uuid.UUID
	ScheduledAt  *time.Time
	WorkerID     string
	HeartbeatAt  *time.Time
	Errors       []AttemptError
	Metadata     map[string]any
	// Partition is the partition of the tasks table that holds the row (its
	// gen column): 0 for the sticky partition, 1-4 for the rotating ones.
	// With ID it is the row's primary key.
	Partition int16
}

// Task is a task handed to a worker, with its arguments decoded into T.
type Task[T Args] struct {
	*TaskRow
	Args T

	result    any
	hasResult bool
}

// SetResult records v as the task's result, stored when the attempt succeeds
// (if the task stores results). The last call wins.
func (t *Task[T]) SetResult(v any) {
	t.result, t.hasResult = v, true
}

// Result returns what SetResult recorded.
func (t *Task[T]) Result() (any, bool) { return t.result, t.hasResult }
