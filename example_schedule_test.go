package omniq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/omniqhq/omniq"
)

type Report struct {
	Name string `json:"name"`
}

func (Report) Kind() string { return "report" }

// Schedules are rows: declare them in Config (upserted by name at Start) or
// create them at run time. Any started client fires them, each tick once.
func ExampleClient_CreateSchedule() {
	ctx := context.Background()
	pool, schema, drop := exampleDB(ctx)
	defer drop()

	ran := make(chan string, 10)
	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, omniq.WorkFunc(func(ctx context.Context, t *omniq.Task[Report]) error {
		ran <- t.Args.Name
		return nil
	}))
	client, err := omniq.NewClient(pool, &omniq.Config{
		Schema:  schema,
		Workers: workers,
		Log:     omniq.LogConfig{Disabled: true},
		// Declared in code: 02:30 every day, Paris time.
		Schedules: []omniq.ScheduleSpec{
			{Name: "nightly-sales", Cron: "30 2 * * *", Timezone: "Europe/Paris", Args: Report{Name: "sales"}},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Stop(ctx)

	// Created at run time: every second (the seconds field is optional), twice.
	if _, err := client.CreateSchedule(ctx, omniq.ScheduleSpec{
		Name: "heartbeat-report", Cron: "*/1 * * * * *", MaxRuns: 2, Args: Report{Name: "heartbeat"},
	}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-ran, <-ran)

	sc, err := client.Schedule(ctx, "nightly-sales")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sc.Type, sc.Status, sc.NextRunAt.In(mustLoad("Europe/Paris")).Format("15:04"))

	_, err = client.CreateSchedule(ctx, omniq.ScheduleSpec{Name: "typo", Cron: "*/5 * * *", Args: Report{}})
	fmt.Println(errors.Is(err, omniq.ErrInvalidInput))
	fmt.Println(err)

	// Wait for the second tick's bookkeeping to be visible.
	for {
		hb, err := client.Schedule(ctx, "heartbeat-report")
		if err != nil {
			log.Fatal(err)
		}
		if hb.Status == omniq.ScheduleExpired {
			fmt.Println(hb.RunCount, hb.Status)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Output:
	// heartbeat heartbeat
	// cron active 02:30
	// true
	// omniq: invalid Cron "*/5 * * *": expected 5 to 6 fields, found 4: [*/5 * * *] (use five fields "min hour dom month dow", six with a leading seconds field, or a descriptor such as @hourly or @every 90s)
	// 2 expired
}

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		log.Fatal(err)
	}
	return loc
}
