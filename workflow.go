package omniq

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/omniqhq/omniq/queue"
)

// ErrNotRunning is returned by CompleteTx when the task is no longer running
// the attempt (it completed already, was rescued, or was cancelled).
var ErrNotRunning = queue.ErrNotRunning

// CompleteTx marks the running task t as succeeded inside tx, storing result
// (nil for none). Call it from Work with the transaction that holds the
// task's business writes: both commit, or neither does. ctx must be the
// context Work received.
func CompleteTx[T Args](ctx context.Context, tx pgx.Tx, t *Task[T], result any) error {
	if tx == nil {
		return &InputError{Field: "tx", Reason: "nil transaction"}
	}
	e, ok := queue.FromContext(ctx)
	if !ok {
		return errors.New("omniq: CompleteTx needs the context passed to Work")
	}
	return e.CompleteTx(ctx, tx, t.TaskRow, result)
}

// NewCallback returns a callback that enqueues a task with args (on queue;
// "" for the parent's) when its parent succeeds, or also when it fails if
// onFailure. The callback task's metadata carries parent_id, parent_status
// and parent_result.
func (c *Client) NewCallback(args Args, queue string, onFailure bool) (*Callback, error) {
	if args == nil {
		return nil, &InputError{Field: "callback args", Reason: "nil args"}
	}
	name, data, err := c.codec.Encode(args)
	if err != nil {
		return nil, fmt.Errorf("%w: encode callback args: %w", ErrInvalidInput, err)
	}
	if name != "json" {
		return nil, &InputError{Field: "callback args", Value: fmt.Sprintf("%T", args), Reason: "callback args must encode as JSON"}
	}
	return &Callback{Kind: args.Kind(), Args: data, Queue: queue, OnFailure: onFailure}, nil
}
