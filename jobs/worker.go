package jobs

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Worker runs tasks of one kind, with arguments of type T.
type Worker[T Args] interface {
	// Work runs one attempt. A nil error is success; Cancel, NoRetry and
	// Snooze errors choose what happens next; any other error is retried
	// while attempts remain.
	Work(ctx context.Context, t *Task[T]) error
	// Timeout bounds one attempt; 0 defers to the task's and the config's.
	Timeout(t *Task[T]) time.Duration
	// NextRetry chooses when a failed attempt runs again; zero defers to the
	// task's retry policy.
	NextRetry(t *Task[T]) time.Time
}

// WorkerDefaults gives a worker the optional methods of Worker. Embed it.
type WorkerDefaults[T Args] struct{}

// Timeout defers to the task's timeout.
func (WorkerDefaults[T]) Timeout(*Task[T]) time.Duration { return 0 }

// NextRetry defers to the task's retry policy.
func (WorkerDefaults[T]) NextRetry(*Task[T]) time.Time { return time.Time{} }

// WorkFunc adapts a function to a Worker.
func WorkFunc[T Args](f func(context.Context, *Task[T]) error) Worker[T] {
	return &workFunc[T]{f: f}
}

type workFunc[T Args] struct {
	WorkerDefaults[T]
	f func(context.Context, *Task[T]) error
}

func (w *workFunc[T]) Work(ctx context.Context, t *Task[T]) error { return w.f(ctx, t) }

// Decoder turns stored args into a value, by codec name.
type Decoder func(codec string, data []byte, v any) error

// Runnable is one attempt of a task, its args decoded, ready to run.
type Runnable interface {
	Work(ctx context.Context) error
	Timeout() time.Duration
	NextRetry() time.Time
	Result() (any, bool)
}

// Unit is a registered kind, untyped, as the engine sees it.
type Unit interface {
	// Prepare decodes row's args for its worker.
	Prepare(row *TaskRow, decode Decoder) (Runnable, error)
	// InsertOpts are the kind's default insert options.
	InsertOpts() InsertOpts
}

// Registry maps kinds to their workers. Not safe for concurrent mutation;
// register everything before starting a client.
type Registry struct {
	units map[string]Unit
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{units: map[string]Unit{}} }

// Register adds w as the worker of T's kind; a kind may be registered once.
func Register[T Args](r *Registry, w Worker[T]) error {
	var zero T
	kind := zero.Kind()
	if kind == "" {
		return fmt.Errorf("omniq: register %T: Kind() returned an empty string", zero)
	}
	if _, dup := r.units[kind]; dup {
		return fmt.Errorf("omniq: worker for kind %q is already registered", kind)
	}
	var opts InsertOpts
	if o, ok := any(zero).(ArgsWithInsertOpts); ok {
		opts = o.InsertOpts()
	}
	r.units[kind] = &unit[T]{worker: w, opts: opts}
	return nil
}

// Lookup returns the unit of kind.
func (r *Registry) Lookup(kind string) (Unit, bool) {
	if r == nil {
		return nil, false
	}
	u, ok := r.units[kind]
	return u, ok
}

// Len is the number of registered kinds.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	return len(r.units)
}

// Kinds lists the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	if r == nil {
		return nil
	}
	out := make([]string, 0, len(r.units))
	for k := range r.units {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type unit[T Args] struct {
	worker Worker[T]
	opts   InsertOpts
}

func (u *unit[T]) InsertOpts() InsertOpts { return u.opts }

func (u *unit[T]) Prepare(row *TaskRow, decode Decoder) (Runnable, error) {
	t := &Task[T]{TaskRow: row}
	if err := decode(row.Codec, row.EncodedArgs, &t.Args); err != nil {
		return nil, fmt.Errorf("decode args of %s task into %T: %w", row.Kind, t.Args, err)
	}
	return &runnable[T]{worker: u.worker, task: t}, nil
}

type runnable[T Args] struct {
	worker Worker[T]
	task   *Task[T]
}

func (r *runnable[T]) Work(ctx context.Context) error { return r.worker.Work(ctx, r.task) }
func (r *runnable[T]) Timeout() time.Duration         { return r.worker.Timeout(r.task) }
func (r *runnable[T]) NextRetry() time.Time           { return r.worker.NextRetry(r.task) }
func (r *runnable[T]) Result() (any, bool)            { return r.task.Result() }
