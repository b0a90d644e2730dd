package jobs

import (
	"time"

	"github.com/google/uuid"
)

// ResultStatus is the outcome recorded in the results table.
type ResultStatus string

// Result statuses, as the plan has them.
const (
	ResultPending   ResultStatus = "pending"
	ResultRunning   ResultStatus = "running"
	ResultSuccess   ResultStatus = "success"
	ResultError     ResultStatus = "error"
	ResultCancelled ResultStatus = "cancelled"
	ResultTimeout   ResultStatus = "timeout"
)

// TaskResult is the stored outcome of a task.
type TaskResult struct {
	TaskID        uuid.UUID
	Status        ResultStatus
	Value         []byte // encoded result as stored (JSON text), nil when none
	Codec         string
	Error         string
	Traceback     string
	CreatedAt     time.Time
	StartedAt     *time.Time
	CompletedAt   *time.Time
	ExecutionTime time.Duration
	WorkerID      string
	Attempt       int
	ExpiresAt     *time.Time
}
