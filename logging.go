package omniq

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Log components: each part of a client logs with component=<name> and may
// have a level of its own in LogConfig.Components.
const (
	componentProducer    = "producer"
	componentExecutor    = "executor"
	componentCompleter   = "completer"
	componentNotifier    = "notifier"
	componentMaintenance = "maintenance"
	componentPeriodic    = "periodic"
	componentEvents      = "events"
	componentClient      = "client"
)

const (
	logComponentsHint = "use producer, executor, completer, notifier, maintenance, periodic, events or client"
	logLevelsHint     = "use debug, info, warn or error"
)

// logComponents returns the known components, in a stable order.
func logComponents() []string {
	return []string{
		componentProducer, componentExecutor, componentCompleter, componentNotifier,
		componentMaintenance, componentPeriodic, componentEvents, componentClient,
	}
}

func isLogComponent(name string) bool {
	switch name {
	case componentProducer, componentExecutor, componentCompleter, componentNotifier,
		componentMaintenance, componentPeriodic, componentEvents, componentClient:
		return true
	}
	return false
}

// parseLogLevel reads debug, info, warn (or warning) or error, in any case.
func parseLogLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// newLogger returns the client's logger: one that discards everything when
// Log.Disabled, else Logger when set, else a text logger on stderr at
// Log.Level. c should be resolved; an unknown level counts as info.
func (c Config) newLogger() *slog.Logger { return c.newLoggerTo(os.Stderr) }

func (c Config) newLoggerTo(w io.Writer) *slog.Logger {
	if c.Log.Disabled {
		return slog.New(slog.DiscardHandler)
	}
	if c.Logger != nil {
		return c.Logger
	}
	level, ok := parseLogLevel(c.Log.Level)
	if !ok {
		level = slog.LevelInfo
	}
	// The handler lets through the lowest level any component asks for; the
	// levelHandler holds everything else to Log.Level.
	lowest := level
	for _, s := range c.Log.Components {
		if l, ok := parseLogLevel(s); ok && l < lowest {
			lowest = l
		}
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: lowest})
	return slog.New(&levelHandler{level: level, next: h})
}

// componentLogger returns base with component=<component> on every record,
// at the component's level in cfg.Components when it has one. Otherwise it
// keeps base's level: Log.Level for a logger from newLogger, whatever its
// handler decides for a caller's own.
func componentLogger(base *slog.Logger, cfg LogConfig, component string) *slog.Logger {
	h := base.Handler()
	var level slog.Leveler
	if lh, ok := h.(*levelHandler); ok {
		// Our own filter: the component's level replaces it.
		h, level = lh.next, lh.level
	}
	for comp, s := range cfg.Components {
		if strings.EqualFold(comp, component) {
			if l, ok := parseLogLevel(s); ok {
				level = l
			}
		}
	}
	h = h.WithAttrs([]slog.Attr{slog.String("component", component)})
	if level == nil {
		return slog.New(h)
	}
	return slog.New(&levelHandler{level: level, next: h})
}

// levelHandler passes on the records at or above level to next.
type levelHandler struct {
	level slog.Leveler
	next  slog.Handler
}

func (h *levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level.Level() && h.next.Enabled(ctx, l)
}

func (h *levelHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.level.Level() {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &levelHandler{level: h.level, next: h.next.WithAttrs(attrs)}
}

func (h *levelHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &levelHandler{level: h.level, next: h.next.WithGroup(name)}
}
