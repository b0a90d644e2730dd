package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq/jobs"
)

// maintenanceBatch bounds the rows one maintenance statement touches.
const maintenanceBatch = 1000

// maintain runs the client's heartbeat and the leaderless maintenance: rescue
// of tasks whose client died, expiry, cancel requests this client missed, and
// retention. Every statement guards its rows with FOR UPDATE SKIP LOCKED, so
// any number of clients may run it at once without doing the work twice.
func (e *Engine) maintain(ctx context.Context) {
	log := e.cfg.Logger("maintenance")
	tick := time.NewTicker(e.cfg.MaintenanceInterval)
	defer tick.Stop()
	heartbeat := time.NewTicker(e.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	var retirer sync.WaitGroup
	retirer.Go(func() { e.retireLoop(ctx) })
	defer retirer.Wait()
	lastPrune, lastOrphans := time.Time{}, time.Time{}
	suspects := map[uuid.UUID]bool{} // possible orphans seen by the last pass
	for {
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			if err := e.heartbeat(ctx); err != nil && ctx.Err() == nil {
				log.Error("heartbeat failed", "error", err)
			}
		case <-tick.C:
			if err := e.maintainOnce(ctx); err != nil && ctx.Err() == nil {
				log.Error("maintenance failed", "error", err)
			}
			// The orphan search reads every entry of this client in
			// tasks_running_idx, dead ones too: it runs twice per
			// RescueAfter, enough for its two-pass rule, not every tick.
			if time.Since(lastOrphans) >= e.cfg.RescueAfter/2 {
				lastOrphans = time.Now()
				if err := e.reclaimOrphans(ctx, suspects); err != nil && ctx.Err() == nil {
					log.Error("reclaiming orphaned tasks failed", "error", err)
				}
			}
			if time.Since(lastPrune) >= 10*e.cfg.MaintenanceInterval {
				lastPrune = time.Now()
				if _, err := e.Prune(ctx); err != nil && ctx.Err() == nil {
					log.Error("retention failed", "error", err)
				}
				if _, err := e.Rotate(ctx); err != nil && ctx.Err() == nil {
					log.Error("rotating tasks' partitions failed", "error", err)
				}
			}
		}
	}
}

func (e *Engine) maintainOnce(ctx context.Context) error {
	if _, err := e.Rescue(ctx); err != nil {
		return err
	}
	if _, err := e.ExpireDue(ctx); err != nil {
		return err
	}
	return e.pollCancels(ctx)
}

// Rescue moves running tasks whose client stopped heartbeating back to retry
// (or error, out of attempts; cancelled, when a cancel request waits on
// them), and follows up those that ended as a completion would: their
// dependents and callbacks. It returns how many it moved. Tasks of a
// client whose clients row went stale are found at once; tasks whose client
// has no row at all, by a search of every running task that runs at most
// once per RescueAfter.
func (e *Engine) Rescue(ctx context.Context) (int, error) {
	stmt := e.sql.rescueStale
	e.maint.Lock()
	if time.Since(e.maint.lastFullRescue) >= e.cfg.RescueAfter {
		e.maint.lastFullRescue = time.Now()
		stmt = e.sql.rescueAll
	}
	e.maint.Unlock()
	rows, err := e.pool.Query(ctx, stmt, e.cfg.RescueAfter, maintenanceBatch, e.cfg.EventLevel)
	if err != nil {
		return 0, fmt.Errorf("rescue: %w", err)
	}
	n, err := e.settle(ctx, rows)
	if n > 0 {
		e.log.Warn("rescued tasks of clients that stopped heartbeating", "count", n)
	}
	if err != nil {
		return n, fmt.Errorf("rescue: %w", err)
	}
	return n, nil
}

// settle follows up the (id, queue, status) rows of running tasks taken from
// their runner, rescued or returned: it wakes the queues of those to run
// again, and runs afterTerminal for those that ended (out of attempts, or
// cancelled by a request their runner never acted on). It returns how many
// rows there were.
func (e *Engine) settle(ctx context.Context, rows pgx.Rows) (int, error) {
	var queues []string
	var ended []uuid.UUID
	n := 0
	for rows.Next() {
		var id uuid.UUID
		var q, status string
		if err := rows.Scan(&id, &q, &status); err != nil {
			rows.Close()
			return n, err
		}
		n++
		if status == string(jobs.StatusRetry) {
			queues = append(queues, q)
		} else {
			ended = append(ended, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return n, err
	}
	if len(queues) > 0 {
		if _, err := e.pool.Exec(ctx, e.sql.wake, e.insertChannel, queues, nil); err != nil {
			return n, fmt.Errorf("notify: %w", err)
		}
	}
	if len(ended) > 0 {
		if err := e.afterTerminal(ctx, ended); err != nil {
			return n, err
		}
	}
	return n, nil
}

// reclaimOrphans returns to the queue the tasks the database says this client
// runs but it does not: a claim that committed just as its connection was lost
// (terminated, a network cut) returns rows nobody reads, and under this
// client's live heartbeat the rescuer would leave them running forever. A task
// is returned only when two passes in a row find it unknown (suspects carries
// the first pass's finds), so one finishing during a pass is never mistaken
// for an orphan; tasks claimed within RescueAfter are not looked at.
func (e *Engine) reclaimOrphans(ctx context.Context, suspects map[uuid.UUID]bool) error {
	rows, err := e.pool.Query(ctx, `SELECT id FROM `+table(e.sql.schema, "tasks")+
		` WHERE status = 'running' AND worker_id = $1 AND started_at < now() - $2::interval`, e.cfg.ID, e.cfg.RescueAfter)
	if err != nil {
		return fmt.Errorf("find orphaned tasks: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("find orphaned tasks: %w", err)
	}
	var unknown []uuid.UUID
	for _, id := range ids {
		if _, ok := e.running.Load(id); !ok {
			unknown = append(unknown, id)
		}
	}
	held := e.completer.holding(unknown)
	var orphans []uuid.UUID
	next := map[uuid.UUID]bool{}
	for _, id := range unknown {
		switch {
		case held[id]:
		case suspects[id]:
			orphans = append(orphans, id)
		default:
			next[id] = true
		}
	}
	clear(suspects)
	for id := range next {
		suspects[id] = true
	}
	if len(orphans) == 0 {
		return nil
	}
	e.log.Warn("returning tasks claimed by this client that it is not running (a claim whose reply was lost)", "count", len(orphans))
	return e.returnTasks(ctx, orphans)
}

// ExpireDue ends tasks whose TTL passed before they started, and cancels
// their dependents.
func (e *Engine) ExpireDue(ctx context.Context) (int, error) {
	rows, err := e.pool.Query(ctx, e.sql.expire, maintenanceBatch, e.cfg.EventLevel)
	if err != nil {
		return 0, fmt.Errorf("expire: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, fmt.Errorf("expire: %w", err)
	}
	if len(ids) > 0 {
		if err := e.afterTerminal(ctx, ids); err != nil {
			return len(ids), fmt.Errorf("expire: %w", err)
		}
	}
	return len(ids), nil
}

// afterTerminal runs what follows tasks that ended outside a completion
// batch: their dependents are cancelled or released, callbacks fire.
func (e *Engine) afterTerminal(ctx context.Context, ids []uuid.UUID) error {
	cb := make([]uuid.UUID, len(ids))
	for i, id := range ids {
		cb[i] = callbackID(id)
	}
	b := &pgx.Batch{}
	b.Queue(e.sql.depsLock, e.sql.schema)
	b.Queue(e.sql.cancelDeps, ids, e.cfg.EventLevel)
	b.Queue(e.sql.releaseDeps, ids, e.insertChannel)
	b.Queue(e.sql.fireCallbacks, ids, cb, e.insertChannel)
	b.Queue(e.sql.notify, e.completeChannel, []string{completePayload(ids)})
	return e.pool.SendBatch(ctx, b).Close()
}

// pollCancels catches cancel requests whose NOTIFY this client missed.
func (e *Engine) pollCancels(ctx context.Context) error {
	rows, err := e.pool.Query(ctx, `SELECT id FROM `+table(e.sql.schema, "tasks")+
		` WHERE status = 'running' AND worker_id = $1 AND cancel_requested_at IS NOT NULL`, e.cfg.ID)
	if err != nil {
		return fmt.Errorf("poll cancel requests: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("poll cancel requests: %w", err)
	}
	for _, id := range ids {
		e.cancelRunning(id)
	}
	return nil
}

// PruneCounts reports what retention deleted.
type PruneCounts struct {
	Expired                int // tasks moved to expired (CleanupExpired only)
	Tasks, Results, Events int // rows deleted
}

// Prune deletes finished tasks, results and events past their retention, in
// bounded batches, until nothing is left to delete.
func (e *Engine) Prune(ctx context.Context) (PruneCounts, error) {
	var c PruneCounts
	e.maint.Lock()
	defer e.maint.Unlock()
	m := &e.maint
	if time.Since(m.pruneSince) >= pruneBoundReset {
		m.pruneSince = time.Now()
		m.pruneTaskFrom, m.pruneResultFrom, m.pruneEventFrom = time.Time{}, time.Time{}, 0
	}
	for {
		var n int
		var last time.Time
		if err := e.pool.QueryRow(ctx, e.sql.pruneTasks, e.cfg.FinishedRetention, maintenanceBatch,
			m.pruneTaskFrom).Scan(&n, &last); err != nil {
			return c, fmt.Errorf("prune tasks: %w", err)
		}
		c.Tasks += n
		m.pruneTaskFrom = later(m.pruneTaskFrom, last.Add(-pruneSlack))
		if n < maintenanceBatch {
			break
		}
	}
	for {
		var n int
		var last time.Time
		if err := e.pool.QueryRow(ctx, e.sql.pruneResults, maintenanceBatch, m.pruneResultFrom).Scan(&n, &last); err != nil {
			return c, fmt.Errorf("prune results: %w", err)
		}
		c.Results += n
		m.pruneResultFrom = later(m.pruneResultFrom, last.Add(-pruneSlack))
		if n < maintenanceBatch {
			break
		}
	}
	for {
		var n int
		var last int64
		if err := e.pool.QueryRow(ctx, e.sql.pruneEvents, e.cfg.EventRetention, maintenanceBatch,
			m.pruneEventFrom).Scan(&n, &last); err != nil {
			return c, fmt.Errorf("prune events: %w", err)
		}
		c.Events += n
		m.pruneEventFrom = max(m.pruneEventFrom, last)
		if n < maintenanceBatch {
			break
		}
	}
	if _, err := e.pool.Exec(ctx, `DELETE FROM `+table(e.sql.schema, "clients")+` WHERE heartbeat_at < now() - interval '1 day'`); err != nil {
		return c, fmt.Errorf("prune clients: %w", err)
	}
	return c, nil
}

// pruneBoundReset is how often retention starts again from the oldest row,
// to delete rows that committed below a bound after it passed them.
const pruneBoundReset = time.Hour

// pruneSlack is how far below the newest completed_at (or expires_at) it
// deleted a retention pass starts the next. Those times are taken before
// the row commits, by a client's clock or the transaction's start: a
// completion that commits within this much of a newer one is still found.
const pruneSlack = 10 * time.Second

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// control is a message on the control channel.
type control struct {
	Action string    `json:"action"` // "cancel"
	ID     uuid.UUID `json:"id"`
}

func (e *Engine) onControlNotify(payload string) {
	var m control
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		e.log.Warn("ignoring malformed control message", "payload", payload, "error", err)
		return
	}
	if m.Action == "cancel" {
		e.cancelRunning(m.ID)
	}
}

func (e *Engine) cancelRunning(id uuid.UUID) {
	if x, ok := e.running.Load(id); ok {
		x.(*execution).cancel(ErrCancelRequested)
	}
}
