package omniq_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/omniqhq/omniq"
)

// Export builds a long export.
type Export struct {
	Table string `json:"table"`
}

func (Export) Kind() string { return "export" }

// Cancel ends a task that has not started at once. A running task has its
// context cancelled, on whichever client runs it, and ends cancelled.
func ExampleClient_Cancel() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()

	started := make(chan struct{})
	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[Export]) error {
		close(started)
		<-ctx.Done() // a long export that honours its context
		return ctx.Err()
	}))
	client, err := omniq.NewClient(pool, &omniq.Config{
		Schema:            schema,
		Workers:           workers,
		FetchPollInterval: 50 * time.Millisecond,
		Log:               omniq.LogConfig{Disabled: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Stop(ctx)

	// Not started yet: cancelled at once.
	later, err := client.Enqueue(ctx, Export{Table: "audit"}, &omniq.InsertOpts{RunIn: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	status, err := client.Cancel(ctx, later.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("scheduled task:", status)

	// Running: Cancel returns running, the worker's context is cancelled,
	// and the task ends cancelled.
	now, err := client.Enqueue(ctx, Export{Table: "orders"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	<-started
	status, err = client.Cancel(ctx, now.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("running task:", status)
	result, err := client.WaitResult(ctx, now.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("then:", result.Status)
	// Output:
	// scheduled task: cancelled
	// running task: running
	// then: cancelled
}
