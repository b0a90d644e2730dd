package periodic

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq/queue"
)

// retryBrokenAfter is how long a schedule whose stored definition cannot be
// read (edited by hand into nonsense) waits before it is tried again.
const retryBrokenAfter = time.Minute

// FireDue fires every due schedule it can lock, BatchSize per transaction,
// and returns how many tasks it enqueued and how many schedules it handled.
// Each transaction locks its schedules FOR UPDATE SKIP LOCKED, inserts their
// tasks (with schedule_id and scheduled_at) and advances them, and writes
// their events: a tick's task exists if and only if the schedule moved past
// the tick. A schedule another client is firing is skipped, not waited for.
func (s *Service) FireDue(ctx context.Context) (tasks, handled int, err error) {
	for {
		n, claimed, err := s.fireBatch(ctx)
		tasks += n
		handled += claimed
		if err != nil || claimed < s.cfg.BatchSize {
			return tasks, handled, err
		}
	}
}

type dueSchedule struct {
	sc   *Schedule
	now  time.Time
	busy bool
}

type fired struct {
	sc    *Schedule
	first int // index of its first task in the insert batch
	plan  plan
}

func (s *Service) fireBatch(ctx context.Context) (tasks, claimed int, err error) {
	tx, err := s.cfg.Pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("fire schedules: %w", err)
	}
	defer func() {
		if err != nil {
			// The claim locks die with the transaction; another client (or
			// this one, next time) fires the same ticks.
			rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = tx.Rollback(rbCtx)
			cancel()
		}
	}()
	rows, err := tx.Query(ctx, s.sql.claim, s.clock(), s.cfg.BatchSize)
	if err != nil {
		return 0, 0, fmt.Errorf("claim due schedules: %w", err)
	}
	var due []dueSchedule
	for rows.Next() {
		var d dueSchedule
		if d.sc, err = scanScheduleRow(rows, &d.now, &d.busy); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("claim due schedules: %w", err)
		}
		due = append(due, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("claim due schedules: %w", err)
	}
	if len(due) == 0 {
		return 0, 0, tx.Rollback(ctx)
	}

	var (
		params []*queue.InsertParams
		plans  []fired
		batch  pgx.Batch
	)
	for _, d := range due {
		sc := d.sc
		p, perr := s.planFire(d)
		if perr == nil && len(p.fire) > 0 {
			var ps []*queue.InsertParams
			if ps, perr = s.prepareTicks(sc, p.fire); perr == nil {
				plans = append(plans, fired{sc: sc, first: len(params), plan: p})
				params = append(params, ps...)
				continue
			}
		}
		if perr != nil {
			// Its ticks are not fired; say why where an operator looks, and
			// move on so the schedule does not block the loop.
			s.log.Error("schedule not fired", "schedule", sc.Name, "error", perr)
			s.queueEvent(&batch, EventSkipped, nil, sc, perr.Error(), map[string]any{"reason": "error", "scheduled_at": sc.NextRunAt}, "error")
			if p.next.IsZero() {
				p.next = d.now.Add(retryBrokenAfter) // a one-shot keeps its only tick
			}
			p.fire, p.expire = nil, false
		} else if d.busy {
			s.queueEvent(&batch, EventSkipped, nil, sc, "previous task still unfinished (no overlap)",
				map[string]any{"reason": "overlap", "ticks": p.missed, "next_run_at": p.next}, "warning")
		}
		plans = append(plans, fired{sc: sc, first: len(params), plan: p})
	}
	results, err := s.cfg.Engine.Insert(ctx, tx, params)
	if err != nil {
		return 0, 0, fmt.Errorf("enqueue scheduled tasks: %w", err)
	}
	for _, f := range plans {
		sc, p := f.sc, f.plan
		var next *time.Time
		if !p.next.IsZero() {
			next = &p.next
		}
		now := due[0].now
		batch.Queue(s.sql.advance, sc.ID, next, len(p.fire), now, p.expire)
		for i, tick := range p.fire {
			r := results[f.first+i]
			data := map[string]any{"scheduled_at": tick}
			if i == len(p.fire)-1 && p.missed > 0 {
				data["missed"] = p.missed
			}
			if r.Duplicate {
				data["duplicate"] = true // the template is unique and its task already existed
			}
			id := r.ID
			s.queueEvent(&batch, EventFired, &id, sc, sc.Name, data, "info")
		}
		if p.expire {
			s.queueEvent(&batch, EventExpired, nil, sc, sc.Name, map[string]any{"run_count": sc.RunCount + len(p.fire)}, "info")
		}
	}
	if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
		return 0, 0, fmt.Errorf("advance schedules: %w", err)
	}
	if s.afterInsert != nil {
		s.afterInsert(ctx, tx)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("commit fired schedules: %w", err)
	}
	return len(params), len(due), nil
}

func (s *Service) planFire(d dueSchedule) (plan, error) {
	sc := d.sc
	tm, err := sc.timing()
	if err != nil {
		return plan{}, err
	}
	return tm.planDue(*sc.NextRunAt, d.now, sc.Backfill, sc.MaxRuns, sc.RunCount, d.busy), nil
}

// prepareTicks makes one task per tick from sc's template.
func (s *Service) prepareTicks(sc *Schedule, ticks []time.Time) ([]*queue.InsertParams, error) {
	opts, err := sc.InsertOpts()
	if err != nil {
		return nil, err
	}
	data, err := s.cfg.Codec.FromJSONB(sc.Codec, sc.Args)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: decode stored args: %w", sc.Name, err)
	}
	out := make([]*queue.InsertParams, len(ticks))
	for i, tick := range ticks {
		p, err := s.cfg.Prepare(sc.Kind, sc.Codec, data, opts)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %w", sc.Name, err)
		}
		id, t := sc.ID, tick
		p.ScheduleID, p.ScheduledAt = &id, &t
		out[i] = p
	}
	return out, nil
}

// eventArgs returns the arguments of sqlEvent, or false when the event level
// leaves this event out.
func (s *Service) eventArgs(typ string, taskID *uuid.UUID, sc *Schedule, msg string, data map[string]any, level string) ([]any, bool) {
	switch s.cfg.EventLevel {
	case queue.EventsNone:
		return nil, false
	case queue.EventsFailures:
		if level == "info" {
			return nil, false
		}
	}
	if data == nil {
		data = map[string]any{}
	}
	b, err := json.Marshal(data)
	if err != nil {
		b = []byte(`{}`)
	}
	var m *string
	if msg != "" {
		m = &msg
	}
	return []any{typ, taskID, sc.Kind, sc.Queue, sc.ID, m, string(b), level}, true
}

func (s *Service) queueEvent(b *pgx.Batch, typ string, taskID *uuid.UUID, sc *Schedule, msg string, data map[string]any, level string) {
	if args, ok := s.eventArgs(typ, taskID, sc, msg, data, level); ok {
		b.Queue(s.sql.event, args...)
	}
}

// Start runs the scheduler loop until Stop. It needs the engine's notifier
// running (the engine started).
func (s *Service) Start() {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	n := s.cfg.Engine.Notifier()
	s.unlist = n.Listen(s.channel, func(string) { s.poke() })
	n.OnReconnect(s.poke) // notifications may have been lost: look again
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
}

// Stop ends the loop, waiting for a fire in progress to commit or roll back.
func (s *Service) Stop() {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.unlist()
	s.cancel = nil
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// minContendedWait is the first wait after a due schedule could not be
// locked (another client is firing it); it doubles up to MaxSleep.
const minContendedWait = 20 * time.Millisecond

// run is the scheduler loop. Idle, it costs one index read per wake-up: it
// sleeps until the earliest next_run_at (by the database clock), at most
// MaxSleep, or until a schedule change is NOTIFYed.
func (s *Service) run(ctx context.Context) {
	contended := time.Duration(0)
	for {
		wait := s.step(ctx, &contended)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

func (s *Service) step(ctx context.Context, contended *time.Duration) time.Duration {
	var secs *float64
	if err := s.cfg.Pool.QueryRow(ctx, s.sql.nextDue, s.clock()).Scan(&secs); err != nil {
		if ctx.Err() == nil {
			s.log.Error("read next schedule", "error", err)
		}
		return min(time.Second, s.cfg.MaxSleep)
	}
	switch {
	case secs == nil:
		return s.cfg.MaxSleep
	case *secs > 0:
		return max(min(time.Duration(*secs*float64(time.Second)), s.cfg.MaxSleep), time.Millisecond)
	}
	tasks, handled, err := s.FireDue(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("fire schedules", "error", err)
		}
		return min(time.Second, s.cfg.MaxSleep)
	}
	if handled == 0 {
		// Due, but locked by another client's fire: it will move
		// next_run_at; look again shortly.
		*contended = min(max(2**contended, minContendedWait), s.cfg.MaxSleep)
		return *contended
	}
	*contended = 0
	if tasks > 0 {
		s.log.Debug("fired schedules", "tasks", tasks, "schedules", handled)
	}
	return 0
}
