package omniq

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/omniqhq/omniq/jobs"
	"github.com/omniqhq/omniq/migrations"
	"github.com/omniqhq/omniq/queue"
)

// Config configures a Client. The zero value of every field means "use the
// default"; defaults are right for most users. Precedence, lowest first:
// defaults < YAML file (LoadConfig) < fields set in code < OMNIQ_* environment
// variables (applied by NewClient through Resolve).
//
// Environment variables, each ignored when unset or empty:
//
//	OMNIQ_DATABASE_URL           DatabaseURL
//	OMNIQ_SCHEMA                 Schema
//	OMNIQ_PROJECT_NAME           Schema, when OMNIQ_SCHEMA is not set (the plan's name)
//	OMNIQ_LOG_LEVEL              Log.Level
//	OMNIQ_DISABLE_LOGGING        Log.Disabled (1/0, true/false, yes/no, on/off)
//	OMNIQ_COMPONENT_LOG_LEVELS   Log.Components, a JSON object: {"producer":"debug"}
//	OMNIQ_LOG_LEVEL_<COMPONENT>  Log.Components[component], e.g. OMNIQ_LOG_LEVEL_PRODUCER=debug;
//	                             wins over OMNIQ_COMPONENT_LOG_LEVELS
//	OMNIQ_MAX_WORKERS            MaxWorkers of every queue in Queues; with no queue
//	                             configured, of the "default" queue (when Workers has any)
//	OMNIQ_DEFAULT_QUEUES         queue names, comma-separated ("a,b") or a JSON list
//	                             (["a","b"]); each one missing from Queues is added with
//	                             OMNIQ_MAX_WORKERS workers, else the default
//	OMNIQ_TASK_TIMEOUT           TaskTimeout
//	OMNIQ_TASK_TTL               TaskTTL
//	OMNIQ_RESULT_TTL             ResultTTL
//	OMNIQ_DISABLE_RESULTS        DisableResults (as OMNIQ_DISABLE_LOGGING)
//	OMNIQ_RETRY_ATTEMPTS         retries after the first run (the plan's count):
//	                             MaxAttempts = N+1, so 0 means no retry
//	OMNIQ_RETRY_DELAY            RetryDelay
//	OMNIQ_RETRY_BACKOFF          RetryBackoff
//	OMNIQ_EVENT_LEVEL            EventLevel
//	OMNIQ_EVENT_RETENTION        EventRetention
//
// Durations from the environment take Go syntax ("500ms", "1h30m") or a plain
// number of seconds ("5", "0.5"). A variable set to a zero value means what the
// zero field means: the default. A value that cannot be parsed or is out of
// range is a *ConfigError naming the variable.
type Config struct {
	// DatabaseURL is used by the commands and by Connect; NewClient takes a pool.
	DatabaseURL string `yaml:"database_url"`
	// Schema holds OmniQ's tables (the plan's project name). Default "omniq".
	// It must be a valid PostgreSQL schema name for OmniQ (see migrations.ValidateSchema).
	Schema string `yaml:"schema"`

	// Queues this client works, with their concurrency. Empty means
	// {"default": {MaxWorkers: 100}} when Workers has any worker; a client
	// without workers is insert-only. Queue names are 1-128 letters, digits
	// and "_.:-", starting with a letter or digit.
	Queues map[string]QueueConfig `yaml:"queues"`
	// Workers is the registry of task kinds this client can run.
	Workers *Workers `yaml:"-"`
	// ID names this client in tasks.worker_id and clients.id: at most 128
	// printable bytes. Default host-pid-random (8 hex digits).
	ID string `yaml:"id"`

	// TaskTimeout bounds one attempt of a task that sets no timeout of its own. 0: none.
	TaskTimeout time.Duration `yaml:"task_timeout"`
	// TaskTTL expires tasks not started within it after enqueue. 0: never.
	TaskTTL time.Duration `yaml:"task_ttl"`
	// ResultTTL is how long a stored result is kept. 0: until its task is pruned.
	ResultTTL time.Duration `yaml:"result_ttl"`
	// DisableResults stops storing results unless a task asks for it.
	DisableResults bool `yaml:"disable_results"`
	// MaxAttempts is how many times a task runs before it ends in error, 1 to
	// 1000. Default 4 (the plan's retry_attempts 3, plus the first run).
	MaxAttempts int `yaml:"max_attempts"`
	// RetryDelay is the wait before a retry. Default 5s.
	RetryDelay time.Duration `yaml:"retry_delay"`
	// RetryBackoff is "fixed" (default: every retry waits RetryDelay) or
	// "exponential" (RetryDelay * 2^(attempt-1), with jitter).
	RetryBackoff string `yaml:"retry_backoff"`

	// EventLevel chooses what the events table records: "all" (every
	// transition its own row), "default" (the default: a routine success is one
	// compact row; every other transition its own row), "failures" (error,
	// retry, cancelled, expired, rescued) or "none".
	EventLevel string `yaml:"event_level"`
	// EventRetention is how long events are kept. Default 7 days.
	EventRetention time.Duration `yaml:"event_retention"`
	// FinishedRetention is how long finished tasks (success, error, cancelled,
	// expired) are kept. Default 24h.
	FinishedRetention time.Duration `yaml:"finished_retention"`

	// FetchCooldown is the shortest gap between two fetches of one queue. Default 1ms.
	FetchCooldown time.Duration `yaml:"fetch_cooldown"`
	// FetchPollInterval is how often a queue is polled when no NOTIFY arrives. Default 1s.
	FetchPollInterval time.Duration `yaml:"fetch_poll_interval"`
	// HeartbeatInterval is how often the client proves it is alive. Default 2s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// RescueAfter is how stale a client's heartbeat must be before its running
	// tasks are rescued; it must be greater than HeartbeatInterval. Default 15s.
	RescueAfter time.Duration `yaml:"rescue_after"`
	// MaintenanceInterval is how often the rescue, expiry and retention loops run. Default 1s.
	MaintenanceInterval time.Duration `yaml:"maintenance_interval"`
	// CompleterBatchSize caps the outcomes written in one round trip, at most
	// 100000. Default 1000.
	CompleterBatchSize int `yaml:"completer_batch_size"`
	// CompleterFlushInterval is the longest an outcome waits to be written. Default 2ms.
	CompleterFlushInterval time.Duration `yaml:"completer_flush_interval"`

	// Schedules are declared in code: at Start each is upserted by its
	// unique Name (a changed spec updates the row; pause and cancel made at
	// run time stay). See ScheduleSpec.
	Schedules []ScheduleSpec `yaml:"-"`

	// Log configures logging.
	Log LogConfig `yaml:"log"`
	// Logger, when set, is used instead of a new one, as it is: its handler
	// decides which levels pass, so Log.Level does not apply to it, while
	// Log.Components and Log.Disabled still do.
	Logger *slog.Logger `yaml:"-"`
}

// QueueConfig configures one queue on this client.
type QueueConfig struct {
	// MaxWorkers is how many tasks of this queue run at once on this client,
	// at most 10000. Default 100.
	MaxWorkers int `yaml:"max_workers"`
}

// LogConfig is the plan's logging section.
type LogConfig struct {
	// Level is debug, info, warn (or warning) or error, in any case. Default info.
	Level string `yaml:"level"`
	// Disabled turns logging off, even with Config.Logger set.
	Disabled bool `yaml:"disabled"`
	// Components sets a level per component, overriding Level for it. The
	// components are producer, executor, completer, notifier, maintenance,
	// periodic, events and client.
	Components map[string]string `yaml:"components"`
}

// Defaults filled in by Resolve.
const (
	defaultMaxWorkers             = 100
	defaultMaxAttempts            = 4
	defaultRetryDelay             = 5 * time.Second
	defaultRetryBackoff           = string(jobs.BackoffFixed)
	defaultEventLevel             = queue.EventsDefault
	defaultEventRetention         = 7 * 24 * time.Hour
	defaultFinishedRetention      = 24 * time.Hour
	defaultFetchCooldown          = time.Millisecond
	defaultFetchPollInterval      = time.Second
	defaultHeartbeatInterval      = 2 * time.Second
	defaultRescueAfter            = 15 * time.Second
	defaultMaintenanceInterval    = time.Second
	defaultCompleterBatchSize     = 1000
	defaultCompleterFlushInterval = 2 * time.Millisecond
	defaultLogLevel               = "info"
)

// Limits enforced by Resolve.
const (
	maxMaxWorkers         = 10000
	maxMaxAttempts        = 1000
	maxCompleterBatchSize = 100000
	maxIDLen              = 128
	defaultQueue          = "default"
)

// ErrInvalidConfig is wrapped by every error about a configuration value,
// whether it came from code, a YAML file or the environment.
var ErrInvalidConfig = errors.New("omniq: invalid config")

// ConfigError names a configuration value that was rejected, and why.
// errors.Is(err, ErrInvalidConfig) is true of it.
type ConfigError struct {
	// Field names the value: a Config field (`RescueAfter`,
	// `Queues["bulk"].MaxWorkers`, `Log.Components["producer"]`), a key path
	// in a YAML file (`log.level`), or an environment variable
	// (`OMNIQ_MAX_WORKERS`) when the value came from one.
	Field string
	// Value is the rejected value as written; empty for an unknown YAML key.
	Value string
	// Reason says what is wrong.
	Reason string
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("omniq: invalid config %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("omniq: invalid config %s %q: %s", e.Field, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// Resolve returns a copy of c with the OMNIQ_* variables that getenv reports
// applied over it, every zero field set to its default, and every value
// checked. NewClient calls it with os.Getenv; a nil getenv reads no variable.
// The error joins a *ConfigError for each problem found; c is not modified.
func (c Config) Resolve(getenv func(string) string) (Config, error) {
	r := c.clone()
	var errs []error
	var origins map[string]envOrigin
	if getenv != nil {
		origins = map[string]envOrigin{}
		for _, err := range r.applyEnv(getenv, origins) {
			errs = append(errs, err)
		}
	}
	r.applyDefaults()
	for _, err := range r.validate() {
		// A value from the environment is reported under its variable.
		if o, ok := origins[err.Field]; ok {
			err.Field, err.Value = o.name, o.value
		}
		errs = append(errs, err)
	}
	switch len(errs) {
	case 0:
		r.normalize()
		return r, nil
	case 1:
		return Config{}, errs[0]
	default:
		return Config{}, errors.Join(errs...)
	}
}

// clone copies c deeply enough that changing the copy's maps leaves c alone.
func (c Config) clone() Config {
	c.Queues = maps.Clone(c.Queues)
	c.Log.Components = maps.Clone(c.Log.Components)
	c.Schedules = slices.Clone(c.Schedules)
	return c
}

// hasWorkers reports whether the client can run tasks; without workers it is
// insert-only and works no queue by default.
func (c *Config) hasWorkers() bool { return c.Workers != nil && c.Workers.hasAny() }

// applyDefaults sets every zero field to its default.
func (c *Config) applyDefaults() {
	if c.Schema == "" {
		c.Schema = migrations.DefaultSchema
	}
	if len(c.Queues) == 0 && c.hasWorkers() {
		c.Queues = map[string]QueueConfig{defaultQueue: {MaxWorkers: defaultMaxWorkers}}
	}
	for name, q := range c.Queues {
		if q.MaxWorkers == 0 {
			q.MaxWorkers = defaultMaxWorkers
			c.Queues[name] = q
		}
	}
	if c.ID == "" {
		c.ID = defaultClientID()
	}
	setDefault(&c.MaxAttempts, defaultMaxAttempts)
	setDefault(&c.RetryDelay, defaultRetryDelay)
	setDefault(&c.RetryBackoff, defaultRetryBackoff)
	setDefault(&c.EventLevel, defaultEventLevel)
	setDefault(&c.EventRetention, defaultEventRetention)
	setDefault(&c.FinishedRetention, defaultFinishedRetention)
	setDefault(&c.FetchCooldown, defaultFetchCooldown)
	setDefault(&c.FetchPollInterval, defaultFetchPollInterval)
	setDefault(&c.HeartbeatInterval, defaultHeartbeatInterval)
	setDefault(&c.RescueAfter, defaultRescueAfter)
	setDefault(&c.MaintenanceInterval, defaultMaintenanceInterval)
	setDefault(&c.CompleterBatchSize, defaultCompleterBatchSize)
	setDefault(&c.CompleterFlushInterval, defaultCompleterFlushInterval)
	setDefault(&c.Log.Level, defaultLogLevel)
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// defaultClientID is host-pid-random, unique enough to tell clients apart.
func defaultClientID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "omniq"
	}
	host = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return r
		}
		return '_'
	}, host)
	if len(host) > 64 {
		host = host[:64]
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// validate returns a *ConfigError for each bad value of a defaulted c, in a
// stable order.
func (c *Config) validate() []*ConfigError {
	var errs []*ConfigError
	bad := func(field, value, reason string) {
		errs = append(errs, &ConfigError{Field: field, Value: value, Reason: reason})
	}

	if err := migrations.ValidateSchema(c.Schema); err != nil {
		reason := err.Error()
		if _, after, ok := strings.Cut(reason, strconv.Quote(c.Schema)+": "); ok {
			reason = after
		}
		bad("Schema", c.Schema, "not a usable schema name: "+reason)
	}

	for _, name := range slices.Sorted(maps.Keys(c.Queues)) {
		field := fmt.Sprintf("Queues[%q]", name)
		if !queue.ValidQueueName(name) {
			bad(field, name, `not a valid queue name: use 1-128 letters, digits or "_.:-", starting with a letter or digit`)
		}
		switch n := c.Queues[name].MaxWorkers; {
		case n < 0:
			bad(field+".MaxWorkers", strconv.Itoa(n), "must not be negative")
		case n > maxMaxWorkers:
			bad(field+".MaxWorkers", strconv.Itoa(n), fmt.Sprintf("must be at most %d", maxMaxWorkers))
		}
	}

	switch {
	case len(c.ID) > maxIDLen:
		bad("ID", c.ID, fmt.Sprintf("longer than %d bytes", maxIDLen))
	case !utf8.ValidString(c.ID) || strings.IndexFunc(c.ID, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		bad("ID", c.ID, "must be printable UTF-8")
	}

	durations := []struct {
		field string
		d     time.Duration
	}{
		{"TaskTimeout", c.TaskTimeout},
		{"TaskTTL", c.TaskTTL},
		{"ResultTTL", c.ResultTTL},
		{"RetryDelay", c.RetryDelay},
		{"EventRetention", c.EventRetention},
		{"FinishedRetention", c.FinishedRetention},
		{"FetchCooldown", c.FetchCooldown},
		{"FetchPollInterval", c.FetchPollInterval},
		{"HeartbeatInterval", c.HeartbeatInterval},
		{"RescueAfter", c.RescueAfter},
		{"MaintenanceInterval", c.MaintenanceInterval},
		{"CompleterFlushInterval", c.CompleterFlushInterval},
	}
	for _, d := range durations {
		if d.d < 0 {
			bad(d.field, d.d.String(), "must not be negative")
		}
	}
	if c.HeartbeatInterval >= 0 && c.RescueAfter >= 0 && c.RescueAfter <= c.HeartbeatInterval {
		bad("RescueAfter", c.RescueAfter.String(),
			fmt.Sprintf("must be greater than HeartbeatInterval (%s)", c.HeartbeatInterval))
	}

	if c.MaxAttempts < 0 || c.MaxAttempts > maxMaxAttempts {
		bad("MaxAttempts", strconv.Itoa(c.MaxAttempts), fmt.Sprintf("must be between 1 and %d", maxMaxAttempts))
	}
	if c.CompleterBatchSize < 0 || c.CompleterBatchSize > maxCompleterBatchSize {
		bad("CompleterBatchSize", strconv.Itoa(c.CompleterBatchSize),
			fmt.Sprintf("must be between 1 and %d", maxCompleterBatchSize))
	}
	switch jobs.Backoff(strings.ToLower(c.RetryBackoff)) {
	case jobs.BackoffFixed, jobs.BackoffExponential:
	default:
		bad("RetryBackoff", c.RetryBackoff, `unknown backoff: use "fixed" or "exponential"`)
	}
	switch strings.ToLower(c.EventLevel) {
	case queue.EventsAll, queue.EventsDefault, queue.EventsFailures, queue.EventsNone:
	default:
		bad("EventLevel", c.EventLevel, `unknown event level: use "all", "default", "failures" or "none"`)
	}

	errs = append(errs, c.validateSchedules()...)

	if _, ok := parseLogLevel(c.Log.Level); !ok {
		bad("Log.Level", c.Log.Level, "unknown log level: "+logLevelsHint)
	}
	for _, comp := range slices.Sorted(maps.Keys(c.Log.Components)) {
		field := fmt.Sprintf("Log.Components[%q]", comp)
		if !isLogComponent(strings.ToLower(comp)) {
			bad(field, comp, "unknown log component: "+logComponentsHint)
			continue
		}
		if level := c.Log.Components[comp]; !validLogLevel(level) {
			bad(field, level, "unknown log level: "+logLevelsHint)
		}
	}
	return errs
}

func validLogLevel(s string) bool {
	_, ok := parseLogLevel(s)
	return ok
}

// normalize puts the names validate accepts in any case into lower case.
func (c *Config) normalize() {
	c.RetryBackoff = strings.ToLower(c.RetryBackoff)
	c.EventLevel = strings.ToLower(c.EventLevel)
	c.Log.Level = strings.ToLower(c.Log.Level)
	if len(c.Log.Components) > 0 {
		comps := make(map[string]string, len(c.Log.Components))
		for comp, level := range c.Log.Components {
			comps[strings.ToLower(comp)] = strings.ToLower(level)
		}
		c.Log.Components = comps
	}
}

// LoadConfig reads a YAML configuration file. Keys are the fields' yaml
// names (task_timeout, log.level, queues.<name>.max_workers, …); durations take
// Go syntax ("5s", "1h30m"). An unknown key or a value of the wrong type is a
// *ConfigError naming the key, with the file position in the message. The
// result holds the file's values over zero values: Resolve, which NewClient
// calls, fills in the defaults and applies the environment, so fields set on it
// in code win over the file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("omniq: read config: %w", err)
	}
	return parseConfigYAML(path, data)
}

// parseConfigYAML decodes data, read from path, strictly.
func parseConfigYAML(path string, data []byte) (*Config, error) {
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(path, err)
	}
	var body ast.Node
	for _, doc := range file.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			tk := doc.Start // the "---"
			if tk == nil {
				tk = doc.Body.GetToken()
			}
			return nil, fmt.Errorf("%s:%d:%d: %w: more than one YAML document",
				path, tk.Position.Line, tk.Position.Column, ErrInvalidConfig)
		}
		body = doc.Body
	}
	cfg := &Config{}
	if body == nil {
		return cfg, nil
	}

	l := yamlLinter{path: path}
	l.check(body, reflect.TypeFor[Config](), "")
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	if err := yaml.NodeToValue(body, cfg, yaml.DisallowUnknownField(), yaml.CustomUnmarshaler(unmarshalDuration)); err != nil {
		return nil, yamlError(path, err)
	}
	return cfg, nil
}

// unmarshalDuration decodes a YAML scalar in Go duration syntax.
func unmarshalDuration(d *time.Duration, b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// yamlError reports an error of the YAML library, at its position when it has one.
func yamlError(path string, err error) error {
	var pe interface {
		GetMessage() string
		GetToken() *token.Token
	}
	if errors.As(err, &pe) && pe.GetToken() != nil {
		pos := pe.GetToken().Position
		return fmt.Errorf("%s:%d:%d: %w: %s", path, pos.Line, pos.Column, ErrInvalidConfig, pe.GetMessage())
	}
	return fmt.Errorf("%s: %w: %w", path, ErrInvalidConfig, err)
}

// yamlLinter checks a YAML tree against the type it will be decoded into,
// so that every unknown key and every bad value is reported with its key path
// and position, which the YAML library does not always give.
type yamlLinter struct {
	path string
	errs []error
}

func (l *yamlLinter) bad(n ast.Node, field, value, reason string) {
	if field == "" {
		field = "document"
	}
	pos := n.GetToken().Position
	l.errs = append(l.errs, fmt.Errorf("%s:%d:%d: %w", l.path, pos.Line, pos.Column,
		&ConfigError{Field: field, Value: value, Reason: reason}))
}

func (l *yamlLinter) check(n ast.Node, t reflect.Type, field string) {
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return // the zero value
	case *ast.AnchorNode:
		l.check(v.Value, t, field)
		return
	case *ast.TagNode:
		l.check(v.Value, t, field)
		return
	case *ast.AliasNode:
		return // checked where its anchor is
	}
	text, scalar := yamlScalar(n)
	switch {
	case t == reflect.TypeFor[time.Duration]():
		if !scalar {
			l.bad(n, field, "", `must be a duration such as "5s" or "1h30m"`)
		} else if _, err := time.ParseDuration(strings.TrimSpace(text)); err != nil {
			reason := `not a duration: use Go syntax such as "5s" or "1h30m"`
			if _, err := strconv.ParseFloat(text, 64); err == nil {
				reason = fmt.Sprintf("a duration needs a unit, as in %q", text+"s")
			}
			l.bad(n, field, text, reason)
		}
	case t.Kind() == reflect.Struct, t.Kind() == reflect.Map:
		values, ok := yamlMapping(n)
		if !ok {
			l.bad(n, field, text, "must be a mapping")
			return
		}
		var fields map[string]reflect.Type
		if t.Kind() == reflect.Struct {
			fields = yamlFields(t)
		}
		for _, mv := range values {
			if mv.Key.IsMergeKey() {
				continue // the decoder checks merged keys
			}
			key := yamlKey(mv.Key)
			sub := key
			if field != "" {
				sub = field + "." + key
			}
			var elem reflect.Type
			if fields == nil {
				elem = t.Elem()
			} else if elem = fields[key]; elem == nil {
				l.bad(mv.Key, sub, "", "unknown key")
				continue
			}
			l.check(mv.Value, elem, sub)
		}
	case t.Kind() == reflect.Int:
		iv, ok := n.(*ast.IntegerNode)
		if !ok {
			l.bad(n, field, text, "must be an integer")
			return
		}
		if u, ok := iv.Value.(uint64); ok && u > math.MaxInt {
			l.bad(n, field, text, "out of range")
		}
	case t.Kind() == reflect.Bool:
		if _, ok := n.(*ast.BoolNode); !ok {
			l.bad(n, field, text, "must be true or false")
		}
	case t.Kind() == reflect.String:
		if !scalar {
			l.bad(n, field, "", "must be a string")
		}
	}
}

// yamlScalar returns the text of a scalar node.
func yamlScalar(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return v.GetToken().Value, true
	}
	return "", false
}

// yamlMapping returns the pairs of a mapping node.
func yamlMapping(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch v := n.(type) {
	case *ast.MappingNode:
		return v.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{v}, true
	}
	return nil, false
}

// yamlKey returns a mapping key as text.
func yamlKey(k ast.MapKeyNode) string {
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	return k.GetToken().Value
}

// yamlFields maps the yaml names of t's exported fields to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}
