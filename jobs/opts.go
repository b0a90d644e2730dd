package jobs

import (
	"time"

	"github.com/google/uuid"
)

// Args is what a task carries: a value whose Kind names the worker that runs it.
type Args interface {
	Kind() string
}

// ArgsWithInsertOpts lets an args type give its kind's default insert options.
// Options passed at enqueue win over these; these win over the client's config.
type ArgsWithInsertOpts interface {
	InsertOpts() InsertOpts
}

// InsertOpts are the options of one enqueue. Zero values mean "the default".
type InsertOpts struct {
	// ID presets the task's id (a UUIDv7 is made when zero). Lets a batch
	// name its own tasks in DependsOn.
	ID uuid.UUID
	// Queue the task goes to. Default "default".
	Queue string
	// Priority: higher runs first. Range -32768..32767; default 0.
	Priority int
	// RunAt delays the task until then. RunIn is the same, relative to now.
	RunAt time.Time
	RunIn time.Duration
	// MaxAttempts is how many times the task may run; MaxAttempts-1 is the
	// plan's max_retries. Default from Config (4).
	MaxAttempts int
	// RetryDelay and RetryBackoff choose the wait before a retry.
	RetryDelay   time.Duration
	RetryBackoff Backoff
	// Timeout bounds one attempt. Default from Config; 0: none.
	Timeout time.Duration
	// TTL expires the task if it has not started within TTL of enqueue.
	TTL time.Duration
	// Name, Description, Tags and Metadata describe the task for people and queries.
	Name        string
	Description string
	Tags        []string
	Metadata    map[string]any
	// StoreResult overrides Config.DisableResults for this task.
	StoreResult *bool
	// ResultTTL is how long the result is kept. Default from Config.
	ResultTTL time.Duration
	// DependsOn holds the task in status waiting until every listed task ends
	// success. When one ends error, cancelled or expired, this task is
	// cancelled, unless RunAnyway is set: then it runs once all have ended.
	DependsOn []uuid.UUID
	RunAnyway bool
	// Callback is enqueued when this task finishes (on success; on failure too
	// when Callback.OnFailure), in the transaction that records the finish.
	Callback *Callback
	// Unique makes the task unique; a duplicate enqueue returns the existing task.
	Unique *UniqueOpts
}

// UniqueOpts chooses what makes a task a duplicate. The kind is always part of it.
type UniqueOpts struct {
	// ByArgs includes the encoded args (or only ArgsFields of them, when set).
	ByArgs     bool
	ArgsFields []string
	// ByQueue includes the queue.
	ByQueue bool
	// ByPeriod includes the period the task's run time falls in (e.g. one per hour).
	ByPeriod time.Duration
	// ByStatus lists the statuses among which the task must be unique.
	// Default: pending, waiting, running, retry, success.
	ByStatus []Status
}

// DefaultUniqueStatuses are the statuses a unique task is unique among by default.
var DefaultUniqueStatuses = []Status{StatusPending, StatusWaiting, StatusRunning, StatusRetry, StatusSuccess}

// Merge returns o with every zero field taken from def.
func (o InsertOpts) Merge(def InsertOpts) InsertOpts {
	if o.Queue == "" {
		o.Queue = def.Queue
	}
	if o.Priority == 0 {
		o.Priority = def.Priority
	}
	if o.RunAt.IsZero() && o.RunIn == 0 {
		o.RunAt, o.RunIn = def.RunAt, def.RunIn
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = def.MaxAttempts
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = def.RetryDelay
	}
	if o.RetryBackoff == "" {
		o.RetryBackoff = def.RetryBackoff
	}
	if o.Timeout == 0 {
		o.Timeout = def.Timeout
	}
	if o.TTL == 0 {
		o.TTL = def.TTL
	}
	if o.Name == "" {
		o.Name = def.Name
	}
	if o.Description == "" {
		o.Description = def.Description
	}
	if o.Tags == nil {
		o.Tags = def.Tags
	}
	if o.Metadata == nil {
		o.Metadata = def.Metadata
	}
	if o.StoreResult == nil {
		o.StoreResult = def.StoreResult
	}
	if o.ResultTTL == 0 {
		o.ResultTTL = def.ResultTTL
	}
	if o.Callback == nil {
		o.Callback = def.Callback
	}
	if o.Unique == nil {
		o.Unique = def.Unique
	}
	return o
}
