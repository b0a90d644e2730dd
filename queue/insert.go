package queue

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omniqhq/omniq/jobs"
)

// DB is what the engine needs of a connection: a pool, a conn or a caller's
// transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Codec encodes args and results; *codec.Manager is the implementation.
type Codec interface {
	Encode(v any) (name string, data []byte, err error)
	Decode(name string, data []byte, v any) error
	ToJSONB(name string, data []byte) []byte
	FromJSONB(name string, stored []byte) ([]byte, error)
}

// MaxArgsBytes bounds a task's encoded args.
const MaxArgsBytes = 1 << 20

// ValidQueueName reports whether name is an acceptable queue name, the rule of
// the queue_name domain's CHECK: 1-128 ASCII letters, digits, '_', '.', ':'
// or '-', the first a letter or digit. (A loop, not a regexp: it runs for
// every task enqueued, and the regexp was a twentieth of EnqueueMany's client
// CPU.)
func ValidQueueName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '_' || c == '.' || c == ':' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// idSource makes task ids: UUIDv7, time-ordered, so that inserts land at the
// right edge of the primary key. Their random bits come from crypto/rand
// read 4 KiB at a time: a read per task was a twentieth of EnqueueMany's
// client CPU. The zero value is ready to use.
type idSource struct {
	mu sync.Mutex
	r  *bufio.Reader
}

func (s *idSource) next() (uuid.UUID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r == nil {
		s.r = bufio.NewReaderSize(rand.Reader, 4096)
	}
	return uuid.NewV7FromReader(s.r)
}

// InsertParams is one task ready to insert: encoded, defaulted, validated.
type InsertParams struct {
	ID           uuid.UUID
	Kind         string
	Queue        string
	Args         []byte // JSON text for the jsonb column
	Codec        string
	Name         string
	Description  string
	Tags         []string
	Priority     int
	RunAt        time.Time // zero: now, by the database clock
	MaxAttempts  int
	RetryDelay   time.Duration
	RetryBackoff jobs.Backoff
	ExpiresAt    *time.Time
	Timeout      time.Duration
	DependsOn    []uuid.UUID
	RunAnyway    bool
	Callback     *jobs.Callback
	ResultTTL    time.Duration
	StoreResult  bool
	UniqueKey    []byte
	UniqueStates []jobs.Status
	ScheduleID   *uuid.UUID
	ScheduledAt  *time.Time
	Metadata     map[string]any
	// PresetID is true when ID came from InsertOpts.ID rather than being
	// made here: such a task goes to the sticky partition, where ids are
	// unique across the table (see rotates).
	PresetID bool
}

// rotates reports whether p is written to tasks' rotating partitions
// (migration 007): a plain task due within horizon, whose row can go when its
// partition is truncated. Unique tasks and schedule ticks (their unique
// indexes are the sticky partition's), tasks with dependencies or a TTL (the
// indexes that find them too), tasks with a preset ID and tasks due later go
// to the sticky partition, which retention prunes row by row.
func (p *InsertParams) rotates(now time.Time, horizon time.Duration) bool {
	return p.UniqueKey == nil && p.ScheduleID == nil && len(p.DependsOn) == 0 && p.ExpiresAt == nil && !p.PresetID &&
		!p.RunAt.After(now.Add(horizon))
}

// dueBy reports whether p may run at now: it names no run_at (the database
// clock's now()) or one not after now.
func (p *InsertParams) dueBy(now time.Time) bool {
	return p.RunAt.IsZero() || !p.RunAt.After(now)
}

// callbackJSON is p's callback as JSON for the callback column; nil for none.
func (p *InsertParams) callbackJSON() ([]byte, error) {
	if p.Callback == nil {
		return nil, nil
	}
	b, err := json.Marshal(p.Callback)
	if err != nil {
		return nil, fmt.Errorf("encode callback of task %s: %w", p.ID, err)
	}
	return b, nil
}

// metadataJSON is p's metadata as JSON for the metadata column; nil for none
// (the column's default, '{}').
func (p *InsertParams) metadataJSON() ([]byte, error) {
	if len(p.Metadata) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(p.Metadata)
	if err != nil {
		return nil, invalid("Metadata", nil, "cannot be encoded as JSON: "+err.Error())
	}
	return b, nil
}

// InsertResult is the outcome of inserting one task.
type InsertResult struct {
	ID uuid.UUID
	// Duplicate is true when a unique task already existed; ID is then the
	// existing task's.
	Duplicate bool
	// Status is the status the task was inserted with (pending, waiting or
	// cancelled); empty for a duplicate.
	Status jobs.Status
}

func invalid(field string, value any, reason string) error {
	return &jobs.InputError{Field: field, Value: value, Reason: reason}
}

// Prepare turns args and options into InsertParams: it merges the kind's and
// the client's defaults, encodes args, and validates every field.
func (e *Engine) Prepare(args jobs.Args, opts *jobs.InsertOpts) (*InsertParams, error) {
	if args == nil {
		return nil, invalid("args", nil, "nil args")
	}
	kind := args.Kind()
	if kind == "" || len(kind) > 128 {
		return nil, invalid("kind", fmt.Sprintf("%q", kind), "must be 1-128 characters")
	}
	var o jobs.InsertOpts
	if opts != nil {
		o = *opts
	}
	if a, ok := args.(jobs.ArgsWithInsertOpts); ok {
		o = o.Merge(a.InsertOpts())
	}
	codecName, data, err := e.codec.Encode(args)
	if err != nil {
		return nil, fmt.Errorf("%w: encode args of kind %q: %w", jobs.ErrInvalidInput, kind, err)
	}
	return e.PrepareEncoded(kind, codecName, data, o)
}

// PrepareEncoded is Prepare for args already encoded by codecName (as the
// codec wrote them, before ToJSONB): schedules and SQL-made templates use it.
func (e *Engine) PrepareEncoded(kind, codecName string, data []byte, o jobs.InsertOpts) (*InsertParams, error) {
	if kind == "" || len(kind) > 128 {
		return nil, invalid("kind", fmt.Sprintf("%q", kind), "must be 1-128 characters")
	}
	if e.registry.Len() > 0 {
		u, ok := e.registry.Lookup(kind)
		if !ok {
			return nil, invalid("kind", fmt.Sprintf("%q", kind), "no worker is registered for it on this client (registered: "+fmt.Sprint(e.registry.Kinds())+")")
		}
		o = o.Merge(u.InsertOpts())
	}
	return e.prepare(kind, codecName, data, o)
}

func (e *Engine) prepare(kind, codecName string, data []byte, o jobs.InsertOpts) (*InsertParams, error) {
	cfg := &e.cfg
	if len(data) > MaxArgsBytes {
		return nil, invalid("args", fmt.Sprintf("of %d bytes", len(data)), fmt.Sprintf("larger than the %d-byte limit", MaxArgsBytes))
	}
	p := &InsertParams{
		ID:           o.ID,
		Kind:         kind,
		Queue:        o.Queue,
		Args:         e.codec.ToJSONB(codecName, data),
		Codec:        codecName,
		Name:         o.Name,
		Description:  o.Description,
		Tags:         o.Tags,
		Priority:     o.Priority,
		MaxAttempts:  o.MaxAttempts,
		RetryDelay:   o.RetryDelay,
		RetryBackoff: o.RetryBackoff,
		Timeout:      o.Timeout,
		DependsOn:    o.DependsOn,
		RunAnyway:    o.RunAnyway,
		Callback:     o.Callback,
		ResultTTL:    o.ResultTTL,
		StoreResult:  !cfg.DisableResults,
		Metadata:     o.Metadata,
	}
	if o.StoreResult != nil {
		p.StoreResult = *o.StoreResult
	}
	p.PresetID = p.ID != uuid.Nil
	if p.ID == uuid.Nil {
		id, err := e.ids.next()
		if err != nil {
			return nil, fmt.Errorf("make task id: %w", err)
		}
		p.ID = id
	}
	if p.Queue == "" {
		p.Queue = DefaultQueue
	}
	if !ValidQueueName(p.Queue) {
		return nil, invalid("queue", fmt.Sprintf("%q", p.Queue), "use 1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit")
	}
	if p.Priority < math.MinInt16 || p.Priority > math.MaxInt16 {
		return nil, invalid("priority", p.Priority, "must be between -32768 and 32767")
	}
	if o.RunIn < 0 {
		return nil, invalid("RunIn", o.RunIn, "must not be negative")
	}
	switch {
	case !o.RunAt.IsZero():
		p.RunAt = o.RunAt
	case o.RunIn > 0:
		p.RunAt = time.Now().Add(o.RunIn)
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = cfg.MaxAttempts
	}
	if p.MaxAttempts < 1 || p.MaxAttempts > 1000 {
		return nil, invalid("MaxAttempts", p.MaxAttempts, "must be between 1 and 1000")
	}
	if p.RetryDelay < 0 {
		return nil, invalid("RetryDelay", p.RetryDelay, "must not be negative")
	}
	if p.RetryDelay == 0 {
		p.RetryDelay = cfg.RetryDelay
	}
	if p.RetryBackoff == "" {
		p.RetryBackoff = cfg.RetryBackoff
	}
	if p.RetryBackoff != jobs.BackoffFixed && p.RetryBackoff != jobs.BackoffExponential {
		return nil, invalid("RetryBackoff", fmt.Sprintf("%q", p.RetryBackoff), `must be "fixed" or "exponential"`)
	}
	if p.Timeout < 0 {
		return nil, invalid("Timeout", p.Timeout, "must not be negative")
	}
	if p.Timeout == 0 {
		p.Timeout = cfg.TaskTimeout
	}
	ttl := o.TTL
	if ttl < 0 {
		return nil, invalid("TTL", ttl, "must not be negative")
	}
	if ttl == 0 {
		ttl = cfg.TaskTTL
	}
	if ttl > 0 {
		exp := time.Now().Add(ttl)
		if !p.RunAt.IsZero() && p.RunAt.After(time.Now()) {
			exp = p.RunAt.Add(ttl)
		}
		p.ExpiresAt = &exp
	}
	if p.ResultTTL < 0 {
		return nil, invalid("ResultTTL", p.ResultTTL, "must not be negative")
	}
	if p.ResultTTL == 0 {
		p.ResultTTL = cfg.ResultTTL
	}
	if len(p.Name) > 1000 {
		return nil, invalid("Name", fmt.Sprintf("of %d bytes", len(p.Name)), "longer than 1000 bytes")
	}
	for _, tag := range p.Tags {
		if tag == "" || len(tag) > 255 {
			return nil, invalid("Tags", fmt.Sprintf("%q", tag), "each tag must be 1-255 bytes")
		}
	}
	if c := p.Callback; c != nil {
		if c.Kind == "" {
			return nil, invalid("Callback.Kind", `""`, "a callback needs a kind")
		}
		if _, ok := e.registry.Lookup(c.Kind); !ok && e.registry.Len() > 0 {
			return nil, invalid("Callback.Kind", fmt.Sprintf("%q", c.Kind), "no worker is registered for it on this client")
		}
		if c.Queue != "" && !ValidQueueName(c.Queue) {
			return nil, invalid("Callback.Queue", fmt.Sprintf("%q", c.Queue), "not a valid queue name")
		}
		if len(c.Args) > 0 && !json.Valid(c.Args) {
			return nil, invalid("Callback.Args", nil, "not valid JSON")
		}
	}
	for _, d := range p.DependsOn {
		if d == p.ID {
			return nil, invalid("DependsOn", d, "a task cannot depend on itself")
		}
	}
	if u := o.Unique; u != nil {
		key, states, err := uniqueKey(p, data, u)
		if err != nil {
			return nil, err
		}
		p.UniqueKey, p.UniqueStates = key, states
	}
	return p, nil
}

// DefaultQueue is the queue of a task that names none.
const DefaultQueue = "default"

// requiredUniqueStatuses are the statuses every unique task is unique among.
var requiredUniqueStatuses = []jobs.Status{jobs.StatusPending, jobs.StatusWaiting, jobs.StatusRunning, jobs.StatusRetry}

// uniqueKey hashes what makes p a duplicate under u.
func uniqueKey(p *InsertParams, args []byte, u *jobs.UniqueOpts) ([]byte, []jobs.Status, error) {
	states := u.ByStatus
	if len(states) == 0 {
		states = jobs.DefaultUniqueStatuses
	}
	for _, s := range states {
		if !s.Valid() {
			return nil, nil, invalid("Unique.ByStatus", fmt.Sprintf("%q", s), "not a task status")
		}
	}
	// A task moves between the unfinished statuses on its own (claim, retry,
	// rescue, release); if one of them were left out, such a move could collide
	// with a newer duplicate, and the completion or rescue writing it would fail.
	for _, s := range requiredUniqueStatuses {
		if !slices.Contains(states, s) {
			return nil, nil, invalid("Unique.ByStatus", fmt.Sprint(states), "must include pending, waiting, running and retry")
		}
	}
	if u.ByPeriod < 0 {
		return nil, nil, invalid("Unique.ByPeriod", u.ByPeriod, "must not be negative")
	}
	h := sha256.New()
	fmt.Fprintf(h, "kind=%s\x00", p.Kind)
	if u.ByQueue {
		fmt.Fprintf(h, "queue=%s\x00", p.Queue)
	}
	if u.ByArgs || len(u.ArgsFields) > 0 {
		part := args
		if len(u.ArgsFields) > 0 {
			var all map[string]json.RawMessage
			if err := json.Unmarshal(p.Args, &all); err != nil {
				return nil, nil, invalid("Unique.ArgsFields", u.ArgsFields, "args are not a JSON object")
			}
			picked := make(map[string]json.RawMessage, len(u.ArgsFields))
			for _, f := range u.ArgsFields {
				picked[f] = all[f]
			}
			part, _ = json.Marshal(picked) // map keys are sorted: stable
		} else {
			// Canonical form: jsonb-equivalent object key order, numbers as
			// written (as float64, ids above 2^53 would collide).
			dec := json.NewDecoder(bytes.NewReader(p.Args))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err == nil {
				part, _ = json.Marshal(v)
			}
		}
		fmt.Fprintf(h, "args=%s\x00", part)
	}
	if u.ByPeriod > 0 {
		at := p.RunAt
		if at.IsZero() {
			at = time.Now()
		}
		fmt.Fprintf(h, "period=%d\x00", at.Truncate(u.ByPeriod).Unix())
	}
	return h.Sum(nil), states, nil
}

// Insert writes params in one round trip (plus one FOR SHARE read when some
// depend on tasks outside the batch) and wakes the producers of the queues
// that got runnable tasks. In a caller's transaction, the tasks exist only if
// it commits.
func (e *Engine) Insert(ctx context.Context, db DB, params []*InsertParams) ([]InsertResult, error) {
	if len(params) == 0 {
		return nil, nil
	}
	if len(params) >= copyMinRows && copyable(params) {
		return e.copyInsert(ctx, db, params)
	}
	for _, p := range params {
		if len(p.DependsOn) > 0 {
			// The FOR SHARE read of the dependencies and the insert must be
			// one transaction (a savepoint inside a caller's).
			var results []InsertResult
			err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
				var err error
				results, err = e.insert(ctx, tx, params)
				return err
			})
			return results, err
		}
	}
	return e.insert(ctx, db, params)
}

func (e *Engine) insert(ctx context.Context, db DB, params []*InsertParams) ([]InsertResult, error) {
	statuses, err := e.dependencyStatuses(ctx, db, params)
	if err != nil {
		return nil, err
	}
	dupOf := batchDuplicates(params, statuses)
	if dupOf == nil {
		return e.insertRows(ctx, db, params, statuses)
	}
	// ON CONFLICT cannot see rows of its own statement: a unique task that
	// repeats an earlier one of the same batch is not sent, and is reported
	// as a duplicate of it (or of the row that one turned out to duplicate).
	kept := make([]*InsertParams, 0, len(params))
	keptStatuses := make([]jobs.Status, 0, len(params))
	at := make([]int, len(params)) // index in kept
	replaced := map[uuid.UUID]uuid.UUID{}
	for i, p := range params {
		if j := dupOf[i]; j >= 0 {
			replaced[p.ID] = params[j].ID
			continue
		}
		at[i] = len(kept)
		kept = append(kept, p)
		keptStatuses = append(keptStatuses, statuses[i])
	}
	for k, p := range kept {
		// A dependency on a dropped duplicate is a dependency on its original.
		for d, dep := range p.DependsOn {
			if orig, ok := replaced[dep]; ok {
				c := *p
				c.DependsOn = slices.Clone(p.DependsOn)
				c.DependsOn[d] = orig
				p, kept[k] = &c, &c
			}
		}
	}
	res, err := e.insertRows(ctx, db, kept, keptStatuses)
	if err != nil {
		return nil, err
	}
	results := make([]InsertResult, len(params))
	for i := range params {
		if j := dupOf[i]; j >= 0 {
			results[i] = InsertResult{ID: res[at[j]].ID, Duplicate: true}
		} else {
			results[i] = res[at[i]]
		}
	}
	return results, nil
}

// batchDuplicates returns, for each task of a batch, the index of an earlier
// task of the batch with the same unique key that it duplicates, or -1; nil
// when there are none. A task takes part in uniqueness only when the status
// it is inserted with is one of its unique statuses (as in tasks_unique_idx).
func batchDuplicates(params []*InsertParams, statuses []jobs.Status) []int {
	var (
		first map[string]int
		dupOf []int
	)
	for i, p := range params {
		if p.UniqueKey == nil || !slices.Contains(p.UniqueStates, statuses[i]) {
			continue
		}
		if first == nil {
			first = map[string]int{}
		}
		j, seen := first[string(p.UniqueKey)]
		if !seen {
			first[string(p.UniqueKey)] = i
			continue
		}
		if dupOf == nil {
			dupOf = make([]int, len(params))
			for k := range dupOf {
				dupOf[k] = -1
			}
		}
		dupOf[i] = j
	}
	return dupOf
}

// insertRows writes tasks whose statuses are decided and whose unique keys
// do not repeat within the batch.
func (e *Engine) insertRows(ctx context.Context, db DB, params []*InsertParams, statuses []jobs.Status) ([]InsertResult, error) {
	n := len(params)
	var (
		ids          = make([]uuid.UUID, n)
		kinds        = make([]string, n)
		queues       = make([]string, n)
		args         = make([]string, n)
		codecs       = make([]string, n)
		names        = make([]*string, n)
		descs        = make([]*string, n)
		tags         = make([]*string, n)
		prios        = make([]int16, n)
		stats        = make([]string, n)
		runAts       = make([]*time.Time, n)
		maxAttempts  = make([]int32, n)
		retryDelays  = make([]time.Duration, n)
		backoffs     = make([]string, n)
		expires      = make([]*time.Time, n)
		timeouts     = make([]*time.Duration, n)
		deps         = make([]*string, n)
		runAnyway    = make([]bool, n)
		callbacks    = make([]*string, n)
		resultTTLs   = make([]*time.Duration, n)
		storeResults = make([]bool, n)
		uniqueKeys   = make([][]byte, n)
		uniqueStates = make([]*string, n)
		scheduleIDs  = make([]*uuid.UUID, n)
		scheduledAts = make([]*time.Time, n)
		metadata     = make([]*string, n)
		rotating     = make([]bool, n)
	)
	wake := wakeSet{}
	now := time.Now()
	horizon := e.rotateEvery()
	for i, p := range params {
		rotating[i] = p.rotates(now, horizon)
		ids[i], kinds[i], queues[i], args[i], codecs[i] = p.ID, p.Kind, p.Queue, string(p.Args), p.Codec
		names[i], descs[i] = nonEmpty(p.Name), nonEmpty(p.Description)
		if len(p.Tags) > 0 {
			b, _ := json.Marshal(p.Tags)
			tags[i] = ptr(string(b))
		}
		prios[i] = int16(p.Priority)
		stats[i] = string(statuses[i])
		if !p.RunAt.IsZero() {
			runAts[i] = ptr(p.RunAt)
		}
		maxAttempts[i] = int32(p.MaxAttempts)
		retryDelays[i], backoffs[i], expires[i] = p.RetryDelay, string(p.RetryBackoff), p.ExpiresAt
		if p.Timeout > 0 {
			timeouts[i] = ptr(p.Timeout)
		}
		if len(p.DependsOn) > 0 {
			deps[i] = ptr(uuidArrayLiteral(p.DependsOn))
		}
		runAnyway[i] = p.RunAnyway
		if cb, err := p.callbackJSON(); err != nil {
			return nil, err
		} else if cb != nil {
			callbacks[i] = ptr(string(cb))
		}
		if p.ResultTTL > 0 {
			resultTTLs[i] = ptr(p.ResultTTL)
		}
		storeResults[i], uniqueKeys[i] = p.StoreResult, p.UniqueKey
		if p.UniqueKey != nil {
			uniqueStates[i] = ptr(statusArrayLiteral(p.UniqueStates))
		}
		scheduleIDs[i], scheduledAts[i] = p.ScheduleID, p.ScheduledAt
		if md, err := p.metadataJSON(); err != nil {
			return nil, err
		} else if md != nil {
			metadata[i] = ptr(string(md))
		}
		if statuses[i] == jobs.StatusPending && p.dueBy(now) {
			wake.add(p.Queue, p.RunAt)
		}
	}
	var batch pgx.Batch
	batch.Queue(e.sql.insert, ids, kinds, queues, args, codecs, names, descs, tags, prios, stats, runAts,
		maxAttempts, retryDelays, backoffs, expires, timeouts, deps, runAnyway, callbacks, resultTTLs,
		storeResults, uniqueKeys, uniqueStates, scheduleIDs, scheduledAts, metadata, e.cfg.EventLevel == EventsAll,
		rotating)
	if len(wake) > 0 {
		queues, runAts := wake.args()
		batch.Queue(e.sql.wake, e.insertChannel, queues, runAts)
	}
	br := db.SendBatch(ctx, &batch)
	results, err := scanInsert(br, params, statuses)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, insertError(err)
	}
	return results, nil
}

func scanInsert(br pgx.BatchResults, params []*InsertParams, statuses []jobs.Status) ([]InsertResult, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byID := make(map[uuid.UUID]int, len(params))
	byKey := map[string]int{}
	for i, p := range params {
		byID[p.ID] = i
		if p.UniqueKey != nil {
			byKey[string(p.UniqueKey)] = i
		}
	}
	results := make([]InsertResult, len(params))
	for rows.Next() {
		var (
			id  uuid.UUID
			key []byte
			dup bool
		)
		if err := rows.Scan(&id, &key, &dup); err != nil {
			return nil, err
		}
		i, ok := byID[id]
		if dup || !ok {
			i = byKey[string(key)]
		}
		results[i] = InsertResult{ID: id, Duplicate: dup}
		if !dup {
			results[i].Status = statuses[i]
		}
	}
	return results, rows.Err()
}

func insertError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "21000": // ON CONFLICT DO UPDATE cannot affect row a second time
			return fmt.Errorf("%w: two tasks in one batch have the same unique key: %w", jobs.ErrInvalidInput, err)
		case "23505":
			// The primary key of tasks, or of one of its partitions.
			if strings.HasPrefix(pgErr.TableName, "tasks") && strings.HasSuffix(pgErr.ConstraintName, "_pkey") {
				return fmt.Errorf("%w: a task with that ID already exists: %w", jobs.ErrInvalidInput, err)
			}
		case "23514":
			return fmt.Errorf("%w: rejected by constraint %s: %w", jobs.ErrInvalidInput, pgErr.ConstraintName, err)
		}
	}
	return fmt.Errorf("insert tasks: %w", err)
}

// dependencyStatuses decides each task's initial status from its
// dependencies: the ones in the batch and the ones already stored (read FOR
// SHARE, so a dependency cannot finish unseen while this insert commits).
func (e *Engine) dependencyStatuses(ctx context.Context, db DB, params []*InsertParams) ([]jobs.Status, error) {
	statuses := make([]jobs.Status, len(params))
	inBatch := make(map[uuid.UUID]int, len(params))
	var external []uuid.UUID
	for i, p := range params {
		statuses[i] = jobs.StatusPending
		if _, dup := inBatch[p.ID]; dup {
			return nil, invalid("ID", p.ID, "appears twice in the batch")
		}
		inBatch[p.ID] = i
	}
	for _, p := range params {
		for _, d := range p.DependsOn {
			if _, ok := inBatch[d]; !ok {
				external = append(external, d)
			}
		}
	}
	hasDeps := false
	for _, p := range params {
		if len(p.DependsOn) > 0 {
			hasDeps = true
			break
		}
	}
	if !hasDeps {
		return statuses, nil
	}
	stored := map[uuid.UUID]jobs.Status{}
	if len(external) > 0 {
		slices.SortFunc(external, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		external = slices.Compact(external)
		rows, err := db.Query(ctx, `SELECT id, status FROM `+table(e.sql.schema, "tasks")+` WHERE id = ANY($1) ORDER BY id FOR SHARE`, external)
		if err != nil {
			return nil, fmt.Errorf("read dependencies: %w", err)
		}
		for rows.Next() {
			var id uuid.UUID
			var s string
			if err := rows.Scan(&id, &s); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read dependencies: %w", err)
			}
			stored[id] = jobs.Status(s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read dependencies: %w", err)
		}
		for _, id := range external {
			if _, ok := stored[id]; !ok {
				return nil, invalid("DependsOn", id, "no such task")
			}
		}
	}
	// Resolve in dependency order; a cycle is an error.
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int, len(params))
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case done:
			return nil
		case visiting:
			return invalid("DependsOn", params[i].ID, "dependencies form a cycle")
		}
		state[i] = visiting
		p := params[i]
		allDone, anyFailed, allSucceeded := true, false, true
		for _, d := range p.DependsOn {
			s, ok := stored[d]
			if j, in := inBatch[d]; in {
				if err := visit(j); err != nil {
					return err
				}
				s, ok = statuses[j], true
				if s == jobs.StatusPending || s == jobs.StatusWaiting {
					s = jobs.StatusWaiting // a new task has not run yet
				}
			}
			if !ok {
				return invalid("DependsOn", d, "no such task")
			}
			if !s.Finished() {
				allDone = false
			}
			if s != jobs.StatusSuccess {
				allSucceeded = false
			}
			if s == jobs.StatusError || s == jobs.StatusCancelled || s == jobs.StatusExpired {
				anyFailed = true
			}
		}
		switch {
		case len(p.DependsOn) == 0:
			statuses[i] = jobs.StatusPending
		case p.RunAnyway && allDone, !p.RunAnyway && allSucceeded:
			statuses[i] = jobs.StatusPending
		case !p.RunAnyway && anyFailed:
			statuses[i] = jobs.StatusCancelled
		default:
			statuses[i] = jobs.StatusWaiting
		}
		state[i] = done
		return nil
	}
	for i := range params {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return statuses, nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func ptr[T any](v T) *T { return &v }

func uuidArrayLiteral(ids []uuid.UUID) string {
	b := make([]byte, 0, 2+37*len(ids))
	b = append(b, '{')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, id.String()...)
	}
	return string(append(b, '}'))
}

func statusArrayLiteral(states []jobs.Status) string {
	b := []byte{'{'}
	for i, s := range states {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, s...) // statuses are validated lower-case words
	}
	return string(append(b, '}'))
}

// wakeSet is the queues an insert makes tasks runnable in, each with the
// earliest run_at given explicitly (zero: only tasks that take the
// transaction's now()). Its NOTIFY tells producers where to look; see
// sqlWake.
type wakeSet map[string]time.Time

func (w wakeSet) add(queue string, runAt time.Time) {
	if t, ok := w[queue]; !ok || (!runAt.IsZero() && (t.IsZero() || runAt.Before(t))) {
		w[queue] = runAt
	}
}

// args are sqlWake's $2 and $3: queues in order, and their run_at (nil: now()).
func (w wakeSet) args() ([]string, []*time.Time) {
	queues := make([]string, 0, len(w))
	for q := range w {
		queues = append(queues, q)
	}
	slices.Sort(queues)
	runAts := make([]*time.Time, len(queues))
	for i, q := range queues {
		if t := w[q]; !t.IsZero() {
			runAts[i] = &t
		}
	}
	return queues, runAts
}

// copyMinRows is the smallest batch Insert writes with COPY: below it the
// extra round trips of COPY (BEGIN, the current partition, COMMIT) cost more
// than the multi-row INSERT saves.
const copyMinRows = 500

// copyable reports whether every task of a batch can go by COPY: no unique
// key and no dependency (both need the database's answer per row), and no
// schedule tick (its unique index is an error under COPY, a conflict to
// report otherwise).
func copyable(params []*InsertParams) bool {
	for _, p := range params {
		if p.UniqueKey != nil || len(p.DependsOn) > 0 || p.ScheduleID != nil {
			return false
		}
	}
	return true
}

// copyColumns are the columns every COPY of tasks writes. metadata and
// run_at are written only by the COPYs whose tasks set them (copyShape):
// left out, they take their defaults, '{}' and now() by the database clock,
// which cost the server nothing a row where a jsonb value costs a parse.
var copyColumns = []string{"id", "kind", "queue", "args", "codec", "name", "description", "tags", "priority",
	"max_attempts", "retry_delay", "retry_backoff", "expires_at", "timeout", "callback", "result_ttl",
	"store_result", "gen"}

// copyShape is the set of optional columns one COPY of tasks writes.
type copyShape int

const (
	copyMetadata copyShape = 1 << iota
	copyRunAt

	copyShapes = 4 // every combination of the two
)

func shapeOf(p *InsertParams) copyShape {
	var s copyShape
	if len(p.Metadata) > 0 {
		s |= copyMetadata
	}
	if !p.RunAt.IsZero() {
		s |= copyRunAt
	}
	return s
}

// columns lists the columns s writes, in the order copyReader renders them.
func (s copyShape) columns() []string {
	cols := slices.Clone(copyColumns)
	if s&copyMetadata != 0 {
		cols = append(cols, "metadata")
	}
	if s&copyRunAt != 0 {
		cols = append(cols, "run_at")
	}
	return cols
}

// copyInsert writes a large batch of plain tasks with COPY, in one
// transaction with their enqueued events and the wake-up NOTIFY: every task
// is new and pending, so the results are known without reading them back.
func (e *Engine) copyInsert(ctx context.Context, db DB, params []*InsertParams) ([]InsertResult, error) {
	tx, err := db.Begin(ctx) // in a caller's transaction, a savepoint: the caller decides
	if err != nil {
		return nil, fmt.Errorf("insert tasks: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	// Tasks that write different columns go in separate COPYs.
	var groups [copyShapes][]*InsertParams
	wake := wakeSet{}
	start := time.Now()
	for _, p := range params {
		s := shapeOf(p)
		groups[s] = append(groups[s], p)
		if p.dueBy(start) {
			wake.add(p.Queue, p.RunAt)
		}
	}
	var gen int16 // the rotating partition new tasks go to
	if err := tx.QueryRow(ctx, e.sql.rotationGen).Scan(&gen); err != nil {
		return nil, fmt.Errorf("insert tasks: %w", err)
	}
	for s, group := range groups {
		if len(group) == 0 {
			continue
		}
		r := &copyReader{params: group, shape: copyShape(s), gen: gen, now: start, horizon: e.rotateEvery()}
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, r, e.sql.copyTasks[s]); err != nil {
			if r.err != nil {
				return nil, r.err
			}
			return nil, insertError(err)
		}
	}
	var batch pgx.Batch
	if e.cfg.EventLevel == EventsAll {
		ids, kinds, queues := make([][16]byte, len(params)), make([]string, len(params)), make([]string, len(params))
		for i, p := range params {
			ids[i], kinds[i], queues[i] = p.ID, p.Kind, p.Queue
		}
		batch.Queue(e.sql.copyEvents, ids, kinds, queues)
	}
	if len(wake) > 0 {
		queues, runAts := wake.args()
		batch.Queue(e.sql.wake, e.insertChannel, queues, runAts)
	}
	if batch.Len() > 0 {
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return nil, insertError(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, insertError(err)
	}
	results := make([]InsertResult, len(params))
	for i, p := range params {
		results[i] = InsertResult{ID: p.ID, Status: jobs.StatusPending}
	}
	return results, nil
}
