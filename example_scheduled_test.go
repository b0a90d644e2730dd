package omniq_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/omniqhq/omniq"
)

// Remind is a reminder to send later.
type Remind struct {
	Note string `json:"note"`
}

func (Remind) Kind() string { return "remind" }

// RunAt (or RunIn, relative to now) keeps a task pending until then.
func ExampleInsertOpts_runAt() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()

	ran := make(chan time.Time, 1)
	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[Remind]) error {
		ran <- time.Now()
		return nil
	}))
	client, err := omniq.NewClient(pool, &omniq.Config{
		Schema:            schema,
		Workers:           workers,
		FetchPollInterval: 50 * time.Millisecond, // how soon a due task is noticed
		Log:               omniq.LogConfig{Disabled: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Stop(ctx)

	runAt := time.Now().Add(200 * time.Millisecond)
	res, err := client.Enqueue(ctx, Remind{Note: "stand up"}, &omniq.InsertOpts{RunAt: runAt})
	if err != nil {
		log.Fatal(err)
	}
	task, err := client.Task(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Status, task.RunAt.Equal(runAt.Truncate(time.Microsecond))) // stored to the microsecond
	fmt.Println("ran on time:", !(<-ran).Before(runAt))
	// Output:
	// pending true
	// ran on time: true
}
