package events

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omniqhq/omniq/jobs"
)

// DB is what queries run on: a pool, a connection or a transaction.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Filter selects events. Zero fields do not filter; fields AND together, and
// the values of one slice field OR together.
type Filter struct {
	TaskID     uuid.UUID // uuid.Nil: any task
	ScheduleID uuid.UUID // uuid.Nil: any schedule
	Kinds      []string
	Queues     []string
	Types      []Type
	Levels     []Level
	Since      time.Time // events at or after
	Until      time.Time // events before
	// AfterID is the paging cursor: events after this id in the listing's
	// order (below it when Desc). For Subscribe it is where to start: 0 means
	// "events that commit from now on"; n > 0 first delivers the committed
	// events with ids above n.
	AfterID int64
	// Desc lists newest first. Subscribe ignores it.
	Desc bool
	// Limit caps the rows read: default 100, at most 10,000. Subscribe ignores it.
	Limit int
	// Expand turns each compact row into the transitions it stands for (see
	// Expand), so a Types filter of enqueued or executing also matches them.
	// Subscribe always expands.
	Expand bool
}

const (
	defaultLimit = 100
	maxLimit     = 10000
)

// columns is the column list scan reads, in its order, of table alias e.
// Every column is made non-null, so a LEFT JOIN that found no row scans as
// an event with ID 0.
const columns = `coalesce(e.id, 0), coalesce(e.time, 'epoch'), coalesce(e.type, ''), e.task_id,
	coalesce(e.kind, ''), coalesce(e.queue, ''), coalesce(e.worker_id, ''), e.schedule_id,
	coalesce(e.attempt, 0), coalesce(e.message, ''), coalesce(e.data, '{}'), coalesce(e.execution_time, '0'),
	coalesce(e.error, ''), coalesce(e.source, ''), coalesce(e.level, ''), e.enqueued_at, e.started_at`

func scan(row pgx.CollectableRow) (Event, error) { return scanWith(row) }

// scanWith scans an event after the extra leading columns of row.
func scanWith(row pgx.CollectableRow, extra ...any) (Event, error) {
	var (
		e        Event
		typ, lvl string
		task     *uuid.UUID
		sched    *uuid.UUID
		attempt  int32
		enqueued *time.Time
		started  *time.Time
	)
	dst := append(extra, &e.ID, &e.Time, &typ, &task, &e.Kind, &e.Queue, &e.WorkerID, &sched, &attempt,
		&e.Message, &e.Data, &e.ExecutionTime, &e.Error, &e.Source, &lvl, &enqueued, &started)
	if err := row.Scan(dst...); err != nil {
		return e, err
	}
	e.Type, e.Level, e.Attempt = Type(typ), Level(lvl), int(attempt)
	if enqueued != nil {
		e.EnqueuedAt = *enqueued
	}
	if started != nil {
		e.StartedAt = *started
	}
	if enqueued == nil && started == nil {
		e.compactFromData()
	}
	if task != nil {
		e.TaskID = *task
	}
	if sched != nil {
		e.ScheduleID = *sched
	}
	return e, nil
}

func invalid(field string, value any, reason string) error {
	return &jobs.InputError{Field: field, Value: value, Reason: reason}
}

// where renders f's conditions (not the cursor) with placeholders from n+1 on.
func (f *Filter) where(args []any) ([]string, []any, error) {
	var conds []string
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if f.TaskID != uuid.Nil {
		add("task_id = $%d", f.TaskID)
	}
	if f.ScheduleID != uuid.Nil {
		add("schedule_id = $%d", f.ScheduleID)
	}
	if len(f.Kinds) > 0 {
		add("kind = ANY($%d)", f.Kinds)
	}
	if len(f.Queues) > 0 {
		add("queue = ANY($%d)", f.Queues)
	}
	if len(f.Types) > 0 {
		types, err := f.storedTypes()
		if err != nil {
			return nil, nil, err
		}
		add("type = ANY($%d)", types)
	}
	if len(f.Levels) > 0 {
		ls := make([]string, len(f.Levels))
		for i, l := range f.Levels {
			if !l.Valid() {
				return nil, nil, invalid("Levels", fmt.Sprintf("%q", l), "not an event level")
			}
			ls[i] = string(l)
		}
		add("level = ANY($%d)", ls)
	}
	if !f.Since.IsZero() {
		add("time >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("time < $%d", f.Until)
	}
	return conds, args, nil
}

// storedTypes is the type filter as stored rows: with Expand, enqueued and
// executing are also found in the compact outcome rows.
func (f *Filter) storedTypes() ([]string, error) {
	seen := map[Type]bool{}
	for _, t := range f.Types {
		if !t.Valid() {
			return nil, invalid("Types", fmt.Sprintf("%q", t), "not an event type")
		}
		seen[t] = true
		if f.Expand && (t == Enqueued || t == Executing) {
			for _, o := range []Type{Completed, Error, Retry, Cancelled, Snoozed, Rescued} {
				seen[o] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, string(t))
	}
	return out, nil
}

// keep applies what SQL could not: after expansion, the type and level
// filters hold for each derived event too. (Since and Until apply to the
// stored row's time.)
func (f *Filter) keep(e Event) bool {
	if len(f.Types) > 0 {
		ok := false
		for _, t := range f.Types {
			ok = ok || t == e.Type
		}
		if !ok {
			return false
		}
	}
	if e.Derived && len(f.Levels) > 0 {
		ok := false
		for _, l := range f.Levels {
			ok = ok || l == e.Level
		}
		if !ok {
			return false
		}
	}
	return true
}

// expand applies Expand and the filter to rows, in order.
func (f *Filter) expand(rows []Event) []Event {
	out := make([]Event, 0, len(rows))
	for _, r := range rows {
		for _, e := range Expand(r) {
			if f.keep(e) {
				out = append(out, e)
			}
		}
	}
	return out
}

// Store reads the events of one schema.
type Store struct {
	schema string
	table  string
}

// NewStore returns the event store of schema.
func NewStore(schema string) *Store {
	return &Store{schema: schema, table: pgx.Identifier{schema, "events"}.Sanitize()}
}

// List returns the events matching f, oldest first (newest with Desc),
// paged by f.AfterID and f.Limit. With f.Expand, compact rows become the
// transitions they stand for; Limit then counts rows read, not events
// returned, and the next page starts after the last returned event's ID.
func (s *Store) List(ctx context.Context, db DB, f Filter) ([]Event, error) {
	limit := f.Limit
	if limit < 0 || limit > maxLimit {
		return nil, invalid("Limit", limit, fmt.Sprintf("must be between 0 and %d", maxLimit))
	}
	if limit == 0 {
		limit = defaultLimit
	}
	conds, args, err := f.where(nil)
	if err != nil {
		return nil, err
	}
	order := "ASC"
	if f.Desc {
		order = "DESC"
		if f.AfterID > 0 {
			args = append(args, f.AfterID)
			conds = append(conds, fmt.Sprintf("id < $%d", len(args)))
		}
	} else if f.AfterID > 0 {
		args = append(args, f.AfterID)
		conds = append(conds, fmt.Sprintf("id > $%d", len(args)))
	}
	q := `SELECT ` + columns + ` FROM ` + s.table + ` e`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY id %s LIMIT $%d", order, len(args))
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	out, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	if !f.Expand {
		return out, nil
	}
	if f.Desc {
		// Expansion is oldest first within a row; newest first overall.
		ex := f.expand(out)
		for i, j := 0, len(ex)-1; i < j; i, j = i+1, j-1 {
			ex[i], ex[j] = ex[j], ex[i]
		}
		return ex, nil
	}
	return f.expand(out), nil
}
