package omniq_test

import (
	"context"
	"fmt"
	"log"

	"github.com/google/uuid"

	"github.com/omniqhq/omniq"
)

// Events lists the log, filtered and paged by event id; newest first with Desc.
func ExampleClient_Events() {
	ctx := context.Background()
	var client *omniq.Client // from omniq.NewClient
	var taskID uuid.UUID     // from Enqueue

	// Everything that happened to one task, with compact rows expanded.
	evs, err := client.Events(ctx, omniq.EventFilter{TaskID: taskID, Expand: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range evs {
		fmt.Println(e.Time.Format("15:04:05.000"), e.Type, e.Attempt, e.Error)
	}

	// Every failure of queue "emails", newest first, 50 a page.
	f := omniq.EventFilter{Queues: []string{"emails"}, Levels: []omniq.EventLevel{omniq.EventLevelError}, Desc: true, Limit: 50}
	for {
		page, err := client.Events(ctx, f)
		if err != nil || len(page) == 0 {
			break
		}
		// ... use page ...
		f.AfterID = page[len(page)-1].ID
	}
}

// Subscribe delivers events as they commit, each once, until ctx ends.
func ExampleClient_Subscribe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var client *omniq.Client // from omniq.NewClient

	ch, err := client.Subscribe(ctx, omniq.EventFilter{Types: []omniq.EventType{omniq.EventError, omniq.EventCompleted}})
	if err != nil {
		log.Fatal(err)
	}
	for e := range ch {
		if e.Type == omniq.EventError {
			log.Printf("task %s (%s) failed for good: %s", e.TaskID, e.Kind, e.Error)
		}
	}
}

// Stats summarises the queues; SELECT * FROM omniq.queue_stats says the same.
func ExampleClient_Stats() {
	var client *omniq.Client // from omniq.NewClient
	st, err := client.Stats(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, q := range st.Queues {
		fmt.Printf("%s: %d pending (oldest %s), %d running, %d done in the last minute\n",
			q.Queue, q.Pending, q.OldestPendingAge, q.Running, q.SucceededLastMinute)
	}
}
