package omniq_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/omniqhq/omniq"
)

// SyncAccount refreshes one account from a remote system.
type SyncAccount struct {
	Account string `json:"account"`
}

func (SyncAccount) Kind() string { return "sync_account" }

// A unique task is inserted once: enqueueing a duplicate (same kind, and here
// same args within the same hour) returns the task already there.
func ExampleUniqueOpts() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	client, err := omniq.NewClient(pool, &omniq.Config{Schema: schema, Log: omniq.LogConfig{Disabled: true}})
	if err != nil {
		log.Fatal(err)
	}

	opts := &omniq.InsertOpts{Unique: &omniq.UniqueOpts{ByArgs: true, ByPeriod: time.Hour}}
	first, err := client.Enqueue(ctx, SyncAccount{Account: "acme"}, opts)
	if err != nil {
		log.Fatal(err)
	}
	again, err := client.Enqueue(ctx, SyncAccount{Account: "acme"}, opts)
	if err != nil {
		log.Fatal(err)
	}
	other, err := client.Enqueue(ctx, SyncAccount{Account: "globex"}, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first:", first.Duplicate, first.Status)
	fmt.Println("again:", again.Duplicate, again.ID == first.ID)
	fmt.Println("other account:", other.Duplicate, other.ID == first.ID)
	// Output:
	// first: false pending
	// again: true true
	// other account: false false
}
