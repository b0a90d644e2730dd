// Package events is OmniQ's event log: the types of what happens to tasks,
// schedules and queues, reading the events table with filters and cursor
// paging, live subscriptions, and queue statistics.
//
// # Writing
//
// Events are not written by this package. The engine (package queue) writes
// each event in the same statement as the transition it records (a
// data-modifying CTE beside the INSERT or UPDATE of the task), so the log
// never disagrees with the tasks table, and a rolled-back enqueue leaves no
// event. Config.EventLevel chooses what is written:
//
//	level     rows per routine task                  what else
//	all       3: enqueued, executing, completed       every other transition its own row
//	default   1: completed, compact                   every other transition its own row
//	failures  0                                       error, retry, cancelled, expired, rescued
//	none      0                                       nothing
//
// At "default" an outcome row (completed, error, retry, cancelled, snoozed,
// rescued) carries started_at, the time of the attempt's executing
// transition, and on the task's first attempt enqueued_at, the time of its
// enqueue: two columns of the row (Event.StartedAt, Event.EnqueuedAt), 16
// bytes where they took 105 as JSON in data before migration 013 (rows
// written before it still hold them there, and are read from there). Expand
// turns such a row back into the transitions it stands
// for, so the log answers the same questions as at "all": List with
// Filter.Expand and every subscription see enqueued, executing and the
// outcome for each task. What "default" cannot show: the enqueued event of a
// task that never ran (cancelled or expired first; its tasks row keeps
// created_at), an attempt that is still running, and, after the first
// attempt was snoozed or interrupted by a hard stop, the derived enqueued
// event comes with the next outcome instead of first.
//
// # Cost, and why "default" is the default
//
// Measured with bare SQL on the 2-core development machine (PostgreSQL 15,
// one connection, 1,000-task batches of insert, then claim, then the
// completion batch; the engine's own statements; best of 4 runs while other
// work shared the machine, so the ratios matter more than the numbers):
//
//	level      tasks/s   events/task
//	none       14,800    0
//	default    12,000    1
//	all        10,400    3
//
// ("go run" of a throwaway program; see the report of issue 7.) A routine
// success costs one event row at "default" against three at "all", and the
// one row rides in the completion statement the task needs anyway. The
// migration 002 adds, per event row, an xid8 column and four small indexes
// (xid, queue, kind, and warning/error level): with the schema of migration
// 001 alone the same runs gave 15,000, 13,000 and 11,900 tasks/s.
//
// # Subscriptions
//
// Event ids come from a sequence, so a transaction that commits after
// another may hold smaller ids: a cursor on ids would skip them. Every event
// row records the top-level transaction that wrote it (column xid, default
// pg_current_xact_id()). A subscription remembers the snapshot of its last
// read and next reads the rows of exactly the transactions that were not
// visible in it (xid at or above its xmax, or in its in-progress list),
// together with the new snapshot, in one statement. Each committed event is
// therefore read once, whatever the commit order, and nothing is missed
// across a lost LISTEN connection: the reconnect triggers a read like any
// other. A statement trigger notifies the channel <schema>_events once per
// transaction that inserted events (identical notifications of one
// transaction fold), and a slow poll each second is a safety net.
//
// A slow reader never slows the queue. When its channel is full its
// goroutine waits; it reads nothing meanwhile, holds no connection and no
// snapshot open, and the next read fetches everything committed since (in
// one query, so memory grows with the backlog). Events pruned by retention
// before it reads them are lost to it.
//
// # Retention and statistics
//
// The engine's maintenance loop (and Client.CleanupExpired) deletes events
// older than Config.EventRetention in batches of 1,000. Store.Stats reads the
// queue_stats view, which an operator can query directly:
//
//	SELECT * FROM omniq.queue_stats;
package events
