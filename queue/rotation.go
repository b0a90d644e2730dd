package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// rotatingPartitions is how many partitions plain tasks rotate through
// (tasks_g1 and tasks_g2, migration 007). While one is current, the other
// waits out FinishedRetention and is truncated; it is current again when
// that is done and the current one's time is up. Each partition costs every
// statement on tasks planning time and a lock per index, so there are no
// more than that.
const rotatingPartitions = 2

// partitionTables are the partitioned tables whose rotating partitions go
// together: tasks_gN holds tasks and results_gN their results (migration
// 011), truncated, detached and attached as one.
var partitionTables = [...]string{"tasks", "results"}

// partitionTable is the quoted name of parent's partition gen.
func partitionTable(schema, parent string, gen int16) string {
	return table(schema, fmt.Sprintf("%s_g%d", parent, gen))
}

// rotateEvery is how long a rotating partition takes new tasks, at the least:
// FinishedRetention (at least a second), after which the other one is
// usually empty. It is also how far ahead a task may be due and still go to
// a rotating partition (InsertParams.rotates).
func (e *Engine) rotateEvery() time.Duration {
	return max(e.cfg.FinishedRetention, time.Second)
}

// partitionLockTimeout bounds how long Rotate waits for a partition's
// exclusive lock. Claims and inserts queue behind the waiting lock, so it is
// short; a partition not locked in time is tried again on the next pass.
const partitionLockTimeout = "20ms"

// Rotate retires tasks' rotating partitions: a partition that stopped taking
// new tasks more than FinishedRetention ago, and holds nothing but tasks that
// finished longer ago than that, is truncated, its dead row versions with it.
// TRUNCATE needs no xmin horizon, so this works while a long transaction
// holds vacuum back. Then, once the current partition has taken new tasks for
// rotateEvery, the next empty one takes its place.
//
// The partition's results (results_gN) are truncated with its tasks, but for
// those whose expiry of their own is still ahead, which move to results_g0
// first. Rotate does nothing while another client rotates; it returns how
// many partitions it truncated.
//
// A drained partition whose exclusive lock is not granted in time (a
// transaction that read tasks still holds its share lock, and long readers
// may overlap so that one always does) is handed to Retire, which detaches it
// instead; so is a partition an interrupted Retire left detached.
func (e *Engine) Rotate(ctx context.Context) (int, error) {
	n, detach, err := e.rotate(ctx)
	if detach != 0 {
		select {
		case e.retireReq <- detach:
		default: // one is already asked for
		}
	}
	return n, err
}

// rotate is Rotate's transaction; detach is a partition for Retire, or 0.
func (e *Engine) rotate(ctx context.Context) (n int, detach int16, err error) {
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("rotate tasks: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	var free bool
	if err := tx.QueryRow(ctx, e.sql.retireTry, e.sql.schema).Scan(&free); err != nil {
		return 0, 0, fmt.Errorf("rotate tasks: %w", err)
	}
	if !free {
		return 0, 0, nil // a Retire is detaching a partition: it alone touches them
	}
	for gen := int16(1); gen <= rotatingPartitions; gen++ {
		states, err := e.partitionStates(ctx, tx, gen)
		if err != nil {
			return 0, 0, err
		}
		if !allAttached(states) {
			return 0, gen, nil
		}
	}
	type slot struct {
		gen                   int16
		current, due, retired bool
		empty                 bool
	}
	rows, err := tx.Query(ctx, e.sql.rotationSlots, e.rotateEvery(), e.cfg.FinishedRetention)
	if err != nil {
		return 0, 0, fmt.Errorf("rotate tasks: %w", err)
	}
	slots, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (slot, error) {
		var s slot
		err := row.Scan(&s.gen, &s.current, &s.due, &s.retired, &s.empty)
		return s, err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("rotate tasks: %w", err)
	}
	if len(slots) != rotatingPartitions {
		// Another client holds some rows (it is rotating), or rows are
		// missing (tasks_rotation emptied by hand, when new tasks go to the
		// sticky partition): put those back; a later pass rotates.
		if _, err := tx.Exec(ctx, e.sql.rotationRestore, rotatingPartitions); err != nil {
			return 0, 0, fmt.Errorf("rotate tasks: %w", err)
		}
		return 0, 0, wrapCommit(ctx, tx)
	}
	truncated := 0
	for i := range slots {
		s := &slots[i]
		if !s.retired {
			continue
		}
		// A check without the lock first: a partition still in use costs no
		// one a wait.
		if ok, err := e.partitionDrained(ctx, tx, s.gen); err != nil || !ok {
			if err != nil {
				return 0, 0, err
			}
			continue
		}
		ok, locked, err := e.truncatePartition(ctx, tx, s.gen, truncated == 0)
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			if !locked {
				detach = s.gen
			}
			return 0, detach, nil
		}
		s.empty = true
		truncated++
	}
	if !slices.ContainsFunc(slots, func(s slot) bool { return s.current }) {
		// None is current (rows put back, or changed by hand): the first is.
		if _, err := tx.Exec(ctx, e.sql.rotationStart, slots[0].gen); err != nil {
			return 0, 0, fmt.Errorf("rotate tasks: %w", err)
		}
	}
	for i, s := range slots {
		if !s.current || !s.due {
			continue
		}
		for k := 1; k < rotatingPartitions; k++ {
			next := slots[(i+k)%rotatingPartitions]
			if !next.empty {
				continue
			}
			if _, err := tx.Exec(ctx, e.sql.rotationEnd, s.gen); err != nil {
				return 0, 0, fmt.Errorf("rotate tasks: %w", err)
			}
			if _, err := tx.Exec(ctx, e.sql.rotationStart, next.gen); err != nil {
				return 0, 0, fmt.Errorf("rotate tasks: %w", err)
			}
			break
		}
	}
	return truncated, 0, wrapCommit(ctx, tx)
}

func wrapCommit(ctx context.Context, tx pgx.Tx) error {
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("rotate tasks: %w", err)
	}
	return nil
}

// partitionDrained reports whether rotating partition gen holds nothing but
// tasks finished more than FinishedRetention ago.
func (e *Engine) partitionDrained(ctx context.Context, tx pgx.Tx, gen int16) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, e.sql.partitionDrained[gen-1], e.cfg.FinishedRetention).Scan(&ok)
	return ok, wrapRotate(gen, err)
}

// truncatePartition truncates rotating partition gen in tx, found drained,
// with its results. It checks again under the exclusive locks, which no
// insert, claim or update of the partition holds: nothing changes between
// that check and the TRUNCATE. It reports false, with tx to be rolled back,
// when the partition is in use after all (locked true) or its locks were not
// granted within partitionLockTimeout (locked false).
func (e *Engine) truncatePartition(ctx context.Context, tx pgx.Tx, gen int16, first bool) (ok, locked bool, err error) {
	i := gen - 1
	if first {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+partitionLockTimeout+"'"); err != nil {
			return false, false, wrapRotate(gen, err)
		}
	}
	if _, err := tx.Exec(ctx, e.sql.partitionLock[i]); err != nil {
		if lockNotAvailable(err) {
			return false, false, nil
		}
		return false, false, wrapRotate(gen, err)
	}
	if ok, err := e.partitionDrained(ctx, tx, gen); err != nil || !ok {
		return false, true, err
	}
	if err := e.emptyPartition(ctx, tx, gen); err != nil {
		return false, true, err
	}
	return true, true, nil
}

// emptyPartition empties rotating partition gen, locked and found drained in
// tx: the results whose expiry is still ahead move to results_g0, the rest
// go with the tasks, and the partition is marked empty.
func (e *Engine) emptyPartition(ctx context.Context, tx pgx.Tx, gen int16) error {
	i := gen - 1
	for _, sql := range []string{e.sql.partitionKeep[i], e.sql.partitionTruncate[i]} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return wrapRotate(gen, err)
		}
	}
	if _, err := tx.Exec(ctx, e.sql.rotationEmpty, gen); err != nil {
		return wrapRotate(gen, err)
	}
	return nil
}

func lockNotAvailable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

// retireLoop runs Retire for each partition Rotate hands over, until ctx
// ends, off the maintenance loop: a detach waits for transactions that hold
// locks on tasks, as long as they last, and heartbeats must not wait with it.
func (e *Engine) retireLoop(ctx context.Context) {
	log := e.cfg.Logger("maintenance")
	for {
		select {
		case <-ctx.Done():
			return
		case gen := <-e.retireReq:
			if err := e.Retire(ctx, gen); err != nil && ctx.Err() == nil {
				log.Error("retiring a partition of tasks by detaching it failed", "partition", gen, "error", err)
			}
		}
	}
}

// Retire empties rotating partition gen when Rotate cannot lock it: it
// detaches tasks_gN from tasks, and results_gN from results, with DETACH
// PARTITION CONCURRENTLY, which conflicts with no claim, insert, update or
// read and waits only for the transactions that held locks on the parent
// when it began (later ones do not see the partition); empties the detached
// tables as Rotate does if the tasks are still drained; and attaches them
// again.
// Drained means every task finished longer than FinishedRetention ago, so
// while the partition is detached nothing that runs misses a row; a task a
// late transaction wrote to it before the detach is seen again once it is
// attached, not truncated.
//
// A session advisory lock of the schema's, held throughout, keeps every
// client's Rotate and Retire off the partitions meanwhile. Interrupted (ctx,
// a lost connection), Retire leaves the partition detached or detaching;
// the next Rotate sees that and hands it to Retire again, which finishes.
func (e *Engine) Retire(ctx context.Context, gen int16) error {
	if gen < 1 || gen > rotatingPartitions {
		return fmt.Errorf("retire partition %d: not a rotating partition (1 to %d)", gen, rotatingPartitions)
	}
	i := gen - 1
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return wrapRotate(gen, err)
	}
	defer conn.Release()
	var mine bool
	if err := conn.QueryRow(ctx, e.sql.retireLock, e.sql.schema).Scan(&mine); err != nil {
		return wrapRotate(gen, err)
	}
	if !mine {
		return nil // another client retires one
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), e.sql.retireUnlock, e.sql.schema); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing ends the session and its lock
		}
	}()
	states, err := e.partitionStates(ctx, conn, gen)
	if err != nil {
		return err
	}
	if allAttached(states) {
		var drained bool
		if err := conn.QueryRow(ctx, e.sql.partitionDrained[i], e.cfg.FinishedRetention).Scan(&drained); err != nil {
			return wrapRotate(gen, err)
		}
		if !drained {
			return nil
		}
	}
	for j, state := range states {
		var sql string
		switch state {
		case "attached":
			sql = e.sql.partitionDetach[i][j]
		case "detaching":
			sql = e.sql.partitionFinalize[i][j]
		default:
			continue
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			return wrapRotate(gen, err)
		}
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+partitionLockTimeout+"'"); err != nil {
			return wrapRotate(gen, err)
		}
		// Its old readers are gone with the detach; a new one names it.
		if _, err := tx.Exec(ctx, e.sql.partitionLock[i]); err != nil {
			return wrapRotate(gen, err)
		}
		var drained bool
		if err := tx.QueryRow(ctx, e.sql.partitionDrained[i], e.cfg.FinishedRetention).Scan(&drained); err != nil {
			return wrapRotate(gen, err)
		}
		if drained {
			if err := e.emptyPartition(ctx, tx, gen); err != nil {
				return err
			}
		}
		for _, sql := range e.sql.partitionAttach[i] {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return wrapRotate(gen, err)
			}
		}
		return nil
	})
}

// partitionStates says of each of rotating partition gen's tables (by
// partitionTables' index) whether it is "attached" to its parent,
// "detaching" (a DETACH CONCURRENTLY that did not finish) or "detached".
func (e *Engine) partitionStates(ctx context.Context, db DB, gen int16) ([len(partitionTables)]string, error) {
	var states [len(partitionTables)]string
	var parts, parents [len(partitionTables)]string
	for j, parent := range partitionTables {
		parts[j], parents[j] = partitionTable(e.sql.schema, parent, gen), table(e.sql.schema, parent)
	}
	var got []string
	if err := db.QueryRow(ctx, sqlPartitionStates, parts[:], parents[:]).Scan(&got); err != nil {
		return states, wrapRotate(gen, err)
	}
	copy(states[:], got)
	return states, nil
}

func allAttached(states [len(partitionTables)]string) bool {
	return !slices.ContainsFunc(states[:], func(s string) bool { return s != "attached" })
}

func wrapRotate(gen int16, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("rotate tasks: partition tasks_g%d: %w", gen, err)
}

// sqlRotationGen reads the rotating partition new tasks go to; the sticky one
// (0) if none is current (tasks_rotation truncated by hand: Rotate repairs it).
const sqlRotationGen = `SELECT coalesce((SELECT gen FROM {rotation} WHERE current), 0)`

// sqlRotationSlots locks the rotation rows of every rotating partition and
// says of each: is it current, is its time as current up ($1), did it end more
// than FinishedRetention ($2) ago, and is it empty.
const sqlRotationSlots = `
SELECT gen, current, current AND started_at < now() - $1::interval,
	ended_at IS NOT NULL AND ended_at < now() - $2::interval,
	NOT current AND ended_at IS NULL
FROM {rotation} ORDER BY gen FOR UPDATE SKIP LOCKED`

// sqlRotationRestore puts back missing rotation rows, gens 1 to $1.
const sqlRotationRestore = `INSERT INTO {rotation} (gen) SELECT generate_series(1, $1::int) ON CONFLICT DO NOTHING`

// Two statements, not one: the unique index on current is checked row by row.
const (
	sqlRotationEnd   = `UPDATE {rotation} SET current = false, ended_at = now() WHERE gen = $1`
	sqlRotationStart = `UPDATE {rotation} SET current = true, started_at = now(), ended_at = NULL WHERE gen = $1`
	sqlRotationEmpty = `UPDATE {rotation} SET ended_at = NULL WHERE gen = $1`
)

// sqlPartitionDrained is true when partition {part} holds no task that is
// unfinished or finished within FinishedRetention ($1).
const sqlPartitionDrained = `
SELECT NOT EXISTS (SELECT 1 FROM {part}
	WHERE status NOT IN ('success', 'error', 'cancelled', 'expired') OR completed_at >= now() - $1::interval)`

// sqlPartitionKeep moves the results of a drained partition whose expiry of
// their own is still ahead to results_g0, before the partition's results are
// truncated; the rest go with their tasks, as sqlPruneTasks deletes those of
// the sticky partition's tasks.
const sqlPartitionKeep = `
INSERT INTO {results} (task_id, gen, status, result, codec, error, traceback, created_at, started_at,
	completed_at, execution_time, worker_id, attempt, expires_at)
SELECT task_id, 0, status, result, codec, error, traceback, created_at, started_at,
	completed_at, execution_time, worker_id, attempt, expires_at
FROM {results_part} WHERE expires_at > now()
ON CONFLICT (task_id, gen) DO NOTHING`

// A rotating partition's tasks and results are locked and truncated as one.
const (
	sqlPartitionLock     = `LOCK TABLE {part}, {results_part} IN ACCESS EXCLUSIVE MODE`
	sqlPartitionTruncate = `TRUNCATE {part}, {results_part}`
)

// sqlPartitionStates: see partitionStates. $1 holds the partitions' quoted
// names, $2 their parents', in the same order; the states come back in it.
const sqlPartitionStates = `
SELECT array_agg(coalesce((SELECT CASE WHEN inhdetachpending THEN 'detaching' ELSE 'attached' END
	FROM pg_inherits WHERE inhrelid = p.part::regclass AND inhparent = p.parent::regclass), 'detached') ORDER BY p.i)
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p(part, parent, i)`

// The statements of Retire, for each of a partition's tables. {parent} is
// the partitioned table, {gen} the partition's number.
const (
	sqlPartitionDetach   = `ALTER TABLE {parent} DETACH PARTITION {part} CONCURRENTLY`
	sqlPartitionFinalize = `ALTER TABLE {parent} DETACH PARTITION {part} FINALIZE`
	sqlPartitionAttach   = `ALTER TABLE {parent} ATTACH PARTITION {part} FOR VALUES IN ({gen})`
)

// Retire's session lock, and the try of it in Rotate's transaction: session
// and transaction advisory locks of one key conflict. $1 names the schema.
const (
	sqlRetireLock   = `SELECT pg_try_advisory_lock(hashtextextended('omniq.retire:' || $1, 0))`
	sqlRetireUnlock = `SELECT pg_advisory_unlock(hashtextextended('omniq.retire:' || $1, 0))`
	sqlRetireTry    = `SELECT pg_try_advisory_xact_lock(hashtextextended('omniq.retire:' || $1, 0))`
)
