package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq/jobs"
)

// Event levels: what the events table records.
const (
	EventsAll      = "all"      // every transition its own row
	EventsDefault  = "default"  // no enqueued/executing rows; every outcome its own row
	EventsFailures = "failures" // error, retry, cancelled, expired, rescued
	EventsNone     = "none"
)

// Config is the engine's resolved configuration; the root package fills it
// from omniq.Config with every default applied.
type Config struct {
	Schema                 string
	ID                     string
	Queues                 map[string]int // queue → max workers
	TaskTimeout            time.Duration
	TaskTTL                time.Duration
	ResultTTL              time.Duration
	DisableResults         bool
	MaxAttempts            int
	RetryDelay             time.Duration
	RetryBackoff           jobs.Backoff
	EventLevel             string
	EventRetention         time.Duration
	FinishedRetention      time.Duration
	FetchCooldown          time.Duration
	FetchPollInterval      time.Duration
	HeartbeatInterval      time.Duration
	RescueAfter            time.Duration
	MaintenanceInterval    time.Duration
	CompleterBatchSize     int
	CompleterFlushInterval time.Duration
	// Logger returns the logger of a component.
	Logger func(component string) *slog.Logger
	// OnTaskError, when set, is called after an attempt fails (panics included).
	OnTaskError func(row *jobs.TaskRow, err error)
}

// Engine runs OmniQ's hot path on one pool.
type Engine struct {
	pool     *pgxpool.Pool
	cfg      Config
	sql      *statements
	registry *jobs.Registry
	codec    Codec

	insertChannel, controlChannel, completeChannel string

	log       *slog.Logger
	notifier  *Notifier
	completer *completer

	// retireReq hands Retire a partition Rotate could not lock (see
	// retireLoop).
	retireReq chan int16

	mu        sync.Mutex
	started   bool
	stopOnce  sync.Once
	stopped   chan struct{}
	stopErr   error
	fetchStop context.CancelFunc // stops producers and loops
	workStop  context.CancelCauseFunc
	workCtx   context.Context
	producers map[string]*producer
	loops     sync.WaitGroup // producers, heartbeat, maintenance
	executing sync.WaitGroup // running tasks
	running   sync.Map       // uuid.UUID → *execution
	aheadHold time.Duration  // see aheadHold; tests set it before Start
	ids       idSource

	// Maintenance state: where retention resumes, and when the last
	// rescue that walks every running task ran (see sqlRescue).
	maint struct {
		sync.Mutex
		lastFullRescue  time.Time
		pruneSince      time.Time // when the lower bounds below were last reset
		pruneTaskFrom   time.Time // completed_at
		pruneResultFrom time.Time // expires_at
		pruneEventFrom  int64     // id
	}
}

// stopGrace is how long a hard stop waits for cancelled tasks to return
// before it puts them back in the queue itself.
const stopGrace = time.Second

// ErrStopped is the cause of a task context cancelled by a hard stop.
var ErrStopped = errors.New("omniq: client stopping")

// ErrCancelRequested is the cause of a task context cancelled by Cancel.
var ErrCancelRequested = errors.New("omniq: task cancelled")

// New returns an engine; it does nothing until Start.
func New(pool *pgxpool.Pool, cfg Config, registry *jobs.Registry, codec Codec) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = func(string) *slog.Logger { return slog.New(slog.DiscardHandler) }
	}
	if registry == nil {
		registry = jobs.NewRegistry()
	}
	e := &Engine{
		pool:            pool,
		cfg:             cfg,
		sql:             newStatements(cfg.Schema),
		registry:        registry,
		codec:           codec,
		insertChannel:   Channel(cfg.Schema, topicInsert),
		controlChannel:  Channel(cfg.Schema, topicControl),
		completeChannel: Channel(cfg.Schema, topicComplete),
		log:             cfg.Logger("client"),
		stopped:         make(chan struct{}),
		retireReq:       make(chan int16, 1),
		aheadHold:       aheadHold,
	}
	e.notifier = NewNotifier(pool, cfg.Logger("notifier"))
	return e
}

// Notifier is the engine's shared LISTEN connection.
func (e *Engine) Notifier() *Notifier { return e.notifier }

// CompleteChannel is the channel notified once per committed completion batch.
func (e *Engine) CompleteChannel() string { return e.completeChannel }

// Start registers the client, starts LISTEN, the completer, a producer per
// queue and the maintenance loops. ctx bounds only the start-up queries.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return errors.New("omniq: client already started")
	}
	if err := e.heartbeat(ctx); err != nil {
		return fmt.Errorf("register client: %w", err)
	}
	runCtx, fetchStop := context.WithCancel(context.Background())
	workCtx, workStop := context.WithCancelCause(context.Background())
	e.fetchStop, e.workCtx, e.workStop = fetchStop, workCtx, workStop
	e.notifier.Start()
	e.completer = newCompleter(e)
	e.completer.start()

	e.producers = map[string]*producer{}
	for name, max := range e.cfg.Queues {
		p := newProducer(e, name, max)
		e.producers[name] = p
	}
	e.notifier.Listen(e.insertChannel, e.onInsertNotify)
	e.notifier.Listen(e.controlChannel, e.onControlNotify)
	e.notifier.OnReconnect(e.wakeAll)
	for _, p := range e.producers {
		e.loops.Add(1)
		go func() { defer e.loops.Done(); p.run(runCtx) }()
	}
	e.loops.Add(1)
	go func() { defer e.loops.Done(); e.maintain(runCtx) }()
	e.started = true
	return nil
}

// Stop stops fetching, waits for running tasks, flushes their outcomes and
// releases connections. If ctx ends first, running tasks are cancelled and
// what did not finish returns to the queue at once. Safe to call more than
// once and from several goroutines; later calls wait for the first.
func (e *Engine) Stop(ctx context.Context) error {
	return e.stop(ctx, false)
}

// StopAndCancel is Stop with running tasks cancelled at once.
func (e *Engine) StopAndCancel(ctx context.Context) error {
	return e.stop(ctx, true)
}

func (e *Engine) stop(ctx context.Context, cancelNow bool) error {
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started {
		// An insert-only client may still hold the LISTEN connection that
		// WaitResult started.
		e.notifier.Stop()
		return nil
	}
	if cancelNow {
		e.workStop(ErrStopped)
	}
	e.stopOnce.Do(func() {
		go func() {
			e.stopErr = e.shutdown(ctx)
			close(e.stopped)
		}()
	})
	select {
	case <-e.stopped:
		return e.stopErr
	case <-ctx.Done():
		e.workStop(ErrStopped)
		<-e.stopped
		return e.stopErr
	}
}

func (e *Engine) shutdown(ctx context.Context) error {
	e.fetchStop()
	e.loops.Wait()

	done := make(chan struct{})
	go func() { e.executing.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	case <-e.workCtx.Done(): // StopAndCancel, or a later Stop whose ctx ended
	}
	select {
	case <-done:
	default:
		e.workStop(ErrStopped)
		// Give cancelled tasks a moment to hand in their outcomes; a worker
		// that ignores its context is not waited for: its task is returned
		// to the queue below.
		t := time.NewTimer(stopGrace)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	e.completer.stop()

	// Whatever still runs (a worker ignoring its context) goes back to the queue.
	var stuck []uuid.UUID
	e.running.Range(func(k, _ any) bool { stuck = append(stuck, k.(uuid.UUID)); return true })
	bg, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	if len(stuck) > 0 {
		if err := e.returnTasks(bg, stuck); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := e.pool.Exec(bg, e.sql.deleteClient, e.cfg.ID); err != nil {
		errs = append(errs, fmt.Errorf("unregister client: %w", err))
	}
	e.notifier.Stop()
	e.workStop(ErrStopped)
	return errors.Join(errs...)
}

func (e *Engine) returnTasks(ctx context.Context, ids []uuid.UUID) error {
	rows, err := e.pool.Query(ctx, e.sql.returnTasks, ids, e.cfg.ID, e.cfg.EventLevel)
	if err == nil {
		_, err = e.settle(ctx, rows)
	}
	if err != nil {
		return fmt.Errorf("return %d running tasks to the queue: %w", len(ids), err)
	}
	return nil
}

func (e *Engine) heartbeat(ctx context.Context) error {
	host, _ := os.Hostname()
	queues := make([]string, 0, len(e.cfg.Queues))
	for q := range e.cfg.Queues {
		queues = append(queues, q)
	}
	_, err := e.pool.Exec(ctx, e.sql.heartbeat, e.cfg.ID, host, os.Getpid(), queues)
	return err
}

// onInsertNotify wakes the producer of the payload's queue, moving its claim
// cursors back to the payload's run_at if it has one (see sqlWake).
func (e *Engine) onInsertNotify(payload string) {
	queue, runAt, hasRunAt := strings.Cut(payload, " ")
	p, ok := e.producers[queue]
	if !ok {
		return
	}
	if hasRunAt {
		if us, err := strconv.ParseInt(runAt, 10, 64); err == nil {
			p.notified(time.UnixMicro(us))
		}
	}
	p.wake()
}

func (e *Engine) wakeAll() {
	for _, p := range e.producers {
		p.wake()
	}
}
