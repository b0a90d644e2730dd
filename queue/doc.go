// Package queue is OmniQ's engine: the SQL of the tasks and results tables,
// enqueue (single, batch, COPY), the per-queue producers that claim with
// FOR UPDATE SKIP LOCKED, the executors, the batching completer, retries,
// timeouts, cancel, the client heartbeat and the maintenance loops (rescue,
// expiry, retention).
//
// One file per mechanism: insert.go, producer.go, executor.go, completer.go,
// notifier.go, maintenance.go; sql.go holds every statement.
package queue
