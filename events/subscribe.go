package events

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notifier is the shared LISTEN connection subscriptions are woken by
// (queue.Notifier satisfies it).
type Notifier interface {
	// Start starts the notifier; starting twice does nothing.
	Start()
	// Listen calls fn, which must not block, for each notification on channel.
	Listen(channel string, fn func(payload string)) (unlisten func())
	// OnReconnect registers fn to run after the connection was re-established.
	OnReconnect(fn func())
}

// DefaultBuffer is the capacity of a subscription's channel.
const DefaultBuffer = 1024

// pollInterval is how often a subscription looks for new events when no
// NOTIFY woke it: a safety net only, since every transaction that writes
// events notifies once and a reconnect triggers a catch-up.
const pollInterval = time.Second

// Hub serves the subscriptions of one client: one LISTEN on the events
// channel and one reconnect hook, however many subscribe. Each subscription
// has its own goroutine, which ends when its context does.
type Hub struct {
	store    *Store
	db       DB
	notifier Notifier
	channel  string
	log      *slog.Logger

	mu       sync.Mutex
	subs     map[*subscription]struct{}
	unlisten func()
	hooked   bool
}

// NewHub returns the subscription hub of schema's events. channel is the
// events NOTIFY channel (queue.Channel(schema, "events")).
func NewHub(db DB, schema string, n Notifier, channel string, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{store: NewStore(schema), db: db, notifier: n, channel: channel, log: log,
		subs: map[*subscription]struct{}{}}
}

// subscription is one Subscribe call's state.
type subscription struct {
	f    Filter
	kick chan struct{}
	out  chan Event
	// snapshot is the pg_snapshot (as text) of the last read: every event
	// visible in it has been delivered or filtered out; what commits later
	// belongs to a transaction in its in-progress list or at/after its xmax.
	snapshot string
}

func (s *subscription) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Subscribe delivers the events matching f on the returned channel as they
// commit, each exactly once, until ctx ends; then the channel is closed.
//
// A subscription is woken by the one NOTIFY of each transaction that wrote
// events, and reads what became visible since its previous read by
// transaction id, not by event id: a transaction that commits after another
// may hold smaller event ids, and is still delivered, once. Events arrive in
// commit order, by id within a transaction, so ids are not monotonic across
// transactions. After the LISTEN connection is lost and restored it catches
// up the same way, so nothing is missed or repeated.
//
// Compact rows are expanded (see Expand). At level "none" nothing is
// written and so nothing is delivered; at "failures" only failures.
//
// A slow reader never slows the queue: nothing in the engine waits for a
// subscription. When the channel's buffer is full the subscription stops
// reading until there is room; events are not dropped, they wait in the
// table, and the next read after the reader catches up fetches everything
// committed meanwhile in one query (an event pruned by retention before
// that is lost). buffer <= 0 means DefaultBuffer.
func (h *Hub) Subscribe(ctx context.Context, f Filter, buffer int) (<-chan Event, error) {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	f.Expand = true
	s := &subscription{f: f, kick: make(chan struct{}, 1), out: make(chan Event, buffer)}
	// The first read fixes the starting point before Subscribe returns, so
	// every event that commits after it is delivered.
	first, err := h.read(ctx, s, true)
	if err != nil {
		return nil, err
	}
	h.add(s)
	go func() {
		defer close(s.out)
		defer h.remove(s)
		h.run(ctx, s, first)
	}()
	return s.out, nil
}

func (h *Hub) add(s *subscription) {
	h.notifier.Start()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[s] = struct{}{}
	if h.unlisten == nil {
		h.unlisten = h.notifier.Listen(h.channel, func(string) { h.pokeAll() })
	}
	if !h.hooked {
		h.hooked = true
		h.notifier.OnReconnect(h.pokeAll)
	}
}

func (h *Hub) remove(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
	if len(h.subs) == 0 && h.unlisten != nil {
		h.unlisten()
		h.unlisten = nil
	}
}

func (h *Hub) pokeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.poke()
	}
}

func (h *Hub) run(ctx context.Context, s *subscription, first []Event) {
	if !h.deliver(ctx, s, first) {
		return
	}
	// Events may have committed between the first read and LISTEN taking
	// effect: look once more now.
	s.poke()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-tick.C:
		}
		evs, err := h.read(ctx, s, false)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
			h.log.Warn("reading events for a subscription failed; will retry", "error", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			s.poke()
			continue
		}
		backoff = 0
		if !h.deliver(ctx, s, evs) {
			return
		}
	}
}

// deliver sends evs, waiting for room; false when ctx ended.
func (h *Hub) deliver(ctx context.Context, s *subscription, evs []Event) bool {
	for _, e := range evs {
		select {
		case s.out <- e:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// read returns the events that became visible since s's snapshot (or, the
// first time, those above f.AfterID), expanded and filtered, and moves s's
// snapshot to the one the rows were read in: one statement, one snapshot.
func (h *Hub) read(ctx context.Context, s *subscription, first bool) ([]Event, error) {
	conds, args, err := s.f.where(nil)
	if err != nil {
		return nil, err
	}
	switch {
	case !first:
		args = append(args, s.snapshot)
		n := len(args)
		conds = append(conds, fmt.Sprintf(`(e.xid >= pg_snapshot_xmax($%d::text::pg_snapshot)
			OR e.xid = ANY (ARRAY(SELECT pg_snapshot_xip($%d::text::pg_snapshot))))`, n, n))
	case s.f.AfterID > 0:
		args = append(args, s.f.AfterID)
		conds = append(conds, fmt.Sprintf("e.id > $%d", len(args)))
	default:
		conds = append(conds, "false")
	}
	q := `SELECT snap.s, ` + columns + `
FROM (SELECT pg_current_snapshot()::text AS s) AS snap
LEFT JOIN LATERAL (SELECT * FROM ` + h.store.table + ` e WHERE ` + strings.Join(conds, " AND ") + `) AS e ON true
ORDER BY e.id`
	rows, err := h.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	var snapshot string
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		return scanWith(row, &snapshot)
	})
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	s.snapshot = snapshot
	if len(evs) == 1 && evs[0].ID == 0 {
		return nil, nil
	}
	return s.f.expand(evs), nil
}

// Store is the hub's event store.
func (h *Hub) Store() *Store { return h.store }
