package queue

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omniqhq/omniq/jobs"
)

// outcome is the end of one attempt, waiting to be written.
type outcome struct {
	id           uuid.UUID
	gen          int16 // the row's partition: (id, gen) is its key
	attempt      int
	status       jobs.Status
	runAt        *time.Time
	errEntry     []byte // JSON AttemptError, nil on success
	finishedAt   time.Time
	result       []byte
	resultCodec  string
	resultStatus jobs.ResultStatus
	errMsg       string
	traceback    string
	attemptAdj   int
	event        string
	queue        string
	// noCallback is set when the task is known to have no callback, so the
	// batch need not look for one.
	noCallback bool
}

// completer writes outcomes in batches: one round trip per batch for the task
// transitions, results, events, dependency release, callbacks and the
// completion NOTIFY. A batch that cannot be written is kept and retried.
//
// completerWriters batches are written at once, each on its own connection,
// so one batch's statements run while another's commit waits for its flush
// and the server's second core has work: a single writer, one batch in
// flight, was the ceiling of the whole pipeline with results and events on.
// Their dependency statements take turns (see sqlDepsLock).
type completer struct {
	e   *Engine
	log *slog.Logger

	mu      sync.Mutex
	pending []*outcome
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}

	inflight [][]*outcome // the batches being written, under mu

	writing atomic.Int32 // writers between taking a batch and looking for more

	// throttled is set by a producer that skipped a fetch because the
	// backlog was full; the next flush wakes the producers.
	throttled atomic.Bool
}

// backlogFull reports whether outcomes wait to be written faster than the
// completer writes them: producers then stop claiming until it catches up,
// so started-but-unrecorded tasks (and the running index) stay bounded.
func (c *completer) backlogFull() bool {
	c.mu.Lock()
	n := len(c.pending)
	c.mu.Unlock()
	if n < 10*c.e.cfg.CompleterBatchSize {
		return false
	}
	c.throttled.Store(true)
	return true
}

func newCompleter(e *Engine) *completer {
	return &completer{
		e:    e,
		log:  e.cfg.Logger("completer"),
		kick: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
}

func (c *completer) start() { go c.run() }

// stop writes whatever is pending and returns.
func (c *completer) stop() {
	close(c.quit)
	<-c.done
}

func (c *completer) add(o *outcome) {
	c.mu.Lock()
	c.pending = append(c.pending, o)
	n := len(c.pending)
	c.mu.Unlock()
	if n == 1 || n >= c.e.cfg.CompleterBatchSize {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// completerWriters is how many batches are written at once.
const completerWriters = 2

func (c *completer) run() {
	defer close(c.done)
	var wg sync.WaitGroup
	for range completerWriters {
		wg.Go(c.write1)
	}
	wg.Wait()
}

// write1 is one writer: it waits for outcomes, lets a batch gather, writes
// it, and retries with backoff while the database fails.
func (c *completer) write1() {
	backoff := time.Duration(0)
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			c.drain()
			return
		}
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		// A second writer starts only on a full batch: under a load one
		// writer keeps up with, two would split it into smaller batches that
		// cost more per task. The busy writer takes the rest when it is done.
		if c.writing.Load() > 0 && n < c.e.cfg.CompleterBatchSize {
			continue
		}
		c.writing.Add(1)
		// Let a batch gather, unless it is already full.
		if n < c.e.cfg.CompleterBatchSize {
			t := time.NewTimer(c.e.cfg.CompleterFlushInterval)
			select {
			case <-t.C:
			case <-c.quit:
			}
			t.Stop()
		}
		for {
			err := c.flushOnce()
			if err == nil {
				backoff = 0
				break
			}
			backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
			c.log.Error("writing completions failed; will retry", "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-c.quit:
				c.writing.Add(-1)
				c.drain()
				return
			}
		}
		c.writing.Add(-1)
		c.mu.Lock()
		more := len(c.pending) > 0
		c.mu.Unlock()
		if c.throttled.Swap(false) {
			c.e.wakeAll()
		}
		if more {
			select {
			case c.kick <- struct{}{}:
			default:
			}
		}
	}
}

// drain writes everything pending, retrying for a bounded time at stop.
func (c *completer) drain() {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n == 0 {
			return
		}
		if err := c.flushOnce(); err != nil {
			if time.Now().After(deadline) {
				c.log.Error("dropping unwritten completions at stop; their tasks will be rescued", "error", err, "count", n)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// flushOnce writes up to one batch; on failure the batch goes back in front.
func (c *completer) flushOnce() error {
	c.mu.Lock()
	n := min(len(c.pending), c.e.cfg.CompleterBatchSize)
	batch := c.pending[:n:n]
	c.pending = c.pending[n:]
	if n == 0 {
		c.mu.Unlock()
		return nil
	}
	c.inflight = append(c.inflight, batch)
	c.mu.Unlock()
	first := &batch[0] // batch itself changes below
	defer func() {
		c.mu.Lock()
		c.inflight = slices.DeleteFunc(c.inflight, func(b []*outcome) bool { return &b[0] == first })
		c.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.write(ctx, batch)
	if err != nil && refused(err) {
		// The database refused the data, not the connection: retrying the
		// same batch would fail forever and hold back every other outcome.
		err = c.isolate(ctx, batch)
		batch = nil // isolate put back what it could not write
	}
	if err != nil {
		c.requeue(batch)
		return err
	}
	return nil
}

// holding returns which of ids have an outcome waiting or being written.
func (c *completer) holding(ids []uuid.UUID) map[uuid.UUID]bool {
	want := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	held := map[uuid.UUID]bool{}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, list := range append([][]*outcome{c.pending}, c.inflight...) {
		for _, o := range list {
			if want[o.id] {
				held[o.id] = true
			}
		}
	}
	return held
}

// requeue puts outcomes back in front of the pending ones.
func (c *completer) requeue(batch []*outcome) {
	if len(batch) == 0 {
		return
	}
	c.mu.Lock()
	c.pending = append(batch, c.pending...)
	c.mu.Unlock()
}

// refused reports whether err is the database rejecting the data written
// (a data exception or a constraint), which no retry can fix.
func refused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23"))
}

// isolate writes a refused batch one outcome at a time. An outcome the
// database refuses (a NUL byte or invalid UTF-8 in an error message, a result
// jsonb cannot hold) is written again cleaned: its text made valid, its result
// dropped and the task failed with the reason. What fails for other reasons
// is put back to be retried.
func (c *completer) isolate(ctx context.Context, batch []*outcome) error {
	for i, o := range batch {
		err := c.write(ctx, []*outcome{o})
		if err != nil && refused(err) {
			clean := cleaned(o, err)
			if err = c.write(ctx, []*outcome{clean}); err != nil && refused(err) {
				c.log.Error("dropping an outcome the database refuses; its task stays running until this client is gone and it is rescued",
					"task_id", o.id, "error", err)
				err = nil
			}
		}
		if err != nil {
			c.requeue(batch[i:])
			return err
		}
	}
	return nil
}

// cleaned is o made writable: text valid UTF-8 without NUL bytes, and no
// result (a success whose result was refused becomes an error).
func cleaned(o *outcome, cause error) *outcome {
	x := *o
	x.errMsg, x.traceback = validText(o.errMsg), validText(o.traceback)
	if o.result != nil {
		x.result, x.resultCodec = nil, ""
		reason := "omniq: the result could not be stored: " + validText(cause.Error())
		if x.status == jobs.StatusSuccess {
			x.status, x.resultStatus, x.event, x.runAt, x.attemptAdj = jobs.StatusError, jobs.ResultError, "error", nil, 0
			x.errMsg = reason
		}
	}
	if o.errEntry != nil || x.status != o.status {
		var ae jobs.AttemptError
		_ = json.Unmarshal(o.errEntry, &ae)
		if x.status != o.status {
			ae = jobs.AttemptError{Attempt: o.attempt, At: o.finishedAt, Error: x.errMsg}
		}
		ae.Error, ae.Trace = validText(ae.Error), validText(ae.Trace)
		x.errEntry, _ = json.Marshal(ae)
	}
	return &x
}

// validText is s as PostgreSQL text and jsonb accept it.
func validText(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

func (c *completer) write(ctx context.Context, batch []*outcome) error {
	b := c.e.completionBatch(batch)
	// Every join of the batch's statements is a lookup of a few rows by key,
	// so hash and merge joins are off: with them the planner hashed a whole
	// partition of tasks, read by a Seq Scan, to find a batch's 1,000 rows
	// (7.2 ms against 3.4 ms by primary key at 20,000 tasks, and growing with
	// the table). A large batch plans its statements for its own arrays (a
	// generic plan once guessed their length and joined 1,000 outcomes to
	// the running tasks by nested loop, 212 µs/task against 55). A small
	// one, the common case below full load, runs the generic plans, as claims
	// do: planning the batch's statements afresh cost more than running them
	// (about a third of the server's CPU at 1,000 tasks/s in batches of a
	// few). The settings end with the batch's implicit transaction.
	plans := sqlCustomPlans
	if len(batch) <= genericPlanBatch {
		plans = sqlGenericPlans
	}
	b.QueuedQueries = append([]*pgx.QueuedQuery{{SQL: plans}}, b.QueuedQueries...)
	return c.e.pool.SendBatch(ctx, b).Close()
}

// genericPlanBatch is the largest completion batch that runs generic plans.
const genericPlanBatch = 100

// completionBatch is the one pipelined round trip that records outcomes: the
// transitions with their results and events, then (each a later statement of
// the same transaction, so it sees what the earlier ones wrote and what
// concurrent inserts committed meanwhile) dependents cancelled or released,
// callbacks enqueued, and the NOTIFYs.
func (e *Engine) completionBatch(batch []*outcome) *pgx.Batch {
	n := len(batch)
	var (
		ids          = make([]uuid.UUID, n)
		gens         = make([]int16, n)
		attempts     = make([]int32, n)
		statuses     = make([]string, n)
		runAts       = make([]*time.Time, n)
		errs         = make([]*string, n)
		finished     = make([]time.Time, n)
		results      = make([]*string, n)
		resCodecs    = make([]string, n)
		resStatus    = make([]*string, n)
		errMsgs      = make([]*string, n)
		traces       = make([]*string, n)
		adjs         = make([]int32, n)
		events       = make([]string, n)
		withCallback []uuid.UUID
		failed       []uuid.UUID
		callbackOf   []uuid.UUID
	)
	for i, o := range batch {
		ids[i], gens[i], attempts[i], statuses[i], runAts[i], finished[i] = o.id, o.gen, int32(o.attempt), string(o.status), o.runAt, o.finishedAt
		if o.errEntry != nil {
			errs[i] = ptr(string(o.errEntry))
		}
		if o.result != nil {
			results[i] = ptr(string(o.result))
		}
		resCodecs[i] = o.resultCodec
		if resCodecs[i] == "" {
			resCodecs[i] = "json"
		}
		if o.resultStatus != "" {
			resStatus[i] = ptr(string(o.resultStatus))
		}
		errMsgs[i], traces[i] = nonEmpty(o.errMsg), nonEmpty(o.traceback)
		adjs[i], events[i] = int32(o.attemptAdj), o.event
		// Every outcome may end its task: one that would run it again ends
		// it cancelled when a cancel request was written meanwhile (see
		// sqlComplete). The statements below read the status as written, so
		// they are given every id as one that may have ended, and all but
		// successes as ones that may have failed.
		if !o.noCallback {
			withCallback = append(withCallback, o.id)
			callbackOf = append(callbackOf, callbackID(o.id))
		}
		if o.status != jobs.StatusSuccess {
			failed = append(failed, o.id)
		}
	}
	var resultTTL *time.Duration
	if e.cfg.ResultTTL > 0 {
		resultTTL = &e.cfg.ResultTTL
	}
	idBytes := uuidBytes(ids)
	b := &pgx.Batch{}
	b.Queue(e.sql.complete, idBytes, attempts, statuses, runAts, errs, finished, results, resCodecs, resStatus,
		errMsgs, traces, adjs, events, resultTTL, e.cfg.EventLevel, gens)
	b.Queue(e.sql.depsLock, e.sql.schema)
	if len(failed) > 0 {
		b.Queue(e.sql.cancelDeps, uuidBytes(failed), e.cfg.EventLevel)
	}
	b.Queue(e.sql.releaseDeps, idBytes, e.insertChannel)
	if len(withCallback) > 0 {
		b.Queue(e.sql.fireCallbacks, uuidBytes(withCallback), uuidBytes(callbackOf), e.insertChannel)
	}
	b.Queue(e.sql.notify, e.completeChannel, []string{completePayload(ids)})
	retries := wakeSet{}
	for _, o := range batch {
		// A retry due now, or a task claimed ahead and given back.
		if !o.status.Finished() && o.runAt != nil && !o.runAt.After(time.Now()) {
			retries.add(o.queue, *o.runAt)
		}
	}
	if len(retries) > 0 {
		queues, runAts := retries.args()
		b.Queue(e.sql.wake, e.insertChannel, queues, runAts)
	}
	return b
}

// maxNotifiedIDs bounds the ids a completion NOTIFY names (8000-byte payloads).
const maxNotifiedIDs = 200

// completePayload names the tasks a completion batch finished, so waiters
// check only those; "" (too many, or unknown) means "check everything".
func completePayload(ids []uuid.UUID) string {
	if len(ids) == 0 || len(ids) > maxNotifiedIDs {
		return ""
	}
	b := make([]byte, 0, len(ids)*37)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, id.String()...)
	}
	return string(b)
}

// callbackNamespace derives callback task ids from parent ids, so firing the
// same parent's callback twice inserts one task.
var callbackNamespace = uuid.MustParse("6f6d6e69-7100-4000-8000-63616c6c6261")

func callbackID(parent uuid.UUID) uuid.UUID { return uuid.NewSHA1(callbackNamespace, parent[:]) }

// uuidBytes hands pgx ids in the form its uuid codec encodes directly:
// []uuid.UUID goes through driver.Valuer, a string and an error per element
// (a third of the client's CPU in omniq-bench before this).
func uuidBytes(ids []uuid.UUID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
