package omniq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq"
)

// Stage is one stage of a pipeline.
type Stage struct {
	Name string `json:"name"`
	Fail bool   `json:"fail,omitempty"`
}

func (Stage) Kind() string { return "stage" }

// AfterStage is the callback a stage's end enqueues.
type AfterStage struct {
	Note string `json:"note"`
}

func (AfterStage) Kind() string { return "after_stage" }

// workflowClient returns a started client that runs stages (printing them)
// and callbacks (handing each to done).
func workflowClient(ctx context.Context, schema string, pool *pgxpool.Pool, done chan<- string) *omniq.Client {
	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[Stage]) error {
		fmt.Println("running", t.Args.Name)
		if t.Args.Fail {
			return omniq.NoRetry(errors.New(t.Args.Name + " failed"))
		}
		t.SetResult(t.Args.Name + " done")
		return nil
	}))
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[AfterStage]) error {
		done <- fmt.Sprintf("%s: parent %v, result %v", t.Args.Note, t.Metadata["parent_status"], t.Metadata["parent_result"])
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
	return client
}

// DependsOn holds a task in status waiting until every task it names has
// succeeded. A batch names its own tasks by presetting their ids.
func ExampleInsertOpts_dependsOn() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	client := workflowClient(ctx, schema, pool, nil)
	defer client.Stop(ctx)

	extract, transform, load := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	res, err := client.EnqueueMany(ctx, []omniq.EnqueueParams{
		{Args: Stage{Name: "load"}, Opts: &omniq.InsertOpts{ID: load, DependsOn: []uuid.UUID{transform}}},
		{Args: Stage{Name: "transform"}, Opts: &omniq.InsertOpts{ID: transform, DependsOn: []uuid.UUID{extract}}},
		{Args: Stage{Name: "extract"}, Opts: &omniq.InsertOpts{ID: extract}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("enqueued:", res[0].Status, res[1].Status, res[2].Status)
	result, err := client.WaitResult(ctx, load)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("load:", result.Status)
	// Output:
	// enqueued: waiting waiting pending
	// running extract
	// running transform
	// running load
	// load: success
}

// When a dependency fails, its waiting dependents are cancelled (unless they
// set RunAnyway, which runs them once every dependency has ended).
func ExampleInsertOpts_dependsOn_failure() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	client := workflowClient(ctx, schema, pool, nil)
	defer client.Stop(ctx)

	extract, load, cleanup := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	if _, err := client.EnqueueMany(ctx, []omniq.EnqueueParams{
		{Args: Stage{Name: "extract", Fail: true}, Opts: &omniq.InsertOpts{ID: extract}},
		{Args: Stage{Name: "load"}, Opts: &omniq.InsertOpts{ID: load, DependsOn: []uuid.UUID{extract}}},
		{Args: Stage{Name: "cleanup"}, Opts: &omniq.InsertOpts{ID: cleanup, DependsOn: []uuid.UUID{extract}, RunAnyway: true}},
	}); err != nil {
		log.Fatal(err)
	}
	if _, err := client.WaitResult(ctx, cleanup); err != nil {
		log.Fatal(err)
	}
	task, err := client.Task(ctx, load)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("load:", task.Status)
	// Output:
	// running extract
	// running cleanup
	// load: cancelled
}

// A callback is a task enqueued when its parent finishes, in the same
// transaction that records the finish; its metadata carries the parent's
// status and result.
func ExampleClient_NewCallback() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	done := make(chan string)
	client := workflowClient(ctx, schema, pool, done)
	defer client.Stop(ctx)

	onSuccess, err := client.NewCallback(AfterStage{Note: "report"}, "", false)
	if err != nil {
		log.Fatal(err)
	}
	onEither, err := client.NewCallback(AfterStage{Note: "alert"}, "", true) // also on failure
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.Enqueue(ctx, Stage{Name: "backup"}, &omniq.InsertOpts{Callback: onSuccess}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-done)
	if _, err := client.Enqueue(ctx, Stage{Name: "restore", Fail: true}, &omniq.InsertOpts{Callback: onEither}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-done)
	// Output:
	// running backup
	// report: parent success, result backup done
	// running restore
	// alert: parent error, result <nil>
}

// Pay records a payment for an order.
type Pay struct {
	Order int `json:"order"`
}

func (Pay) Kind() string { return "pay" }

// CompleteTx completes the task inside the worker's own transaction: the
// payment row and the task's success commit together, or neither does (and
// the task is retried).
func ExampleCompleteTx() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	payments := pgx.Identifier{schema, "payments"}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE TABLE "+payments+" (order_id int PRIMARY KEY)"); err != nil {
		log.Fatal(err)
	}

	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[Pay]) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "INSERT INTO "+payments+" (order_id) VALUES ($1)", t.Args.Order); err != nil {
			return err
		}
		if err := omniq.CompleteTx(ctx, tx, t, map[string]int{"paid": t.Args.Order}); err != nil {
			return err
		}
		return tx.Commit(ctx)
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

	res, err := client.Enqueue(ctx, Pay{Order: 42}, nil)
	if err != nil {
		log.Fatal(err)
	}
	result, err := client.WaitResult(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+payments).Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println(result.Status, string(result.Value), "| payments:", n)
	// Output:
	// success {"paid": 42} | payments: 1
}
