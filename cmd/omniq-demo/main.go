// Command omniq-demo runs OmniQ's main job end to end against a real
// PostgreSQL: migrate, enqueue beside a business write (and show that a
// rolled-back one leaves nothing), work two queues with priorities, retry a
// failure, fire a schedule, and print results and events with plain SQL.
//
//	go run ./cmd/omniq-demo [--database-url URL] [--schema omniq_demo]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/migrations"
)

// SendEmail is a task: its Kind names the worker that runs it.
type SendEmail struct {
	To      string `json:"to"`
	OrderID int    `json:"order_id"`
}

func (SendEmail) Kind() string { return "send_email" }

// EmailWorker sends (prints) an email and stores a receipt as its result.
type EmailWorker struct {
	omniq.WorkerDefaults[SendEmail]
}

func (EmailWorker) Work(ctx context.Context, t *omniq.Task[SendEmail]) error {
	fmt.Printf("  [%s p=%d] email to %s for order %d\n", t.Queue, t.Priority, t.Args.To, t.Args.OrderID)
	t.SetResult(map[string]any{"delivered_to": t.Args.To})
	return nil
}

// ChargeCard fails on its first attempt, to show a retry.
type ChargeCard struct {
	OrderID int `json:"order_id"`
}

func (ChargeCard) Kind() string { return "charge_card" }

type ChargeWorker struct {
	omniq.WorkerDefaults[ChargeCard]
	calls atomic.Int32
}

func (w *ChargeWorker) Work(ctx context.Context, t *omniq.Task[ChargeCard]) error {
	if w.calls.Add(1) == 1 {
		fmt.Printf("  [%s] charge order %d: attempt %d fails (card network timeout)\n", t.Queue, t.Args.OrderID, t.Attempt)
		return errors.New("card network timeout")
	}
	fmt.Printf("  [%s] charge order %d: attempt %d succeeds\n", t.Queue, t.Args.OrderID, t.Attempt)
	t.SetResult(map[string]any{"charged": true})
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "omniq-demo:", err)
		os.Exit(1)
	}
}

func databaseURL(flagURL string) string {
	for _, u := range []string{flagURL, os.Getenv("OMNIQ_DATABASE_URL"), os.Getenv("OMNIQ_TEST_DATABASE_URL")} {
		if u != "" {
			return u
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres"
}

func run() error {
	urlFlag := flag.String("database-url", "", "PostgreSQL URL (default $OMNIQ_DATABASE_URL, then postgres://postgres@127.0.0.1:5432/postgres)")
	schema := flag.String("schema", "omniq_demo", "schema for the demo's tables (dropped and recreated)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	pool, err := pgxpool.New(ctx, databaseURL(*urlFlag))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("connect to PostgreSQL (set --database-url or OMNIQ_DATABASE_URL): %w", err)
	}

	step("1. Migrate schema %s", *schema)
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{*schema}.Sanitize()+" CASCADE"); err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	err = migrations.Migrate(ctx, conn.Conn(), *schema, migrations.Latest())
	conn.Release()
	if err != nil {
		return err
	}
	orders := pgx.Identifier{*schema, "orders"}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE TABLE "+orders+" (id int PRIMARY KEY, email text)"); err != nil {
		return err
	}
	fmt.Printf("  schema %s at version %d: tasks, results, schedules, events\n", *schema, migrations.Latest())

	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, &EmailWorker{})
	charge := &ChargeWorker{}
	omniq.AddWorker(workers, charge)
	client, err := omniq.NewClient(pool, &omniq.Config{
		Schema:     *schema,
		Workers:    workers,
		Queues:     map[string]omniq.QueueConfig{"default": {MaxWorkers: 1}, "billing": {MaxWorkers: 2}},
		RetryDelay: 500 * time.Millisecond,
		Log:        omniq.LogConfig{Level: "warn"},
	})
	if err != nil {
		return err
	}

	step("2. Enqueue inside the business transaction")
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+orders+" VALUES (1, 'ada@example.com')"); err != nil {
		return err
	}
	if _, err := client.EnqueueTx(ctx, tx, SendEmail{To: "ada@example.com", OrderID: 1}, nil); err != nil {
		return err
	}
	if _, err := client.EnqueueTx(ctx, tx, ChargeCard{OrderID: 1}, &omniq.InsertOpts{Queue: "billing"}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	fmt.Println("  committed: order 1 with its email and charge tasks")

	tx, err = pool.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+orders+" VALUES (2, 'bob@example.com')"); err != nil {
		return err
	}
	if _, err := client.EnqueueTx(ctx, tx, SendEmail{To: "bob@example.com", OrderID: 2}, nil); err != nil {
		return err
	}
	if err := tx.Rollback(ctx); err != nil {
		return err
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{*schema, "tasks"}.Sanitize()+" WHERE args->>'to' = 'bob@example.com'").Scan(&n); err != nil {
		return err
	}
	fmt.Printf("  rolled back: order 2 and its email; tasks for bob: %d\n", n)

	step("3. Priorities: higher runs first (queue default has one worker)")
	for _, p := range []int{1, 10, 5} {
		if _, err := client.Enqueue(ctx, SendEmail{To: fmt.Sprintf("priority-%d@example.com", p)}, &omniq.InsertOpts{Priority: p}); err != nil {
			return err
		}
	}

	step("4. Work the queues")
	if err := client.Start(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var open int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{*schema, "tasks"}.Sanitize()+
			" WHERE status NOT IN ('success','error','cancelled','expired')").Scan(&open); err != nil {
			return err
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d tasks still open after 30s", open)
		}
		time.Sleep(50 * time.Millisecond)
	}

	step("5. A schedule: every second, three runs (any started client fires it, each tick once)")
	if _, err := client.CreateSchedule(ctx, omniq.ScheduleSpec{
		Name: "digest", Cron: "*/1 * * * * *", MaxRuns: 3, Args: SendEmail{To: "digest@example.com"},
	}); err != nil {
		return err
	}
	for {
		sc, err := client.Schedule(ctx, "digest")
		if err != nil {
			return err
		}
		if sc.Status == omniq.ScheduleExpired {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("schedule digest still %s after 30s (run_count %d)", sc.Status, sc.RunCount)
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := fmt.Sprintf(`SELECT name, type, cron, coalesce(next_run_at::text, '-'), run_count, status FROM %s`,
		pgx.Identifier{*schema, "schedules"}.Sanitize())
	fmt.Println("  " + q)
	if err := printRows(ctx, pool, q); err != nil {
		return err
	}

	stopCtx, stopCancel := context.WithTimeout(ctx, 10*time.Second)
	defer stopCancel()
	if err := client.Stop(stopCtx); err != nil {
		return err
	}

	step("6. Results, with plain SQL")
	q = fmt.Sprintf(`SELECT t.kind, t.queue, t.status, t.attempt, coalesce(r.result::text, '-')
FROM %s t LEFT JOIN %s r ON r.task_id = t.id ORDER BY t.created_at, t.id`,
		pgx.Identifier{*schema, "tasks"}.Sanitize(), pgx.Identifier{*schema, "results"}.Sanitize())
	fmt.Println("  " + q)
	if err := printRows(ctx, pool, q); err != nil {
		return err
	}

	step("7. Events, with plain SQL")
	q = fmt.Sprintf(`SELECT type, kind, queue, attempt, coalesce(error, '') FROM %s ORDER BY id`, pgx.Identifier{*schema, "events"}.Sanitize())
	fmt.Println("  " + q)
	return printRows(ctx, pool, q)
}

func step(format string, args ...any) {
	fmt.Printf("\n== "+format+"\n", args...)
}

func printRows(ctx context.Context, pool *pgxpool.Pool, q string) error {
	rows, err := pool.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return err
		}
		fmt.Print("   ")
		for _, v := range vals {
			fmt.Printf(" %-22v", v)
		}
		fmt.Println()
	}
	return rows.Err()
}
