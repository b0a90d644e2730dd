package omniq_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq"
)

// Notify sends one notification.
type Notify struct {
	Message string `json:"message"`
}

func (Notify) Kind() string { return "notify" }

// Higher priorities run first; among equals, the earlier run_at.
func ExampleInsertOpts_priority() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()

	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[Notify]) error {
		fmt.Println(t.Priority, t.Args.Message)
		return nil
	}))
	client, err := omniq.NewClient(pool, &omniq.Config{
		Schema:            schema,
		Queues:            map[string]omniq.QueueConfig{"default": {MaxWorkers: 1}}, // one at a time
		Workers:           workers,
		FetchPollInterval: 50 * time.Millisecond,
		Log:               omniq.LogConfig{Disabled: true},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Enqueued before the client starts, so all three wait together.
	var ids []uuid.UUID
	for _, n := range []struct {
		msg      string
		priority int
	}{{"newsletter", -10}, {"receipt", 0}, {"password reset", 100}} {
		res, err := client.Enqueue(ctx, Notify{Message: n.msg}, &omniq.InsertOpts{Priority: n.priority})
		if err != nil {
			log.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Stop(ctx)
	for _, id := range ids {
		if _, err := client.WaitResult(ctx, id); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// 100 password reset
	// 0 receipt
	// -10 newsletter
}
