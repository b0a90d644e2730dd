package omniq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq/codec"
	"github.com/omniqhq/omniq/events"
	"github.com/omniqhq/omniq/jobs"
	"github.com/omniqhq/omniq/queue"
)

// Client enqueues tasks and, once started, works the queues of its Config.
// A client with no workers is insert-only: it can enqueue any kind.
type Client struct {
	pool    *pgxpool.Pool
	cfg     Config
	engine  *queue.Engine
	codec   *codec.Manager
	log     *slog.Logger
	waiters *queue.Waiters
	// schedules fires due schedules while the client runs (schedules.go).
	schedules *scheduleService
	// events serves Events, Subscribe and Stats (events.go).
	events *events.Hub
}

// EnqueueResult says what an enqueue did.
type EnqueueResult = queue.InsertResult

// EnqueueParams is one task of EnqueueMany.
type EnqueueParams struct {
	Args Args
	Opts *InsertOpts
}

// NewClient returns a client on pool. cfg may be nil for the defaults; OMNIQ_*
// environment variables override it (see Config).
func NewClient(pool *pgxpool.Pool, cfg *Config) (*Client, error) {
	if pool == nil {
		return nil, errors.New("omniq: NewClient: pool is nil")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	resolved, err := c.Resolve(os.Getenv)
	if err != nil {
		return nil, err
	}
	log := resolved.newLogger()
	mgr := codec.NewManager()
	eng := queue.New(pool, engineConfig(resolved, log), resolved.Workers.registry(), mgr)
	c2 := &Client{
		pool:    pool,
		cfg:     resolved,
		engine:  eng,
		codec:   mgr,
		log:     log,
		waiters: queue.NewWaiters(eng),
		events: events.NewHub(pool, resolved.Schema, eng.Notifier(), queue.Channel(resolved.Schema, "events"),
			componentLogger(log, resolved.Log, "events")),
	}
	c2.schedules = newScheduleService(c2)
	return c2, nil
}

func engineConfig(c Config, log *slog.Logger) queue.Config {
	queues := make(map[string]int, len(c.Queues))
	if c.Workers.hasAny() {
		for name, q := range c.Queues {
			queues[name] = q.MaxWorkers
		}
	}
	return queue.Config{
		Schema:                 c.Schema,
		ID:                     c.ID,
		Queues:                 queues,
		TaskTimeout:            c.TaskTimeout,
		TaskTTL:                c.TaskTTL,
		ResultTTL:              c.ResultTTL,
		DisableResults:         c.DisableResults,
		MaxAttempts:            c.MaxAttempts,
		RetryDelay:             c.RetryDelay,
		RetryBackoff:           jobs.Backoff(c.RetryBackoff),
		EventLevel:             c.EventLevel,
		EventRetention:         c.EventRetention,
		FinishedRetention:      c.FinishedRetention,
		FetchCooldown:          c.FetchCooldown,
		FetchPollInterval:      c.FetchPollInterval,
		HeartbeatInterval:      c.HeartbeatInterval,
		RescueAfter:            c.RescueAfter,
		MaintenanceInterval:    c.MaintenanceInterval,
		CompleterBatchSize:     c.CompleterBatchSize,
		CompleterFlushInterval: c.CompleterFlushInterval,
		Logger: func(component string) *slog.Logger {
			return componentLogger(log, c.Log, component)
		},
	}
}

// Config returns the client's resolved configuration.
func (c *Client) Config() Config { return c.cfg }

// Codec returns the codec manager that encodes args and results; register
// application codecs and fallback types on it before enqueueing.
func (c *Client) Codec() *codec.Manager { return c.codec }

// Start begins working the configured queues: fetching, running, completing,
// maintenance. ctx bounds only start-up; stop the client with Stop.
func (c *Client) Start(ctx context.Context) error {
	if err := c.engine.Start(ctx); err != nil {
		return err
	}
	if err := c.schedules.start(ctx); err != nil {
		return errors.Join(err, c.engine.StopAndCancel(ctx))
	}
	return nil
}

// Stop stops fetching, lets running tasks finish and writes their outcomes.
// If ctx ends first, running tasks are cancelled and return to the queue.
func (c *Client) Stop(ctx context.Context) error {
	err := errors.Join(c.schedules.stop(ctx), c.engine.Stop(ctx))
	c.waiters.Close()
	// A client that was never started may still listen for WaitResult or
	// Subscribe; Stop releases that connection too (a no-op otherwise).
	c.engine.Notifier().Stop()
	return err
}

// StopAndCancel cancels running tasks at once, returns unfinished ones to the
// queue, and stops.
func (c *Client) StopAndCancel(ctx context.Context) error {
	err := errors.Join(c.schedules.stop(ctx), c.engine.StopAndCancel(ctx))
	c.waiters.Close()
	// A client that was never started may still listen for WaitResult or
	// Subscribe; Stop releases that connection too (a no-op otherwise).
	c.engine.Notifier().Stop()
	return err
}

// Enqueue inserts one task in its own transaction.
func (c *Client) Enqueue(ctx context.Context, args Args, opts *InsertOpts) (*EnqueueResult, error) {
	return c.enqueueOne(ctx, c.pool, args, opts)
}

// EnqueueTx inserts one task in tx: it exists if and only if tx commits.
func (c *Client) EnqueueTx(ctx context.Context, tx pgx.Tx, args Args, opts *InsertOpts) (*EnqueueResult, error) {
	if tx == nil {
		return nil, &InputError{Field: "tx", Reason: "nil transaction"}
	}
	return c.enqueueOne(ctx, tx, args, opts)
}

func (c *Client) enqueueOne(ctx context.Context, db queue.DB, args Args, opts *InsertOpts) (*EnqueueResult, error) {
	p, err := c.engine.Prepare(args, opts)
	if err != nil {
		return nil, err
	}
	res, err := c.engine.Insert(ctx, db, []*queue.InsertParams{p})
	if err != nil {
		return nil, err
	}
	return &res[0], nil
}

// EnqueueMany inserts tasks in one transaction and one round trip. Tasks may
// depend on each other (preset InsertOpts.ID and name it in DependsOn).
func (c *Client) EnqueueMany(ctx context.Context, params []EnqueueParams) ([]EnqueueResult, error) {
	return c.enqueueMany(ctx, c.pool, params)
}

// EnqueueManyTx is EnqueueMany inside tx.
func (c *Client) EnqueueManyTx(ctx context.Context, tx pgx.Tx, params []EnqueueParams) ([]EnqueueResult, error) {
	if tx == nil {
		return nil, &InputError{Field: "tx", Reason: "nil transaction"}
	}
	return c.enqueueMany(ctx, tx, params)
}

func (c *Client) enqueueMany(ctx context.Context, db queue.DB, params []EnqueueParams) ([]EnqueueResult, error) {
	ps := make([]*queue.InsertParams, len(params))
	for i, p := range params {
		ip, err := c.engine.Prepare(p.Args, p.Opts)
		if err != nil {
			return nil, fmt.Errorf("task %d of %d: %w", i, len(params), err)
		}
		ps[i] = ip
	}
	return c.engine.Insert(ctx, db, ps)
}

// Task reads a task.
func (c *Client) Task(ctx context.Context, id uuid.UUID) (*TaskRow, error) {
	return c.engine.Task(ctx, c.pool, id)
}

// Tasks lists tasks matching f.
func (c *Client) Tasks(ctx context.Context, f TaskFilter) ([]*TaskRow, error) {
	return c.engine.Tasks(ctx, c.pool, f)
}

// Result reads a task's stored result; ErrNotFound if it has none (not
// finished, not stored, or expired).
func (c *Client) Result(ctx context.Context, id uuid.UUID) (*TaskResult, error) {
	return c.engine.Result(ctx, c.pool, id)
}

// WaitResult blocks until the task has finished and returns its result.
// Waiters share the client's LISTEN connection and are checked together, one
// query per completion batch, not one per waiter.
func (c *Client) WaitResult(ctx context.Context, id uuid.UUID) (*TaskResult, error) {
	return c.waiters.Wait(ctx, id)
}

// DecodeResult decodes a result's value into v.
func (c *Client) DecodeResult(r *TaskResult, v any) error {
	if r == nil || r.Value == nil {
		return fmt.Errorf("omniq: result has no value: %w", ErrNotFound)
	}
	return c.engine.DecodeValue(r.Codec, r.Value, v)
}

// Cancel cancels a task: at once if it has not started, or by cancelling its
// context wherever it runs. It returns the task's status after the call. A
// running task so cancelled does not run again: should its attempt end in a
// retry or a snooze before its client hears of the request, or its client
// stop or die, it ends cancelled all the same.
func (c *Client) Cancel(ctx context.Context, id uuid.UUID) (Status, error) {
	return c.engine.Cancel(ctx, c.pool, id)
}

// Retry runs a finished task again now.
func (c *Client) Retry(ctx context.Context, id uuid.UUID) error {
	return c.engine.Retry(ctx, c.pool, id)
}

// DeleteTask deletes a task that is not running, with its result.
func (c *Client) DeleteTask(ctx context.Context, id uuid.UUID) error {
	return c.engine.Delete(ctx, c.pool, id)
}

// PauseQueue stops every client from starting tasks of queue until ResumeQueue.
func (c *Client) PauseQueue(ctx context.Context, queue string) error {
	return c.engine.SetQueuePaused(ctx, c.pool, queue, true)
}

// ResumeQueue undoes PauseQueue.
func (c *Client) ResumeQueue(ctx context.Context, queue string) error {
	return c.engine.SetQueuePaused(ctx, c.pool, queue, false)
}

// CleanupExpired expires tasks past their TTL and deletes finished tasks,
// results and events past their retention, reporting how many of each.
func (c *Client) CleanupExpired(ctx context.Context) (PruneCounts, error) {
	n, err := c.engine.ExpireDue(ctx)
	if err != nil {
		return PruneCounts{}, err
	}
	counts, err := c.engine.Prune(ctx)
	counts.Expired = n
	return counts, err
}
