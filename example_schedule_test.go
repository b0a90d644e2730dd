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

	// Created at run time: once, as soon as a client's scheduler sees it.
	if _, err := client.CreateSchedule(ctx, omniq.ScheduleSpec{
		Name: "rebuild-report", Once: true, Args: Report{Name: "rebuild"},
	}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-ran)

	// The tick that fired the task also recorded it on the schedule.
	rb, err := client.Schedule(ctx, "rebuild-report")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rb.Type, rb.RunCount, rb.Status)

	sc, err := client.Schedule(ctx, "nightly-sales")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sc.Type, sc.Status, sc.NextRunAt.In(mustLoad("Europe/Paris")).Format("15:04"))

	// Cron takes five fields, or six with a leading seconds field ("*/10 * * * * *").
	_, err = client.CreateSchedule(ctx, omniq.ScheduleSpec{Name: "typo", Cron: "*/5 * * *", Args: Report{}})
	fmt.Println(errors.Is(err, omniq.ErrInvalidInput))
	fmt.Println(err)
	// Output:
	// rebuild
	// once 1 expired
	// cron active 02:30
	// true
	// omniq: invalid Cron "*/5 * * *": expected 5 to 6 fields, found 4: [*/5 * * *] (use five fields "min hour dom month dow", six with a leading seconds field, or a descriptor such as @hourly or @every 90s)
}

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		log.Fatal(err)
	}
	return loc
}
