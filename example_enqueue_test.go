package omniq_test

import (
	"context"
	"fmt"
	"log"

	"github.com/omniqhq/omniq"
)

// SendEmail is a task's arguments: any JSON-encodable type with a Kind.
type SendEmail struct {
	To string `json:"to"`
}

func (SendEmail) Kind() string { return "send_email" }

// SendEmailWorker runs send_email tasks.
type SendEmailWorker struct {
	omniq.WorkerDefaults[SendEmail]
}

func (w *SendEmailWorker) Work(ctx context.Context, t *omniq.Task[SendEmail]) error {
	t.SetResult(map[string]string{"sent_to": t.Args.To}) // stored in the results table
	return nil                                           // an error would be retried
}

// A client with workers works its queues once started. Enqueue adds a task in
// its own transaction; WaitResult waits for its outcome.
func ExampleNewClient() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()

	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, &SendEmailWorker{})
	client, err := omniq.NewClient(pool, &omniq.Config{
		Schema:  schema,
		Queues:  map[string]omniq.QueueConfig{"default": {MaxWorkers: 10}},
		Workers: workers,
		Log:     omniq.LogConfig{Disabled: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Stop(ctx)

	res, err := client.Enqueue(ctx, SendEmail{To: "ada@example.com"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("enqueued:", res.Status)

	result, err := client.WaitResult(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	var out map[string]string
	if err := client.DecodeResult(result, &out); err != nil {
		log.Fatal(err)
	}
	fmt.Println("result:", result.Status, out["sent_to"])

	task, err := client.Task(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("task:", task.Kind, task.Queue, task.Status, "attempt", task.Attempt)
	// Output:
	// enqueued: pending
	// result: success ada@example.com
	// task: send_email default success attempt 1
}

// A client without workers is insert-only: a web server can enqueue any kind
// for workers running elsewhere. InsertOpts describe the task.
func ExampleClient_Enqueue() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()

	client, err := omniq.NewClient(pool, &omniq.Config{Schema: schema, Log: omniq.LogConfig{Disabled: true}})
	if err != nil {
		log.Fatal(err)
	}
	res, err := client.Enqueue(ctx, SendEmail{To: "ada@example.com"}, &omniq.InsertOpts{
		Queue:       "emails",
		Name:        "welcome mail",
		Tags:        []string{"onboarding"},
		Metadata:    map[string]any{"user_id": 42},
		MaxAttempts: 10,
	})
	if err != nil {
		log.Fatal(err)
	}
	task, err := client.Task(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(task.Kind, task.Queue, task.Status)
	fmt.Println(string(task.EncodedArgs))
	fmt.Println(task.Name, task.Tags, task.Metadata["user_id"], task.MaxAttempts)
	// Output:
	// send_email emails pending
	// {"to": "ada@example.com"}
	// welcome mail [onboarding] 42 10
}
