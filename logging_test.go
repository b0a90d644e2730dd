package omniq

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the logged lines that contain msg.
func (b *syncBuffer) lines(msg string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.Lines(b.buf.String()) {
		if strings.Contains(line, "msg="+msg) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// logged reports whether exactly one line has msg, and returns it.
func (b *syncBuffer) logged(t *testing.T, msg string) (string, bool) {
	t.Helper()
	lines := b.lines(msg)
	switch len(lines) {
	case 0:
		return "", false
	case 1:
		return lines[0], true
	default:
		t.Fatalf("%s logged %d times: %q", msg, len(lines), lines)
		return "", false
	}
}

func TestLogComponentLevels(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	cfg := mustResolve(t, Config{Log: LogConfig{
		Level:      "info",
		Components: map[string]string{"producer": "debug", "completer": "warn"},
	}}, nil)
	base := cfg.newLoggerTo(&buf)
	producer := componentLogger(base, cfg.Log, "producer")
	completer := componentLogger(base, cfg.Log, "completer")
	notifier := componentLogger(base, cfg.Log, "notifier") // no level of its own: Log.Level

	base.Debug("base-debug")
	base.Info("base-info")
	producer.Debug("producer-debug")
	completer.Info("completer-info")
	completer.Warn("completer-warn")
	notifier.Debug("notifier-debug")
	notifier.Info("notifier-info")

	tests := []struct {
		msg       string
		logged    bool
		component string
	}{
		{"base-debug", false, ""},
		{"base-info", true, ""},
		{"producer-debug", true, "producer"},
		{"completer-info", false, ""},
		{"completer-warn", true, "completer"},
		{"notifier-debug", false, ""},
		{"notifier-info", true, "notifier"},
	}
	for _, tt := range tests {
		line, ok := buf.logged(t, tt.msg)
		if ok != tt.logged {
			t.Errorf("%s logged = %v, want %v", tt.msg, ok, tt.logged)
			continue
		}
		if !ok {
			continue
		}
		if tt.component == "" {
			if strings.Contains(line, "component=") {
				t.Errorf("%s: unexpected component in %q", tt.msg, line)
			}
		} else if !strings.Contains(line, "component="+tt.component) {
			t.Errorf("%s: no component=%s in %q", tt.msg, tt.component, line)
		}
	}

	ctx := context.Background()
	if !producer.Enabled(ctx, slog.LevelDebug) || completer.Enabled(ctx, slog.LevelInfo) || base.Enabled(ctx, slog.LevelDebug) {
		t.Error("Enabled does not follow the component levels")
	}
}

func TestLogComponentWithAttrsAndGroup(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	cfg := mustResolve(t, Config{Log: LogConfig{
		Level:      "error",
		Components: map[string]string{"producer": "debug", "completer": "warn"},
	}}, nil)
	base := cfg.newLoggerTo(&buf).With("client", "c1")
	producer := componentLogger(base, cfg.Log, "producer").With("queue", "emails").WithGroup("task").With("id", 7)
	completer := componentLogger(base, cfg.Log, "completer").WithGroup("g").With("k", "v")

	producer.Debug("fetched", "n", 3)
	completer.Info("completer-info")
	completer.Warn("completer-warn")
	base.Warn("base-warn")

	line, ok := buf.logged(t, "fetched")
	if !ok {
		t.Fatal("producer debug with attrs and group was dropped")
	}
	for _, want := range []string{"client=c1", "component=producer", "queue=emails", "task.id=7", "task.n=3"} {
		if !strings.Contains(line, want) {
			t.Errorf("no %s in %q", want, line)
		}
	}
	if _, ok := buf.logged(t, "completer-info"); ok {
		t.Error("completer info passed its warn level after WithGroup/With")
	}
	if line, ok := buf.logged(t, "completer-warn"); !ok || !strings.Contains(line, "component=completer") || !strings.Contains(line, "g.k=v") {
		t.Errorf("completer warn = %q, %v", line, ok)
	}
	if _, ok := buf.logged(t, "base-warn"); ok {
		t.Error("base warn passed Log.Level error after With")
	}
}

func TestLogDisabled(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	user := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, cfg := range []Config{
		{Log: LogConfig{Disabled: true, Components: map[string]string{"producer": "debug"}}},
		{Log: LogConfig{Disabled: true}, Logger: user}, // Disabled wins over a Logger
	} {
		base := cfg.newLoggerTo(&buf)
		base.Error("base-error")
		componentLogger(base, cfg.Log, "producer").Error("producer-error")
		if base.Enabled(context.Background(), slog.LevelError) {
			t.Error("disabled logger is enabled")
		}
	}
	if len(buf.lines("")) != 0 {
		t.Errorf("disabled logging wrote %q", buf.lines(""))
	}
}

func TestLogUserLogger(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	user := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := mustResolve(t, Config{Logger: user, Log: LogConfig{Level: "error", Components: map[string]string{"completer": "warn"}}}, nil)
	base := cfg.newLogger()
	if base != user {
		t.Fatal("newLogger did not return Config.Logger")
	}
	base.Debug("user-debug")                                           // the user's handler decides, not Log.Level
	componentLogger(base, cfg.Log, "producer").Debug("producer-debug") // no component level: the user's handler decides
	componentLogger(base, cfg.Log, "completer").Info("completer-info") // below the component's level
	componentLogger(base, cfg.Log, "completer").Warn("completer-warn") // at it
	for msg, want := range map[string]bool{"user-debug": true, "producer-debug": true, "completer-info": false, "completer-warn": true} {
		if _, ok := buf.logged(t, msg); ok != want {
			t.Errorf("%s logged = %v, want %v", msg, ok, want)
		}
	}
	if line, _ := buf.logged(t, "producer-debug"); !strings.Contains(line, "component=producer") {
		t.Errorf("no component attribute in %q", line)
	}
}

func TestLogNewLoggerDefaultLevel(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	log := Config{}.newLoggerTo(&buf) // unresolved: info
	log.Debug("d")
	log.Info("i")
	if _, ok := buf.logged(t, "d"); ok {
		t.Error("debug logged at the default level")
	}
	if _, ok := buf.logged(t, "i"); !ok {
		t.Error("info not logged at the default level")
	}
	if (Config{}).newLogger() == nil {
		t.Error("newLogger returned nil")
	}
}

func TestLogLevelHandlerHandleFilters(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	h := &levelHandler{level: slog.LevelWarn, next: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})}
	ctx := context.Background()
	for _, r := range []slog.Record{
		slog.NewRecord(time.Time{}, slog.LevelInfo, "direct-info", 0),
		slog.NewRecord(time.Time{}, slog.LevelError, "direct-error", 0),
	} {
		if err := h.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := buf.logged(t, "direct-info"); ok {
		t.Error("Handle passed a record below the level")
	}
	if _, ok := buf.logged(t, "direct-error"); !ok {
		t.Error("Handle dropped a record at the level")
	}
	if h.WithAttrs(nil) != slog.Handler(h) || h.WithGroup("") != slog.Handler(h) {
		t.Error("empty WithAttrs/WithGroup should return the handler itself")
	}
}

func TestLogParseLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want slog.Level
		ok   bool
	}{
		{"debug", slog.LevelDebug, true},
		{"INFO", slog.LevelInfo, true},
		{" warn ", slog.LevelWarn, true},
		{"Warning", slog.LevelWarn, true},
		{"error", slog.LevelError, true},
		{"", 0, false},
		{"trace", 0, false},
		{"critical", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseLogLevel(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseLogLevel(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	for _, comp := range logComponents() {
		if !isLogComponent(comp) {
			t.Errorf("isLogComponent(%q) = false", comp)
		}
	}
	if isLogComponent("Producer") || isLogComponent("scheduler") {
		t.Error("isLogComponent accepts an unknown name")
	}
}
