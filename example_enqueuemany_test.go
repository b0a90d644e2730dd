package omniq_test

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/omniqhq/omniq"
)

// Resize asks for one image to be resized.
type Resize struct {
	Image int `json:"image"`
}

func (Resize) Kind() string { return "resize" }

// EnqueueMany inserts a batch in one transaction and one round trip: all of
// it or none of it.
func ExampleClient_EnqueueMany() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()

	var resized atomic.Int64
	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[Resize]) error {
		resized.Add(1)
		return nil
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

	params := make([]omniq.EnqueueParams, 100)
	for i := range params {
		params[i] = omniq.EnqueueParams{Args: Resize{Image: i}, Opts: &omniq.InsertOpts{Queue: "default"}}
	}
	results, err := client.EnqueueMany(ctx, params)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("enqueued:", len(results))

	for _, r := range results {
		if _, err := client.WaitResult(ctx, r.ID); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("resized:", resized.Load())
	// Output:
	// enqueued: 100
	// resized: 100
}
