// Package omniq is a PostgreSQL-native, transactional job queue for Go.
//
// Tasks, schedules, results and events are rows in PostgreSQL tables. Workers
// claim tasks with SELECT … FOR UPDATE SKIP LOCKED and are woken by
// LISTEN/NOTIFY. An application enqueues inside its own pgx transaction, so a
// task exists if and only if the business write beside it committed.
package omniq
