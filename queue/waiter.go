package queue

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq/jobs"
)

// waitPoll is how often waiters check when no completion NOTIFY arrives.
const waitPoll = time.Second

type waitOutcome struct {
	res *jobs.TaskResult
	err error
}

// Waiters serves WaitResult: every waiter of a client is checked together.
// A completion NOTIFY names the tasks its batch finished, so a check queries
// only the waited-for tasks that just finished; a NOTIFY that names none (a
// large batch) and the once-a-second poll check every waiter, in two queries
// however many wait.
type Waiters struct {
	e *Engine

	mu      sync.Mutex
	waiting map[uuid.UUID][]chan waitOutcome
	running bool
	kick    chan struct{}
	// finished collects ids named by completion NOTIFYs since the last
	// check; all is set when a NOTIFY named none (check every waiter).
	finished map[uuid.UUID]bool
	all      bool
	quit     chan struct{}
	done     chan struct{}
	unlisten func()
}

// NewWaiters returns the waiter set of e; it starts on first use.
func NewWaiters(e *Engine) *Waiters {
	return &Waiters{e: e, waiting: map[uuid.UUID][]chan waitOutcome{}, kick: make(chan struct{}, 1)}
}

// Wait blocks until task id has finished and returns its stored result.
func (w *Waiters) Wait(ctx context.Context, id uuid.UUID) (*jobs.TaskResult, error) {
	ch := make(chan waitOutcome, 1)
	w.mu.Lock()
	if !w.running {
		w.running = true
		w.quit, w.done = make(chan struct{}), make(chan struct{})
		w.e.notifier.Start()
		w.unlisten = w.e.notifier.Listen(w.e.completeChannel, w.onComplete)
		go w.loop(w.quit, w.done)
	}
	w.waiting[id] = append(w.waiting[id], ch)
	if w.finished == nil {
		w.finished = map[uuid.UUID]bool{}
	}
	w.finished[id] = true // check it once now: it may have finished already
	w.mu.Unlock()
	w.poke()
	select {
	case o := <-ch:
		return o.res, o.err
	case <-ctx.Done():
		w.mu.Lock()
		chs := w.waiting[id]
		for i, c := range chs {
			if c == ch {
				w.waiting[id] = append(chs[:i], chs[i+1:]...)
				break
			}
		}
		if len(w.waiting[id]) == 0 {
			delete(w.waiting, id)
		}
		w.mu.Unlock()
		return nil, ctx.Err()
	}
}

// onComplete notes which tasks a completion batch finished.
func (w *Waiters) onComplete(payload string) {
	w.mu.Lock()
	if payload == "" {
		w.all = true
	} else {
		for _, s := range strings.Split(payload, ",") {
			if id, err := uuid.Parse(s); err == nil && w.waiting[id] != nil {
				if w.finished == nil {
					w.finished = map[uuid.UUID]bool{}
				}
				w.finished[id] = true
			}
		}
	}
	w.mu.Unlock()
	w.poke()
}

func (w *Waiters) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Close stops the waiter loop; waits in progress end with an error.
func (w *Waiters) Close() {
	w.mu.Lock()
	if !w.running {
		w.mu.Unlock()
		return
	}
	w.running = false
	close(w.quit)
	done, unlisten := w.done, w.unlisten
	w.mu.Unlock()
	<-done
	unlisten()
	w.mu.Lock()
	for id, chs := range w.waiting {
		for _, ch := range chs {
			ch <- waitOutcome{err: fmt.Errorf("wait for task %s: client closed", id)}
		}
		delete(w.waiting, id)
	}
	w.mu.Unlock()
}

func (w *Waiters) loop(quit, done chan struct{}) {
	defer close(done)
	poll := time.NewTicker(waitPoll)
	defer poll.Stop()
	for {
		select {
		case <-quit:
			return
		case <-w.kick:
		case <-poll.C:
			w.mu.Lock()
			w.all = true
			w.mu.Unlock()
		}
		w.mu.Lock()
		var ids []uuid.UUID
		if w.all {
			for id := range w.waiting {
				ids = append(ids, id)
			}
		} else {
			for id := range w.finished {
				if w.waiting[id] != nil {
					ids = append(ids, id)
				}
			}
		}
		w.all, w.finished = false, nil
		w.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		found, err := w.check(ctx, ids)
		cancel()
		if err != nil {
			w.e.log.Warn("checking waited-for tasks failed; will retry", "error", err)
			w.mu.Lock()
			w.all = true
			w.mu.Unlock()
			continue
		}
		w.mu.Lock()
		for id, o := range found {
			for _, ch := range w.waiting[id] {
				ch <- o
			}
			delete(w.waiting, id)
		}
		w.mu.Unlock()
	}
}

// check returns the outcome of each id that has one: finished, or unknown.
// Two queries however many ids wait.
func (w *Waiters) check(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]waitOutcome, error) {
	rows, err := w.e.pool.Query(ctx, `SELECT w.id, t.status FROM unnest($1::uuid[]) AS w(id)
LEFT JOIN `+table(w.e.sql.schema, "tasks")+` t ON t.id = w.id
WHERE t.id IS NULL OR t.status IN ('success', 'error', 'cancelled', 'expired')`, ids)
	if err != nil {
		return nil, err
	}
	out := map[uuid.UUID]waitOutcome{}
	var finished []uuid.UUID
	for rows.Next() {
		var (
			id     uuid.UUID
			status *string
		)
		if err := rows.Scan(&id, &status); err != nil {
			rows.Close()
			return nil, err
		}
		if status == nil {
			out[id] = waitOutcome{err: fmt.Errorf("task %s: %w", id, jobs.ErrNotFound)}
			continue
		}
		finished = append(finished, id)
		out[id] = waitOutcome{err: fmt.Errorf("task %s ended %s; its result was not stored or has expired: %w", id, *status, jobs.ErrNotFound)}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(finished) == 0 {
		return out, nil
	}
	rows, err = w.e.pool.Query(ctx, `SELECT `+resultColumns+` FROM `+table(w.e.sql.schema, "results")+
		` WHERE task_id = ANY($1) AND (expires_at IS NULL OR expires_at > now())`, finished)
	if err != nil {
		return nil, err
	}
	results, err := pgx.CollectRows(rows, scanResult)
	if err != nil {
		return nil, err
	}
	for _, r := range results {
		out[r.TaskID] = waitOutcome{res: r}
	}
	return out, nil
}
