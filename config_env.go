package omniq

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Environment variables read by Resolve; Config's doc comment describes them.
const (
	envDatabaseURL          = "OMNIQ_DATABASE_URL"
	envSchema               = "OMNIQ_SCHEMA"
	envProjectName          = "OMNIQ_PROJECT_NAME"
	envLogLevel             = "OMNIQ_LOG_LEVEL"
	envDisableLogging       = "OMNIQ_DISABLE_LOGGING"
	envComponentLogLevels   = "OMNIQ_COMPONENT_LOG_LEVELS"
	envComponentLevelPrefix = "OMNIQ_LOG_LEVEL_"
	envMaxWorkers           = "OMNIQ_MAX_WORKERS"
	envDefaultQueues        = "OMNIQ_DEFAULT_QUEUES"
	envTaskTimeout          = "OMNIQ_TASK_TIMEOUT"
	envTaskTTL              = "OMNIQ_TASK_TTL"
	envResultTTL            = "OMNIQ_RESULT_TTL"
	envDisableResults       = "OMNIQ_DISABLE_RESULTS"
	envRetryAttempts        = "OMNIQ_RETRY_ATTEMPTS"
	envRetryDelay           = "OMNIQ_RETRY_DELAY"
	envRetryBackoff         = "OMNIQ_RETRY_BACKOFF"
	envEventLevel           = "OMNIQ_EVENT_LEVEL"
	envEventRetention       = "OMNIQ_EVENT_RETENTION"
)

// envOrigin records that a field's value came from an environment variable,
// so that validation reports the variable rather than the field.
type envOrigin struct {
	name  string // the variable
	value string // the part of its value that set the field
}

// envReader reads OMNIQ_* variables into a Config, collecting parse errors.
type envReader struct {
	getenv  func(string) string
	origins map[string]envOrigin // validate's field name → origin
	errs    []*ConfigError
}

func (r *envReader) bad(name, value, reason string) {
	r.errs = append(r.errs, &ConfigError{Field: name, Value: value, Reason: reason})
}

// lookup returns the variable's value and whether it is set to a non-empty one.
func (r *envReader) lookup(name string) (string, bool) {
	v := strings.TrimSpace(r.getenv(name))
	return v, v != ""
}

func (r *envReader) string(name, field string, dst *string) {
	if v, ok := r.lookup(name); ok {
		*dst = v
		r.origins[field] = envOrigin{name, v}
	}
}

func (r *envReader) bool(name string, dst *bool) {
	v, ok := r.lookup(name)
	if !ok {
		return
	}
	switch strings.ToLower(v) {
	case "1", "t", "true", "y", "yes", "on":
		*dst = true
	case "0", "f", "false", "n", "no", "off":
		*dst = false
	default:
		r.bad(name, v, "not a boolean: use true or false")
	}
}

func (r *envReader) int(name string) (int, bool) {
	v, ok := r.lookup(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.bad(name, v, "not an integer")
		return 0, false
	}
	return n, true
}

func (r *envReader) duration(name, field string, dst *time.Duration) {
	v, ok := r.lookup(name)
	if !ok {
		return
	}
	d, err := parseEnvDuration(v)
	if err != nil {
		r.bad(name, v, err.Error())
		return
	}
	*dst = d
	r.origins[field] = envOrigin{name, v}
}

// parseEnvDuration reads Go duration syntax or a plain number of seconds.
func parseEnvDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
		return 0, fmt.Errorf(`not a duration: use Go syntax such as "5s" or "1h30m", or a number of seconds`)
	}
	ns := math.Round(secs * float64(time.Second))
	if ns > math.MaxInt64 || ns < math.MinInt64 {
		return 0, fmt.Errorf("duration out of range")
	}
	return time.Duration(ns), nil
}

// applyEnv sets the fields named by OMNIQ_* variables, recording in origins
// which variable set which field, and returns the variables it could not parse.
func (c *Config) applyEnv(getenv func(string) string, origins map[string]envOrigin) []*ConfigError {
	r := &envReader{getenv: getenv, origins: origins}

	if v, ok := r.lookup(envDatabaseURL); ok {
		c.DatabaseURL = v
	}
	r.string(envProjectName, "Schema", &c.Schema)
	r.string(envSchema, "Schema", &c.Schema)

	r.string(envLogLevel, "Log.Level", &c.Log.Level)
	r.bool(envDisableLogging, &c.Log.Disabled)
	if v, ok := r.lookup(envComponentLogLevels); ok {
		var levels map[string]string
		if err := json.Unmarshal([]byte(v), &levels); err != nil {
			r.bad(envComponentLogLevels, v, `not a JSON object of component levels, such as {"producer":"debug"}`)
		} else {
			for comp, level := range levels {
				r.setComponentLevel(c, envComponentLogLevels, strings.ToLower(comp), level)
			}
		}
	}
	for _, comp := range logComponents() {
		name := envComponentLevelPrefix + strings.ToUpper(comp)
		if v, ok := r.lookup(name); ok {
			r.setComponentLevel(c, name, comp, v)
		}
	}

	if v, ok := r.lookup(envDefaultQueues); ok {
		names, err := parseQueueList(v)
		if err != nil {
			r.bad(envDefaultQueues, v, err.Error())
		}
		for _, name := range names {
			if _, ok := c.Queues[name]; ok {
				continue
			}
			if c.Queues == nil {
				c.Queues = map[string]QueueConfig{}
			}
			c.Queues[name] = QueueConfig{}
			r.origins[fmt.Sprintf("Queues[%q]", name)] = envOrigin{envDefaultQueues, name}
		}
	}
	if n, ok := r.int(envMaxWorkers); ok {
		v, _ := r.lookup(envMaxWorkers)
		switch {
		case n < 1 || n > maxMaxWorkers:
			r.bad(envMaxWorkers, v, fmt.Sprintf("must be between 1 and %d", maxMaxWorkers))
		case len(c.Queues) == 0:
			if c.hasWorkers() {
				c.Queues = map[string]QueueConfig{defaultQueue: {MaxWorkers: n}}
			}
		default:
			for name, q := range c.Queues {
				q.MaxWorkers = n
				c.Queues[name] = q
			}
		}
	}

	r.duration(envTaskTimeout, "TaskTimeout", &c.TaskTimeout)
	r.duration(envTaskTTL, "TaskTTL", &c.TaskTTL)
	r.duration(envResultTTL, "ResultTTL", &c.ResultTTL)
	r.bool(envDisableResults, &c.DisableResults)
	if n, ok := r.int(envRetryAttempts); ok {
		if v, _ := r.lookup(envRetryAttempts); n < 0 || n > maxMaxAttempts-1 {
			r.bad(envRetryAttempts, v, fmt.Sprintf("must be between 0 and %d", maxMaxAttempts-1))
		} else {
			c.MaxAttempts = n + 1
		}
	}
	r.duration(envRetryDelay, "RetryDelay", &c.RetryDelay)
	r.string(envRetryBackoff, "RetryBackoff", &c.RetryBackoff)
	r.string(envEventLevel, "EventLevel", &c.EventLevel)
	r.duration(envEventRetention, "EventRetention", &c.EventRetention)
	return r.errs
}

// setComponentLevel sets one component's level from variable name.
func (r *envReader) setComponentLevel(c *Config, name, comp, level string) {
	if c.Log.Components == nil {
		c.Log.Components = map[string]string{}
	}
	// A key differing only in case from the YAML or code one replaces it.
	for k := range c.Log.Components {
		if strings.EqualFold(k, comp) {
			delete(c.Log.Components, k)
		}
	}
	c.Log.Components[comp] = level
	// Validation reports an unknown component by its name, a bad level by the level.
	value := level
	if !isLogComponent(comp) {
		value = comp
	}
	r.origins[fmt.Sprintf("Log.Components[%q]", comp)] = envOrigin{name, value}
}

// parseQueueList reads a JSON list of names or a comma-separated one.
func parseQueueList(s string) ([]string, error) {
	if strings.HasPrefix(s, "[") {
		var names []string
		if err := json.Unmarshal([]byte(s), &names); err != nil {
			return nil, fmt.Errorf(`not a JSON list of queue names, such as ["default","high"]`)
		}
		return names, nil
	}
	var names []string
	for name := range strings.SplitSeq(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			names = append(names, name)
		}
	}
	return names, nil
}
