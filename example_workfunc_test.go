package omniq_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/omniqhq/omniq"
)

// Shout is the argument of an upper-casing task.
type Shout struct {
	Text string `json:"text"`
}

func (Shout) Kind() string { return "shout" }

// WorkFunc makes a worker of a plain function, for kinds that need no
// timeout or retry policy of their own.
func ExampleWorkFunc() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()

	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[Shout]) error {
		t.SetResult(strings.ToUpper(t.Args.Text))
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

	res, err := client.Enqueue(ctx, Shout{Text: "hello"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	result, err := client.WaitResult(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	var s string
	if err := client.DecodeResult(result, &s); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s)
	// Output:
	// HELLO
}
