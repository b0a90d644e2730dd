package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omniqhq/omniq/events"
	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/migrations"
)

// coreTables are the tables 001_core.sql creates.
var coreTables = []string{"tasks", "results", "schedules", "events", "queues", "clients"}

// connect opens a connection of the test's own, closed at cleanup.
func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// newSchema returns a fresh schema name, dropped (if created) at cleanup.
func newSchema(t *testing.T) string {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.NewSchemaName()
	t.Cleanup(func() { pgtest.DropSchema(t, url, schema) })
	return schema
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// tablesIn returns which of coreTables exist in schema.
func tablesIn(t *testing.T, conn *pgx.Conn, schema string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		`SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = ANY ($2) ORDER BY tablename`,
		schema, coreTables)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	return names
}

func schemaExists(t *testing.T, conn *pgx.Conn, schema string) bool {
	t.Helper()
	var ok bool
	if err := conn.QueryRow(context.Background(),
		`SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)`, schema).Scan(&ok); err != nil {
		t.Fatalf("look up schema: %v", err)
	}
	return ok
}

func mustVersion(t *testing.T, conn *pgx.Conn, schema string) int32 {
	t.Helper()
	v, err := migrations.Version(context.Background(), conn, schema)
	if err != nil {
		t.Fatalf("Version(%s): %v", schema, err)
	}
	return v
}

func mustExec(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func mustMigrate(t *testing.T, ctx context.Context, conn *pgx.Conn, schema string, target int32) {
	t.Helper()
	if err := migrations.Migrate(ctx, conn, schema, target); err != nil {
		t.Fatalf("Migrate(%s, %d): %v", schema, target, err)
	}
}

func TestUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(t)
	schema := newSchema(t)
	latest := migrations.Latest()

	if v := mustVersion(t, conn, schema); v != 0 {
		t.Fatalf("version of a missing schema = %d, want 0", v)
	}
	if schemaExists(t, conn, schema) {
		t.Fatalf("Version created schema %s", schema)
	}

	mustMigrate(t, ctx, conn, schema, latest)
	if got := tablesIn(t, conn, schema); len(got) != len(coreTables) {
		t.Fatalf("after up: tables %v, want all of %v", got, coreTables)
	}
	if v := mustVersion(t, conn, schema); v != latest {
		t.Fatalf("after up: version %d, want %d", v, latest)
	}

	mustMigrate(t, ctx, conn, schema, 0)
	if got := tablesIn(t, conn, schema); len(got) != 0 {
		t.Fatalf("after down to 0: tables %v remain", got)
	}
	if v := mustVersion(t, conn, schema); v != 0 {
		t.Fatalf("after down to 0: version %d, want 0", v)
	}

	mustMigrate(t, ctx, conn, schema, latest)
	if got := tablesIn(t, conn, schema); len(got) != len(coreTables) {
		t.Fatalf("after up again: tables %v, want all of %v", got, coreTables)
	}
	if v := mustVersion(t, conn, schema); v != latest {
		t.Fatalf("after up again: version %d, want %d", v, latest)
	}

	// The tables work: a task goes in with its defaults.
	if _, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (id, kind) VALUES (gen_random_uuid(), 'k')`,
		pgx.Identifier{schema, "tasks"}.Sanitize())); err != nil {
		t.Fatalf("insert a task: %v", err)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(t)
	schema := newSchema(t)

	for i := range 3 {
		if err := migrations.Migrate(ctx, conn, schema, migrations.Latest()); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	if v := mustVersion(t, conn, schema); v != migrations.Latest() {
		t.Fatalf("version %d, want %d", v, migrations.Latest())
	}
	var rows int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, migrations.VersionTable}.Sanitize()).
		Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("%s has %d rows, want 1", migrations.VersionTable, rows)
	}

	// Down to 0 twice is also a no-op the second time.
	mustMigrate(t, ctx, conn, schema, 0)
	mustMigrate(t, ctx, conn, schema, 0)
	if v := mustVersion(t, conn, schema); v != 0 {
		t.Fatalf("version %d, want 0", v)
	}
}

func TestConcurrentMigrators(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	schema := newSchema(t)

	const n = 8
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		conns[i] = connect(t)
	}
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i, conn := range conns {
		done.Go(func() {
			start.Wait()
			errs[i] = migrations.Migrate(ctx, conn, schema, migrations.Latest())
		})
	}
	start.Done()
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	if v := mustVersion(t, conns[0], schema); v != migrations.Latest() {
		t.Fatalf("version %d, want %d", v, migrations.Latest())
	}
	if got := tablesIn(t, conns[0], schema); len(got) != len(coreTables) {
		t.Fatalf("tables %v, want all of %v", got, coreTables)
	}
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	const schema = "my_schema"
	all, err := migrations.Migrations(schema)
	if err != nil {
		t.Fatal(err)
	}
	if int32(len(all)) != migrations.Latest() {
		t.Fatalf("%d migrations, Latest() = %d", len(all), migrations.Latest())
	}
	if all[0].Name != "001_core.sql" {
		t.Errorf("first migration is %q, want 001_core.sql", all[0].Name)
	}
	for i, m := range all {
		if m.Version != int32(i+1) {
			t.Errorf("migration %d (%s) has version %d", i, m.Name, m.Version)
		}
		if i > 0 && m.Name <= all[i-1].Name {
			t.Errorf("migration %s comes after %s", m.Name, all[i-1].Name)
		}
		for dir, sql := range map[string]string{"up": m.Up, "down": m.Down} {
			if strings.TrimSpace(sql) == "" {
				t.Errorf("%s %s: no SQL", m.Name, dir)
			}
			if strings.Contains(sql, "{{") {
				t.Errorf("%s %s: unrendered template in SQL", m.Name, dir)
			}
		}
	}
	if !strings.Contains(all[0].Up, `CREATE TABLE "my_schema".tasks`) {
		t.Errorf("001 up does not create the quoted schema's tasks table:\n%s", all[0].Up)
	}
	if !strings.Contains(all[0].Down, `DROP TABLE IF EXISTS "my_schema".tasks`) {
		t.Errorf("001 down does not drop the quoted schema's tasks table:\n%s", all[0].Down)
	}

	if _, err := migrations.Migrations("Bad"); !errors.Is(err, migrations.ErrInvalidSchema) {
		t.Errorf("Migrations(Bad): %v, want ErrInvalidSchema", err)
	}
}

func TestSteps(t *testing.T) {
	t.Parallel()
	const schema = "steps_schema"
	latest := migrations.Latest()

	up, err := migrations.Steps(schema, 0, latest)
	if err != nil {
		t.Fatal(err)
	}
	if int32(len(up)) != latest {
		t.Fatalf("up from 0: %d steps, want %d", len(up), latest)
	}
	for i, s := range up {
		if s.Version != int32(i+1) {
			t.Errorf("up step %d is version %d, want %d", i, s.Version, i+1)
		}
		if !strings.Contains(s.Up, `"steps_schema".`) {
			t.Errorf("up step %s does not name the quoted schema", s.Name)
		}
	}

	down, err := migrations.Steps(schema, latest, 0)
	if err != nil {
		t.Fatal(err)
	}
	if int32(len(down)) != latest {
		t.Fatalf("down to 0: %d steps, want %d", len(down), latest)
	}
	for i, s := range down {
		if want := latest - int32(i); s.Version != want {
			t.Errorf("down step %d is version %d, want %d", i, s.Version, want)
		}
		if !strings.Contains(s.Down, `"steps_schema".`) {
			t.Errorf("down step %s does not name the quoted schema", s.Name)
		}
	}

	for v := range latest + 1 {
		if same, err := migrations.Steps(schema, v, v); err != nil || len(same) != 0 {
			t.Errorf("Steps(%d, %d) = %d steps, %v; want none", v, v, len(same), err)
		}
	}

	for _, c := range [][2]int32{{-1, 0}, {0, -1}, {0, latest + 1}, {latest + 1, 0}} {
		if _, err := migrations.Steps(schema, c[0], c[1]); !errors.Is(err, migrations.ErrBadVersion) {
			t.Errorf("Steps(%d, %d): %v, want ErrBadVersion", c[0], c[1], err)
		}
	}
	if _, err := migrations.Steps("Bad", 0, latest); !errors.Is(err, migrations.ErrInvalidSchema) {
		t.Errorf("Steps(Bad): %v, want ErrInvalidSchema", err)
	}
}

func TestValidateSchema(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"omniq", true},
		{"public", true},
		{"_private", true},
		{"a", true},
		{"jobs_2", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{"Omniq", false},
		{"OMNIQ", false},
		{"1jobs", false},
		{strings.Repeat("a", 64), false},
		{"pg_x", false},
		{"pg_catalog", false},
		{"information_schema", false},
		{`"omniq"`, false},
		{"omniq;drop", false},
		{"a'b", false},
		{"a-b", false},
		{"a b", false},
		{"a.b", false},
		{"ünï", false},
	} {
		err := migrations.ValidateSchema(c.name)
		if c.ok && err != nil {
			t.Errorf("ValidateSchema(%q) = %v, want nil", c.name, err)
		}
		if !c.ok && !errors.Is(err, migrations.ErrInvalidSchema) {
			t.Errorf("ValidateSchema(%q) = %v, want ErrInvalidSchema", c.name, err)
		}
	}
}

func TestInvalidSchemaNeverReachesDatabase(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(t)
	const bad = `x"; DROP SCHEMA public; --`
	if err := migrations.Migrate(ctx, conn, bad, migrations.Latest()); !errors.Is(err, migrations.ErrInvalidSchema) {
		t.Errorf("Migrate: %v, want ErrInvalidSchema", err)
	}
	if _, err := migrations.Version(ctx, conn, bad); !errors.Is(err, migrations.ErrInvalidSchema) {
		t.Errorf("Version: %v, want ErrInvalidSchema", err)
	}
	if !schemaExists(t, conn, "public") {
		t.Fatal("schema public is gone")
	}
}

func TestBadVersion(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(t)
	schema := newSchema(t)
	for _, v := range []int32{-1, migrations.Latest() + 1, 1 << 30} {
		if err := migrations.Migrate(ctx, conn, schema, v); !errors.Is(err, migrations.ErrBadVersion) {
			t.Errorf("Migrate(%d): %v, want ErrBadVersion", v, err)
		}
	}
	if schemaExists(t, conn, schema) {
		t.Errorf("a refused Migrate created schema %s", schema)
	}
}

func TestMigrationErrorUp(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(t)
	schema := newSchema(t)

	// A table tasks already in the schema makes 001_core.sql's CREATE TABLE fail.
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE SCHEMA %s; CREATE TABLE %s (x int)",
		pgx.Identifier{schema}.Sanitize(), pgx.Identifier{schema, "tasks"}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	err := migrations.Migrate(ctx, conn, schema, migrations.Latest())
	var me *migrations.Error
	if !errors.As(err, &me) {
		t.Fatalf("Migrate: %v (%T), want *migrations.Error", err, err)
	}
	if me.Name != "001_core.sql" || me.Version != 1 || me.Direction != "up" {
		t.Errorf("error names %s version %d %s, want 001_core.sql version 1 up", me.Name, me.Version, me.Direction)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42P07" { // duplicate_table
		t.Errorf("error %v does not carry PostgreSQL's duplicate_table", err)
	}
	if !strings.Contains(err.Error(), "001_core.sql") || !strings.Contains(err.Error(), `"tasks" already exists`) {
		t.Errorf("message %q names neither the migration nor the cause", err)
	}

	// The migration ran in a transaction: nothing of it stayed.
	if v := mustVersion(t, conn, schema); v != 0 {
		t.Errorf("version after the failure = %d, want 0", v)
	}
	if got := tablesIn(t, conn, schema); len(got) != 1 || got[0] != "tasks" {
		t.Errorf("tables after the failure: %v, want only the conflicting tasks", got)
	}
	// The connection is still usable, and so is the schema once the conflict is gone.
	if _, err := conn.Exec(ctx, "DROP TABLE "+pgx.Identifier{schema, "tasks"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	mustMigrate(t, ctx, conn, schema, migrations.Latest())
}

func TestMigrationErrorDown(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(t)
	schema := newSchema(t)
	mustMigrate(t, ctx, conn, schema, migrations.Latest())

	// A view on clients, which only 001_core.sql drops, makes its DROP
	// TABLE fail.
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE VIEW %s AS SELECT id FROM %s",
		pgx.Identifier{schema, "client_ids"}.Sanitize(), pgx.Identifier{schema, "clients"}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	err := migrations.Migrate(ctx, conn, schema, 0)
	var me *migrations.Error
	if !errors.As(err, &me) {
		t.Fatalf("Migrate: %v (%T), want *migrations.Error", err, err)
	}
	if me.Name != "001_core.sql" || me.Direction != "down" {
		t.Errorf("error names %s %s, want 001_core.sql down", me.Name, me.Direction)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "2BP01" { // dependent_objects_still_exist
		t.Errorf("error %v does not carry PostgreSQL's dependent_objects_still_exist", err)
	}
	// Later migrations' downs succeeded; 001's failed, so version 1 stays.
	if v := mustVersion(t, conn, schema); v != 1 {
		t.Errorf("version after the failure = %d, want 1", v)
	}
	if got := tablesIn(t, conn, schema); len(got) != len(coreTables) {
		t.Errorf("tables after the failed down: %v, want all of %v", got, coreTables)
	}
}

func TestMigrateHonoursContext(t *testing.T) {
	t.Parallel()
	conn := connect(t)
	schema := newSchema(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := migrations.Migrate(ctx, conn, schema, migrations.Latest()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Migrate with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestRotatingTasksKeepsRows: 007 rebuilds tasks as a partitioned table; the
// tasks already there move to the sticky partition with everything they
// held, the unique index still refuses a duplicate, and the way down keeps
// them too.
func TestRotatingTasksKeepsRows(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(t)
	schema := newSchema(t)
	tasks := pgx.Identifier{schema, "tasks"}.Sanitize()
	mustMigrate(t, ctx, conn, schema, 6)
	insertUnique := fmt.Sprintf(`INSERT INTO %s (id, kind, unique_key, unique_states, errors)
		VALUES (gen_random_uuid(), 'k', '\x01', '{pending}', '[{"error": "e"}]')`, tasks)
	if _, err := conn.Exec(ctx, insertUnique); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (id, kind, status, completed_at)
		VALUES (gen_random_uuid(), 'k', 'success', now())`, tasks)); err != nil {
		t.Fatal(err)
	}
	count := func(where string) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s`, tasks, where)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	mustMigrate(t, ctx, conn, schema, 7)
	if n := count(`gen = 0 AND tableoid = '` + pgx.Identifier{schema, "tasks_g0"}.Sanitize() + `'::regclass`); n != 2 {
		t.Fatalf("after 007: %d tasks in tasks_g0, want 2", n)
	}
	if n := count(`errors->0->>'error' = 'e' AND unique_key = '\x01'`); n != 1 {
		t.Fatalf("after 007: the unique task's columns were not kept")
	}
	var pgErr *pgconn.PgError
	if _, err := conn.Exec(ctx, insertUnique); !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("a duplicate unique task after 007: %v, want unique_violation", err)
	}

	mustMigrate(t, ctx, conn, schema, 6)
	if n := count(`true`); n != 2 {
		t.Fatalf("after 007's down: %d tasks, want 2", n)
	}
	if _, err := conn.Exec(ctx, insertUnique); !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("a duplicate unique task after 007's down: %v, want unique_violation", err)
	}
}

// TestRotatingResultsKeepsRows: 011 puts each result in its task's
// partition (the sticky one for a result whose task is gone), and its down
// puts them back in one table, unique by task as before.
func TestRotatingResultsKeepsRows(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(t)
	schema := newSchema(t)
	tasks, results := pgx.Identifier{schema, "tasks"}.Sanitize(), pgx.Identifier{schema, "results"}.Sanitize()
	mustMigrate(t, ctx, conn, schema, 10)
	exec := func(sql string) { mustExec(t, ctx, conn, sql) }
	exec(`INSERT INTO ` + tasks + ` (id, kind, gen) VALUES ('00000000-0000-7000-8000-000000000001', 'k', 1),
		('00000000-0000-7000-8000-000000000002', 'k', 0)`)
	exec(`INSERT INTO ` + results + ` (task_id, status, result) VALUES
		('00000000-0000-7000-8000-000000000001', 'success', '1'),
		('00000000-0000-7000-8000-000000000002', 'success', '2'),
		('00000000-0000-7000-8000-000000000003', 'error', NULL)`)
	gens := func() string {
		t.Helper()
		var got string
		if err := conn.QueryRow(ctx, `SELECT string_agg(right(task_id::text, 1) || ':' || gen || ':' || coalesce(result::text, '-'), ' ' ORDER BY task_id)
			FROM `+results).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}

	mustMigrate(t, ctx, conn, schema, 11)
	if got := gens(); got != "1:1:1 2:0:2 3:0:-" {
		t.Fatalf("after 011: results (task:gen:result) %s, want 1:1:1 2:0:2 3:0:-", got)
	}
	var pgErr *pgconn.PgError
	if _, err := conn.Exec(ctx, `INSERT INTO `+results+` (task_id, gen, status) VALUES ('00000000-0000-7000-8000-000000000001', 1, 'error')`); !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("a second result of a task in its partition after 011: %v, want unique_violation", err)
	}

	mustMigrate(t, ctx, conn, schema, 10)
	var got string
	if err := conn.QueryRow(ctx, `SELECT string_agg(right(task_id::text, 1) || ':' || coalesce(result::text, '-'), ' ' ORDER BY task_id)
		FROM `+results).Scan(&got); err != nil || got != "1:1 2:2 3:-" {
		t.Fatalf("after 011's down: results %s (%v), want 1:1 2:2 3:-", got, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO `+results+` (task_id, status) VALUES ('00000000-0000-7000-8000-000000000001', 'error')`); !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("a second result of a task after 011's down: %v, want unique_violation", err)
	}
}

// TestDependencyStateStartsFromTheTasks: 012's flag is true in a schema
// that already holds a waiting task, false in one that does not, and set by
// the trigger when one is inserted later.
func TestDependencyStateStartsFromTheTasks(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(t)
	seen := func(schema string) bool {
		t.Helper()
		var v bool
		if err := conn.QueryRow(ctx, `SELECT waiting_seen FROM `+pgx.Identifier{schema, "dependency_state"}.Sanitize()).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	insertWaiting := func(schema string) {
		t.Helper()
		if _, err := conn.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "tasks"}.Sanitize()+` (id, kind, status, depends_on)
			VALUES (gen_random_uuid(), 'k', 'waiting', ARRAY[gen_random_uuid()])`); err != nil {
			t.Fatal(err)
		}
	}
	with, without := newSchema(t), newSchema(t)
	mustMigrate(t, ctx, conn, with, 11)
	insertWaiting(with)
	mustMigrate(t, ctx, conn, with, 12)
	mustMigrate(t, ctx, conn, without, 12)
	if !seen(with) || seen(without) {
		t.Fatalf("after 012: waiting_seen %v with a waiting task, %v without; want true, false", seen(with), seen(without))
	}
	insertWaiting(without)
	if !seen(without) {
		t.Fatal("waiting_seen is false after a waiting task was inserted")
	}
}

// TestCompactEventsKeepTimes: after 013 a compact row written before it,
// its times in data, still expands through events.Store; one written after
// it keeps them in the columns; and 013's down folds the columns back into
// data, where 012's readers look.
func TestCompactEventsKeepTimes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(t)
	schema := newSchema(t)
	table := pgx.Identifier{schema, "events"}.Sanitize()
	mustMigrate(t, ctx, conn, schema, 12)
	exec := func(sql string) { mustExec(t, ctx, conn, sql) }
	exec(`INSERT INTO ` + table + ` (time, type, task_id, data) VALUES ('2026-01-01 00:00:03Z', 'completed',
		'00000000-0000-7000-8000-000000000001', '{"enqueued_at": "2026-01-01T00:00:01+00:00", "started_at": "2026-01-01T00:00:02+00:00"}')`)
	mustMigrate(t, ctx, conn, schema, 13)
	exec(`INSERT INTO ` + table + ` (time, type, task_id, started_at, data) VALUES ('2026-01-01 00:00:06Z', 'retry',
		'00000000-0000-7000-8000-000000000002', '2026-01-01 00:00:05Z', '{"run_at": "2026-01-01T00:00:09+00:00"}')`)

	history := func() string {
		t.Helper()
		evs, err := events.NewStore(schema).List(ctx, conn, events.Filter{Expand: true})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var parts []string
		for _, e := range evs {
			parts = append(parts, fmt.Sprintf("%s@%d", e.Type, e.Time.Unix()-1767225600))
		}
		return strings.Join(parts, " ")
	}
	const want = "enqueued@1 executing@2 completed@3 executing@5 retry@6"
	if got := history(); got != want {
		t.Fatalf("after 013: expanded history %s, want %s", got, want)
	}

	exec(`SET TimeZone = 'UTC'`) // how the down's jsonb writes a time
	mustMigrate(t, ctx, conn, schema, 12)
	var data string
	if err := conn.QueryRow(ctx, `SELECT string_agg(data::text, ' ' ORDER BY id) FROM `+table).Scan(&data); err != nil {
		t.Fatal(err)
	}
	const wantData = `{"started_at": "2026-01-01T00:00:02+00:00", "enqueued_at": "2026-01-01T00:00:01+00:00"} ` +
		`{"run_at": "2026-01-01T00:00:09+00:00", "started_at": "2026-01-01T00:00:05+00:00"}`
	if data != wantData {
		t.Fatalf("after 013's down: data %s, want %s", data, wantData)
	}
}

// TestQueueCheck: 008's queue CHECK accepts exactly the names 001's regex
// did, on every partition, and its down puts the regex back with the same
// answers; 009's domain gives the same answers under the same constraint
// name, on INSERT and on an UPDATE that sets queue; 010's cheaper form of
// the domain's CHECK, and its down, give them again.
func TestQueueCheck(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(t)
	schema := newSchema(t)
	names := map[string]bool{
		"default": true, "Default": true, "Z": true, "QUEUE_9": true, "a": true, "9": true, "A-b_c.d:e": true, "ab-": true, strings.Repeat("a", 128): true,
		"": false, "_x": false, "-x": false, ".x": false, ":x": false, "a b": false, "é": false, "aé": false,
		"a/b": false, "a\n": false, "a*": false, strings.Repeat("a", 129): false,
	}
	check := func(version int32) {
		t.Helper()
		// At 009 the INSERT's $1 is inferred as the domain; a statement
		// prepared then names a type that 009's down drops.
		if err := conn.DeallocateAll(ctx); err != nil {
			t.Fatal(err)
		}
		for name, valid := range names {
			for _, gen := range []int{0, 1} {
				_, err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (id, kind, queue, gen) VALUES (gen_random_uuid(), 'k', $1, $2)`,
					pgx.Identifier{schema, "tasks"}.Sanitize()), name, gen)
				var pgErr *pgconn.PgError
				switch {
				case valid && err != nil:
					t.Errorf("at version %d, queue %q (gen %d) refused: %v", version, name, gen, err)
				case !valid && (!errors.As(err, &pgErr) || pgErr.Code != "23514" || pgErr.ConstraintName != "tasks_queue_check"):
					t.Errorf("at version %d, queue %q (gen %d): %v, want a violation of tasks_queue_check", version, name, gen, err)
				}
			}
		}
		// An UPDATE that sets queue is checked too.
		tasks := pgx.Identifier{schema, "tasks"}.Sanitize()
		var id string
		if err := conn.QueryRow(ctx, `INSERT INTO `+tasks+` (id, kind, queue) VALUES (gen_random_uuid(), 'k', 'ok') RETURNING id`).Scan(&id); err != nil {
			t.Fatalf("at version %d: insert: %v", version, err)
		}
		_, err := conn.Exec(ctx, `UPDATE `+tasks+` SET queue = '_bad' WHERE id = $1`, id)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" || pgErr.ConstraintName != "tasks_queue_check" {
			t.Errorf("at version %d, UPDATE to queue '_bad': %v, want a violation of tasks_queue_check", version, err)
		}
	}
	mustMigrate(t, ctx, conn, schema, 10)
	check(10)
	mustMigrate(t, ctx, conn, schema, 9)
	check(9)
	mustMigrate(t, ctx, conn, schema, 8)
	check(8)
	mustMigrate(t, ctx, conn, schema, 7)
	check(7)
}
