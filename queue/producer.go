package queue

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/omniqhq/omniq/jobs"
)

// producer claims tasks of one queue, up to its free worker slots and a few
// ahead (see claimAhead), in one statement per fetch. It fetches when woken
// (NOTIFY of an insert, a slot freed after a full fetch, a task taken from
// those claimed ahead, a reconnect) and at least every FetchPollInterval,
// never more often than FetchCooldown.
type producer struct {
	e     *Engine
	queue string
	max   int

	// slotMu guards the worker slots and what claiming ahead needs: active
	// (written under it, read without it as a hint), ahead, runTime,
	// aheadOff and claimRT. ahead holds the tasks claimed beyond the free
	// slots, oldest first; it is never non-empty while a slot is free.
	slotMu  sync.Mutex
	active  atomic.Int64
	ahead   []*execution
	runTime time.Duration // a slot's time per task, moving average
	// aheadOff is set when tasks claimed ahead were given back for want of
	// a slot, until a slot frees: the slots' tasks are taking longer than
	// runTime says, and claiming ahead again would give back again.
	aheadOff bool
	claimRT  time.Duration // a claim's round trip, moving average

	// full is set when the last fetch filled every free slot: there may be
	// more, so a freed slot should fetch again.
	full    atomic.Bool
	wakeCh  chan struct{}
	log     *slog.Logger
	levelEv bool // write 'executing' events

	// Claim cursors, used only by run's goroutine: see claimLocked.
	cursors []cursor  // by priority, descending; at most maxCursors
	dbNow   time.Time // the database clock at the last claim (its started_at)

	// rewind holds, per priority, the run_at of a task the sweeper found
	// behind a cursor; the next claim moves the cursor back to it. shared
	// is the sweeper's copy of the cursors, published after each claim.
	rewindMu  sync.Mutex
	rewind    map[int16]time.Time
	rewindAll time.Time // from insert notifications: every cursor, whatever its priority
	shared    []cursor
}

// cursor is the index position (run_at, id) of the last task a producer
// claimed at one priority. Every runnable task of that priority sits after
// it, except one that became runnable with an older run_at: enqueued in a
// transaction that committed late, or given a run_at in the past. The claim
// therefore starts cursorLookback before the cursor's time when that is
// earlier, and a sweeper looks behind each cursor every so often, off the
// claim path, and moves the cursor back to what it finds (sweep).
type cursor struct {
	priority int16
	runAt    time.Time
	id       uuid.UUID
	used     time.Time // when a claim last advanced it
}

const (
	// cursorLookback covers tasks whose transaction committed up to this
	// long after it began and whose insert notification has not been
	// handled yet, or that were made runnable without one carrying their
	// run_at (rescue, Retry, SQL by hand). Under a pinned xmin horizon every
	// claim re-reads the dead entries of this window: it is kept short, and
	// insert notifications (sqlWake) cover transactions of any length.
	cursorLookback = 100 * time.Millisecond
	// The sweep runs at least every sweepMin, and at most as often as
	// keeps its own cost under 2% of the time: when a pinned xmin horizon
	// makes it walk many dead entries, sweeps space out, up to sweepMax. A
	// task that slipped behind a cursor waits at most that.
	sweepMin    = 2 * time.Second
	sweepMax    = 30 * time.Second
	sweepFactor = 50
)

func newProducer(e *Engine, queue string, max int) *producer {
	return &producer{
		e:       e,
		queue:   queue,
		max:     max,
		wakeCh:  make(chan struct{}, 1),
		rewind:  map[int16]time.Time{},
		log:     e.cfg.Logger("producer").With("queue", queue),
		levelEv: e.cfg.EventLevel == EventsAll,
	}
}

func (p *producer) wake() {
	select {
	case p.wakeCh <- struct{}{}:
	default:
	}
}

func (p *producer) run(ctx context.Context) {
	var sweeper sync.WaitGroup
	sweeper.Add(1)
	go func() { defer sweeper.Done(); p.sweepLoop(ctx) }()
	defer sweeper.Wait()
	defer p.returnAhead(0) // a stopping client starts nothing more
	poll := time.NewTicker(p.e.cfg.FetchPollInterval)
	defer poll.Stop()
	hold := time.NewTimer(p.e.aheadHold)
	defer hold.Stop()
	backoff := time.Duration(0)
	var last time.Time // start of the last fetch
	for {
		if next := p.returnAhead(p.e.aheadHold); next > 0 {
			hold.Reset(next)
		} else {
			hold.Stop()
		}
		want := p.want()
		if want > 0 && p.e.completer.backlogFull() {
			want = 0 // woken by the completer's next flush
		}
		if want > 0 {
			last = time.Now()
			n, err := p.fetch(ctx, want)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
				p.log.Error("fetch failed", "error", err, "retry_in", backoff)
				if !sleep(ctx, backoff) {
					return
				}
				continue
			}
			backoff = 0
			p.full.Store(n == want)
			if n == want {
				// More may be waiting: fetch again as soon as slots free up.
				if !sleep(ctx, p.e.cfg.FetchCooldown) {
					return
				}
				if p.want() > 0 {
					continue
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wakeCh:
		case <-poll.C:
		case <-hold.C:
		}
		// FetchCooldown is the shortest gap between fetches, not a delay
		// after every wake-up: a task enqueued on an idle queue starts at
		// once.
		if !sleep(ctx, time.Until(last.Add(p.e.cfg.FetchCooldown))) {
			return
		}
	}
}

// Claiming ahead. With few slots and short tasks, the claim round trip a
// freed slot waits for is most of a task's time: 8 slots of 1ms work
// completed about 1,860 tasks/s, not 8,000. So a producer keeps claimed,
// beyond its free slots, as many tasks as its slots finish during one claim
// round trip (both moving averages), at most one per slot; a slot that frees
// takes the oldest of them and starts it at once. Long tasks get none claimed
// ahead. A task claimed ahead is running in the database (its attempt and
// started_at written by the claim, as for any claimed task) and tracked like
// a running one, so a cancel request or a hard stop reaches it; one that has
// waited aheadHold for a slot, because the slots took longer than they used
// to, is given back with its attempt and place in the queue, and none is
// claimed ahead again until a slot frees; every one left when the client
// stops is given back too.
const aheadHold = 100 * time.Millisecond

// claimAhead is how many tasks to keep claimed beyond the free slots.
func (p *producer) claimAhead() int {
	if p.runTime <= 0 || p.aheadOff {
		return 0
	}
	return min(p.max, int(int64(p.max)*int64(p.claimRT)/int64(p.runTime)))
}

// want is how many tasks the next claim asks for.
func (p *producer) want() int {
	p.slotMu.Lock()
	defer p.slotMu.Unlock()
	return p.max - int(p.active.Load()) + p.claimAhead() - len(p.ahead)
}

// movingAverage folds x into the average avg of earlier samples (weight 1/8).
func movingAverage(avg, x time.Duration) time.Duration {
	if avg == 0 {
		return x
	}
	return avg + (x-avg)/8
}

// fetch claims up to n tasks, starts as many as there are free slots and
// keeps the rest claimed ahead.
func (p *producer) fetch(ctx context.Context, n int) (int, error) {
	t0 := time.Now()
	claimed, err := p.claim(ctx, n)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	p.slotMu.Lock()
	if len(p.ahead)+len(claimed) > p.max-int(p.active.Load()) {
		// Some will wait: a claim returns its rows in no particular order,
		// and those left waiting are to be the last in the queue's order.
		slices.SortFunc(claimed, func(a, b *jobs.TaskRow) int {
			if a.Priority != b.Priority {
				return b.Priority - a.Priority
			}
			return a.RunAt.Compare(b.RunAt)
		})
	}
	p.claimRT = movingAverage(p.claimRT, now.Sub(t0))
	for _, row := range claimed {
		p.ahead = append(p.ahead, p.e.track(row, now))
	}
	starting := p.takeAhead(min(len(p.ahead), p.max-int(p.active.Load())))
	k := len(starting)
	p.active.Add(int64(k))
	p.slotMu.Unlock()
	for _, x := range starting {
		p.e.executing.Add(1)
		go p.e.execute(p, x)
	}
	return len(claimed), nil
}

// next is called by an executor whose task is done, after took on its slot:
// it hands over the oldest task claimed ahead, the slot kept, or frees the
// slot.
func (p *producer) next(took time.Duration) (*execution, bool) {
	p.slotMu.Lock()
	p.runTime = movingAverage(p.runTime, took)
	p.aheadOff = false
	if len(p.ahead) > 0 {
		x := p.ahead[0]
		p.ahead[0] = nil
		p.ahead = p.ahead[1:]
		p.slotMu.Unlock()
		p.wake() // to claim ahead again
		return x, true
	}
	p.active.Add(-1)
	p.slotMu.Unlock()
	if p.full.Load() {
		p.wake()
	}
	return nil, false
}

// takeAhead removes and returns the k oldest tasks claimed ahead, as next
// does one. Under slotMu.
func (p *producer) takeAhead(k int) []*execution {
	taken := slices.Clone(p.ahead[:k])
	// The slice moves past them rather than copying the rest down (up to a
	// slot's worth, for every task): append reallocates as its capacity runs
	// out at the front.
	clear(p.ahead[:k])
	p.ahead = p.ahead[k:]
	return taken
}

// returnAhead gives back the tasks claimed ahead that have waited hold or
// longer for a slot, every one when hold is 0, and says how long until the
// oldest of those left has waited hold (0: none left, or hold is 0).
func (p *producer) returnAhead(hold time.Duration) time.Duration {
	now := time.Now()
	p.slotMu.Lock()
	k := 0
	for k < len(p.ahead) && (hold == 0 || now.Sub(p.ahead[k].claimed) >= hold) {
		k++
	}
	back := p.takeAhead(k)
	if k > 0 && hold > 0 {
		p.aheadOff = true
	}
	var next time.Duration
	if hold > 0 && len(p.ahead) > 0 {
		next = p.ahead[0].claimed.Add(hold).Sub(now)
	}
	p.slotMu.Unlock()
	if len(back) > 0 {
		p.log.Debug("giving back tasks claimed ahead that found no free slot", "count", len(back))
	}
	for _, x := range back {
		p.e.untrack(x, p.e.unstarted(x))
	}
	return next
}

// claim moves up to n tasks to running and advances the cursors past them.
func (p *producer) claim(ctx context.Context, n int) ([]*jobs.TaskRow, error) {
	p.applyRewind()
	br := p.e.pool.SendBatch(ctx, p.claimBatch(n))
	claimed, err := func() ([]*jobs.TaskRow, error) {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
		rows, err := br.Query()
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, scanTask)
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	p.advance(claimed)
	p.rewindMu.Lock()
	p.shared = append(p.shared[:0], p.cursors...)
	p.rewindMu.Unlock()
	return claimed, nil
}

// notified records the earliest run_at of tasks an insert notification
// announced: the next claim starts every cursor no later than it.
func (p *producer) notified(runAt time.Time) {
	p.rewindMu.Lock()
	defer p.rewindMu.Unlock()
	if p.rewindAll.IsZero() || runAt.Before(p.rewindAll) {
		p.rewindAll = runAt
	}
}

// applyRewind moves cursors back to tasks the sweeper found behind them and
// to the run_at insert notifications announced.
func (p *producer) applyRewind() {
	p.rewindMu.Lock()
	defer p.rewindMu.Unlock()
	for i := range p.cursors {
		c := &p.cursors[i]
		runAt, ok := p.rewind[c.priority]
		if !p.rewindAll.IsZero() && (!ok || p.rewindAll.Before(runAt)) {
			runAt, ok = p.rewindAll, true
		}
		if ok && !runAt.After(c.runAt) {
			// (run_at, id) > (runAt, Nil) includes the task found.
			c.runAt, c.id = runAt, uuid.Nil
		}
	}
	clear(p.rewind)
	p.rewindAll = time.Time{}
}

// sweepLoop runs sweep until ctx ends, spaced by its own cost.
func (p *producer) sweepLoop(ctx context.Context) {
	for {
		start := time.Now()
		if err := p.sweep(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("looking behind the claim cursors failed", "error", err)
		}
		if !sleep(ctx, min(max(sweepFactor*time.Since(start), sweepMin), sweepMax)) {
			return
		}
	}
}

// sweep looks for a runnable task behind each claim cursor. The search walks
// every entry before the cursor, dead ones too, so it runs here, on its own
// connection and without locks, never in a claim.
func (p *producer) sweep(ctx context.Context) error {
	p.rewindMu.Lock()
	cursors := slices.Clone(p.shared)
	p.rewindMu.Unlock()
	for _, c := range cursors {
		var runAt time.Time
		err := p.e.pool.QueryRow(ctx, p.e.sql.behindCursor, p.queue, c.priority, c.runAt, c.id).Scan(&runAt)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return err
		}
		p.rewindMu.Lock()
		if r, ok := p.rewind[c.priority]; !ok || runAt.Before(r) {
			p.rewind[c.priority] = runAt
		}
		p.rewindMu.Unlock()
		p.wake()
	}
	return nil
}

// claimBatch is a claim of up to n tasks: its settings, then the claim,
// one implicit transaction.
func (p *producer) claimBatch(n int) *pgx.Batch {
	sql, args := p.claimStatement(n)
	b := &pgx.Batch{}
	b.Queue(sqlClaimSettings)
	b.Queue(sql, args...)
	return b
}

// claimStatement is the claim of up to n tasks from the current cursors.
func (p *producer) claimStatement(n int) (string, []any) {
	args := make([]any, 0, 3+3*len(p.cursors))
	args = append(args, p.queue, n, p.e.cfg.ID)
	floor := p.dbNow.Add(-cursorLookback)
	for _, c := range p.cursors {
		if c.runAt.Before(floor) {
			args = append(args, c.priority, c.runAt, c.id)
		} else {
			args = append(args, c.priority, floor, uuid.Nil)
		}
	}
	if p.levelEv {
		return p.e.sql.claimEvents[len(p.cursors)], args
	}
	return p.e.sql.claim[len(p.cursors)], args
}

// advance moves the cursors past the tasks just claimed.
func (p *producer) advance(claimed []*jobs.TaskRow) {
	for _, t := range claimed {
		if t.StartedAt != nil && t.StartedAt.After(p.dbNow) {
			p.dbNow = *t.StartedAt
		}
		prio := int16(t.Priority)
		i := 0
		for i < len(p.cursors) && p.cursors[i].priority > prio {
			i++
		}
		if i < len(p.cursors) && p.cursors[i].priority == prio {
			c := &p.cursors[i]
			if t.RunAt.After(c.runAt) || (t.RunAt.Equal(c.runAt) && bytes.Compare(t.ID[:], c.id[:]) > 0) {
				c.runAt, c.id = t.RunAt, t.ID
			}
			c.used = p.dbNow
			continue
		}
		p.cursors = slices.Insert(p.cursors, i, cursor{priority: prio, runAt: t.RunAt, id: t.ID, used: p.dbNow})
		if len(p.cursors) > maxCursors {
			// Forget the least recently used: its range is scanned whole.
			lru := 0
			for j := range p.cursors {
				if p.cursors[j].used.Before(p.cursors[lru].used) {
					lru = j
				}
			}
			p.cursors = slices.Delete(p.cursors, lru, lru+1)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
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

// scanTask reads one row of taskColumns.
func scanTask(row pgx.CollectableRow) (*jobs.TaskRow, error) {
	var (
		t         jobs.TaskRow
		status    string
		backoff   string
		prio      int16
		attempt   int32
		maxAtt    int32
		callback  []byte
		errorsRaw []byte
		metadata  []byte
		sched     pgtype.UUID
	)
	err := row.Scan(&t.ID, &t.Kind, &t.Queue, &t.EncodedArgs, &t.Codec, &t.Name, &t.Description, &t.Tags, &prio,
		&status, &t.RunAt, &t.CreatedAt, &t.StartedAt, &t.CompletedAt, &attempt, &maxAtt, &t.RetryDelay, &backoff,
		&t.ExpiresAt, &t.Timeout, &t.DependsOn, &t.RunAnyway, &callback, &t.ResultTTL,
		&t.StoreResult, &sched, &t.ScheduledAt, &t.WorkerID, &t.HeartbeatAt, &errorsRaw, &metadata, &t.Partition)
	if err != nil {
		return nil, err
	}
	t.Priority, t.Status, t.RetryBackoff = int(prio), jobs.Status(status), jobs.Backoff(backoff)
	t.Attempt, t.MaxAttempts = int(attempt), int(maxAtt)
	if sched.Valid {
		id := uuid.UUID(sched.Bytes)
		t.ScheduleID = &id
	}
	if len(callback) > 0 {
		t.Callback = new(jobs.Callback)
		if err := jsonUnmarshal(callback, t.Callback); err != nil {
			return nil, err
		}
	}
	if len(errorsRaw) > 0 {
		if err := jsonUnmarshal(errorsRaw, &t.Errors); err != nil {
			return nil, err
		}
	}
	if len(metadata) > 2 {
		if err := jsonUnmarshal(metadata, &t.Metadata); err != nil {
			return nil, err
		}
	}
	return &t, nil
}
