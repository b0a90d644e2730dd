package omniq

import (
	"log/slog"
	"time"
)

// Config configures a Client. The zero value of every field means "use the
// default"; defaults are right for most users. Precedence, lowest first:
// defaults < YAML file (LoadConfig) < fields set in code < OMNIQ_* environment
// variables (applied by NewClient through Resolve).
type Config struct {
	// DatabaseURL is used by the commands and by Connect; NewClient takes a pool.
	DatabaseURL string `yaml:"database_url"`
	// Schema holds OmniQ's tables (the plan's project name). Default "omniq".
	Schema string `yaml:"schema"`

	// Queues this client works, with their concurrency. Empty means
	// {"default": {MaxWorkers: 100}} when Workers has any worker; a client
	// without workers is insert-only.
	Queues map[string]QueueConfig `yaml:"queues"`
	// Workers is the registry of task kinds this client can run.
	Workers *Workers `yaml:"-"`
	// ID names this client in tasks.worker_id and clients.id. Default host-pid-random.
	ID string `yaml:"id"`

	// TaskTimeout bounds one attempt of a task that sets no timeout of its own. 0: none.
	TaskTimeout time.Duration `yaml:"task_timeout"`
	// TaskTTL expires tasks not started within it after enqueue. 0: never.
	TaskTTL time.Duration `yaml:"task_ttl"`
	// ResultTTL is how long a stored result is kept. 0: until its task is pruned.
	ResultTTL time.Duration `yaml:"result_ttl"`
	// DisableResults stops storing results unless a task asks for it.
	DisableResults bool `yaml:"disable_results"`
	// MaxAttempts is how many times a task runs before it ends in error. Default 4
	// (the plan's retry_attempts 3, plus the first run).
	MaxAttempts int `yaml:"max_attempts"`
	// RetryDelay is the wait before a retry. Default 5s.
	RetryDelay time.Duration `yaml:"retry_delay"`
	// RetryBackoff is "fixed" (default: every retry waits RetryDelay) or
	// "exponential" (RetryDelay * 2^(attempt-1), with jitter).
	RetryBackoff string `yaml:"retry_backoff"`

	// EventLevel chooses what the events table records: "all" (every
	// transition its own row), "default" (a routine success is one compact
	// row; every other transition its own row), "failures" (error, retry,
	// cancelled, expired, rescued) or "none".
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
	// tasks are rescued. Default 15s.
	RescueAfter time.Duration `yaml:"rescue_after"`
	// MaintenanceInterval is how often the rescue, expiry and retention loops run. Default 1s.
	MaintenanceInterval time.Duration `yaml:"maintenance_interval"`
	// CompleterBatchSize caps the outcomes written in one round trip. Default 1000.
	CompleterBatchSize int `yaml:"completer_batch_size"`
	// CompleterFlushInterval is the longest an outcome waits to be written. Default 2ms.
	CompleterFlushInterval time.Duration `yaml:"completer_flush_interval"`

	// Log configures logging. Logger, when set, is used instead of a new one.
	Log    LogConfig    `yaml:"log"`
	Logger *slog.Logger `yaml:"-"`
}

// QueueConfig configures one queue on this client.
type QueueConfig struct {
	// MaxWorkers is how many tasks of this queue run at once on this client.
	MaxWorkers int `yaml:"max_workers"`
}

// LogConfig is the plan's logging section.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Disabled turns logging off.
	Disabled bool `yaml:"disabled"`
	// Components sets a level per component (producer, completer, maintenance,
	// periodic, notifier, events), overriding Level.
	Components map[string]string `yaml:"components"`
}
