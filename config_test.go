package omniq

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// configTestArgs gives the tests a Workers with one worker.
type configTestArgs struct{}

func (configTestArgs) Kind() string { return "config_test" }

func configTestWorkers() *Workers {
	w := NewWorkers()
	AddWorker(w, WorkFunc(func(context.Context, *Task[configTestArgs]) error { return nil }))
	return w
}

// envOf returns a getenv reading m, so tests never touch the process environment.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func mustResolve(t *testing.T, c Config, env map[string]string) Config {
	t.Helper()
	r, err := c.Resolve(envOf(env))
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return r
}

func mustLoad(t *testing.T, name string) *Config {
	t.Helper()
	c, err := LoadConfig(filepath.Join("testdata", "config", name))
	if err != nil {
		t.Fatalf("LoadConfig(%s): %v", name, err)
	}
	return c
}

func TestConfigResolveDefaults(t *testing.T) {
	t.Parallel()
	r := mustResolve(t, Config{}, nil)

	want := Config{
		Schema:                 "omniq",
		MaxAttempts:            4,
		RetryDelay:             5 * time.Second,
		RetryBackoff:           "fixed",
		EventLevel:             "default",
		EventRetention:         7 * 24 * time.Hour,
		FinishedRetention:      24 * time.Hour,
		FetchCooldown:          time.Millisecond,
		FetchPollInterval:      time.Second,
		HeartbeatInterval:      2 * time.Second,
		RescueAfter:            15 * time.Second,
		MaintenanceInterval:    time.Second,
		CompleterBatchSize:     1000,
		CompleterFlushInterval: 2 * time.Millisecond,
		Log:                    LogConfig{Level: "info"},
	}
	if !regexp.MustCompile(`^.+-\d+-[0-9a-f]{8}$`).MatchString(r.ID) {
		t.Errorf("ID = %q, want host-pid-8hex", r.ID)
	}
	want.ID = r.ID
	if !reflect.DeepEqual(r, want) {
		t.Errorf("Resolve(Config{}) =\n%+v\nwant\n%+v", r, want)
	}
	if r.Queues != nil {
		t.Errorf("an insert-only client works no queue; Queues = %v", r.Queues)
	}
	if r2 := mustResolve(t, Config{}, nil); r2.ID == r.ID {
		t.Errorf("two default IDs are equal: %q", r.ID)
	}
}

func TestConfigResolveDefaultQueues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		env  map[string]string
		want map[string]QueueConfig
	}{
		{
			name: "workers and no queue: default queue",
			cfg:  Config{Workers: configTestWorkers()},
			want: map[string]QueueConfig{"default": {MaxWorkers: 100}},
		},
		{
			name: "no workers: no queue",
			cfg:  Config{Workers: NewWorkers()},
			want: nil,
		},
		{
			name: "queue without MaxWorkers gets 100",
			cfg:  Config{Queues: map[string]QueueConfig{"emails": {}, "bulk": {MaxWorkers: 3}}},
			want: map[string]QueueConfig{"emails": {MaxWorkers: 100}, "bulk": {MaxWorkers: 3}},
		},
		{
			name: "OMNIQ_MAX_WORKERS sizes the default queue",
			cfg:  Config{Workers: configTestWorkers()},
			env:  map[string]string{"OMNIQ_MAX_WORKERS": "7"},
			want: map[string]QueueConfig{"default": {MaxWorkers: 7}},
		},
		{
			name: "OMNIQ_MAX_WORKERS without workers adds no queue",
			env:  map[string]string{"OMNIQ_MAX_WORKERS": "7"},
			want: nil,
		},
		{
			name: "OMNIQ_MAX_WORKERS sizes every configured queue",
			cfg:  Config{Queues: map[string]QueueConfig{"a": {MaxWorkers: 1}, "b": {}}},
			env:  map[string]string{"OMNIQ_MAX_WORKERS": "9"},
			want: map[string]QueueConfig{"a": {MaxWorkers: 9}, "b": {MaxWorkers: 9}},
		},
		{
			name: "OMNIQ_DEFAULT_QUEUES comma list adds the missing ones",
			cfg:  Config{Queues: map[string]QueueConfig{"high": {MaxWorkers: 2}}},
			env:  map[string]string{"OMNIQ_DEFAULT_QUEUES": " default, high ,low,"},
			want: map[string]QueueConfig{"default": {MaxWorkers: 100}, "high": {MaxWorkers: 2}, "low": {MaxWorkers: 100}},
		},
		{
			name: "OMNIQ_DEFAULT_QUEUES JSON list with OMNIQ_MAX_WORKERS",
			cfg:  Config{Workers: configTestWorkers()},
			env:  map[string]string{"OMNIQ_DEFAULT_QUEUES": `["default","high","medium","low"]`, "OMNIQ_MAX_WORKERS": "4"},
			want: map[string]QueueConfig{"default": {MaxWorkers: 4}, "high": {MaxWorkers: 4}, "medium": {MaxWorkers: 4}, "low": {MaxWorkers: 4}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustResolve(t, tt.cfg, tt.env)
			if !reflect.DeepEqual(r.Queues, tt.want) {
				t.Errorf("Queues = %v, want %v", r.Queues, tt.want)
			}
		})
	}
}

func TestConfigResolveDoesNotModifyItsReceiver(t *testing.T) {
	t.Parallel()
	c := Config{
		Queues: map[string]QueueConfig{"emails": {}},
		Log:    LogConfig{Components: map[string]string{"Producer": "DEBUG"}},
	}
	env := map[string]string{
		"OMNIQ_MAX_WORKERS":         "3",
		"OMNIQ_DEFAULT_QUEUES":      "bulk",
		"OMNIQ_LOG_LEVEL_COMPLETER": "warn",
	}
	r := mustResolve(t, c, env)
	if want := map[string]QueueConfig{"emails": {}}; !reflect.DeepEqual(c.Queues, want) {
		t.Errorf("receiver's Queues changed to %v", c.Queues)
	}
	if want := map[string]string{"Producer": "DEBUG"}; !reflect.DeepEqual(c.Log.Components, want) {
		t.Errorf("receiver's Log.Components changed to %v", c.Log.Components)
	}
	if want := map[string]string{"producer": "debug", "completer": "warn"}; !reflect.DeepEqual(r.Log.Components, want) {
		t.Errorf("resolved Log.Components = %v, want %v (lower-cased)", r.Log.Components, want)
	}
	// Resolving a resolved config changes nothing.
	if r2 := mustResolve(t, r, env); !reflect.DeepEqual(r2, r) {
		t.Errorf("Resolve is not idempotent:\n%+v\n%+v", r2, r)
	}
}

func TestConfigResolveNormalizesCase(t *testing.T) {
	t.Parallel()
	r := mustResolve(t, Config{RetryBackoff: "Exponential", EventLevel: "ALL", Log: LogConfig{Level: "WARNING"}}, nil)
	if r.RetryBackoff != "exponential" || r.EventLevel != "all" || r.Log.Level != "warning" {
		t.Errorf("got RetryBackoff %q, EventLevel %q, Log.Level %q", r.RetryBackoff, r.EventLevel, r.Log.Level)
	}
}

// TestConfigPrecedence checks defaults < YAML < fields set in code < environment,
// one field at a time.
func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		get      func(Config) any
		set      func(*Config) // in code, after LoadConfig
		env      map[string]string
		def      any // from Config{}
		yaml     any // from layers.yaml
		explicit any // after set
		fromEnv  any // after env
	}{
		{
			name: "Schema",
			get:  func(c Config) any { return c.Schema },
			set:  func(c *Config) { c.Schema = "from_code" },
			env:  map[string]string{"OMNIQ_SCHEMA": "from_env"},
			def:  "omniq", yaml: "from_yaml", explicit: "from_code", fromEnv: "from_env",
		},
		{
			name: "Schema via OMNIQ_PROJECT_NAME",
			get:  func(c Config) any { return c.Schema },
			set:  func(c *Config) { c.Schema = "from_code" },
			env:  map[string]string{"OMNIQ_PROJECT_NAME": "project"},
			def:  "omniq", yaml: "from_yaml", explicit: "from_code", fromEnv: "project",
		},
		{
			name: "TaskTimeout",
			get:  func(c Config) any { return c.TaskTimeout },
			set:  func(c *Config) { c.TaskTimeout = 20 * time.Second },
			env:  map[string]string{"OMNIQ_TASK_TIMEOUT": "30"},
			def:  time.Duration(0), yaml: 10 * time.Second, explicit: 20 * time.Second, fromEnv: 30 * time.Second,
		},
		{
			name: "MaxAttempts",
			get:  func(c Config) any { return c.MaxAttempts },
			set:  func(c *Config) { c.MaxAttempts = 20 },
			env:  map[string]string{"OMNIQ_RETRY_ATTEMPTS": "29"},
			def:  4, yaml: 10, explicit: 20, fromEnv: 30,
		},
		{
			name: "RetryDelay",
			get:  func(c Config) any { return c.RetryDelay },
			set:  func(c *Config) { c.RetryDelay = 20 * time.Second },
			env:  map[string]string{"OMNIQ_RETRY_DELAY": "30s"},
			def:  5 * time.Second, yaml: 10 * time.Second, explicit: 20 * time.Second, fromEnv: 30 * time.Second,
		},
		{
			name: "EventLevel",
			get:  func(c Config) any { return c.EventLevel },
			set:  func(c *Config) { c.EventLevel = "failures" },
			env:  map[string]string{"OMNIQ_EVENT_LEVEL": "none"},
			def:  "default", yaml: "all", explicit: "failures", fromEnv: "none",
		},
		{
			name: "Log.Level",
			get:  func(c Config) any { return c.Log.Level },
			set:  func(c *Config) { c.Log.Level = "error" },
			env:  map[string]string{"OMNIQ_LOG_LEVEL": "debug"},
			def:  "info", yaml: "warn", explicit: "error", fromEnv: "debug",
		},
		{
			name: "component level",
			get:  func(c Config) any { return c.Log.Components["producer"] },
			set:  func(c *Config) { c.Log.Components["producer"] = "error" },
			env:  map[string]string{"OMNIQ_LOG_LEVEL_PRODUCER": "debug"},
			def:  "", yaml: "warn", explicit: "error", fromEnv: "debug",
		},
		{
			name: "queue MaxWorkers",
			get:  func(c Config) any { return c.Queues["default"].MaxWorkers },
			set:  func(c *Config) { c.Queues["default"] = QueueConfig{MaxWorkers: 20} },
			env:  map[string]string{"OMNIQ_MAX_WORKERS": "30"},
			def:  100, yaml: 10, explicit: 20, fromEnv: 30,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.get(mustResolve(t, Config{Workers: configTestWorkers()}, nil)); got != tt.def {
				t.Errorf("default: got %v, want %v", got, tt.def)
			}
			c := mustLoad(t, "layers.yaml")
			if got := tt.get(mustResolve(t, *c, nil)); got != tt.yaml {
				t.Errorf("YAML over default: got %v, want %v", got, tt.yaml)
			}
			tt.set(c)
			if got := tt.get(mustResolve(t, *c, nil)); got != tt.explicit {
				t.Errorf("code over YAML: got %v, want %v", got, tt.explicit)
			}
			if got := tt.get(mustResolve(t, *c, tt.env)); got != tt.fromEnv {
				t.Errorf("environment over code: got %v, want %v", got, tt.fromEnv)
			}
		})
	}
}

func TestConfigEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env   map[string]string
		base  Config
		check func(Config) bool
	}{
		{map[string]string{"OMNIQ_DATABASE_URL": "postgres://x@h/db"}, Config{},
			func(c Config) bool { return c.DatabaseURL == "postgres://x@h/db" }},
		{map[string]string{"OMNIQ_SCHEMA": "s1"}, Config{},
			func(c Config) bool { return c.Schema == "s1" }},
		{map[string]string{"OMNIQ_PROJECT_NAME": "p1"}, Config{},
			func(c Config) bool { return c.Schema == "p1" }},
		{map[string]string{"OMNIQ_PROJECT_NAME": "p1", "OMNIQ_SCHEMA": "s1"}, Config{},
			func(c Config) bool { return c.Schema == "s1" }},
		{map[string]string{"OMNIQ_LOG_LEVEL": "ERROR"}, Config{},
			func(c Config) bool { return c.Log.Level == "error" }},
		{map[string]string{"OMNIQ_DISABLE_LOGGING": "yes"}, Config{},
			func(c Config) bool { return c.Log.Disabled }},
		{map[string]string{"OMNIQ_DISABLE_LOGGING": "0"}, Config{Log: LogConfig{Disabled: true}},
			func(c Config) bool { return !c.Log.Disabled }},
		{map[string]string{"OMNIQ_COMPONENT_LOG_LEVELS": `{"producer":"debug","Completer":"warn"}`},
			Config{Log: LogConfig{Components: map[string]string{"notifier": "error"}}},
			func(c Config) bool {
				return reflect.DeepEqual(c.Log.Components, map[string]string{"producer": "debug", "completer": "warn", "notifier": "error"})
			}},
		{map[string]string{"OMNIQ_COMPONENT_LOG_LEVELS": `{"producer":"debug"}`, "OMNIQ_LOG_LEVEL_PRODUCER": "error"}, Config{},
			func(c Config) bool { return c.Log.Components["producer"] == "error" }},
		{map[string]string{
			"OMNIQ_LOG_LEVEL_PRODUCER": "debug", "OMNIQ_LOG_LEVEL_EXECUTOR": "info", "OMNIQ_LOG_LEVEL_COMPLETER": "warn",
			"OMNIQ_LOG_LEVEL_NOTIFIER": "error", "OMNIQ_LOG_LEVEL_MAINTENANCE": "debug", "OMNIQ_LOG_LEVEL_PERIODIC": "info",
			"OMNIQ_LOG_LEVEL_EVENTS": "warn", "OMNIQ_LOG_LEVEL_CLIENT": "error",
		}, Config{},
			func(c Config) bool {
				return reflect.DeepEqual(c.Log.Components, map[string]string{
					"producer": "debug", "executor": "info", "completer": "warn", "notifier": "error",
					"maintenance": "debug", "periodic": "info", "events": "warn", "client": "error",
				})
			}},
		{map[string]string{"OMNIQ_MAX_WORKERS": "12"}, Config{Queues: map[string]QueueConfig{"q": {MaxWorkers: 1}}},
			func(c Config) bool { return c.Queues["q"].MaxWorkers == 12 }},
		{map[string]string{"OMNIQ_DEFAULT_QUEUES": "a,b"}, Config{},
			func(c Config) bool { return len(c.Queues) == 2 && c.Queues["a"].MaxWorkers == 100 }},
		{map[string]string{"OMNIQ_TASK_TIMEOUT": "1m30s"}, Config{},
			func(c Config) bool { return c.TaskTimeout == 90*time.Second }},
		{map[string]string{"OMNIQ_TASK_TIMEOUT": "0"}, Config{TaskTimeout: time.Minute},
			func(c Config) bool { return c.TaskTimeout == 0 }},
		{map[string]string{"OMNIQ_TASK_TTL": "3600"}, Config{},
			func(c Config) bool { return c.TaskTTL == time.Hour }},
		{map[string]string{"OMNIQ_RESULT_TTL": "0.5"}, Config{},
			func(c Config) bool { return c.ResultTTL == 500*time.Millisecond }},
		{map[string]string{"OMNIQ_DISABLE_RESULTS": "true"}, Config{},
			func(c Config) bool { return c.DisableResults }},
		{map[string]string{"OMNIQ_RETRY_ATTEMPTS": "0"}, Config{MaxAttempts: 9},
			func(c Config) bool { return c.MaxAttempts == 1 }},
		{map[string]string{"OMNIQ_RETRY_ATTEMPTS": "3"}, Config{},
			func(c Config) bool { return c.MaxAttempts == 4 }},
		{map[string]string{"OMNIQ_RETRY_DELAY": "250ms"}, Config{},
			func(c Config) bool { return c.RetryDelay == 250*time.Millisecond }},
		{map[string]string{"OMNIQ_RETRY_BACKOFF": "exponential"}, Config{},
			func(c Config) bool { return c.RetryBackoff == "exponential" }},
		{map[string]string{"OMNIQ_EVENT_LEVEL": "failures"}, Config{},
			func(c Config) bool { return c.EventLevel == "failures" }},
		{map[string]string{"OMNIQ_EVENT_RETENTION": "48h"}, Config{},
			func(c Config) bool { return c.EventRetention == 48*time.Hour }},
		{map[string]string{"OMNIQ_EVENT_RETENTION": "", "OMNIQ_SCHEMA": "  "}, Config{EventRetention: time.Hour},
			func(c Config) bool { return c.EventRetention == time.Hour && c.Schema == "omniq" }},
	}
	for _, tt := range tests {
		t.Run(strings.Join(slices.Sorted(maps.Keys(tt.env)), "+"), func(t *testing.T) {
			t.Parallel()
			if r := mustResolve(t, tt.base, tt.env); !tt.check(r) {
				t.Errorf("env %v over %+v: unexpected result %+v", tt.env, tt.base, r)
			}
		})
	}
}

// wantConfigError checks that err is an invalid-config error about field and value.
func wantConfigError(t *testing.T, err error, field, value string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one about %s %q", field, value)
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("errors.Is(%v, ErrInvalidConfig) = false", err)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("%v is not a *ConfigError", err)
	}
	if ce.Field != field || ce.Value != value {
		t.Errorf("ConfigError{Field: %q, Value: %q}, want {%q, %q} (%v)", ce.Field, ce.Value, field, value, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, field) {
		t.Errorf("message %q does not name %s", msg, field)
	}
	if value != "" && !strings.Contains(msg, strconv.Quote(value)) {
		t.Errorf("message %q does not show the value %q", msg, value)
	}
}

func TestConfigEnvErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env          map[string]string
		field, value string
	}{
		{map[string]string{"OMNIQ_MAX_WORKERS": "lots"}, "OMNIQ_MAX_WORKERS", "lots"},
		{map[string]string{"OMNIQ_MAX_WORKERS": "0"}, "OMNIQ_MAX_WORKERS", "0"},
		{map[string]string{"OMNIQ_MAX_WORKERS": "-2"}, "OMNIQ_MAX_WORKERS", "-2"},
		{map[string]string{"OMNIQ_MAX_WORKERS": "10001"}, "OMNIQ_MAX_WORKERS", "10001"},
		{map[string]string{"OMNIQ_RETRY_ATTEMPTS": "-1"}, "OMNIQ_RETRY_ATTEMPTS", "-1"},
		{map[string]string{"OMNIQ_RETRY_ATTEMPTS": "1000"}, "OMNIQ_RETRY_ATTEMPTS", "1000"},
		{map[string]string{"OMNIQ_RETRY_ATTEMPTS": "3.5"}, "OMNIQ_RETRY_ATTEMPTS", "3.5"},
		{map[string]string{"OMNIQ_DISABLE_LOGGING": "maybe"}, "OMNIQ_DISABLE_LOGGING", "maybe"},
		{map[string]string{"OMNIQ_DISABLE_RESULTS": "2"}, "OMNIQ_DISABLE_RESULTS", "2"},
		{map[string]string{"OMNIQ_TASK_TIMEOUT": "5 minutes"}, "OMNIQ_TASK_TIMEOUT", "5 minutes"},
		{map[string]string{"OMNIQ_TASK_TTL": "NaN"}, "OMNIQ_TASK_TTL", "NaN"},
		{map[string]string{"OMNIQ_RESULT_TTL": "1e300"}, "OMNIQ_RESULT_TTL", "1e300"},
		{map[string]string{"OMNIQ_RETRY_DELAY": "-5"}, "OMNIQ_RETRY_DELAY", "-5"},
		{map[string]string{"OMNIQ_EVENT_RETENTION": "-1h"}, "OMNIQ_EVENT_RETENTION", "-1h"},
		{map[string]string{"OMNIQ_RETRY_BACKOFF": "linear"}, "OMNIQ_RETRY_BACKOFF", "linear"},
		{map[string]string{"OMNIQ_EVENT_LEVEL": "some"}, "OMNIQ_EVENT_LEVEL", "some"},
		{map[string]string{"OMNIQ_LOG_LEVEL": "loud"}, "OMNIQ_LOG_LEVEL", "loud"},
		{map[string]string{"OMNIQ_LOG_LEVEL_PRODUCER": "chatty"}, "OMNIQ_LOG_LEVEL_PRODUCER", "chatty"},
		{map[string]string{"OMNIQ_COMPONENT_LOG_LEVELS": `{"producer":`}, "OMNIQ_COMPONENT_LOG_LEVELS", `{"producer":`},
		{map[string]string{"OMNIQ_COMPONENT_LOG_LEVELS": `{"scheduler":"debug"}`}, "OMNIQ_COMPONENT_LOG_LEVELS", "scheduler"},
		{map[string]string{"OMNIQ_COMPONENT_LOG_LEVELS": `{"producer":"verbose"}`}, "OMNIQ_COMPONENT_LOG_LEVELS", "verbose"},
		{map[string]string{"OMNIQ_DEFAULT_QUEUES": `["a",`}, "OMNIQ_DEFAULT_QUEUES", `["a",`},
		{map[string]string{"OMNIQ_DEFAULT_QUEUES": "ok,bad name"}, "OMNIQ_DEFAULT_QUEUES", "bad name"},
		{map[string]string{"OMNIQ_SCHEMA": "Bad-Schema"}, "OMNIQ_SCHEMA", "Bad-Schema"},
		{map[string]string{"OMNIQ_PROJECT_NAME": "pg_catalog"}, "OMNIQ_PROJECT_NAME", "pg_catalog"},
	}
	for _, tt := range tests {
		t.Run(tt.field+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			_, err := Config{}.Resolve(envOf(tt.env))
			wantConfigError(t, err, tt.field, tt.value)
		})
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		cfg          Config
		field, value string
	}{
		{"negative workers", Config{Queues: map[string]QueueConfig{"q": {MaxWorkers: -1}}}, `Queues["q"].MaxWorkers`, "-1"},
		{"too many workers", Config{Queues: map[string]QueueConfig{"q": {MaxWorkers: 10001}}}, `Queues["q"].MaxWorkers`, "10001"},
		{"queue name with a space", Config{Queues: map[string]QueueConfig{"my queue": {}}}, `Queues["my queue"]`, "my queue"},
		{"queue name starting with a dot", Config{Queues: map[string]QueueConfig{".q": {}}}, `Queues[".q"]`, ".q"},
		{"queue name too long", Config{Queues: map[string]QueueConfig{strings.Repeat("q", 129): {}}}, `Queues["` + strings.Repeat("q", 129) + `"]`, strings.Repeat("q", 129)},
		{"empty queue name", Config{Queues: map[string]QueueConfig{"": {}}}, `Queues[""]`, ""},
		{"schema upper case", Config{Schema: "Jobs"}, "Schema", "Jobs"},
		{"schema reserved", Config{Schema: "pg_jobs"}, "Schema", "pg_jobs"},
		{"ID too long", Config{ID: strings.Repeat("x", 129)}, "ID", strings.Repeat("x", 129)},
		{"ID not printable", Config{ID: "a\nb"}, "ID", "a\nb"},
		{"ID not UTF-8", Config{ID: "a\xffb"}, "ID", "a\xffb"},
		{"negative TaskTimeout", Config{TaskTimeout: -time.Second}, "TaskTimeout", "-1s"},
		{"negative TaskTTL", Config{TaskTTL: -time.Second}, "TaskTTL", "-1s"},
		{"negative ResultTTL", Config{ResultTTL: -time.Second}, "ResultTTL", "-1s"},
		{"negative RetryDelay", Config{RetryDelay: -time.Second}, "RetryDelay", "-1s"},
		{"negative EventRetention", Config{EventRetention: -time.Second}, "EventRetention", "-1s"},
		{"negative FinishedRetention", Config{FinishedRetention: -time.Second}, "FinishedRetention", "-1s"},
		{"negative FetchCooldown", Config{FetchCooldown: -time.Second}, "FetchCooldown", "-1s"},
		{"negative FetchPollInterval", Config{FetchPollInterval: -time.Second}, "FetchPollInterval", "-1s"},
		{"negative HeartbeatInterval", Config{HeartbeatInterval: -time.Second}, "HeartbeatInterval", "-1s"},
		{"negative RescueAfter", Config{RescueAfter: -time.Second}, "RescueAfter", "-1s"},
		{"negative MaintenanceInterval", Config{MaintenanceInterval: -time.Second}, "MaintenanceInterval", "-1s"},
		{"negative CompleterFlushInterval", Config{CompleterFlushInterval: -time.Second}, "CompleterFlushInterval", "-1s"},
		{"RescueAfter equal to heartbeat", Config{HeartbeatInterval: 5 * time.Second, RescueAfter: 5 * time.Second}, "RescueAfter", "5s"},
		{"RescueAfter below default heartbeat", Config{RescueAfter: time.Second}, "RescueAfter", "1s"},
		{"heartbeat above default RescueAfter", Config{HeartbeatInterval: time.Minute}, "RescueAfter", "15s"},
		{"negative MaxAttempts", Config{MaxAttempts: -1}, "MaxAttempts", "-1"},
		{"too many MaxAttempts", Config{MaxAttempts: 1001}, "MaxAttempts", "1001"},
		{"negative CompleterBatchSize", Config{CompleterBatchSize: -1}, "CompleterBatchSize", "-1"},
		{"huge CompleterBatchSize", Config{CompleterBatchSize: 100001}, "CompleterBatchSize", "100001"},
		{"unknown backoff", Config{RetryBackoff: "linear"}, "RetryBackoff", "linear"},
		{"unknown event level", Config{EventLevel: "verbose"}, "EventLevel", "verbose"},
		{"unknown log level", Config{Log: LogConfig{Level: "trace"}}, "Log.Level", "trace"},
		{"unknown component", Config{Log: LogConfig{Components: map[string]string{"scheduler": "debug"}}}, `Log.Components["scheduler"]`, "scheduler"},
		{"unknown component level", Config{Log: LogConfig{Components: map[string]string{"producer": "trace"}}}, `Log.Components["producer"]`, "trace"},
		{"empty component level", Config{Log: LogConfig{Components: map[string]string{"producer": ""}}}, `Log.Components["producer"]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := tt.cfg.Resolve(nil)
			wantConfigError(t, err, tt.field, tt.value)
			if !reflect.DeepEqual(r, Config{}) {
				t.Errorf("Resolve returned %+v with its error, want the zero Config", r)
			}
		})
	}
}

func TestConfigValidationBoundsAccepted(t *testing.T) {
	t.Parallel()
	c := Config{
		Queues:             map[string]QueueConfig{"a": {MaxWorkers: 10000}, "A0_.:-" + strings.Repeat("z", 122): {MaxWorkers: 1}},
		ID:                 strings.Repeat("é", 64),
		MaxAttempts:        1000,
		CompleterBatchSize: 100000,
		HeartbeatInterval:  time.Second,
		RescueAfter:        time.Second + 1,
		Schema:             "_x9",
		RetryBackoff:       "exponential",
		EventLevel:         "none",
		Log:                LogConfig{Level: "Error", Components: map[string]string{"CLIENT": "Warning"}},
	}
	mustResolve(t, c, nil)
}

func TestConfigValidationReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := Config{MaxAttempts: -1, EventLevel: "x", Schema: "X"}.Resolve(envOf(map[string]string{"OMNIQ_MAX_WORKERS": "x"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"OMNIQ_MAX_WORKERS", "MaxAttempts", "EventLevel", "Schema"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("errors.Is(ErrInvalidConfig) = false for %v", err)
	}
}

func TestConfigErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *ConfigError
		want string
	}{
		{&ConfigError{Field: "MaxAttempts", Value: "-1", Reason: "must be between 1 and 1000"},
			`omniq: invalid config MaxAttempts "-1": must be between 1 and 1000`},
		{&ConfigError{Field: "log.levl", Reason: "unknown key"},
			`omniq: invalid config log.levl: unknown key`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	got := mustLoad(t, "full.yaml")
	want := &Config{
		DatabaseURL: "postgres://omniq@localhost:5432/app",
		Schema:      "jobs",
		ID:          "worker-a",
		Queues: map[string]QueueConfig{
			"default": {MaxWorkers: 20},
			"emails":  {MaxWorkers: 5},
		},
		TaskTimeout:            time.Minute,
		TaskTTL:                90 * time.Minute,
		ResultTTL:              48 * time.Hour,
		DisableResults:         true,
		MaxAttempts:            7,
		RetryDelay:             10 * time.Second,
		RetryBackoff:           "exponential",
		EventLevel:             "failures",
		EventRetention:         72 * time.Hour,
		FinishedRetention:      12 * time.Hour,
		FetchCooldown:          5 * time.Millisecond,
		FetchPollInterval:      2 * time.Second,
		HeartbeatInterval:      3 * time.Second,
		RescueAfter:            30 * time.Second,
		MaintenanceInterval:    500 * time.Millisecond,
		CompleterBatchSize:     500,
		CompleterFlushInterval: 10 * time.Millisecond,
		Log: LogConfig{
			Level:      "warn",
			Components: map[string]string{"producer": "debug", "completer": "error"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadConfig(full.yaml) =\n%+v\nwant\n%+v", got, want)
	}
	// A file's values survive Resolve when they are valid.
	if r := mustResolve(t, *got, nil); r.Schema != "jobs" || r.RescueAfter != 30*time.Second {
		t.Errorf("Resolve changed file values: %+v", r)
	}
}

func TestLoadConfigEmptyAndAnchors(t *testing.T) {
	t.Parallel()
	if got := mustLoad(t, "empty.yaml"); !reflect.DeepEqual(got, &Config{}) {
		t.Errorf("LoadConfig(empty.yaml) = %+v, want the zero Config", got)
	}
	got := mustLoad(t, "anchors.yaml")
	want := &Config{
		Queues:      map[string]QueueConfig{"emails": {MaxWorkers: 3}, "reports": {MaxWorkers: 3}},
		RetryDelay:  20 * time.Second,
		TaskTimeout: 20 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadConfig(anchors.yaml) = %+v, want %+v", got, want)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file         string
		field, value string // of the *ConfigError; empty field: no ConfigError
		contains     []string
	}{
		{"unknown_key.yaml", "max_workerz", "", []string{"unknown_key.yaml:2:1", "max_workerz", "unknown key"}},
		{"unknown_nested_key.yaml", "log.levl", "", []string{"unknown_nested_key.yaml:2:3", "log.levl", "unknown key"}},
		{"unknown_queue_key.yaml", "queues.emails.workers", "", []string{"queues.emails.workers", "unknown key"}},
		{"bad_duration.yaml", "retry_delay", "5x", []string{"bad_duration.yaml:1:14", "not a duration"}},
		{"bare_number_duration.yaml", "rescue_after", "30", []string{`needs a unit, as in "30s"`}},
		{"bad_int.yaml", "max_attempts", "many", []string{"must be an integer"}},
		{"float_int.yaml", "queues.emails.max_workers", "1.5", []string{"must be an integer"}},
		{"bad_bool.yaml", "disable_results", "sometimes", []string{"true or false"}},
		{"bad_mapping.yaml", "queues", "", []string{"must be a mapping"}},
		{"not_a_mapping.yaml", "document", "just a string", []string{"must be a mapping"}},
		{"bad_syntax.yaml", "", "", []string{"bad_syntax.yaml:1:9", "invalid config"}},
		{"two_docs.yaml", "", "", []string{"two_docs.yaml:2:1", "more than one YAML document"}},
		{"many_errors.yaml", "bogus", "", []string{"bogus", "retry_delay", `"soon"`, "log.colour"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", "config", tt.file)
			c, err := LoadConfig(path)
			if err == nil {
				t.Fatalf("LoadConfig(%s) = %+v, want an error", tt.file, c)
			}
			if c != nil {
				t.Errorf("LoadConfig returned a Config with its error")
			}
			if tt.field != "" {
				wantConfigError(t, err, tt.field, tt.value)
			} else if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("errors.Is(%v, ErrInvalidConfig) = false", err)
			}
			msg := err.Error()
			for _, want := range append(tt.contains, path) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join("testdata", "config", "no_such_file.yaml")
	_, err := LoadConfig(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadConfig(missing) error = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
}

func TestLoadConfigUnreadable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() // a directory is not a file
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("LoadConfig(dir) error = %v, want one naming %s", err, dir)
	}
}
