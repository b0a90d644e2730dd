// Command omniq-bench measures OmniQ's throughput and latency, one to one
// with River's `river bench`: a no-op worker on the default queue, tasks
// inserted in batches of 5,000 with EnqueueMany.
//
//	omniq-bench -n 200000            insert 200,000 tasks, then start and work them down
//	omniq-bench --duration 30s       insert (keeping ≥75,000 available) and work for 30s
//	omniq-bench --latency 20s        idle queue: one task every 20ms, enqueue-to-start latency
//	omniq-bench --enqueue-many 1000000   EnqueueMany throughput (no client started)
//	omniq-bench --phases clean:10m,idle-in-tx:10m,readers:10m,recovery:5m   long-horizon run
//
// Progress is printed every 2s; the last lines give `overall jobs/s` and the
// enqueue-to-start latency percentiles. The schema (--schema, default
// omniq_bench) is migrated, and its tables, and no others, are truncated
// before each run.
//
// # Long-horizon mode
//
// --phases runs a fixed offered load through phases that hold back vacuum,
// to show whether claim latency and throughput stay flat while dead tuples
// pile up. Every 10ms an enqueuer inserts with EnqueueMany what --rate
// (default 1000 tasks/s) owes since the start; --workers (default 8 here)
// each sleep --work-time (default 1ms) per task and record enqueue-to-start
// ("claim") latency in bounded histograms. The phases:
//
//	clean        nothing extra
//	idle-in-tx   a separate connection runs BEGIN; SELECT txid_current(); and
//	             sits idle for the phase, then ROLLBACK
//	readers      two separate connections, staggered by half of --reader-tx
//	             (default 30s), each repeating a REPEATABLE READ transaction of
//	             --reader-tx that counts every OmniQ table once a second: the
//	             horizon is always pinned, but moves
//	recovery     nothing extra; with --vacuum-at-recovery (the default when
//	             autovacuum is off) a VACUUM (ANALYZE) of the OmniQ tables at
//	             its start stands in for autovacuum
//
// Every --interval (default 5s) one line gives the elapsed time, the phase,
// the offered, enqueued and completed rates, claim p50/p95/p99, the queue
// depth (pending and retry tasks), and each OmniQ table's n_dead_tup and
// size (tasks: heap with toast, and its indexes apart), then the age of the
// oldest xid or xmin of the database's backends ("held" when the phase's own
// horizon holder was seen holding it). Completed is what was enqueued and is
// no longer pending, retry or running. At the end, a summary per phase, and
// for recovery how long until an interval's p95 came back within 10% of the
// clean phase's p95. --csv FILE writes one row per interval with the header
// shared with the River program that runs the same phases:
//
//	elapsed_s,phase,offered_per_s,enqueued_per_s,completed_per_s,claim_p50_ms,claim_p95_ms,claim_p99_ms,depth,hot_dead_tuples,hot_table_bytes,hot_index_bytes,all_dead_tuples,all_bytes
//
// (hot = tasks: pg_table_size and pg_indexes_size; all = every OmniQ table,
// pg_total_relation_size summed), which cmd/omniq-plot draws. The client
// keeps OmniQ's defaults but --finished-retention (1m here, so hours of
// history do not grow tasks), --results and --events; the pool gets 10
// connections (--max-conns). --autovacuum on|off sets autovacuum with ALTER
// SYSTEM and pg_reload_conf() for the run and restores the previous
// postgresql.auto.conf entry at its end, also on Ctrl-C or error; the default,
// as-is, leaves the server alone. The setting the run had is printed, with
// shared_buffers.
//
//	omniq-bench --phases clean:10m,idle-in-tx:10m,recovery:5m --autovacuum on --csv omniq.csv
//	omniq-plot -o long.png omniq.csv river.csv
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq"
	"github.com/omniqhq/omniq/migrations"
)

// options are the command's flags.
type options struct {
	n             int
	duration      time.Duration
	latency       time.Duration
	latencyEvery  time.Duration
	enqueueMany   int
	batch         int
	concurrency   int
	workers       int
	fetchCooldown time.Duration
	pollInterval  time.Duration
	results       string
	events        string
	databaseURL   string
	schema        string
	maxConns      int
	preload       int
	completerSize int
	completerWait time.Duration
	cpuProfile    string

	// Long-horizon mode (--phases).
	phasesFlag          string
	phases              []phase
	rate                int
	workTime            time.Duration
	interval            time.Duration
	csvPath             string
	finishedRetention   time.Duration
	autovacuum          string
	vacuumAtRecovery    bool
	vacuumAtRecoverySet bool // else it follows the autovacuum setting the run has
	readerTx            time.Duration
	readerWorkers       int // max_parallel_workers_per_gather of the readers; -1: the server's
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "omniq-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "omniq-bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("omniq-bench", flag.ContinueOnError)
	fs.IntVar(&o.n, "n", 0, "insert `N` tasks before starting and work them down")
	fs.IntVar(&o.n, "num-total-jobs", 0, "same as -n")
	fs.DurationVar(&o.duration, "duration", 0, "insert and work continuously for `D`")
	fs.DurationVar(&o.latency, "latency", 0, "idle-queue latency mode: enqueue one task every --latency-every for `D`")
	fs.DurationVar(&o.latencyEvery, "latency-every", 20*time.Millisecond, "gap between tasks in --latency mode")
	fs.IntVar(&o.enqueueMany, "enqueue-many", 0, "measure EnqueueMany of `N` small tasks (no client started)")
	fs.IntVar(&o.batch, "batch", 5000, "tasks per EnqueueMany call (inserts of -n, --duration, --enqueue-many)")
	fs.IntVar(&o.concurrency, "concurrency", 1, "EnqueueMany calls in flight at once in --enqueue-many mode (each its own transaction)")
	fs.IntVar(&o.workers, "workers", 2000, "workers of the default queue (river bench uses 2,000); --latency defaults to 100")
	fs.DurationVar(&o.fetchCooldown, "fetch-cooldown", 2*time.Millisecond, "Config.FetchCooldown (river bench uses 2ms); --latency defaults to OmniQ's default")
	fs.DurationVar(&o.pollInterval, "poll-interval", 20*time.Millisecond, "Config.FetchPollInterval (river bench uses 20ms); --latency defaults to OmniQ's default")
	fs.StringVar(&o.results, "results", "on", "store results: on|off")
	fs.StringVar(&o.events, "events", "default", "Config.EventLevel: all|default|failures|none")
	fs.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL (default $OMNIQ_DATABASE_URL, then postgres://postgres@127.0.0.1:5432/postgres)")
	fs.StringVar(&o.schema, "schema", "omniq_bench", "schema to migrate and use; its tables are truncated")
	fs.IntVar(&o.maxConns, "max-conns", 0, "pool MaxConns (0: pgx's default, max(4, CPUs), as river bench)")
	fs.IntVar(&o.preload, "preload-finished", 0, "before the run, fill the tables with `N` finished tasks, N results and N events")
	fs.IntVar(&o.completerSize, "completer-batch", 0, "Config.CompleterBatchSize (0: default)")
	fs.DurationVar(&o.completerWait, "completer-flush", 0, "Config.CompleterFlushInterval (0: default)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured part (-n, --duration, --enqueue-many) to `file`")
	fs.StringVar(&o.phasesFlag, "phases", "", "long-horizon mode: `PHASES` such as clean:10m,idle-in-tx:10m,readers:10m,recovery:5m")
	fs.IntVar(&o.rate, "rate", 1000, "--phases: offered tasks/s")
	fs.DurationVar(&o.workTime, "work-time", time.Millisecond, "--phases: each task's work (the worker sleeps it)")
	fs.DurationVar(&o.interval, "interval", 5*time.Second, "--phases: report interval")
	fs.StringVar(&o.csvPath, "csv", "", "--phases: write one row per interval to `FILE`")
	fs.DurationVar(&o.finishedRetention, "finished-retention", 0, "Config.FinishedRetention (0: the default; --phases defaults to 1m)")
	fs.StringVar(&o.autovacuum, "autovacuum", "as-is", "--phases: on|off|as-is; on/off is set with ALTER SYSTEM for the run and restored at its end")
	fs.BoolVar(&o.vacuumAtRecovery, "vacuum-at-recovery", false, "--phases: VACUUM (ANALYZE) the OmniQ tables when recovery starts (default: when autovacuum is off)")
	fs.DurationVar(&o.readerTx, "reader-tx", 30*time.Second, "--phases: length of each REPEATABLE READ transaction of the readers phase")
	fs.IntVar(&o.readerWorkers, "reader-workers", -1, "--phases: max_parallel_workers_per_gather in the readers' transactions (-1: the server's setting; 0: no parallel scans)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	modes := 0
	for _, m := range []bool{o.n > 0, o.duration > 0, o.latency > 0, o.enqueueMany > 0, o.phasesFlag != ""} {
		if m {
			modes++
		}
	}
	switch {
	case modes > 1:
		return nil, errors.New("give one of -n, --duration, --latency, --enqueue-many, --phases")
	case o.n < 0 || o.enqueueMany < 0 || o.duration < 0 || o.latency < 0:
		return nil, errors.New("-n, --enqueue-many, --duration and --latency must not be negative")
	case o.results != "on" && o.results != "off":
		return nil, fmt.Errorf("--results %q: want on or off", o.results)
	case !strings.Contains(" all default failures none ", " "+o.events+" "):
		return nil, fmt.Errorf("--events %q: want all, default, failures or none", o.events)
	case o.batch < 1:
		return nil, errors.New("--batch must be at least 1")
	case o.concurrency < 1:
		return nil, errors.New("--concurrency must be at least 1")
	case o.workers < 1:
		return nil, errors.New("--workers must be at least 1")
	case o.finishedRetention < 0:
		return nil, errors.New("--finished-retention must not be negative")
	}
	if o.phasesFlag == "" {
		for _, name := range []string{"rate", "work-time", "interval", "csv", "autovacuum", "vacuum-at-recovery", "reader-tx", "reader-workers"} {
			if set[name] {
				return nil, fmt.Errorf("--%s applies only with --phases", name)
			}
		}
	} else {
		var err error
		if o.phases, err = parsePhases(o.phasesFlag); err != nil {
			return nil, err
		}
		switch {
		case o.rate < 1:
			return nil, errors.New("--rate must be at least 1")
		case o.workTime < 0:
			return nil, errors.New("--work-time must not be negative")
		case o.interval <= 0:
			return nil, errors.New("--interval must be positive")
		case o.readerTx < time.Second:
			return nil, errors.New("--reader-tx must be at least 1s")
		case o.readerWorkers < -1:
			return nil, errors.New("--reader-workers must be -1 (the server's setting) or at least 0")
		case o.autovacuum != "on" && o.autovacuum != "off" && o.autovacuum != "as-is":
			return nil, fmt.Errorf("--autovacuum %q: want on, off or as-is", o.autovacuum)
		}
		o.vacuumAtRecoverySet = set["vacuum-at-recovery"]
		// Default configuration but for a short history, so a run of hours
		// keeps tasks at a steady size; a pool that the enqueuer and the
		// client's loops do not queue on.
		if !set["workers"] {
			o.workers = 8
		}
		if !set["fetch-cooldown"] {
			o.fetchCooldown = 0
		}
		if !set["poll-interval"] {
			o.pollInterval = 0
		}
		if !set["finished-retention"] {
			o.finishedRetention = time.Minute
		}
		if !set["max-conns"] {
			o.maxConns = 10
		}
	}
	if o.latency > 0 {
		// An idle queue is measured with the client's own defaults.
		if !set["workers"] {
			o.workers = 100
		}
		if !set["fetch-cooldown"] {
			o.fetchCooldown = 0
		}
		if !set["poll-interval"] {
			o.pollInterval = 0
		}
	}
	if o.databaseURL == "" {
		o.databaseURL = os.Getenv("OMNIQ_DATABASE_URL")
	}
	if o.databaseURL == "" {
		o.databaseURL = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	return o, nil
}

func run(ctx context.Context, o *options, out *os.File) (err error) {
	pcfg, err := pgxpool.ParseConfig(o.databaseURL)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	if o.maxConns > 0 {
		pcfg.MaxConns = int32(o.maxConns)
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = appName
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	if err := prepareSchema(ctx, pool, o); err != nil {
		return err
	}
	b := &bench{o: o, pool: pool, out: out}
	if o.phasesFlag != "" {
		restore, err := b.autovacuum(ctx)
		defer func() {
			if rerr := restore(); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}()
		if err != nil {
			return err
		}
	}
	if err := b.describe(ctx); err != nil {
		return err
	}
	switch {
	case o.phasesFlag != "":
		if err := b.describePhases(ctx); err != nil {
			return err
		}
		return b.runPhases(ctx)
	case o.enqueueMany > 0:
		return b.runEnqueueMany(ctx)
	case o.latency > 0:
		return b.runLatency(ctx)
	default:
		return b.runThroughput(ctx)
	}
}

// prepareSchema migrates the bench schema and empties its tables (and only
// its tables), then optionally preloads history.
func prepareSchema(ctx context.Context, pool *pgxpool.Pool, o *options) error {
	if err := migrations.ValidateSchema(o.schema); err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Release()
	if err := migrations.Migrate(ctx, conn.Conn(), o.schema, migrations.Latest()); err != nil {
		return fmt.Errorf("migrate schema %s: %w", o.schema, err)
	}
	var tables []string
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename NOT LIKE '%schema_version%' AND tablename NOT IN ('tasks_rotation', 'dependency_state') ORDER BY 1`, o.schema)
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	quoted := make([]string, len(tables))
	for i, t := range tables {
		quoted[i] = pgx.Identifier{o.schema, t}.Sanitize()
	}
	if len(quoted) > 0 {
		if _, err := conn.Exec(ctx, "TRUNCATE "+strings.Join(quoted, ", ")); err != nil {
			return fmt.Errorf("truncate: %w", err)
		}
		// No task is left to wait for dependencies.
		if _, err := conn.Exec(ctx, `UPDATE `+pgx.Identifier{o.schema, "dependency_state"}.Sanitize()+` SET waiting_seen = false`); err != nil {
			return fmt.Errorf("reset dependency state: %w", err)
		}
		// TRUNCATE leaves n_dead_tup as it was: start the run's counts from zero.
		if _, err := conn.Exec(ctx, `SELECT pg_stat_reset_single_table_counters(c.oid)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'i')`, o.schema); err != nil {
			return fmt.Errorf("reset table statistics: %w", err)
		}
	}
	if o.preload > 0 {
		if err := preloadHistory(ctx, conn.Conn(), o.schema, o.preload); err != nil {
			return err
		}
	}
	return nil
}

// preloadHistory writes n finished tasks with their results and n events, as
// a day of history would leave them, then vacuums and analyzes the tables.
func preloadHistory(ctx context.Context, conn *pgx.Conn, schema string, n int) error {
	tasks := pgx.Identifier{schema, "tasks"}.Sanitize()
	results := pgx.Identifier{schema, "results"}.Sanitize()
	events := pgx.Identifier{schema, "events"}.Sanitize()
	start := time.Now()
	for _, q := range []string{
		// UUIDv7-shaped ids an hour old: 48-bit milliseconds, version 7, variant 8, a counter.
		`INSERT INTO ` + tasks + ` (id, kind, queue, args, status, run_at, created_at, started_at, completed_at, attempt, worker_id)
		SELECT (lpad(to_hex((extract(epoch FROM now() - interval '1 hour') * 1000)::bigint), 12, '0')
				|| '7000' || '8' || lpad(to_hex(g), 15, '0'))::uuid,
			'benchmark', 'default', jsonb_build_object('num', g), 'success', now() - interval '1 hour',
			now() - interval '1 hour', now() - interval '1 hour', now() - interval '59 minutes', 1, 'preload'
		FROM generate_series(1, $1::bigint) g`,
		`INSERT INTO ` + results + ` (task_id, status, started_at, completed_at, execution_time, worker_id, attempt)
		SELECT id, 'success', started_at, completed_at, completed_at - started_at, worker_id, 1 FROM ` + tasks + ` WHERE worker_id = 'preload'`,
		// The default level's compact row (migration 013).
		`INSERT INTO ` + events + ` (time, type, task_id, kind, queue, worker_id, attempt, level, execution_time, enqueued_at, started_at)
		SELECT completed_at, 'completed', id, kind, queue, worker_id, 1, 'info', completed_at - started_at, created_at, started_at
		FROM ` + tasks + ` WHERE worker_id = 'preload'`,
	} {
		var err error
		if strings.Contains(q, "$1") {
			_, err = conn.Exec(ctx, q, n)
		} else {
			_, err = conn.Exec(ctx, q)
		}
		if err != nil {
			return fmt.Errorf("preload history: %w", err)
		}
	}
	for _, t := range []string{tasks, results, events} {
		if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+t); err != nil {
			return fmt.Errorf("preload: vacuum: %w", err)
		}
	}
	fmt.Printf("bench: preloaded %d finished tasks, results and events in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// bench is one run's state.
type bench struct {
	o    *options
	pool *pgxpool.Pool
	out  *os.File
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

// describe prints what the run is measuring with, so a log is self-contained.
func (b *bench) describe(ctx context.Context) error {
	var version, av, sc string
	err := b.pool.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('autovacuum'), current_setting('synchronous_commit')`).Scan(&version, &av, &sc)
	if err != nil {
		return fmt.Errorf("read server settings: %w", err)
	}
	o := b.o
	b.printf("bench: omniq schema=%s workers=%d fetch_cooldown=%s poll_interval=%s results=%s events=%s max_conns=%d gomaxprocs=%d postgres=%s autovacuum=%s synchronous_commit=%s\n",
		o.schema, o.workers, o.fetchCooldown, o.pollInterval, o.results, o.events, b.pool.Config().MaxConns,
		runtime.GOMAXPROCS(0), version, av, sc)
	return nil
}

// newClient returns a client for the run, with the bench worker registered.
func (b *bench) newClient(w omniq.Worker[BenchArgs]) (*omniq.Client, error) {
	workers := omniq.NewWorkers()
	omniq.AddWorker(workers, w)
	return omniq.NewClient(b.pool, &omniq.Config{
		Schema:                 b.o.schema,
		Queues:                 map[string]omniq.QueueConfig{"default": {MaxWorkers: b.o.workers}},
		Workers:                workers,
		DisableResults:         b.o.results == "off",
		EventLevel:             b.o.events,
		FetchCooldown:          b.o.fetchCooldown,
		FetchPollInterval:      b.o.pollInterval,
		CompleterBatchSize:     b.o.completerSize,
		CompleterFlushInterval: b.o.completerWait,
		FinishedRetention:      b.o.finishedRetention,
		Log:                    omniq.LogConfig{Level: "warn"},
	})
}
