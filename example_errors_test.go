package omniq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq"
)

// Charge charges a card; Fails says how many attempts fail before one works.
type Charge struct {
	Card  string `json:"card"`
	Fails int    `json:"fails"`
}

func (Charge) Kind() string { return "charge" }

// chargeClient starts a client whose worker is work.
func chargeClient(ctx context.Context, schema string, pool *pgxpool.Pool, work func(context.Context, *omniq.Task[Charge]) error) *omniq.Client {
	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(work))
	client, err := omniq.NewClient(pool, &omniq.Config{
		Schema:            schema,
		Workers:           workers,
		FetchPollInterval: 20 * time.Millisecond, // how soon a due retry is noticed
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

// An error returned from Work is retried after RetryDelay (fixed, or doubling
// with RetryBackoff exponential) until MaxAttempts runs have failed; then the
// task ends in error. Every failed attempt is kept in the task's Errors.
func ExampleInsertOpts_retry() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	client := chargeClient(ctx, schema, pool, func(ctx context.Context, t *omniq.Task[Charge]) error {
		if t.Attempt <= t.Args.Fails {
			return fmt.Errorf("card declined (attempt %d)", t.Attempt)
		}
		return nil
	})
	defer client.Stop(ctx)

	opts := &omniq.InsertOpts{MaxAttempts: 3, RetryDelay: 10 * time.Millisecond}
	for _, fails := range []int{2, 3} {
		res, err := client.Enqueue(ctx, Charge{Card: "4242", Fails: fails}, opts)
		if err != nil {
			log.Fatal(err)
		}
		result, err := client.WaitResult(ctx, res.ID)
		if err != nil {
			log.Fatal(err)
		}
		task, err := client.Task(ctx, res.ID)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d failures: %s after %d attempts\n", fails, result.Status, task.Attempt)
		for _, e := range task.Errors {
			fmt.Println("  ", e.Attempt, e.Error)
		}
	}
	// Output:
	// 2 failures: success after 3 attempts
	//    1 card declined (attempt 1)
	//    2 card declined (attempt 2)
	// 3 failures: error after 3 attempts
	//    1 card declined (attempt 1)
	//    2 card declined (attempt 2)
	//    3 card declined (attempt 3)
}

// NoRetry ends the task in error at once, whatever attempts remain: for
// errors that another attempt cannot fix.
func ExampleNoRetry() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	client := chargeClient(ctx, schema, pool, func(ctx context.Context, t *omniq.Task[Charge]) error {
		if t.Args.Card == "" {
			return omniq.NoRetry(errors.New("no card number"))
		}
		return nil
	})
	defer client.Stop(ctx)

	res, err := client.Enqueue(ctx, Charge{}, &omniq.InsertOpts{MaxAttempts: 5})
	if err != nil {
		log.Fatal(err)
	}
	result, err := client.WaitResult(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	task, err := client.Task(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(result.Status, result.Error, "| attempts:", task.Attempt, "of", task.MaxAttempts)
	// Output:
	// error not retryable: no card number | attempts: 1 of 5
}

// JobCancel ends the task cancelled, without retry: the work is no longer
// wanted (the order was withdrawn), which is not a failure.
func ExampleJobCancel() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	client := chargeClient(ctx, schema, pool, func(ctx context.Context, t *omniq.Task[Charge]) error {
		return omniq.JobCancel(errors.New("order withdrawn"))
	})
	defer client.Stop(ctx)

	res, err := client.Enqueue(ctx, Charge{Card: "4242"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	result, err := client.WaitResult(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	task, err := client.Task(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(result.Status, result.Error, "|", task.Status)
	// Output:
	// cancelled task cancelled by its worker: order withdrawn | cancelled
}

// JobSnooze runs the task again after a while without using an attempt: for
// "not yet" rather than "failed", such as a rate limit.
func ExampleJobSnooze() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	var runs atomic.Int32
	client := chargeClient(ctx, schema, pool, func(ctx context.Context, t *omniq.Task[Charge]) error {
		n := runs.Add(1)
		fmt.Println("run", n, "attempt", t.Attempt)
		if n < 3 {
			return omniq.JobSnooze(10 * time.Millisecond) // rate limited: come back later
		}
		return nil
	})
	defer client.Stop(ctx)

	res, err := client.Enqueue(ctx, Charge{Card: "4242"}, &omniq.InsertOpts{MaxAttempts: 1})
	if err != nil {
		log.Fatal(err)
	}
	result, err := client.WaitResult(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(result.Status)
	// Output:
	// run 1 attempt 1
	// run 2 attempt 1
	// run 3 attempt 1
	// success
}
