package omniq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq"
)

// Greet is a task whose worker fails while Fails is above the attempt.
type Greet struct {
	Name  string `json:"name"`
	Fails int    `json:"fails,omitempty"`
	Fatal bool   `json:"fatal,omitempty"`
}

func (Greet) Kind() string { return "greet" }

// greetClient returns a started client that works greet tasks.
func greetClient(ctx context.Context, schema string, pool *pgxpool.Pool) *omniq.Client {
	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[Greet]) error {
		if t.Args.Fatal {
			return omniq.NoRetry(errors.New("no such person"))
		}
		if t.Attempt <= t.Args.Fails {
			return errors.New("mail server busy")
		}
		return nil
	}))
	client, err := omniq.NewClient(pool, &omniq.Config{
		Schema:            schema,
		Workers:           workers,
		FetchPollInterval: 20 * time.Millisecond,
		Log:               omniq.LogConfig{Disabled: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	return client
}

// Events lists the event log, filtered and paged by event id; newest first
// with Desc. With Expand, a compact row (at the default EventLevel a routine
// outcome is one row) is shown as every transition it stands for.
func ExampleClient_Events() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	client := greetClient(ctx, schema, pool)
	defer client.Stop(ctx)

	res, err := client.Enqueue(ctx, Greet{Name: "ada", Fails: 1}, &omniq.InsertOpts{RetryDelay: 10 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.WaitResult(ctx, res.ID); err != nil {
		log.Fatal(err)
	}

	// Everything that happened to one task.
	evs, err := client.Events(ctx, omniq.EventFilter{TaskID: res.ID, Expand: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range evs {
		fmt.Println(strings.TrimSpace(fmt.Sprintln(e.Type, e.Attempt, e.Error)))
	}

	// Every failure of queue "default", newest first, a page at a time.
	f := omniq.EventFilter{Queues: []string{"default"}, Levels: []omniq.EventLevel{omniq.EventLevelError}, Desc: true, Limit: 50}
	failures := 0
	for {
		page, err := client.Events(ctx, f)
		if err != nil {
			log.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		failures += len(page)
		f.AfterID = page[len(page)-1].ID
	}
	fmt.Println("failures:", failures)
	// Output:
	// enqueued 0
	// executing 1
	// retry 1 mail server busy
	// executing 2
	// completed 2
	// failures: 1
}

// Subscribe delivers events as they commit, each once, until ctx ends: from
// any client, about work done by every client.
func ExampleClient_Subscribe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	client := greetClient(ctx, schema, pool)
	defer client.Stop(ctx)

	ch, err := client.Subscribe(ctx, omniq.EventFilter{Types: []omniq.EventType{omniq.EventCompleted, omniq.EventError}})
	if err != nil {
		log.Fatal(err)
	}
	for _, g := range []Greet{{Name: "ada"}, {Name: "nobody", Fatal: true}} {
		if _, err := client.Enqueue(ctx, g, nil); err != nil {
			log.Fatal(err)
		}
		e := <-ch
		fmt.Println(strings.TrimSpace(fmt.Sprintln(e.Type, e.Kind, e.Queue, e.Attempt, e.Error)))
	}
	// Output:
	// completed greet default 1
	// error greet default 1 not retryable: no such person
}

// Stats summarises the queues: tasks per status, finished in the last
// minute, the wait of the oldest due task, and pause state. SELECT * FROM
// omniq.queue_stats answers the same in SQL.
func ExampleClient_Stats() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	client, err := omniq.NewClient(pool, &omniq.Config{Schema: schema, Log: omniq.LogConfig{Disabled: true}})
	if err != nil {
		log.Fatal(err)
	}
	for i, queue := range []string{"emails", "emails", "emails", "reports"} {
		if _, err := client.Enqueue(ctx, Greet{Name: fmt.Sprint(i)}, &omniq.InsertOpts{Queue: queue}); err != nil {
			log.Fatal(err)
		}
	}
	if err := client.PauseQueue(ctx, "reports"); err != nil {
		log.Fatal(err)
	}

	st, err := client.Stats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, q := range st.Queues {
		fmt.Printf("%s: %d pending, %d running, %d done in the last minute, paused %v\n",
			q.Queue, q.Pending, q.Running, q.SucceededLastMinute, q.Paused)
	}
	fmt.Println("total pending:", st.Total.Pending, "| waiting:", st.Total.OldestPendingAge > 0)
	// Output:
	// emails: 3 pending, 0 running, 0 done in the last minute, paused false
	// reports: 1 pending, 0 running, 0 done in the last minute, paused true
	// total pending: 4 | waiting: true
}
