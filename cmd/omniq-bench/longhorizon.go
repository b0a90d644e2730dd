package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omniqhq/omniq"
)

// The long-horizon mode (--phases): a fixed offered rate through phases that
// hold back vacuum in different ways, with latency, rates, depth, dead tuples
// and sizes every --interval.

// Phase names.
const (
	phaseClean     = "clean"      // nothing extra
	phaseIdleInTx  = "idle-in-tx" // one connection: BEGIN; SELECT txid_current(); then idle
	phaseReaders   = "readers"    // two staggered REPEATABLE READ transactions scanning every table
	phaseRecovery  = "recovery"   // nothing extra; optionally a VACUUM at its start
	enqueuePeriod  = 10 * time.Millisecond
	maxEnqueueCall = 5000 // tasks per EnqueueMany call when catching up
)

// csvHeader is the long-horizon CSV's first line (the River program of earlier
// sittings wrote it without cpu_steal_pct).
const csvHeader = "elapsed_s,phase,offered_per_s,enqueued_per_s,completed_per_s,claim_p50_ms,claim_p95_ms,claim_p99_ms,depth,hot_dead_tuples,hot_table_bytes,hot_index_bytes,all_dead_tuples,all_bytes,cpu_steal_pct"

type phase struct {
	name string
	dur  time.Duration
}

// parsePhases parses "clean:10m,idle-in-tx:10m,recovery:5m".
func parsePhases(s string) ([]phase, error) {
	var ps []phase
	for part := range strings.SplitSeq(s, ",") {
		name, d, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("--phases: bad part %q: want name:duration, e.g. clean:10m", part)
		}
		switch name {
		case phaseClean, phaseIdleInTx, phaseReaders, phaseRecovery:
		default:
			return nil, fmt.Errorf("--phases: bad part %q: unknown phase %q (want clean, idle-in-tx, readers or recovery)", part, name)
		}
		dur, err := time.ParseDuration(d)
		if err != nil || dur <= 0 {
			return nil, fmt.Errorf("--phases: bad part %q: duration %q must be a positive Go duration such as 30s or 10m", part, d)
		}
		ps = append(ps, phase{name, dur})
	}
	return ps, nil
}

func formatPhases(ps []phase) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.name + ":" + p.dur.String()
	}
	return strings.Join(parts, ",")
}

// lhWorker records enqueue-to-start latency (cumulative, and per phase) and
// sleeps the work time.
type lhWorker struct {
	omniq.WorkerDefaults[BenchArgs]
	work     time.Duration
	all      histogram   // interval figures are differences of its snapshots
	byPhase  []histogram // one per phase
	cur      atomic.Int32
	started  atomic.Int64 // Work entered
	finished atomic.Int64 // Work returned
}

func (w *lhWorker) Work(ctx context.Context, t *omniq.Task[BenchArgs]) error {
	if t.Args.At > 0 {
		d := time.Since(time.Unix(0, t.Args.At))
		w.all.Record(d)
		w.byPhase[w.cur.Load()].Record(d)
	}
	w.started.Add(1)
	defer w.finished.Add(1)
	if w.work > 0 {
		tm := time.NewTimer(w.work)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
		}
	}
	return nil
}

// tableStat is one OmniQ table (partitions summed into their root).
type tableStat struct {
	name                      string
	dead, table, index, total int64
}

// sample is what the run looks like at one moment.
type sample struct {
	at                          time.Time
	offered, enqueued, depth    int64
	completed                   int64 // tasks whose Work returned
	tables                      []tableStat
	stale                       bool // tables are the previous sample's: a lock on one was queued
	hotDead, hotTable, hotIndex int64
	allDead, allBytes           int64
	xminAge                     int64 // age of the oldest xid or xmin of any backend of the database
	held                        bool  // a horizon holder of the phase had an xid or xmin
	lat                         *snapshot
	cpuTotal, cpuSteal          int64 // machineCPU; both 0 where unknown
	// lockWaits counts the database's backends waiting for a lock; the one
	// whose statement has run longest is described in lockWait ("" if none).
	// A claim or completion stuck behind a lock queue shows here.
	lockWaits int64
	lockWait  string
	// poolBusy of poolMax connections of the client's pool were in use, and
	// poolWaits acquires so far found none idle: a client starved of
	// connections shows here, where pg_stat_activity shows nothing.
	poolBusy, poolMax int32
	poolWaits         int64
}

// phaseResult accumulates one phase's summary.
type phaseResult struct {
	phase
	first, last            *sample // at the phase's start and end
	maxDepth, maxHotDead   int64
	samples, heldSamples   int
	holder                 string // who held the horizon
	recoveredAfter         time.Duration
	recovered              bool
	readerTxs, readerScans atomic.Int64
	vacuumed               string
}

type longHorizon struct {
	*bench
	phases   []phase
	w        *lhWorker
	client   *omniq.Client
	sampler  *pgx.Conn
	tables   []string // root table names of the schema, tasks first
	offered  atomic.Int64
	enqueued atomic.Int64
	start    time.Time
	csv      *os.File
	results  []*phaseResult
}

// runPhases is the long-horizon mode.
func (b *bench) runPhases(ctx context.Context) (err error) {
	o := b.o
	lh := &longHorizon{bench: b, phases: o.phases}
	lh.w = &lhWorker{work: o.workTime, byPhase: make([]histogram, len(o.phases))}
	client, err := b.newClient(lh.w)
	if err != nil {
		return err
	}
	lh.client = client
	if err := lh.openSampler(ctx); err != nil {
		return err
	}
	defer lh.sampler.Close(context.Background())
	if lh.tables, err = lh.listTables(ctx); err != nil {
		return err
	}
	if o.csvPath != "" {
		if lh.csv, err = os.Create(o.csvPath); err != nil {
			return fmt.Errorf("csv: %w", err)
		}
		defer func() {
			if cerr := lh.csv.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("csv: %w", cerr)
			}
		}()
		if _, err := fmt.Fprintln(lh.csv, csvHeader); err != nil {
			return fmt.Errorf("csv: %w", err)
		}
	}

	if err := client.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := client.Stop(sctx); serr != nil && err == nil {
			err = fmt.Errorf("stop: %w", serr)
		}
	}()

	lh.start = time.Now()
	enqCtx, stopEnqueuing := context.WithCancel(ctx)
	enqErr := make(chan error, 1)
	var enqueuer sync.WaitGroup
	enqueuer.Go(func() { enqErr <- lh.enqueue(enqCtx) })
	defer func() {
		stopEnqueuing()
		enqueuer.Wait()
	}()

	prev, err := lh.sample(ctx, nil, nil)
	if err != nil {
		return err
	}
	next := lh.start
	for i, p := range lh.phases {
		r := &phaseResult{phase: p, first: prev}
		lh.results = append(lh.results, r)
		lh.w.cur.Store(int32(i))
		pctx, endPhase := context.WithCancel(ctx)
		pids, stopPhase, err := lh.startPhase(pctx, r)
		if err != nil {
			endPhase()
			stopPhase()
			return err
		}
		phaseEnd := next.Add(p.dur)
		for {
			if next = next.Add(o.interval); next.After(phaseEnd) {
				next = phaseEnd
			}
			tm := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
			case err = <-enqErr:
				if err == nil && ctx.Err() == nil {
					err = errors.New("enqueuer stopped")
				}
			case <-tm.C:
			}
			tm.Stop()
			if err != nil || ctx.Err() != nil {
				break
			}
			s, serr := lh.sample(ctx, pids, prev)
			if serr != nil {
				if ctx.Err() == nil { // else interrupted: summarise what ran
					err = serr
				}
				break
			}
			if err = lh.report(r, prev, s); err != nil {
				break
			}
			prev = s
			if !next.Before(phaseEnd) {
				break
			}
		}
		endPhase()
		stopPhase()
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			b.printf("bench: interrupted in phase %s\n", p.name)
			break
		}
	}
	lh.summary()
	return nil
}

// enqueue offers the rate: every 10ms, what the rate owes since the start
// (rate/100 per tick, the remainder carried; ticks missed while an insert is
// slow are caught up, so the offered load does not bend to the system).
func (lh *longHorizon) enqueue(ctx context.Context) error {
	tick := time.NewTicker(enqueuePeriod)
	defer tick.Stop()
	params := make([]omniq.EnqueueParams, 0, maxEnqueueCall)
	num := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		due := int64(float64(lh.o.rate) * time.Since(lh.start).Seconds())
		for n := due - lh.offered.Load(); n > 0; n = due - lh.offered.Load() {
			k := min(n, maxEnqueueCall)
			lh.offered.Add(k)
			params = params[:0]
			at := time.Now().UnixNano()
			for range k {
				num++
				params = append(params, omniq.EnqueueParams{Args: BenchArgs{Num: num, At: at}})
			}
			if _, err := lh.client.EnqueueMany(ctx, params); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("enqueue: %w", err)
			}
			lh.enqueued.Add(k)
		}
	}
}

// startPhase starts what the phase adds and returns the backends that hold
// the horizon (for the sampler to check) and a function that ends it all,
// to be called after ctx is cancelled, whether or not startPhase failed.
func (lh *longHorizon) startPhase(ctx context.Context, r *phaseResult) (pids []int64, stop func(), err error) {
	var wg sync.WaitGroup
	var conns []*pgx.Conn
	var rollback *pgx.Conn
	stop = func() {
		wg.Wait()
		if rollback != nil {
			if _, err := rollback.Exec(context.Background(), "ROLLBACK"); err != nil {
				lh.printf("bench: idle-in-tx: rollback: %v\n", err)
			}
		}
		for _, c := range conns {
			_ = c.Close(context.Background())
		}
	}
	open := func() (*pgx.Conn, error) {
		c, err := lh.connect(ctx)
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}
	switch r.name {
	case phaseIdleInTx:
		c, err := open()
		if err != nil {
			return nil, stop, err
		}
		var xid int64
		if _, err := c.Exec(ctx, "BEGIN"); err != nil {
			return nil, stop, fmt.Errorf("idle-in-tx: %w", err)
		}
		rollback = c
		if err := c.QueryRow(ctx, "SELECT txid_current()").Scan(&xid); err != nil {
			return nil, stop, fmt.Errorf("idle-in-tx: %w", err)
		}
		pid := c.PgConn().PID()
		r.holder = fmt.Sprintf("idle-in-tx connection pid %d (xid %d)", pid, xid)
		lh.printf("bench: idle-in-tx: pid %d holds xid %d open, idle, for %s\n", pid, xid, r.dur)
		return []int64{int64(pid)}, stop, nil
	case phaseReaders:
		for i := range 2 {
			c, err := open()
			if err != nil {
				return nil, stop, err
			}
			pids = append(pids, int64(c.PgConn().PID()))
			delay := time.Duration(i) * lh.o.readerTx / 2
			wg.Go(func() { lh.reader(ctx, c, delay, r) })
		}
		r.holder = fmt.Sprintf("readers pids %v", pids)
		lh.printf("bench: readers: pids %v, REPEATABLE READ transactions of %s scanning %d tables every 1s, staggered by %s, %s\n",
			pids, lh.o.readerTx, len(lh.tables), lh.o.readerTx/2, readerWorkersText(lh.o.readerWorkers))
		return pids, stop, nil
	case phaseRecovery:
		if lh.o.vacuumAtRecovery {
			c, err := open()
			if err != nil {
				return nil, stop, err
			}
			wg.Go(func() { r.vacuumed = lh.vacuum(ctx, c) })
		}
	}
	return nil, stop, nil
}

// reader repeats REPEATABLE READ transactions of --reader-tx that count
// every OmniQ table once a second, until ctx ends.
func (lh *longHorizon) reader(ctx context.Context, c *pgx.Conn, delay time.Duration, r *phaseResult) {
	if !sleepCtx(ctx, delay) {
		return
	}
	for ctx.Err() == nil {
		tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			if ctx.Err() == nil {
				lh.printf("bench: reader: %v\n", err)
			}
			return
		}
		r.readerTxs.Add(1)
		if lh.o.readerWorkers >= 0 {
			if _, err := tx.Exec(ctx, "SELECT set_config('max_parallel_workers_per_gather', $1, true)", strconv.Itoa(lh.o.readerWorkers)); err != nil {
				if ctx.Err() == nil {
					lh.printf("bench: reader: %v\n", err)
				}
				_ = tx.Rollback(context.Background())
				return
			}
		}
		end := time.Now().Add(lh.o.readerTx)
		for ctx.Err() == nil {
			for _, t := range lh.tables {
				var n int64
				if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{lh.o.schema, t}.Sanitize()).Scan(&n); err != nil {
					if ctx.Err() == nil {
						lh.printf("bench: reader: %v\n", err)
					}
					_ = tx.Rollback(context.Background())
					return
				}
			}
			r.readerScans.Add(1)
			if !time.Now().Add(time.Second).Before(end) || !sleepCtx(ctx, time.Second) {
				break
			}
		}
		_ = tx.Commit(context.Background())
	}
}

// readerWorkersText describes --reader-workers for the readers line.
func readerWorkersText(n int) string {
	if n < 0 {
		return "parallel workers as the server allows"
	}
	return fmt.Sprintf("max_parallel_workers_per_gather %d", n)
}

// vacuum stands in for autovacuum at the start of recovery.
func (lh *longHorizon) vacuum(ctx context.Context, c *pgx.Conn) string {
	quoted := make([]string, len(lh.tables))
	for i, t := range lh.tables {
		quoted[i] = pgx.Identifier{lh.o.schema, t}.Sanitize()
	}
	t0 := time.Now()
	lh.printf("bench: recovery: VACUUM (ANALYZE) of the %d OmniQ tables, standing in for autovacuum\n", len(quoted))
	if _, err := c.Exec(ctx, "VACUUM (ANALYZE) "+strings.Join(quoted, ", ")); err != nil {
		lh.printf("bench: recovery: VACUUM: %v\n", err)
		return fmt.Sprintf("VACUUM failed: %v", err)
	}
	d := time.Since(t0).Round(time.Millisecond)
	lh.printf("bench: recovery: VACUUM (ANALYZE) done in %s\n", d)
	return fmt.Sprintf("VACUUM (ANALYZE) at its start took %s", d)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// connect opens a connection of its own, outside the pool.
func (b *bench) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := b.pool.Config().ConnConfig.Copy()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

// listTables lists the schema's OmniQ tables (partitions under their root),
// tasks first.
func (lh *longHorizon) listTables(ctx context.Context) ([]string, error) {
	rows, err := lh.sampler.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> $2
		ORDER BY c.relname <> 'tasks', c.relname`, lh.o.schema, "schema_version")
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	ts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	if len(ts) == 0 || ts[0] != "tasks" {
		return nil, fmt.Errorf("schema %s has no tasks table", lh.o.schema)
	}
	return ts, nil
}

// openSampler opens the sampler's connection. The sizes it reads open
// every partition: behind a queued exclusive lock (the TRUNCATE of a
// detached partition, itself waiting for the readers that scanned it) they
// would stall the interval lines for as long, so it waits 200ms at most.
func (lh *longHorizon) openSampler(ctx context.Context) error {
	c, err := lh.connect(ctx)
	if err != nil {
		return err
	}
	if _, err := c.Exec(ctx, "SET lock_timeout = '200ms'"); err != nil {
		c.Close(context.Background())
		return fmt.Errorf("sampler: %w", err)
	}
	lh.sampler = c
	return nil
}

// sample reads the counters and the tables' statistics. pids are the
// backends that should be holding the horizon in this phase. When a table's
// lock is not granted in time (openSampler), the sizes are prev's, marked
// stale; without a prev that is an error.
func (lh *longHorizon) sample(ctx context.Context, pids []int64, prev *sample) (*sample, error) {
	s := &sample{offered: lh.offered.Load(), enqueued: lh.enqueued.Load(), lat: lh.w.all.Snapshot()}
	s.cpuTotal, s.cpuSteal, _ = machineCPU()
	// Depth and completions come from the worker's counters, not from
	// count(*) over tasks: under a pinned horizon those counts walk every
	// dead entry of the runnable and running indexes, a cost that grows
	// with the pin and would be the bench's, not the queue's. Tasks never
	// fail here; a completion commits within the completer's flush
	// interval of Work returning.
	started := lh.w.started.Load()
	s.completed = lh.w.finished.Load()
	s.depth = max(s.enqueued-started, 0) // a task can start before its EnqueueMany returns
	var err error
	s.tables, err = lh.tableStats(ctx)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" && prev != nil { // lock_not_available
		s.tables, s.stale, err = prev.tables, true, nil
	}
	if err != nil {
		return nil, err
	}
	for _, t := range s.tables {
		if t.name == "tasks" {
			s.hotDead, s.hotTable, s.hotIndex = t.dead, t.table, t.index
		}
		s.allDead += t.dead
		s.allBytes += t.total
	}
	if err := lh.sampler.QueryRow(ctx, `SELECT coalesce(max(greatest(age(backend_xid), age(backend_xmin))), 0)
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&s.xminAge); err != nil {
		return nil, fmt.Errorf("sample horizon: %w", err)
	}
	if len(pids) > 0 {
		if err := lh.sampler.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_stat_activity
			WHERE pid = ANY($1) AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)`, pids).Scan(&s.held); err != nil {
			return nil, fmt.Errorf("sample holders: %w", err)
		}
	}
	if err := lh.sampler.QueryRow(ctx, `SELECT count(*),
			coalesce((array_agg(format('%s %ss: %s', wait_event, round(extract(epoch FROM now() - query_start)::numeric, 1),
				left(regexp_replace(query, '\s+', ' ', 'g'), 80)) ORDER BY query_start))[1], '')
		FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&s.lockWaits, &s.lockWait); err != nil {
		return nil, fmt.Errorf("sample lock waits: %w", err)
	}
	st := lh.pool.Stat()
	s.poolBusy, s.poolMax, s.poolWaits = st.AcquiredConns(), st.MaxConns(), st.EmptyAcquireCount()
	s.at = time.Now()
	return s, nil
}

// tableStats reads each OmniQ table's dead rows and sizes, partitions summed
// into their root.
func (lh *longHorizon) tableStats(ctx context.Context) ([]tableStat, error) {
	rows, err := lh.sampler.Query(ctx, `SELECT r.relname,
			sum(coalesce(s.n_dead_tup, 0))::bigint, sum(pg_table_size(c.oid))::bigint,
			sum(pg_indexes_size(c.oid))::bigint, sum(pg_total_relation_size(c.oid))::bigint
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_class r ON r.oid = coalesce(pg_partition_root(c.oid), c.oid)
		LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND r.relname <> $2
		GROUP BY r.relname ORDER BY r.relname <> 'tasks', r.relname`, lh.o.schema, "schema_version")
	if err != nil {
		return nil, fmt.Errorf("sample tables: %w", err)
	}
	ts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (tableStat, error) {
		var t tableStat
		err := row.Scan(&t.name, &t.dead, &t.table, &t.index, &t.total)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("sample tables: %w", err)
	}
	return ts, nil
}

// report prints one interval's line and CSV row, and folds it into r.
func (lh *longHorizon) report(r *phaseResult, prev, s *sample) error {
	dt := s.at.Sub(prev.at).Seconds()
	rate := func(a, b int64) float64 { return float64(a-b) / dt }
	d := s.lat.Sub(prev.lat)
	p50, p95, p99 := d.Quantile(0.50), d.Quantile(0.95), d.Quantile(0.99)
	elapsed := s.at.Sub(lh.start)
	var line strings.Builder
	fmt.Fprintf(&line, "[%5ds] %-10s  offered %.0f/s enqueued %.0f/s completed %.0f/s  claim p50 %s p95 %s p99 %s ms  depth %d ",
		int64(elapsed.Seconds()+0.5), r.name, rate(s.offered, prev.offered), rate(s.enqueued, prev.enqueued),
		rate(s.completed, prev.completed), msf(p50), msf(p95), msf(p99), s.depth)
	for i, t := range s.tables {
		if i > 0 {
			line.WriteString(" |")
		}
		if t.name == "tasks" {
			fmt.Fprintf(&line, " tasks dead %d size %s idx %s", t.dead, bytesH(t.table), bytesH(t.index))
		} else {
			fmt.Fprintf(&line, " %s dead %d size %s", t.name, t.dead, bytesH(t.total))
		}
	}
	if s.stale {
		line.WriteString(" (sizes of the previous line: a table's lock was queued)")
	}
	fmt.Fprintf(&line, " | xmin age %d", s.xminAge)
	if s.held {
		line.WriteString(" held")
	}
	steal := stealPercent(prev.cpuTotal, prev.cpuSteal, s.cpuTotal, s.cpuSteal)
	if steal >= 0 {
		fmt.Fprintf(&line, " | cpu steal %.0f%%", steal)
	}
	fmt.Fprintf(&line, " | pool %d/%d busy, %d waits", s.poolBusy, s.poolMax, s.poolWaits-prev.poolWaits)
	if s.lockWaits > 0 {
		fmt.Fprintf(&line, " | lock waits %d, longest %s", s.lockWaits, s.lockWait)
	}
	lh.printf("%s\n", line.String())
	if lh.csv != nil {
		_, err := fmt.Fprintf(lh.csv, "%.1f,%s,%.1f,%.1f,%.1f,%.3f,%.3f,%.3f,%d,%d,%d,%d,%d,%d,%.1f\n",
			elapsed.Seconds(), r.name, rate(s.offered, prev.offered), rate(s.enqueued, prev.enqueued), rate(s.completed, prev.completed),
			msF(p50), msF(p95), msF(p99), s.depth, s.hotDead, s.hotTable, s.hotIndex, s.allDead, s.allBytes, steal)
		if err != nil {
			return fmt.Errorf("csv: %w", err)
		}
	}

	r.last = s
	r.samples++
	if s.held {
		r.heldSamples++
	}
	r.maxDepth = max(r.maxDepth, s.depth)
	r.maxHotDead = max(r.maxHotDead, s.hotDead)
	if r.name == phaseRecovery && !r.recovered && d.Count() > 0 {
		if clean := lh.cleanP95(len(lh.results) - 1); clean > 0 && float64(p95) <= 1.1*float64(clean) {
			r.recovered = true
			r.recoveredAfter = s.at.Sub(r.first.at)
		}
	}
	return nil
}

// cleanP95 is the p95 of the last clean phase before phase number before,
// or 0 if none ran. The last, so that a short clean phase first can serve as
// warm-up: clean:30s,clean:10m,...
func (lh *longHorizon) cleanP95(before int) time.Duration {
	for i := before - 1; i >= 0; i-- {
		if r := lh.results[i]; r.name == phaseClean && r.last != nil {
			return lh.w.byPhase[i].Snapshot().Quantile(0.95)
		}
	}
	return 0
}

// summary prints one line per phase, then the notes on holders and recovery.
func (lh *longHorizon) summary() {
	lh.printf("bench: phase summary (claim = enqueue-to-start latency in ms; bytes at the phase's end; other = every OmniQ table but tasks)\n")
	lh.printf("bench: %-10s %8s %10s %10s %7s %8s %8s %8s %9s %12s %12s %12s\n",
		"phase", "time", "offered", "completed", "compl%", "p50", "p95", "p99", "max_depth", "tasks_dead", "tasks+idx", "other")
	for i, r := range lh.results {
		if r.last == nil {
			continue
		}
		h := lh.w.byPhase[i].Snapshot()
		offered, completed := r.last.offered-r.first.offered, r.last.completed-r.first.completed
		pct := 0.0
		if offered > 0 {
			pct = 100 * float64(completed) / float64(offered)
		}
		hot := r.last.hotTable + r.last.hotIndex
		lh.printf("bench: summary %-10s %8s %10d %10d %6.1f%% %8s %8s %8s %9d %12d %12d %12d\n",
			r.name, r.last.at.Sub(r.first.at).Round(time.Second), offered, completed, pct,
			msf(h.Quantile(0.50)), msf(h.Quantile(0.95)), msf(h.Quantile(0.99)), r.maxDepth, r.maxHotDead, hot, r.last.allBytes-hot)
		lh.printf("bench: summary %-10s tasks %s + indexes %s, other tables %s\n", r.name, bytesH(r.last.hotTable), bytesH(r.last.hotIndex), bytesH(r.last.allBytes-hot))
	}
	for i, r := range lh.results {
		if r.last == nil {
			continue
		}
		switch r.name {
		case phaseIdleInTx, phaseReaders:
			lh.printf("bench: %s: horizon held by %s in %d of %d samples", r.name, r.holder, r.heldSamples, r.samples)
			if r.name == phaseReaders {
				lh.printf(" (%d transactions, %d scans of every table)", r.readerTxs.Load(), r.readerScans.Load())
			}
			lh.printf("\n")
		case phaseRecovery:
			clean := lh.cleanP95(i)
			switch {
			case clean == 0:
				lh.printf("bench: recovery: no clean phase to compare p95 with\n")
			case r.recovered:
				lh.printf("bench: recovery: interval p95 back within 10%% of clean's %s ms after %s\n", msf(clean), r.recoveredAfter.Round(100*time.Millisecond))
			default:
				lh.printf("bench: recovery: interval p95 back within 10%% of clean's %s ms: never\n", msf(clean))
			}
			if r.vacuumed != "" {
				lh.printf("bench: recovery: %s\n", r.vacuumed)
			}
		}
	}
}

func msF(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func msf(d time.Duration) string  { return fmt.Sprintf("%.2f", msF(d)) }

// bytesH formats a size for people: 512B, 12.1kB, 8.0MB, 1.2GB.
func bytesH(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fkB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// autovacuum applies --autovacuum on|off with ALTER SYSTEM and returns the
// function that puts the previous configuration back (a no-op when nothing
// changed). The previous postgresql.auto.conf entry, if any, is restored;
// otherwise the entry is reset.
func (b *bench) autovacuum(ctx context.Context) (restore func() error, err error) {
	noop := func() error { return nil }
	want := b.o.autovacuum
	var cur string
	if err := b.pool.QueryRow(ctx, "SHOW autovacuum").Scan(&cur); err != nil {
		return noop, fmt.Errorf("show autovacuum: %w", err)
	}
	if want == "as-is" || want == cur {
		return noop, nil
	}
	var prev *string
	err = b.pool.QueryRow(ctx, `SELECT setting FROM pg_file_settings
		WHERE name = 'autovacuum' AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1`).Scan(&prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return noop, fmt.Errorf("read postgresql.auto.conf settings: %w", err)
	}
	set := func(ctx context.Context, stmt, value string) error {
		if _, err := b.pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
		if _, err := b.pool.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			return fmt.Errorf("reload configuration: %w", err)
		}
		if value == "" {
			return nil
		}
		// The reload reaches each backend between its commands: poll.
		for deadline := time.Now().Add(10 * time.Second); ; {
			var got string
			if err := b.pool.QueryRow(ctx, "SHOW autovacuum").Scan(&got); err != nil {
				return fmt.Errorf("show autovacuum: %w", err)
			}
			if got == value {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("autovacuum is still %s 10s after %s", got, stmt)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// want is "on" or "off" (parseFlags checked): safe as a literal.
	if err := set(ctx, "ALTER SYSTEM SET autovacuum = "+want, want); err != nil {
		return noop, err
	}
	b.printf("bench: autovacuum set to %s with ALTER SYSTEM (was %s); restored at the end\n", want, cur)
	return func() error {
		rctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		stmt := "ALTER SYSTEM RESET autovacuum"
		if prev != nil {
			stmt = "ALTER SYSTEM SET autovacuum = " + quoteLiteral(*prev)
		}
		if err := set(rctx, stmt, ""); err != nil {
			return fmt.Errorf("restore autovacuum: %w", err)
		}
		b.printf("bench: autovacuum restored (%s)\n", stmt)
		return nil
	}, nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// describePhases prints the long-horizon settings, after --autovacuum applied.
func (b *bench) describePhases(ctx context.Context) error {
	var av, sb string
	if err := b.pool.QueryRow(ctx, "SELECT current_setting('autovacuum'), current_setting('shared_buffers')").Scan(&av, &sb); err != nil {
		return fmt.Errorf("read server settings: %w", err)
	}
	o := b.o
	if !o.vacuumAtRecoverySet {
		o.vacuumAtRecovery = av == "off"
	}
	b.printf("bench: long-horizon phases=%s rate=%d/s workers=%d work_time=%s interval=%s finished_retention=%s results=%s events=%s reader_tx=%s reader_workers=%d\n",
		formatPhases(o.phases), o.rate, o.workers, o.workTime, o.interval, o.finishedRetention, o.results, o.events, o.readerTx, o.readerWorkers)
	b.printf("bench: ran with autovacuum=%s (--autovacuum %s) shared_buffers=%s vacuum_at_recovery=%t csv=%q\n",
		av, o.autovacuum, sb, o.vacuumAtRecovery, o.csvPath)
	return nil
}
