// Package periodic stores schedules in PostgreSQL and fires them.
//
// A schedule is a row of the schedules table: when it fires (cron, interval,
// timestamp or once), the task it enqueues (kind, args, queue, priority and
// the other enqueue options), and its state (next_run_at, run_count, status).
// Every started client runs a scheduler loop; there is no leader. A fire is
// one transaction that locks due schedules FOR UPDATE SKIP LOCKED, inserts a
// task per tick carrying schedule_id and scheduled_at, advances next_run_at,
// last_run_at and run_count, and writes the schedule_fired event. The task
// exists if and only if the schedule moved past its tick, so a tick fires
// once however many clients run and whichever of them dies mid-fire; the
// unique index on tasks (schedule_id, scheduled_at) makes a double fire
// impossible even if this code were wrong.
//
// The database clock decides what is due (next_run_at <= now() in SQL), so
// clients whose clocks disagree still agree on when a tick fires.
package periodic
