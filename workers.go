package omniq

import (
	"context"

	"github.com/omniqhq/omniq/jobs"
)

// Args is what a task carries; its Kind names the worker that runs it.
type Args = jobs.Args

// ArgsWithInsertOpts lets an args type set its kind's default options.
type ArgsWithInsertOpts = jobs.ArgsWithInsertOpts

// Task is a task handed to a worker, its args decoded into T.
type Task[T Args] = jobs.Task[T]

// Worker runs tasks of one kind.
type Worker[T Args] = jobs.Worker[T]

// WorkerDefaults gives a worker the optional Worker methods; embed it.
type WorkerDefaults[T Args] = jobs.WorkerDefaults[T]

// WorkFunc makes a Worker of a function.
func WorkFunc[T Args](f func(context.Context, *Task[T]) error) Worker[T] { return jobs.WorkFunc(f) }

// Workers is the registry of task kinds a client can run.
type Workers struct {
	reg *jobs.Registry
}

// NewWorkers returns an empty registry.
func NewWorkers() *Workers { return &Workers{reg: jobs.NewRegistry()} }

// AddWorker registers worker for T's kind. It panics if the kind is empty or
// already registered: registration is start-up code, and both are bugs.
// AddWorkerSafely returns the error instead.
func AddWorker[T Args](w *Workers, worker Worker[T]) {
	if err := AddWorkerSafely(w, worker); err != nil {
		panic(err)
	}
}

// AddWorkerSafely registers worker for T's kind, or says why it cannot.
func AddWorkerSafely[T Args](w *Workers, worker Worker[T]) error {
	return jobs.Register(w.reg, worker)
}

func (w *Workers) hasAny() bool { return w != nil && w.reg.Len() > 0 }

func (w *Workers) registry() *jobs.Registry {
	if w == nil {
		return nil
	}
	return w.reg
}
