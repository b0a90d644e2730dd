package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq/jobs"
)

// Task reads one task.
func (e *Engine) Task(ctx context.Context, db DB, id uuid.UUID) (*jobs.TaskRow, error) {
	rows, err := db.Query(ctx, `SELECT `+taskColumns+` FROM `+table(e.sql.schema, "tasks")+` WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("read task %s: %w", id, err)
	}
	row, err := pgx.CollectExactlyOneRow(rows, scanTask)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("task %s: %w", id, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read task %s: %w", id, err)
	}
	return row, nil
}

// TaskFilter selects tasks for Tasks. Zero fields do not filter.
type TaskFilter struct {
	Statuses      []jobs.Status
	Queues        []string
	Kinds         []string
	Tag           string
	ScheduleID    *uuid.UUID
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// After pages: tasks with ids after this one (ids order by creation time).
	After uuid.UUID
	// Limit defaults to 100, at most 10,000.
	Limit int
	// Desc lists newest first (then After means "before").
	Desc bool
}

// Tasks lists tasks matching f, ordered by id (creation time).
func (e *Engine) Tasks(ctx context.Context, db DB, f TaskFilter) ([]*jobs.TaskRow, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if len(f.Statuses) > 0 {
		s := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			if !st.Valid() {
				return nil, invalid("Statuses", fmt.Sprintf("%q", st), "not a task status")
			}
			s[i] = string(st)
		}
		add("status = ANY($%d)", s)
	}
	if len(f.Queues) > 0 {
		add("queue = ANY($%d)", f.Queues)
	}
	if len(f.Kinds) > 0 {
		add("kind = ANY($%d)", f.Kinds)
	}
	if f.Tag != "" {
		add("$%d = ANY(tags)", f.Tag)
	}
	if f.ScheduleID != nil {
		// A schedule's tasks are all in the sticky partition, whose
		// index on schedule_id this reads.
		add("gen = 0 AND schedule_id = $%d", *f.ScheduleID)
	}
	if !f.CreatedAfter.IsZero() {
		add("created_at > $%d", f.CreatedAfter)
	}
	if !f.CreatedBefore.IsZero() {
		add("created_at < $%d", f.CreatedBefore)
	}
	order := "ASC"
	if f.Desc {
		order = "DESC"
		if f.After != uuid.Nil {
			add("id < $%d", f.After)
		}
	} else if f.After != uuid.Nil {
		add("id > $%d", f.After)
	}
	limit := f.Limit
	if limit < 0 || limit > 10000 {
		return nil, invalid("Limit", limit, "must be between 0 and 10000")
	}
	if limit == 0 {
		limit = 100
	}
	args = append(args, limit)
	q := `SELECT ` + taskColumns + ` FROM ` + table(e.sql.schema, "tasks")
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY id %s LIMIT $%d", order, len(args))
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanTask)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return out, nil
}

// resultColumns is the column list scanResult reads.
const resultColumns = `task_id, status, result, codec, coalesce(error, ''), coalesce(traceback, ''), created_at,
	started_at, completed_at, coalesce(execution_time, '0'), coalesce(worker_id, ''), attempt, expires_at`

func scanResult(row pgx.CollectableRow) (*jobs.TaskResult, error) {
	var (
		r       jobs.TaskResult
		status  string
		attempt int32
	)
	if err := row.Scan(&r.TaskID, &status, &r.Value, &r.Codec, &r.Error, &r.Traceback, &r.CreatedAt,
		&r.StartedAt, &r.CompletedAt, &r.ExecutionTime, &r.WorkerID, &attempt, &r.ExpiresAt); err != nil {
		return nil, err
	}
	r.Status, r.Attempt = jobs.ResultStatus(status), int(attempt)
	return &r, nil
}

// Result reads the stored result of a task; ErrNotFound when there is none
// (not stored, not finished, or expired).
func (e *Engine) Result(ctx context.Context, db DB, id uuid.UUID) (*jobs.TaskResult, error) {
	rows, err := db.Query(ctx, `SELECT `+resultColumns+` FROM `+table(e.sql.schema, "results")+
		` WHERE task_id = $1 AND (expires_at IS NULL OR expires_at > now())`, id)
	if err != nil {
		return nil, fmt.Errorf("read result of %s: %w", id, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanResult)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("result of task %s: %w", id, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read result of %s: %w", id, err)
	}
	return r, nil
}

// DecodeValue decodes a stored result value into v.
func (e *Engine) DecodeValue(codecName string, stored []byte, v any) error {
	return e.decodeArgs(codecName, stored, v)
}

// ErrFinished is returned when an operation needs a task that has not finished
// (or has) and it is in the other state.
var ErrFinished = errors.New("omniq: task already finished")

// Cancel cancels a task: at once if it has not started; if it runs, its
// context is cancelled wherever it runs and it ends cancelled. It returns the
// task's status after the call.
func (e *Engine) Cancel(ctx context.Context, db DB, id uuid.UUID) (jobs.Status, error) {
	const q = `
WITH upd AS (
	UPDATE %[1]s SET
		status = CASE WHEN status = 'running' THEN status ELSE 'cancelled' END,
		completed_at = CASE WHEN status = 'running' THEN completed_at ELSE now() END,
		cancel_requested_at = now()
	WHERE id = $1 AND status IN ('pending', 'waiting', 'retry', 'running')
	RETURNING id, kind, queue, status
), ev AS (
	INSERT INTO %[2]s (type, task_id, kind, queue, message, level)
	SELECT 'cancelled', id, kind, queue, 'cancelled by request', 'warning' FROM upd
	WHERE status = 'cancelled' AND $2::text <> 'none'
)
SELECT status FROM upd`
	var status string
	err := db.QueryRow(ctx, fmt.Sprintf(q, table(e.sql.schema, "tasks"), table(e.sql.schema, "events")), id, e.cfg.EventLevel).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		row, rerr := e.Task(ctx, db, id)
		if rerr != nil {
			return "", rerr
		}
		return row.Status, fmt.Errorf("cancel task %s: it is %s: %w", id, row.Status, ErrFinished)
	}
	if err != nil {
		return "", fmt.Errorf("cancel task %s: %w", id, err)
	}
	if jobs.Status(status) == jobs.StatusRunning {
		msg, _ := json.Marshal(control{Action: "cancel", ID: id})
		if _, err := db.Exec(ctx, `SELECT pg_notify($1, $2)`, e.controlChannel, string(msg)); err != nil {
			return "", fmt.Errorf("cancel task %s: notify: %w", id, err)
		}
		e.cancelRunning(id)
	} else if err := e.afterTerminal(ctx, []uuid.UUID{id}); err != nil {
		return "", fmt.Errorf("cancel task %s: %w", id, err)
	}
	return jobs.Status(status), nil
}

// Retry makes a finished (or retry-waiting) task run again now, with its
// attempts counted afresh from where they are (max_attempts is raised if
// they are used up).
func (e *Engine) Retry(ctx context.Context, db DB, id uuid.UUID) error {
	const q = `
UPDATE %s SET status = 'pending', run_at = now(), completed_at = NULL, cancel_requested_at = NULL,
	max_attempts = greatest(max_attempts, attempt + 1)
WHERE id = $1 AND status IN ('success', 'error', 'cancelled', 'expired', 'retry', 'pending')
RETURNING queue`
	var queue string
	err := db.QueryRow(ctx, fmt.Sprintf(q, table(e.sql.schema, "tasks")), id).Scan(&queue)
	if errors.Is(err, pgx.ErrNoRows) {
		row, rerr := e.Task(ctx, db, id)
		if rerr != nil {
			return rerr
		}
		return fmt.Errorf("retry task %s: it is %s and cannot be retried now", id, row.Status)
	}
	if err != nil {
		return fmt.Errorf("retry task %s: %w", id, err)
	}
	_, err = db.Exec(ctx, e.sql.wake, e.insertChannel, []string{queue}, nil)
	return err
}

// Delete removes a task that is not running, and its result.
func (e *Engine) Delete(ctx context.Context, db DB, id uuid.UUID) error {
	const q = `
WITH gone AS (DELETE FROM %s WHERE id = $1 AND status <> 'running' RETURNING id)
, res AS (DELETE FROM %s r USING gone WHERE r.task_id = gone.id)
SELECT count(*) FROM gone`
	var n int
	if err := db.QueryRow(ctx, fmt.Sprintf(q, table(e.sql.schema, "tasks"), table(e.sql.schema, "results")), id).Scan(&n); err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	if n == 0 {
		row, err := e.Task(ctx, db, id)
		if err != nil {
			return err
		}
		return fmt.Errorf("delete task %s: it is %s; cancel it first", id, row.Status)
	}
	return nil
}

// SetQueuePaused pauses or resumes a queue for every client. Producers check
// the queues table in their claim statement, so it takes effect on the next
// fetch of every client.
func (e *Engine) SetQueuePaused(ctx context.Context, db DB, queue string, paused bool) error {
	if !ValidQueueName(queue) {
		return invalid("queue", fmt.Sprintf("%q", queue), "not a valid queue name")
	}
	const q = `
WITH up AS (
	INSERT INTO %[1]s (name, paused_at) VALUES ($1, CASE WHEN $2 THEN now() END)
	ON CONFLICT (name) DO UPDATE SET paused_at = CASE WHEN $2 THEN coalesce(%[1]s.paused_at, now()) END, updated_at = now()
	RETURNING name
)
INSERT INTO %[2]s (type, queue, message)
SELECT CASE WHEN $2 THEN 'queue_paused' ELSE 'queue_resumed' END, name, '' FROM up WHERE $3::text <> 'none'`
	if _, err := db.Exec(ctx, fmt.Sprintf(q, table(e.sql.schema, "queues"), table(e.sql.schema, "events")), queue, paused, e.cfg.EventLevel); err != nil {
		return fmt.Errorf("set queue %q paused=%v: %w", queue, paused, err)
	}
	if !paused {
		if _, err := db.Exec(ctx, e.sql.wake, e.insertChannel, []string{queue}, nil); err != nil {
			return fmt.Errorf("resume queue %q: notify: %w", queue, err)
		}
	}
	return nil
}

// ErrNotRunning is returned by CompleteTx when the task is not running the
// given attempt (already completed, rescued, or cancelled).
var ErrNotRunning = errors.New("omniq: task is not running this attempt")

// CompleteTx records row's current attempt as a success inside tx, with
// result (nil for none), so the task's completion commits or rolls back with
// the caller's other writes. The completer later finds the task no longer
// running and leaves it alone.
func (e *Engine) CompleteTx(ctx context.Context, tx DB, row *jobs.TaskRow, result any) error {
	now := time.Now()
	o := &outcome{id: row.ID, gen: row.Partition, attempt: row.Attempt, status: jobs.StatusSuccess, finishedAt: now,
		resultStatus: jobs.ResultSuccess, event: "completed", queue: row.Queue}
	if result != nil && row.StoreResult {
		name, data, err := e.codec.Encode(result)
		if err != nil {
			return fmt.Errorf("complete task %s: encode result: %w", row.ID, err)
		}
		o.result, o.resultCodec = e.codec.ToJSONB(name, data), name
	}
	br := tx.SendBatch(ctx, e.completionBatch([]*outcome{o}))
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return fmt.Errorf("complete task %s: %w", row.ID, err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		br.Close()
		return fmt.Errorf("complete task %s: %w", row.ID, err)
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("complete task %s: %w", row.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("complete task %s attempt %d: %w", row.ID, row.Attempt, ErrNotRunning)
	}
	return nil
}
