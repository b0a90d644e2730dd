package omniq_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/omniqhq/omniq"
)

// Invoice issues one invoice.
type Invoice struct {
	Number int `json:"number"`
}

func (Invoice) Kind() string { return "invoice" }

// PauseQueue stops every client from starting the queue's tasks (running
// ones finish) until ResumeQueue. The state is a row, so it holds for clients
// started later too; enqueueing goes on.
func ExampleClient_PauseQueue() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()

	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[Invoice]) error {
		return nil
	}))
	client, err := omniq.NewClient(pool, &omniq.Config{
		Schema:            schema,
		Queues:            map[string]omniq.QueueConfig{"billing": {MaxWorkers: 5}},
		Workers:           workers,
		FetchPollInterval: 50 * time.Millisecond,
		Log:               omniq.LogConfig{Disabled: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.PauseQueue(ctx, "billing"); err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Stop(ctx)

	res, err := client.Enqueue(ctx, Invoice{Number: 1}, &omniq.InsertOpts{Queue: "billing"})
	if err != nil {
		log.Fatal(err)
	}
	st, err := client.Stats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, q := range st.Queues {
		fmt.Println(q.Queue, "paused:", q.Paused, "pending:", q.Pending)
	}

	if err := client.ResumeQueue(ctx, "billing"); err != nil {
		log.Fatal(err)
	}
	result, err := client.WaitResult(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after resume:", result.Status)
	// Output:
	// billing paused: true pending: 1
	// after resume: success
}
