package periodic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq/jobs"
	"github.com/omniqhq/omniq/queue"
)

// Config configures a Service.
type Config struct {
	Schema string
	Pool   *pgxpool.Pool
	// Engine inserts the tasks and owns the LISTEN connection.
	Engine *queue.Engine
	// Codec encodes a spec's args.
	Codec queue.Codec
	// Validate checks a new template: Engine.PrepareEncoded when nil (it
	// rejects a kind this client has no worker for, when it has workers).
	Validate func(kind, codec string, data []byte, o jobs.InsertOpts) (*queue.InsertParams, error)
	// Prepare makes a tick's task from the template. Default Validate. A
	// client should accept kinds it does not work itself: any client may
	// fire any schedule.
	Prepare func(kind, codec string, data []byte, o jobs.InsertOpts) (*queue.InsertParams, error)
	// EventLevel is the engine's (queue.EventsAll …).
	EventLevel string
	// MaxSleep caps the scheduler's sleep when no schedule is due sooner.
	// Changes made through a client wake every scheduler by NOTIFY; MaxSleep
	// bounds how late a schedule written with plain SQL is noticed. Default 5s.
	MaxSleep time.Duration
	// BatchSize caps the schedules fired in one transaction. Default 100.
	BatchSize int
	// Now, when set, replaces the database clock (tests). Nil: the database's
	// now() decides what is due, so clients with skewed clocks agree.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service stores schedules and fires them.
type Service struct {
	cfg     Config
	sql     *statements
	channel string
	log     *slog.Logger

	// loop state, owned by Start/Stop
	loopMu sync.Mutex // Start and Stop may be called from several goroutines
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	unlist func()

	// afterInsert, when set (tests), runs inside a fire after the tasks were
	// inserted and before the commit.
	afterInsert func(ctx context.Context, tx pgx.Tx)
}

// Channel returns the NOTIFY channel schedule changes are announced on.
func Channel(schema string) string { return queue.Channel(schema, "schedules") }

// New returns a service; it fires nothing until Start.
func New(cfg Config) *Service {
	if cfg.Validate == nil {
		cfg.Validate = cfg.Engine.PrepareEncoded
	}
	if cfg.Prepare == nil {
		cfg.Prepare = cfg.Validate
	}
	if cfg.MaxSleep <= 0 {
		cfg.MaxSleep = 5 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		cfg:     cfg,
		sql:     newStatements(cfg.Schema),
		channel: Channel(cfg.Schema),
		log:     cfg.Logger,
		wake:    make(chan struct{}, 1),
	}
}

// clock returns the test clock's time, or nil for the database clock.
func (s *Service) clock() *time.Time {
	if s.cfg.Now == nil {
		return nil
	}
	t := s.cfg.Now()
	return &t
}

// dbNow reads the time new schedules start from.
func (s *Service) dbNow(ctx context.Context, db queue.DB) (time.Time, error) {
	var now time.Time
	err := db.QueryRow(ctx, `SELECT coalesce($1::timestamptz, now())`, s.clock()).Scan(&now)
	return now, err
}

// Validate checks spec's timing, limits and name without encoding or storing
// anything. The error is an *jobs.InputError.
func Validate(spec Spec) error {
	_, err := validate(&spec)
	return err
}

func validate(spec *Spec) (*timing, error) {
	if len(spec.Name) > 200 {
		return nil, invalid("Name", fmt.Sprintf("of %d bytes", len(spec.Name)), "longer than 200 bytes")
	}
	typ, err := typeOf(spec)
	if err != nil {
		return nil, err
	}
	tm := &timing{typ: typ, loc: time.UTC}
	if spec.Timezone != "" || typ == TypeCron {
		if tm.loc, err = loadZone(spec.Timezone); err != nil {
			return nil, err
		}
	}
	switch typ {
	case TypeCron:
		if tm.cron, err = parseCron(spec.Cron, tm.loc); err != nil {
			return nil, err
		}
	case TypeInterval:
		switch {
		case spec.Interval <= 0:
			return nil, invalid("Interval", spec.Interval, "must be positive")
		case spec.Interval < MinInterval:
			return nil, invalid("Interval", spec.Interval, "must be at least "+MinInterval.String())
		case spec.Interval%time.Microsecond != 0:
			return nil, invalid("Interval", spec.Interval, "must be a whole number of microseconds")
		}
		tm.interval = spec.Interval
	case TypeTimestamp:
		tm.at = spec.At
	}
	if spec.MaxRuns < 0 || spec.MaxRuns > math.MaxInt32 {
		return nil, invalid("MaxRuns", spec.MaxRuns, "must be 0 (unlimited) or positive")
	}
	if spec.Backfill < 0 || spec.Backfill > 10000 {
		return nil, invalid("Backfill", spec.Backfill, "must be between 0 and 10000")
	}
	if spec.Args == nil {
		return nil, invalid("Args", nil, "a schedule needs the task's args (their Kind names the worker)")
	}
	for _, tag := range spec.Tags {
		if tag == "" || len(tag) > 255 {
			return nil, invalid("Tags", fmt.Sprintf("%q", tag), "each tag must be 1-255 bytes")
		}
	}
	return tm, nil
}

// compiled is a validated spec ready to write.
type compiled struct {
	spec    Spec
	timing  *timing
	kind    string
	codec   string
	args    []byte // jsonb text
	queue   string
	prio    int
	options []byte
}

func (s *Service) compile(spec Spec) (*compiled, error) {
	tm, err := validate(&spec)
	if err != nil {
		return nil, err
	}
	var o jobs.InsertOpts
	if spec.Opts != nil {
		o = *spec.Opts
	}
	if a, ok := spec.Args.(jobs.ArgsWithInsertOpts); ok {
		o = o.Merge(a.InsertOpts())
	}
	opts, err := optionsOf(o)
	if err != nil {
		return nil, err
	}
	kind := spec.Args.Kind()
	codecName, data, err := s.cfg.Codec.Encode(spec.Args)
	if err != nil {
		return nil, fmt.Errorf("%w: encode args of kind %q: %w", jobs.ErrInvalidInput, kind, err)
	}
	// The template must make a valid task now, on this client.
	p, err := s.cfg.Validate(kind, codecName, data, o)
	if err != nil {
		return nil, err
	}
	optJSON, err := opts.json()
	if err != nil {
		return nil, err
	}
	return &compiled{spec: spec, timing: tm, kind: kind, codec: codecName, args: p.Args,
		queue: p.Queue, prio: p.Priority, options: optJSON}, nil
}

// values returns the $1…$20 of sqlInsert/sqlUpsert for c at now.
func (c *compiled) values(id uuid.UUID, now time.Time) []any {
	missed := "once"
	if c.spec.Backfill > 0 {
		missed = "backfill"
	}
	var interval *time.Duration
	if c.timing.typ == TypeInterval {
		interval = &c.spec.Interval
	}
	var at *time.Time
	if c.timing.typ == TypeTimestamp {
		at = &c.spec.At
	}
	queueName := c.queue
	if queueName == "" {
		queueName = queue.DefaultQueue
	}
	tz := c.spec.Timezone
	if tz == "" {
		tz = "UTC"
	}
	tags := c.spec.Tags
	if tags == nil {
		tags = []string{}
	}
	return []any{id, c.spec.Name, string(c.timing.typ), c.spec.Cron, tz, interval, at, c.kind, queueName,
		string(c.args), c.codec, int16(c.prio), string(c.options), int32(c.spec.MaxRuns), missed,
		int32(c.spec.Backfill), c.spec.NoOverlap, c.timing.first(now), tags, c.spec.Description}
}

// Create stores a new schedule. Its name must be unused.
func (s *Service) Create(ctx context.Context, spec Spec) (*Schedule, error) {
	c, err := s.compile(spec)
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	if c.spec.Name == "" {
		c.spec.Name = id.String()
	}
	var out *Schedule
	err = pgx.BeginFunc(ctx, s.cfg.Pool, func(tx pgx.Tx) error {
		now, err := s.dbNow(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, s.sql.insert, c.values(id, now)...)
		if err != nil {
			return err
		}
		if out, err = pgx.CollectExactlyOneRow(rows, scanSchedule); err != nil {
			return err
		}
		if err := s.event(ctx, tx, EventCreated, nil, out, "", nil, "info"); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, s.sql.notify, s.channel)
		return err
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return nil, invalid("Name", fmt.Sprintf("%q", c.spec.Name), "a schedule with this name already exists")
		}
		if errors.As(err, &pgErr) && pgErr.Code == "23514" {
			return nil, fmt.Errorf("%w: rejected by constraint %s: %w", jobs.ErrInvalidInput, pgErr.ConstraintName, err)
		}
		return nil, fmt.Errorf("create schedule %q: %w", c.spec.Name, err)
	}
	return out, nil
}

// Upsert writes Config-declared schedules by name, all or none: every spec is
// checked before anything is written. It returns how many rows it inserted
// and updated; an unchanged spec writes nothing.
func (s *Service) Upsert(ctx context.Context, specs []Spec) (inserted, updated int, err error) {
	cs := make([]*compiled, len(specs))
	seen := map[string]bool{}
	for i, spec := range specs {
		if spec.Name == "" {
			return 0, 0, fmt.Errorf("schedule %d of %d: %w", i, len(specs), invalid("Name", `""`, "a declared schedule needs a name: it is upserted by it"))
		}
		if seen[spec.Name] {
			return 0, 0, invalid("Name", fmt.Sprintf("%q", spec.Name), "declared twice")
		}
		seen[spec.Name] = true
		if cs[i], err = s.compile(spec); err != nil {
			return 0, 0, fmt.Errorf("schedule %q: %w", spec.Name, err)
		}
	}
	if len(cs) == 0 {
		return 0, 0, nil
	}
	err = pgx.BeginFunc(ctx, s.cfg.Pool, func(tx pgx.Tx) error {
		inserted, updated = 0, 0
		now, err := s.dbNow(ctx, tx)
		if err != nil {
			return err
		}
		for _, c := range cs {
			id, err := uuid.NewV7()
			if err != nil {
				return err
			}
			var (
				gotID    uuid.UUID
				name     string
				isInsert bool
			)
			err = tx.QueryRow(ctx, s.sql.upsert, c.values(id, now)...).Scan(&gotID, &name, &isInsert)
			if errors.Is(err, pgx.ErrNoRows) {
				continue // unchanged
			}
			if err != nil {
				return fmt.Errorf("schedule %q: %w", c.spec.Name, err)
			}
			typ := EventUpdated
			if isInsert {
				typ, inserted = EventCreated, inserted+1
			} else {
				updated++
			}
			if err := s.event(ctx, tx, typ, nil, &Schedule{ID: gotID, Kind: c.kind, Queue: c.queue}, "declared in Config", nil, "info"); err != nil {
				return err
			}
		}
		if inserted+updated > 0 {
			_, err = tx.Exec(ctx, s.sql.notify, s.channel)
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("upsert declared schedules: %w", err)
	}
	return inserted, updated, nil
}

// byIDOrName is the WHERE clause for a schedule named by id or by name.
func byIDOrName(idOrName string) (string, []any) {
	if id, err := uuid.Parse(idOrName); err == nil {
		return "(id = $1 OR name = $2)", []any{id, idOrName}
	}
	return "name = $1", []any{idOrName}
}

// Get reads a schedule by id or name.
func (s *Service) Get(ctx context.Context, idOrName string) (*Schedule, error) {
	return s.get(ctx, s.cfg.Pool, idOrName, "")
}

func (s *Service) get(ctx context.Context, db queue.DB, idOrName, suffix string) (*Schedule, error) {
	where, args := byIDOrName(idOrName)
	rows, err := db.Query(ctx, `SELECT `+scheduleColumns+` FROM `+s.sql.schedules+` WHERE `+where+` LIMIT 1`+suffix, args...)
	if err != nil {
		return nil, fmt.Errorf("read schedule %q: %w", idOrName, err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanSchedule)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("schedule %q: %w", idOrName, jobs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read schedule %q: %w", idOrName, err)
	}
	return out, nil
}

// List lists schedules matching f, by name.
func (s *Service) List(ctx context.Context, f Filter) ([]*Schedule, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if len(f.Statuses) > 0 {
		ss := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			switch st {
			case StatusActive, StatusPaused, StatusExpired, StatusCancelled:
			default:
				return nil, invalid("Statuses", fmt.Sprintf("%q", st), "not a schedule status")
			}
			ss[i] = string(st)
		}
		add("status = ANY($%d)", ss)
	}
	if len(f.Types) > 0 {
		ts := make([]string, len(f.Types))
		for i, t := range f.Types {
			ts[i] = string(t)
		}
		add("type = ANY($%d)", ts)
	}
	if len(f.Kinds) > 0 {
		add("kind = ANY($%d)", f.Kinds)
	}
	if f.Tag != "" {
		add("$%d = ANY(tags)", f.Tag)
	}
	limit := f.Limit
	if limit < 0 || limit > 10000 {
		return nil, invalid("Limit", limit, "must be between 0 and 10000")
	}
	if limit == 0 {
		limit = 100
	}
	args = append(args, limit)
	q := `SELECT ` + scheduleColumns + ` FROM ` + s.sql.schedules
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY name LIMIT $%d", len(args))
	rows, err := s.cfg.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanSchedule)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return out, nil
}

// Pause stops a schedule from firing until Resume. Pausing a paused schedule
// does nothing; an expired or cancelled one is ErrScheduleDone.
func (s *Service) Pause(ctx context.Context, idOrName string) (*Schedule, error) {
	return s.transition(ctx, idOrName, func(tx pgx.Tx, sc *Schedule, now time.Time) (string, error) {
		switch sc.Status {
		case StatusPaused:
			return "", nil
		case StatusActive:
		default:
			return "", fmt.Errorf("pause schedule %q (%s): %w", sc.Name, sc.Status, ErrScheduleDone)
		}
		_, err := tx.Exec(ctx, `UPDATE `+s.sql.schedules+` SET status = 'paused', paused_at = $2, updated_at = now() WHERE id = $1`, sc.ID, now)
		return EventPaused, err
	})
}

// Resume restarts a paused schedule. Its next run is computed from now: the
// ticks it slept through are not fired (no burst). Resuming an active
// schedule does nothing; an expired or cancelled one is ErrScheduleDone.
func (s *Service) Resume(ctx context.Context, idOrName string) (*Schedule, error) {
	return s.transition(ctx, idOrName, func(tx pgx.Tx, sc *Schedule, now time.Time) (string, error) {
		switch sc.Status {
		case StatusActive:
			return "", nil
		case StatusPaused:
		default:
			return "", fmt.Errorf("resume schedule %q (%s): %w", sc.Name, sc.Status, ErrScheduleDone)
		}
		tm, err := sc.timing()
		if err != nil {
			return "", err
		}
		_, err = tx.Exec(ctx, `UPDATE `+s.sql.schedules+` SET status = 'active', resumed_at = $2, next_run_at = $3, updated_at = now() WHERE id = $1`,
			sc.ID, now, tm.first(now))
		return EventResumed, err
	})
}

// Cancel ends a schedule for good (it stays, readable, until deleted).
// Cancelling a cancelled schedule does nothing; an expired one is
// ErrScheduleDone.
func (s *Service) Cancel(ctx context.Context, idOrName string) (*Schedule, error) {
	return s.transition(ctx, idOrName, func(tx pgx.Tx, sc *Schedule, now time.Time) (string, error) {
		switch sc.Status {
		case StatusCancelled:
			return "", nil
		case StatusExpired:
			return "", fmt.Errorf("cancel schedule %q (%s): %w", sc.Name, sc.Status, ErrScheduleDone)
		}
		_, err := tx.Exec(ctx, `UPDATE `+s.sql.schedules+` SET status = 'cancelled', next_run_at = NULL, updated_at = now() WHERE id = $1`, sc.ID)
		return EventCancelled, err
	})
}

// Delete removes a schedule. Its tasks stay (with their schedule_id).
func (s *Service) Delete(ctx context.Context, idOrName string) error {
	return pgx.BeginFunc(ctx, s.cfg.Pool, func(tx pgx.Tx) error {
		sc, err := s.get(ctx, tx, idOrName, " FOR UPDATE")
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+s.sql.schedules+` WHERE id = $1`, sc.ID); err != nil {
			return fmt.Errorf("delete schedule %q: %w", sc.Name, err)
		}
		if err := s.event(ctx, tx, EventDeleted, nil, sc, sc.Name, nil, "info"); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, s.sql.notify, s.channel)
		return err
	})
}

// transition locks a schedule, applies change and, when change made one,
// writes its event and wakes the schedulers, all in one transaction.
func (s *Service) transition(ctx context.Context, idOrName string, change func(pgx.Tx, *Schedule, time.Time) (string, error)) (*Schedule, error) {
	var out *Schedule
	err := pgx.BeginFunc(ctx, s.cfg.Pool, func(tx pgx.Tx) error {
		sc, err := s.get(ctx, tx, idOrName, " FOR UPDATE")
		if err != nil {
			return err
		}
		now, err := s.dbNow(ctx, tx)
		if err != nil {
			return err
		}
		typ, err := change(tx, sc, now)
		if err != nil {
			return err
		}
		if typ != "" {
			if err := s.event(ctx, tx, typ, nil, sc, "", nil, "info"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, s.sql.notify, s.channel); err != nil {
				return err
			}
		}
		out, err = s.get(ctx, tx, sc.ID.String(), "")
		return err
	})
	return out, err
}

// LatestResultTask returns the id of the task of schedule idOrName with the
// newest stored result; ErrNotFound when it has none.
func (s *Service) LatestResultTask(ctx context.Context, idOrName string) (uuid.UUID, error) {
	sc, err := s.Get(ctx, idOrName)
	if err != nil {
		return uuid.Nil, err
	}
	var id uuid.UUID
	err = s.cfg.Pool.QueryRow(ctx, s.sql.latestResult, sc.ID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, fmt.Errorf("result of schedule %q: %w", sc.Name, jobs.ErrNotFound)
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("latest result of schedule %q: %w", sc.Name, err)
	}
	return id, nil
}

// event writes one schedule event, unless the event level leaves it out.
func (s *Service) event(ctx context.Context, db queue.DB, typ string, taskID *uuid.UUID, sc *Schedule, msg string, data map[string]any, level string) error {
	args, ok := s.eventArgs(typ, taskID, sc, msg, data, level)
	if !ok {
		return nil
	}
	if _, err := db.Exec(ctx, s.sql.event, args...); err != nil {
		return fmt.Errorf("write %s event: %w", typ, err)
	}
	return nil
}

// timing rebuilds a stored schedule's tick computation.
func (sc *Schedule) timing() (*timing, error) {
	tm := &timing{typ: sc.Type, interval: sc.Interval}
	loc, err := loadZone(sc.Timezone)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", sc.Name, err)
	}
	tm.loc = loc
	switch sc.Type {
	case TypeCron:
		if tm.cron, err = parseCron(sc.Cron, loc); err != nil {
			return nil, fmt.Errorf("schedule %q: %w", sc.Name, err)
		}
	case TypeInterval:
		if tm.interval <= 0 {
			return nil, fmt.Errorf("schedule %q: interval %s is not positive", sc.Name, tm.interval)
		}
	case TypeTimestamp:
		if sc.At == nil {
			return nil, fmt.Errorf("schedule %q: timestamp schedule without run_at", sc.Name)
		}
		tm.at = *sc.At
	}
	return tm, nil
}

func scanSchedule(row pgx.CollectableRow) (*Schedule, error) { return scanScheduleRow(row) }

// scanScheduleRow scans scheduleColumns, then extra.
func scanScheduleRow(row pgx.Row, extra ...any) (*Schedule, error) {
	var (
		sc                                 Schedule
		typ, status                        string
		prio                               int16
		maxRuns, runCount, backfill        int32
		options                            []byte
		last, next, paused, resumed, runAt *time.Time
	)
	dest := []any{&sc.ID, &sc.Name, &typ, &sc.Cron, &sc.Timezone, &sc.Interval, &runAt, &sc.Kind, &sc.Queue,
		&sc.Args, &sc.Codec, &prio, &options, &maxRuns, &runCount, &backfill, &sc.NoOverlap, &status,
		&last, &next, &paused, &resumed, &sc.CreatedAt, &sc.UpdatedAt, &sc.Tags, &sc.Description}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	sc.Type, sc.Status, sc.Priority = Type(typ), Status(status), int(prio)
	sc.MaxRuns, sc.RunCount, sc.Backfill = int(maxRuns), int(runCount), int(backfill)
	sc.At, sc.LastRunAt, sc.NextRunAt, sc.PausedAt, sc.ResumedAt = runAt, last, next, paused, resumed
	if len(options) > 0 {
		if err := json.Unmarshal(options, &sc.Options); err != nil {
			return nil, fmt.Errorf("schedule %s: options: %w", sc.ID, err)
		}
	}
	return &sc, nil
}
