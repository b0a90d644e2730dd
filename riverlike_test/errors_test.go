package riverlike_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/internal/pgtest"
)

// A failing task is retried after a delay until MaxAttempts, then given up on
// (OmniQ status error; River's "discarded"). OmniQ's default is 4 attempts
// with a fixed 5s delay; River's is 25 attempts backing off attempt^4 seconds.
// River: https://riverqueue.com/docs/job-retries
func TestFailingTaskRetriesWithDelayThenDiscarded(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var at record[time.Time]
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		at.add(time.Now())
		return errors.New("boom")
	}), nil)
	start(t, c)
	const delay = 250 * time.Millisecond
	res := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{MaxAttempts: 3, RetryDelay: delay})
	row := waitStatus(t, c, res.ID, omniq.StatusError)
	if row.Attempt != 3 || row.CompletedAt == nil {
		t.Fatalf("discarded at attempt %d (completed_at %v), want 3", row.Attempt, row.CompletedAt)
	}
	times := at.all()
	if len(times) != 3 {
		t.Fatalf("ran %d times, want 3", len(times))
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < delay {
			t.Fatalf("attempt %d started %s after attempt %d, want at least the retry delay %s", i+1, gap, i, delay)
		}
	}
	// Discarded for good: nothing runs it again. A task due two retry
	// delays later runs after any retry of it would have.
	later := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{MaxAttempts: 1, RunIn: 2 * delay})
	waitStatus(t, c, later.ID, omniq.StatusError)
	if n := at.len(); n != 4 {
		t.Fatalf("%d runs after the discard and one later task, want 4: the discarded task ran again", n)
	}
}

// Exponential backoff: each retry waits twice as long as the previous one
// (RetryDelay·2^(attempt-1), ±10% jitter). River's default policy is
// attempt^4 seconds ±10%; a worker's NextRetry overrides either.
// River: https://riverqueue.com/docs/job-retries (Client retry policy)
func TestRetryBackoffGrowsExponentially(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var at record[time.Time]
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		at.add(time.Now())
		if t.Attempt < 3 {
			return errors.New("not yet")
		}
		return nil
	}), nil)
	start(t, c)
	const base = 150 * time.Millisecond
	res := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{RetryDelay: base, RetryBackoff: omniq.BackoffExponential})
	waitStatus(t, c, res.ID, omniq.StatusSuccess)
	times := at.all()
	if len(times) != 3 {
		t.Fatalf("ran %d times, want 3", len(times))
	}
	first, second := times[1].Sub(times[0]), times[2].Sub(times[1])
	if first < base*9/10 || second < 2*base*9/10 {
		t.Fatalf("retry waits %s then %s; want at least %s then %s (exponential, 10%% jitter)", first, second, base*9/10, 2*base*9/10)
	}
}

// nextRetryWorker chooses its own retry time, as River's Worker.NextRetry does.
type nextRetryWorker struct {
	omniq.WorkerDefaults[otherArgs]
	at record[time.Time]
}

const customRetryWait = 300 * time.Millisecond

func (w *nextRetryWorker) Work(ctx context.Context, t *omniq.Task[otherArgs]) error {
	w.at.add(time.Now())
	if t.Attempt == 1 {
		return errors.New("first attempt fails")
	}
	return nil
}

func (w *nextRetryWorker) NextRetry(*omniq.Task[otherArgs]) time.Time {
	return time.Now().Add(customRetryWait)
}

// A worker's NextRetry overrides the retry policy.
// River: https://riverqueue.com/docs/job-retries (Worker retry policy)
func TestWorkerNextRetryOverridesRetryPolicy(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	w := &nextRetryWorker{}
	workers := omniq.NewWorkers()
	omniq.AddWorker[otherArgs](workers, w)
	c := newClient(t, db, workers, nil) // RetryDelay 50ms
	start(t, c)
	res := enqueue(t, c, otherArgs{}, nil)
	waitStatus(t, c, res.ID, omniq.StatusSuccess)
	times := w.at.all()
	if len(times) != 2 {
		t.Fatalf("ran %d times, want 2", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < customRetryWait {
		t.Fatalf("retried after %s, want the worker's %s", gap, customRetryWait)
	}
}

// Every failed attempt's error is kept on the task, in order, with its
// attempt number and time, also after a later attempt succeeds.
// River: https://riverqueue.com/docs/job-retries and
// https://riverqueue.com/docs/reliable-workers (errors saved to the job row)
func TestErrorHistoryKeptPerAttempt(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		if t.Attempt < 3 {
			return fmt.Errorf("failure number %d", t.Attempt)
		}
		return nil
	}), nil)
	start(t, c)
	before := time.Now()
	res := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{MaxAttempts: 5})
	row := waitStatus(t, c, res.ID, omniq.StatusSuccess)
	if row.Attempt != 3 || len(row.Errors) != 2 {
		t.Fatalf("attempt %d with %d errors, want 3 and 2: %+v", row.Attempt, len(row.Errors), row.Errors)
	}
	for i, e := range row.Errors {
		if e.Attempt != i+1 || e.Error != fmt.Sprintf("failure number %d", i+1) || e.At.Before(before.Add(-time.Second)) {
			t.Fatalf("error %d = %+v", i, e)
		}
	}
	if !row.Errors[0].At.Before(row.Errors[1].At) {
		t.Fatalf("errors out of order: %+v", row.Errors)
	}
}

// A worker snoozes its task: it runs again after the duration, and the
// snooze does not count as a failed attempt, so a task allowed one attempt
// can snooze and still run. River gets the same effect by adding one to
// MaxAttempts at each snooze; OmniQ leaves MaxAttempts and the attempt alone.
// River: https://riverqueue.com/docs/snoozing-jobs
func TestSnoozeRunsAgainLaterWithoutUsingAnAttempt(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	const snooze = 300 * time.Millisecond
	var at record[time.Time]
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		at.add(time.Now())
		if at.len() <= 2 {
			return omniq.JobSnooze(snooze)
		}
		return nil
	}), nil)
	start(t, c)
	res := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{MaxAttempts: 1})
	row := waitStatus(t, c, res.ID, omniq.StatusSuccess)
	if row.Attempt != 1 || row.MaxAttempts != 1 || len(row.Errors) != 0 {
		t.Fatalf("after two snoozes: attempt %d of %d, errors %+v; want 1 of 1, none", row.Attempt, row.MaxAttempts, row.Errors)
	}
	times := at.all()
	if len(times) != 3 {
		t.Fatalf("ran %d times, want 3", len(times))
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < snooze {
			t.Fatalf("run %d came %s after a snooze of %s", i+1, gap, snooze)
		}
	}
}

// A worker that knows its task can never succeed cancels it: no retry, and
// the error it gave is kept.
// River: https://riverqueue.com/docs/cancelling-jobs (Cancelling from within a worker, JobCancel)
func TestJobCancelFromWorkerStopsRetries(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var runs atomic.Int32
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		runs.Add(1)
		return omniq.JobCancel(errors.New("account closed, will never succeed"))
	}), nil)
	start(t, c)
	res := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{MaxAttempts: 5})
	row := waitStatus(t, c, res.ID, omniq.StatusCancelled)
	if row.Attempt != 1 || len(row.Errors) != 1 || !strings.Contains(row.Errors[0].Error, "account closed, will never succeed") {
		t.Fatalf("cancelled task: attempt %d, errors %+v", row.Attempt, row.Errors)
	}
	// A task due several retry delays (50ms) later runs after any retry of
	// the cancelled one would have.
	later := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{RunIn: quietWindow})
	waitStatus(t, c, later.ID, omniq.StatusCancelled)
	if n := runs.Load(); n != 2 {
		t.Fatalf("%d runs after the cancel and one later task, want 2: the cancelled task ran again", n)
	}
}

// timeoutWorker bounds its own attempts, as River's Worker.Timeout does.
type timeoutWorker struct {
	omniq.WorkerDefaults[otherArgs]
	errs record[error]
}

func (w *timeoutWorker) Work(ctx context.Context, t *omniq.Task[otherArgs]) error {
	if t.Attempt == 1 {
		<-ctx.Done() // a slow first attempt, cut short
		w.errs.add(ctx.Err())
		return ctx.Err()
	}
	return nil
}

func (w *timeoutWorker) Timeout(*omniq.Task[otherArgs]) time.Duration { return 100 * time.Millisecond }

// An attempt that runs past its timeout has its context cancelled with a
// deadline error; it counts as a failure and is retried. OmniQ has no
// timeout by default (Config.TaskTimeout, InsertOpts.Timeout, Worker.Timeout);
// River's default JobTimeout is one minute.
// River: https://riverqueue.com/docs/reliable-workers (Timeouts and contexts) and
// https://riverqueue.com/docs/inserting-and-working-jobs (Worker Timeout)
func TestTimeoutCancelsAttemptContextAndRetries(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	w := &timeoutWorker{}
	workers := omniq.NewWorkers()
	omniq.AddWorker[otherArgs](workers, w)
	c := newClient(t, db, workers, nil)
	start(t, c)
	res := enqueue(t, c, otherArgs{}, nil)
	row := waitStatus(t, c, res.ID, omniq.StatusSuccess)
	if row.Attempt != 2 || len(row.Errors) != 1 || !strings.Contains(row.Errors[0].Error, "timed out after 100ms") {
		t.Fatalf("attempt %d, errors %+v; want the first attempt timed out and the second succeeded", row.Attempt, row.Errors)
	}
	if errs := w.errs.all(); len(errs) != 1 || !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Fatalf("the slow attempt's context ended with %v, want DeadlineExceeded", errs)
	}

	// The per-task option does the same, and out of attempts the result says timeout.
	blocked := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		<-ctx.Done()
		return ctx.Err()
	}), func(cfg *omniq.Config) { cfg.Queues = map[string]omniq.QueueConfig{"slow": {MaxWorkers: 1}} })
	start(t, blocked)
	one := enqueue(t, blocked, jobArgs{}, &omniq.InsertOpts{Queue: "slow", Timeout: 100 * time.Millisecond, MaxAttempts: 1})
	waitStatus(t, blocked, one.ID, omniq.StatusError)
	r, err := blocked.Result(context.Background(), one.ID)
	if err != nil || r.Status != omniq.ResultTimeout {
		t.Fatalf("result of a timed-out task: %+v, %v; want status timeout", r, err)
	}
}

// A worker that panics does not bring the client down: the panic is
// recovered, recorded as the attempt's error with its stack, and the task is
// retried; other tasks keep running. River additionally calls
// ErrorHandler.HandlePanic, a hook OmniQ's Config does not offer (see
// README: not matched yet); the events table and Subscribe carry the failure.
// River: https://riverqueue.com/docs/error-handling
func TestPanicIsRecoveredRecordedAndRetried(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		if t.Args.Msg == "panic" && t.Attempt == 1 {
			panic("worker exploded")
		}
		return nil
	}), nil)
	start(t, c)
	sub, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := c.Subscribe(sub, omniq.EventFilter{Types: []omniq.EventType{omniq.EventRetry}})
	if err != nil {
		t.Fatal(err)
	}
	res := enqueue(t, c, jobArgs{Msg: "panic"}, nil)
	row := waitStatus(t, c, res.ID, omniq.StatusSuccess)
	if row.Attempt != 2 || len(row.Errors) != 1 {
		t.Fatalf("attempt %d, errors %+v; want a retried panic", row.Attempt, row.Errors)
	}
	e := row.Errors[0]
	if e.Error != "panic: worker exploded" || !strings.Contains(e.Trace, "errors_test.go") {
		t.Fatalf("panic recorded as %q with trace %q", e.Error, e.Trace)
	}
	ev := recv(t, ch, "the retry event of the panic")
	if ev.TaskID != res.ID || !strings.Contains(ev.Error, "worker exploded") {
		t.Fatalf("retry event %+v", ev)
	}
	// The client is still working.
	waitStatus(t, c, enqueue(t, c, jobArgs{}, nil).ID, omniq.StatusSuccess)
}

// Errors reach application telemetry. River calls ErrorHandler.HandleError
// in process; OmniQ has no such hook on its Config, and delivers the same
// information as events: Subscribe streams each failed attempt (retry, or
// error when given up) with its error text, kind and attempt.
// River: https://riverqueue.com/docs/error-handling
func TestWorkerErrorsReachSubscribers(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	c := newClient(t, db, workFn(func(ctx context.Context, t *omniq.Task[jobArgs]) error {
		return fmt.Errorf("attempt %d: upstream said 503", t.Attempt)
	}), nil)
	sub, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := c.Subscribe(sub, omniq.EventFilter{Types: []omniq.EventType{omniq.EventRetry, omniq.EventError}})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c)
	res := enqueue(t, c, jobArgs{}, &omniq.InsertOpts{MaxAttempts: 2})
	first := recv(t, ch, "the first failure")
	last := recv(t, ch, "the final failure")
	if first.Type != omniq.EventRetry || first.Attempt != 1 || first.Error != "attempt 1: upstream said 503" || first.TaskID != res.ID || first.Kind != "riverlike_job" {
		t.Fatalf("first failure event %+v", first)
	}
	if last.Type != omniq.EventError || last.Attempt != 2 || last.Error != "attempt 2: upstream said 503" || last.Level != omniq.EventLevelError {
		t.Fatalf("final failure event %+v", last)
	}
}
