package omniq

import (
	"time"

	"github.com/omniqhq/omniq/jobs"
	"github.com/omniqhq/omniq/queue"
)

// Model types, re-exported from the jobs package.
type (
	TaskRow      = jobs.TaskRow
	TaskResult   = jobs.TaskResult
	Status       = jobs.Status
	ResultStatus = jobs.ResultStatus
	InsertOpts   = jobs.InsertOpts
	UniqueOpts   = jobs.UniqueOpts
	Callback     = jobs.Callback
	AttemptError = jobs.AttemptError
	Backoff      = jobs.Backoff
	InputError   = jobs.InputError
	TaskFilter   = queue.TaskFilter
	PruneCounts  = queue.PruneCounts
	PanicError   = queue.PanicError
)

// Task statuses.
const (
	StatusPending   = jobs.StatusPending
	StatusWaiting   = jobs.StatusWaiting
	StatusRunning   = jobs.StatusRunning
	StatusSuccess   = jobs.StatusSuccess
	StatusError     = jobs.StatusError
	StatusRetry     = jobs.StatusRetry
	StatusCancelled = jobs.StatusCancelled
	StatusExpired   = jobs.StatusExpired
)

// Result statuses.
const (
	ResultSuccess   = jobs.ResultSuccess
	ResultError     = jobs.ResultError
	ResultCancelled = jobs.ResultCancelled
	ResultTimeout   = jobs.ResultTimeout
)

// Retry backoffs.
const (
	BackoffFixed       = jobs.BackoffFixed
	BackoffExponential = jobs.BackoffExponential
)

// Errors callers branch on.
var (
	// ErrNotFound: no such task, result or schedule.
	ErrNotFound = jobs.ErrNotFound
	// ErrInvalidInput is wrapped by every error about bad input; nothing was written.
	ErrInvalidInput = jobs.ErrInvalidInput
	// ErrFinished: the task already finished.
	ErrFinished = queue.ErrFinished
)

// JobCancel, returned from Work, ends the task cancelled without retry.
func JobCancel(err error) error { return jobs.Cancel(err) }

// JobSnooze, returned from Work, runs the task again after d without using an attempt.
func JobSnooze(d time.Duration) error { return jobs.Snooze(d) }

// NoRetry, returned from Work, ends the task in error at once.
func NoRetry(err error) error { return jobs.NoRetry(err) }
