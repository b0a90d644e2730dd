package omniq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq"
)

// ShipOrder asks for an order to be shipped.
type ShipOrder struct {
	OrderID int `json:"order_id"`
}

func (ShipOrder) Kind() string { return "ship_order" }

// shipClient starts a client that prints each order it ships.
func shipClient(ctx context.Context, pool *pgxpool.Pool, schema string) *omniq.Client {
	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[ShipOrder]) error {
		fmt.Println("shipping order", t.Args.OrderID)
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

// EnqueueTx inserts the task in the application's own transaction: the order
// and the task that ships it commit together.
func ExampleClient_EnqueueTx() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	orders := pgx.Identifier{schema, "orders"}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE TABLE "+orders+" (id int PRIMARY KEY)"); err != nil {
		log.Fatal(err)
	}
	client := shipClient(ctx, pool, schema)
	defer client.Stop(ctx)

	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "INSERT INTO "+orders+" (id) VALUES ($1)", 7); err != nil {
		log.Fatal(err)
	}
	res, err := client.EnqueueTx(ctx, tx, ShipOrder{OrderID: 7}, nil)
	if err != nil {
		log.Fatal(err)
	}
	// Until the commit no worker can see the task.
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	result, err := client.WaitResult(ctx, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(result.Status)
	// Output:
	// shipping order 7
	// success
}

// When the transaction rolls back, the task goes with the business write:
// there is no task for an order that does not exist.
func ExampleClient_EnqueueTx_rollback() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()
	orders := pgx.Identifier{schema, "orders"}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE TABLE "+orders+" (id int PRIMARY KEY, total int CHECK (total > 0))"); err != nil {
		log.Fatal(err)
	}
	client := shipClient(ctx, pool, schema)
	defer client.Stop(ctx)

	tx, err := pool.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	res, err := client.EnqueueTx(ctx, tx, ShipOrder{OrderID: 8}, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, err = tx.Exec(ctx, "INSERT INTO "+orders+" (id, total) VALUES ($1, $2)", 8, -5)
	fmt.Println("insert failed:", err != nil)
	if err := tx.Rollback(ctx); err != nil {
		log.Fatal(err)
	}

	_, err = client.Task(ctx, res.ID)
	fmt.Println("task exists:", !errors.Is(err, omniq.ErrNotFound))
	// Output:
	// insert failed: true
	// task exists: false
}
