package queue

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/goccy/go-json"

	"github.com/omniqhq/omniq/jobs"
)

// execution is a task claimed by this client: running, or claimed ahead and
// waiting for a worker slot (see producer.claimAhead). Its context exists from
// the claim, so a cancel request or a hard stop reaches a task still waiting.
type execution struct {
	row     *jobs.TaskRow
	ctx     context.Context
	cancel  context.CancelCauseFunc
	claimed time.Time
}

// track registers a task just claimed.
func (e *Engine) track(row *jobs.TaskRow, claimed time.Time) *execution {
	ctx, cancel := context.WithCancelCause(context.WithValue(e.workCtx, engineKey{}, e))
	x := &execution{row: row, ctx: ctx, cancel: cancel, claimed: claimed}
	e.running.Store(row.ID, x)
	return x
}

// untrack hands in the outcome of a task this client claimed.
func (e *Engine) untrack(x *execution, o *outcome) {
	o.noCallback = x.row.Callback == nil
	x.cancel(nil)
	e.running.Delete(x.row.ID)
	e.completer.add(o)
}

// PanicError is the error of an attempt whose worker panicked.
type PanicError struct {
	Value any
	Stack string
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

type engineKey struct{}

// FromContext returns the engine running the task whose context ctx is.
func FromContext(ctx context.Context) (*Engine, bool) {
	e, ok := ctx.Value(engineKey{}).(*Engine)
	return e, ok
}

// execute works on one of p's worker slots: x, then each task claimed ahead
// that is waiting when the slot frees.
func (e *Engine) execute(p *producer, x *execution) {
	defer e.executing.Done()
	for {
		start := time.Now()
		var o *outcome
		if x.ctx.Err() != nil {
			// Cancelled or stopped while it waited for the slot.
			o = e.unstarted(x)
		} else {
			o = e.run(x.ctx, x.row)
		}
		e.untrack(x, o)
		var ok bool
		if x, ok = p.next(time.Since(start)); !ok {
			return
		}
	}
}

func (e *Engine) run(ctx context.Context, row *jobs.TaskRow) *outcome {
	start := time.Now()
	unit, ok := e.registry.Lookup(row.Kind)
	if !ok {
		// A newer deploy may know the kind: fail this attempt, retry.
		return e.failed(row, start, nil, fmt.Errorf("no worker for kind %q on client %s", row.Kind, e.cfg.ID), "", false)
	}
	r, err := unit.Prepare(row, e.decodeArgs)
	if err != nil {
		return e.failed(row, start, nil, jobs.NoRetry(err), "", false)
	}
	timeout := r.Timeout()
	if timeout == 0 {
		timeout = row.Timeout
	}
	workCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		workCtx, cancel = context.WithTimeoutCause(ctx, timeout, context.DeadlineExceeded)
		defer cancel()
	}
	err = safeWork(workCtx, r)
	finished := time.Now()
	if err == nil {
		return e.succeeded(row, r, finished)
	}
	if cause := context.Cause(ctx); cause != nil {
		switch {
		case errors.Is(cause, ErrCancelRequested):
			return e.cancelled(row, finished, err)
		case errors.Is(cause, ErrStopped):
			return e.interrupted(row, finished, err)
		}
	}
	timedOut := timeout > 0 && errors.Is(workCtx.Err(), context.DeadlineExceeded)
	if timedOut {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	var trace string
	var pe *PanicError
	if errors.As(err, &pe) {
		trace = pe.Stack
	}
	if e.cfg.OnTaskError != nil {
		e.cfg.OnTaskError(row, err)
	}
	return e.failed(row, finished, r, err, trace, timedOut)
}

func safeWork(ctx context.Context, r jobs.Runnable) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: string(debug.Stack())}
		}
	}()
	return r.Work(ctx)
}

func (e *Engine) decodeArgs(codecName string, stored []byte, v any) error {
	data, err := e.codec.FromJSONB(codecName, stored)
	if err != nil {
		return err
	}
	return e.codec.Decode(codecName, data, v)
}

func (e *Engine) succeeded(row *jobs.TaskRow, r jobs.Runnable, finished time.Time) *outcome {
	o := &outcome{id: row.ID, gen: row.Partition, attempt: row.Attempt, status: jobs.StatusSuccess, finishedAt: finished,
		resultStatus: jobs.ResultSuccess, event: "completed", queue: row.Queue}
	if v, ok := r.Result(); ok && row.StoreResult {
		name, data, err := e.codec.Encode(v)
		if err != nil {
			return e.failed(row, finished, nil, jobs.NoRetry(fmt.Errorf("encode result: %w", err)), "", false)
		}
		o.result, o.resultCodec = e.codec.ToJSONB(name, data), name
	}
	return o
}

func (e *Engine) cancelled(row *jobs.TaskRow, finished time.Time, err error) *outcome {
	return &outcome{id: row.ID, gen: row.Partition, attempt: row.Attempt, status: jobs.StatusCancelled, finishedAt: finished,
		resultStatus: jobs.ResultCancelled, event: "cancelled", queue: row.Queue,
		errEntry: attemptError(row.Attempt, finished, err, ""), errMsg: err.Error()}
}

// interrupted returns a task cut short by a hard stop to the queue, without
// using up its attempt.
func (e *Engine) interrupted(row *jobs.TaskRow, finished time.Time, err error) *outcome {
	return &outcome{id: row.ID, gen: row.Partition, attempt: row.Attempt, status: jobs.StatusRetry, runAt: &finished,
		attemptAdj: -1, finishedAt: finished, event: "retry", queue: row.Queue,
		errEntry: attemptError(row.Attempt, finished, fmt.Errorf("interrupted by client stop: %w", err), ""),
		errMsg:   "interrupted by client stop"}
}

// unstarted is the outcome of a task claimed ahead that never started: it is
// cancelled if a cancel request reached it, else given back, its attempt not
// used up and its run_at, so its place in the queue, kept. A task that has
// run before is a retry again.
func (e *Engine) unstarted(x *execution) *outcome {
	row := x.row
	if cause := context.Cause(x.ctx); errors.Is(cause, ErrCancelRequested) {
		return e.cancelled(row, time.Now(), cause)
	}
	status := jobs.StatusPending
	if row.Attempt > 1 {
		status = jobs.StatusRetry
	}
	return &outcome{id: row.ID, gen: row.Partition, attempt: row.Attempt, status: status, runAt: &row.RunAt,
		attemptAdj: -1, finishedAt: time.Now(), queue: row.Queue}
}

// failed decides what a failed attempt leads to: cancel, snooze, retry or error.
func (e *Engine) failed(row *jobs.TaskRow, finished time.Time, r jobs.Runnable, err error, trace string, timedOut bool) *outcome {
	o := &outcome{id: row.ID, gen: row.Partition, attempt: row.Attempt, finishedAt: finished, queue: row.Queue, errMsg: err.Error(), traceback: trace}
	var (
		cancelErr  *jobs.CancelError
		snoozeErr  *jobs.SnoozeError
		noRetryErr *jobs.NoRetryError
	)
	switch {
	case errors.As(err, &snoozeErr):
		at := finished.Add(snoozeErr.Duration)
		o.status, o.runAt, o.attemptAdj, o.event, o.errMsg = jobs.StatusPending, &at, -1, "snoozed", ""
		return o
	case errors.As(err, &cancelErr):
		o.status, o.resultStatus, o.event = jobs.StatusCancelled, jobs.ResultCancelled, "cancelled"
	case errors.As(err, &noRetryErr) || row.Attempt >= row.MaxAttempts:
		o.status, o.resultStatus, o.event = jobs.StatusError, jobs.ResultError, "error"
	default:
		at := time.Time{}
		if r != nil {
			at = r.NextRetry()
		}
		if at.IsZero() {
			at = finished.Add(jobs.RetryDelay(row.RetryBackoff, row.RetryDelay, row.Attempt))
		}
		o.status, o.runAt, o.event = jobs.StatusRetry, &at, "retry"
	}
	if timedOut && o.status == jobs.StatusError {
		o.resultStatus = jobs.ResultTimeout
	}
	o.errEntry = attemptError(row.Attempt, finished, err, trace)
	return o
}

func attemptError(attempt int, at time.Time, err error, trace string) []byte {
	b, _ := json.Marshal(jobs.AttemptError{Attempt: attempt, At: at, Error: err.Error(), Trace: trace})
	return b
}
