package events

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// QueueStats is one row of the queue_stats view.
type QueueStats struct {
	Queue string
	// Tasks per status.
	Pending, Waiting, Running, Retry, Success, Error, Cancelled, Expired int64
	// SucceededLastMinute and FailedLastMinute count tasks that finished in
	// the last minute (success; error, cancelled or expired): the throughput.
	SucceededLastMinute, FailedLastMinute int64
	// OldestPendingAge is how long the oldest due, runnable task has waited
	// since its run_at; 0 when none waits.
	OldestPendingAge time.Duration
	// Paused reports a queue paused with PauseQueue.
	Paused bool
}

// Stats is the state of every queue, and their sum.
type Stats struct {
	Queues []QueueStats // by queue name
	// Total sums every queue; its OldestPendingAge is the largest, and its
	// Queue is empty.
	Total QueueStats
}

// Stats reads the queue_stats view (one scan of the tasks table).
func (s *Store) Stats(ctx context.Context, db DB) (*Stats, error) {
	rows, err := db.Query(ctx, `SELECT queue, pending, waiting, running, retry, success, error, cancelled, expired,
	succeeded_last_minute, failed_last_minute, coalesce(oldest_pending_age, '0'), paused
FROM `+pgx.Identifier{s.schema, "queue_stats"}.Sanitize()+` ORDER BY queue`)
	if err != nil {
		return nil, fmt.Errorf("read queue stats: %w", err)
	}
	qs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (QueueStats, error) {
		var q QueueStats
		err := row.Scan(&q.Queue, &q.Pending, &q.Waiting, &q.Running, &q.Retry, &q.Success, &q.Error,
			&q.Cancelled, &q.Expired, &q.SucceededLastMinute, &q.FailedLastMinute, &q.OldestPendingAge, &q.Paused)
		return q, err
	})
	if err != nil {
		return nil, fmt.Errorf("read queue stats: %w", err)
	}
	st := &Stats{Queues: qs}
	t := &st.Total
	for _, q := range qs {
		t.Pending += q.Pending
		t.Waiting += q.Waiting
		t.Running += q.Running
		t.Retry += q.Retry
		t.Success += q.Success
		t.Error += q.Error
		t.Cancelled += q.Cancelled
		t.Expired += q.Expired
		t.SucceededLastMinute += q.SucceededLastMinute
		t.FailedLastMinute += q.FailedLastMinute
		t.OldestPendingAge = max(t.OldestPendingAge, q.OldestPendingAge)
	}
	return st, nil
}
