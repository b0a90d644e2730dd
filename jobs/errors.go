package jobs

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned when a task, result or schedule does not exist (or
// its result was not stored or has expired).
var ErrNotFound = errors.New("omniq: not found")

// CancelError, returned from a worker, ends the task cancelled without retry.
type CancelError struct{ Err error }

func (e *CancelError) Error() string {
	if e.Err == nil {
		return "task cancelled by its worker"
	}
	return "task cancelled by its worker: " + e.Err.Error()
}
func (e *CancelError) Unwrap() error { return e.Err }

// NoRetryError, returned from a worker, ends the task in error at once,
// whatever attempts remain.
type NoRetryError struct{ Err error }

func (e *NoRetryError) Error() string {
	return fmt.Sprintf("not retryable: %v", e.Err)
}
func (e *NoRetryError) Unwrap() error { return e.Err }

// SnoozeError, returned from a worker, puts the task back to run after
// Duration. A snooze does not use up an attempt.
type SnoozeError struct{ Duration time.Duration }

func (e *SnoozeError) Error() string { return fmt.Sprintf("snoozed for %s", e.Duration) }

// Cancel returns an error that cancels the task without retry.
func Cancel(err error) error { return &CancelError{Err: err} }

// NoRetry returns an error that fails the task without retry.
func NoRetry(err error) error { return &NoRetryError{Err: err} }

// Snooze returns an error that reschedules the task after d without counting
// an attempt.
func Snooze(d time.Duration) error { return &SnoozeError{Duration: d} }

// ErrInvalidInput is wrapped by every InputError.
var ErrInvalidInput = errors.New("omniq: invalid input")

// InputError names the field of a request that was rejected, and why. Nothing
// was written when it is returned.
type InputError struct {
	Field  string
	Value  any
	Reason string
}

func (e *InputError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("omniq: invalid %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("omniq: invalid %s %v: %s", e.Field, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidInput) true.
func (e *InputError) Unwrap() error { return ErrInvalidInput }
