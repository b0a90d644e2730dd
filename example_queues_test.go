package omniq_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/omniqhq/omniq"
)

// Transcode converts one video.
type Transcode struct {
	Video string `json:"video"`
}

func (Transcode) Kind() string { return "transcode" }

// Named queues separate work: each client works the queues in its Config,
// each with its own concurrency. A task goes to InsertOpts.Queue, else to the
// kind's default (ArgsWithInsertOpts), else to "default".
func ExampleConfig_queues() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()

	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[Transcode]) error {
		t.SetResult(t.Queue)
		return nil
	}))
	client, err := omniq.NewClient(pool, &omniq.Config{
		Schema: schema,
		Queues: map[string]omniq.QueueConfig{
			"default": {MaxWorkers: 10},
			"video":   {MaxWorkers: 2}, // heavy work: two at a time on this client
		},
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

	for _, queue := range []string{"video", "default", "archive"} {
		res, err := client.Enqueue(ctx, Transcode{Video: "cat.mp4"}, &omniq.InsertOpts{Queue: queue})
		if err != nil {
			log.Fatal(err)
		}
		if queue == "archive" {
			// No client works "archive" here: the task waits for one that does.
			task, err := client.Task(ctx, res.ID)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(queue, task.Status)
			continue
		}
		result, err := client.WaitResult(ctx, res.ID)
		if err != nil {
			log.Fatal(err)
		}
		var ranOn string
		if err := client.DecodeResult(result, &ranOn); err != nil {
			log.Fatal(err)
		}
		fmt.Println(queue, result.Status, "on", ranOn)
	}
	// Output:
	// video success on video
	// default success on default
	// archive pending
}
