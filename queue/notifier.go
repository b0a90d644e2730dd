package queue

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Notifier holds one LISTEN connection for a client and hands each
// notification to the handlers of its channel. When the connection is lost it
// reconnects with backoff, LISTENs again, and calls the reconnect hooks so
// that whoever depends on notifications can catch up on what was missed.
type Notifier struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu         sync.Mutex
	handlers   map[string]map[int]func(payload string)
	nextID     int
	reconnects []func()
	changed    chan struct{} // channel set changed: re-sync LISTENs
	cancel     context.CancelFunc
	done       chan struct{}
	running    bool
}

// NewNotifier returns a notifier on pool; it connects on Start.
func NewNotifier(pool *pgxpool.Pool, log *slog.Logger) *Notifier {
	return &Notifier{
		pool:     pool,
		log:      log,
		handlers: map[string]map[int]func(string){},
		changed:  make(chan struct{}, 1),
	}
}

// Listen calls fn with the payload of every notification on channel until the
// returned function is called. fn runs on the notifier's goroutine: it must
// not block.
func (n *Notifier) Listen(channel string, fn func(payload string)) (unlisten func()) {
	n.mu.Lock()
	hs := n.handlers[channel]
	if hs == nil {
		hs = map[int]func(string){}
		n.handlers[channel] = hs
	}
	id := n.nextID
	n.nextID++
	hs[id] = fn
	n.mu.Unlock()
	n.signal()
	return func() {
		n.mu.Lock()
		delete(n.handlers[channel], id)
		if len(n.handlers[channel]) == 0 {
			delete(n.handlers, channel)
		}
		n.mu.Unlock()
		n.signal()
	}
}

// OnReconnect registers fn to run after each reconnect.
func (n *Notifier) OnReconnect(fn func()) {
	n.mu.Lock()
	n.reconnects = append(n.reconnects, fn)
	n.mu.Unlock()
}

func (n *Notifier) signal() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// Start runs the listen loop until Stop. Starting twice does nothing.
func (n *Notifier) Start() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done, n.running = cancel, make(chan struct{}), true
	go func() {
		defer close(n.done)
		n.loop(ctx)
	}()
}

// Stop ends the loop and releases its connection.
func (n *Notifier) Stop() {
	n.mu.Lock()
	if !n.running {
		n.mu.Unlock()
		return
	}
	n.running = false
	cancel, done := n.cancel, n.done
	n.mu.Unlock()
	cancel()
	<-done
}

func (n *Notifier) loop(ctx context.Context) {
	backoff := 50 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		established, err := n.session(ctx, !first)
		if ctx.Err() != nil {
			return
		}
		first = false
		if established {
			// The connection worked: this is a new outage, not a longer one.
			backoff = 50 * time.Millisecond
		}
		n.log.Warn("LISTEN connection lost; reconnecting", "error", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// session holds one connection until it fails or ctx ends. established
// reports whether it got as far as listening.
func (n *Notifier) session(ctx context.Context, reconnected bool) (established bool, err error) {
	pooled, err := n.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	// The LISTEN connection leaves the pool at once: it is never handed back
	// (its LISTENs must not leak to other users), and while it is held the
	// pool may open another in its place, so claims and completions keep
	// every one of MaxConns. Held in the pool, it took one of pgx's default
	// four from the hot path for good.
	conn := pooled.Hijack()
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	listening := map[string]bool{}
	sync := func() error {
		n.mu.Lock()
		want := make(map[string]bool, len(n.handlers))
		for ch := range n.handlers {
			want[ch] = true
		}
		n.mu.Unlock()
		for ch := range want {
			if !listening[ch] {
				if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
					return err
				}
				listening[ch] = true
			}
		}
		for ch := range listening {
			if !want[ch] {
				if _, err := conn.Exec(ctx, "UNLISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
					return err
				}
				delete(listening, ch)
			}
		}
		return nil
	}
	if err := sync(); err != nil {
		return false, err
	}
	if reconnected {
		n.log.Info("LISTEN connection restored")
		n.mu.Lock()
		hooks := append([]func(){}, n.reconnects...)
		n.mu.Unlock()
		for _, h := range hooks {
			h()
		}
	}
	for {
		// Sync first, every time: a change signal can be taken by the watcher
		// below just as a notification ends the wait, and must not be lost.
		if err := sync(); err != nil {
			return true, err
		}
		waitCtx, cancel := context.WithCancel(ctx)
		stopWatch, watchDone := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(watchDone)
			select {
			case <-n.changed:
				cancel()
			case <-stopWatch:
			}
		}()
		nt, err := conn.WaitForNotification(waitCtx)
		close(stopWatch)
		<-watchDone
		// Read before our own cancel: was the wait cut short by a change signal?
		interrupted := waitCtx.Err() != nil
		cancel()
		if nt != nil {
			n.dispatch(nt.Channel, nt.Payload)
		}
		if err != nil {
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			if interrupted && !conn.IsClosed() {
				continue // the channel set changed: sync at the top
			}
			// A lost connection (terminated, server restart) ends the session.
			return true, err
		}
	}
}

// dispatch hands a notification to its channel's handlers.
func (n *Notifier) dispatch(channel, payload string) {
	n.mu.Lock()
	fns := make([]func(string), 0, len(n.handlers[channel]))
	for _, fn := range n.handlers[channel] {
		fns = append(fns, fn)
	}
	n.mu.Unlock()
	for _, fn := range fns {
		fn(payload)
	}
}
