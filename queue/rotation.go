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
// Results of the truncated tasks that have no expiry of their own are
// deleted with them, as Prune does. Rotate does nothing while another client
// rotates; it returns how many partitions it truncated.
func (e *Engine) Rotate(ctx context.Context) (int, error) {
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("rotate tasks: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	type slot struct {
		gen                   int16
		current, due, retired bool
		empty                 bool
	}
	rows, err := tx.Query(ctx, e.sql.rotationSlots, e.rotateEvery(), e.cfg.FinishedRetention)
	if err != nil {
		return 0, fmt.Errorf("rotate tasks: %w", err)
	}
	slots, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (slot, error) {
		var s slot
		err := row.Scan(&s.gen, &s.current, &s.due, &s.retired, &s.empty)
		return s, err
	})
	if err != nil {
		return 0, fmt.Errorf("rotate tasks: %w", err)
	}
	if len(slots) != rotatingPartitions {
		// Another client holds some rows (it is rotating), or rows are
		// missing (tasks_rotation emptied by hand, when new tasks go to the
		// sticky partition): put those back; a later pass rotates.
		if _, err := tx.Exec(ctx, e.sql.rotationRestore, rotatingPartitions); err != nil {
			return 0, fmt.Errorf("rotate tasks: %w", err)
		}
		return 0, wrapCommit(ctx, tx)
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
				return 0, err
			}
			continue
		}
		ok, err := e.truncatePartition(ctx, tx, s.gen, truncated == 0)
		if err != nil || !ok {
			return 0, err
		}
		s.empty = true
		truncated++
	}
	if !slices.ContainsFunc(slots, func(s slot) bool { return s.current }) {
		// None is current (rows put back, or changed by hand): the first is.
		if _, err := tx.Exec(ctx, e.sql.rotationStart, slots[0].gen); err != nil {
			return 0, fmt.Errorf("rotate tasks: %w", err)
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
				return 0, fmt.Errorf("rotate tasks: %w", err)
			}
			if _, err := tx.Exec(ctx, e.sql.rotationStart, next.gen); err != nil {
				return 0, fmt.Errorf("rotate tasks: %w", err)
			}
			break
		}
	}
	return truncated, wrapCommit(ctx, tx)
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
// with the results that go with its tasks. It checks again under the
// exclusive lock, which no insert, claim or update of the partition holds:
// nothing changes between that check and the TRUNCATE. It reports false, with
// tx to be rolled back, when the partition is in use after all or its lock
// was not granted within partitionLockTimeout.
func (e *Engine) truncatePartition(ctx context.Context, tx pgx.Tx, gen int16, first bool) (bool, error) {
	i := gen - 1
	if _, err := tx.Exec(ctx, e.sql.partitionResults[i]); err != nil {
		return false, wrapRotate(gen, err)
	}
	if first {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+partitionLockTimeout+"'"); err != nil {
			return false, wrapRotate(gen, err)
		}
	}
	if _, err := tx.Exec(ctx, e.sql.partitionLock[i]); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
			return false, nil
		}
		return false, wrapRotate(gen, err)
	}
	if ok, err := e.partitionDrained(ctx, tx, gen); err != nil || !ok {
		return false, err
	}
	if _, err := tx.Exec(ctx, e.sql.partitionTruncate[i]); err != nil {
		return false, wrapRotate(gen, err)
	}
	if _, err := tx.Exec(ctx, e.sql.rotationEmpty, gen); err != nil {
		return false, wrapRotate(gen, err)
	}
	return true, nil
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

// sqlPartitionResults deletes the results that go with a drained partition's
// tasks (those without an expiry of their own), as sqlPruneTasks does.
const sqlPartitionResults = `DELETE FROM {results} r USING {part} t WHERE r.task_id = t.id AND r.expires_at IS NULL`

const (
	sqlPartitionLock     = `LOCK TABLE {part} IN ACCESS EXCLUSIVE MODE`
	sqlPartitionTruncate = `TRUNCATE {part}`
)
