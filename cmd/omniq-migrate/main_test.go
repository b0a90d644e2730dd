package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/migrations"
)

// result is what one run of the program gave.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// omniqMigrate runs the program in-process with env as its whole environment.
func omniqMigrate(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr, func(k string) string { return env[k] })
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// db runs the program against the test server and schema.
func db(t *testing.T, schema string, args ...string) result {
	t.Helper()
	return omniqMigrate(t, nil, append(args, "--database-url", pgtest.URL(t), "--schema", schema)...)
}

// wantOK fails the test unless r succeeded, printed nothing on stderr, and
// printed every one of want on stdout.
func wantOK(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("want success, got %v", r)
	}
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Fatalf("stdout lacks %q:\n%v", w, r)
		}
	}
}

// wantFail fails the test unless r exited with code, printed nothing on
// stdout, and printed every one of want on stderr.
func wantFail(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	if r.code != code || r.stdout != "" {
		t.Fatalf("want exit %d and no stdout, got %v", code, r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Fatalf("stderr lacks %q:\n%v", w, r)
		}
	}
}

func newSchema(t *testing.T) string {
	t.Helper()
	url, schema := pgtest.URL(t), pgtest.NewSchemaName()
	t.Cleanup(func() { pgtest.DropSchema(t, url, schema) })
	return schema
}

// withConn calls f with a connection of its own, closed when f returns.
func withConn(t *testing.T, f func(ctx context.Context, conn *pgx.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if err := f(ctx, conn); err != nil {
		t.Fatal(err)
	}
}

func execSQL(t *testing.T, sql string) {
	t.Helper()
	withConn(t, func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
		return nil
	})
}

// tableCount counts OmniQ's core tables in schema.
func tableCount(t *testing.T, schema string) int {
	t.Helper()
	var n int
	withConn(t, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = $1
		   AND tablename IN ('tasks','results','schedules','events','queues','clients')`, schema).Scan(&n)
	})
	return n
}

func schemaExists(t *testing.T, schema string) bool {
	t.Helper()
	var ok bool
	withConn(t, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx,
			`SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)`, schema).Scan(&ok)
	})
	return ok
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"help"}, {"up", "--help"}, {"--schema", "Bad", "-h"}} {
		r := omniqMigrate(t, nil, args...)
		wantOK(t, r, "Usage: omniq-migrate", "--database-url", "OMNIQ_DATABASE_URL", "down --to 0", "001_core.sql")
	}
	wantFail(t, omniqMigrate(t, nil), exitUsage, "no command given", "--help")
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	quoted := pgx.Identifier{schema}.Sanitize()
	latest := strconv.Itoa(int(migrations.Latest()))

	wantOK(t, db(t, schema, "status"), "schema:   "+schema, "version:  0", "latest:   "+latest, "001_core.sql")
	if schemaExists(t, schema) {
		t.Fatal("status created the schema")
	}
	wantOK(t, db(t, schema, "sql", "up"), "-- 001_core.sql (up: version 0 -> 1)", "CREATE TABLE "+quoted+".tasks")
	if schemaExists(t, schema) {
		t.Fatal("sql up created the schema")
	}

	wantOK(t, db(t, schema, "up"), "migrated up from version 0 to "+latest, "001_core.sql")
	if n := tableCount(t, schema); n != 6 {
		t.Fatalf("after up: %d tables, want 6", n)
	}
	wantOK(t, db(t, schema, "up"), "already at version "+latest)
	wantOK(t, db(t, schema, "status"), "version:  "+latest, "pending:  none")

	r := db(t, schema, "sql", "down", latest)
	wantOK(t, r, "-- 001_core.sql (down: version 1 -> 0)", "DROP TABLE IF EXISTS "+quoted+".tasks")
	if strings.Contains(r.stdout, "(up: version") {
		t.Fatalf("sql down prints up SQL:\n%v", r)
	}
	wantOK(t, db(t, schema, "sql", "--to", "0"), "DROP TABLE IF EXISTS "+quoted+".tasks")
	wantOK(t, db(t, schema, "sql", "up"), "already at version "+latest)
	if n := tableCount(t, schema); n != 6 {
		t.Fatalf("sql down dropped tables: %d left", n)
	}

	wantOK(t, db(t, schema, "down", latest), "rolled back from version "+latest+" to 0", "001_core.sql")
	if n := tableCount(t, schema); n != 0 {
		t.Fatalf("after down: %d tables, want 0", n)
	}
	wantOK(t, db(t, schema, "status"), "version:  0", "pending:  "+latest, "001_core.sql")

	wantOK(t, db(t, schema, "up", "--to", latest), "migrated up from version 0 to "+latest)
	wantOK(t, db(t, schema, "down", "--to", "0"), "rolled back", "every OmniQ table is gone")
	if n := tableCount(t, schema); n != 0 {
		t.Fatalf("after down --to 0: %d tables, want 0", n)
	}
	wantOK(t, db(t, schema, "down", "--to", "0"), "already at version 0")
	wantOK(t, db(t, schema, "up"), "migrated up from version 0 to "+latest)
	if n := tableCount(t, schema); n != 6 {
		t.Fatalf("after up again: %d tables, want 6", n)
	}
	wantOK(t, db(t, schema, "down", "1"), "rolled back from version "+latest)
}

func TestFlagsAnywhereAndEnvironment(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := newSchema(t)
	unreachable := "postgres://postgres@127.0.0.1:1/postgres"

	// Flags before the command.
	wantOK(t, omniqMigrate(t, nil, "--database-url", url, "--schema", schema, "up"), "migrated up")
	// Flags between the command and its argument, with = and one dash.
	wantOK(t, omniqMigrate(t, nil, "sql", "-schema="+schema, "down", "--database-url="+url, "1"), "(down: version")
	// After "--", everything is positional.
	wantOK(t, omniqMigrate(t, nil, "--schema", schema, "--database-url", url, "--", "status"), "schema:   "+schema)

	// The environment, in order of precedence.
	for _, env := range []map[string]string{
		{"OMNIQ_DATABASE_URL": url, "OMNIQ_SCHEMA": schema},
		{"DATABASE_URL": url, "OMNIQ_SCHEMA": schema},
		{"OMNIQ_DATABASE_URL": url, "DATABASE_URL": unreachable, "OMNIQ_SCHEMA": schema},
		{"OMNIQ_DATABASE_URL": unreachable, "OMNIQ_SCHEMA": "other"}, // overridden by the flags below
	} {
		args := []string{"status"}
		if env["OMNIQ_SCHEMA"] == "other" {
			args = append(args, "--database-url", url, "--schema", schema)
		}
		wantOK(t, omniqMigrate(t, env, args...), "schema:   "+schema, "version:  "+strconv.Itoa(int(migrations.Latest())))
	}
	// Without --schema or OMNIQ_SCHEMA the schema is omniq.
	wantFail(t, omniqMigrate(t, map[string]string{"DATABASE_URL": "postgres://%zz"}, "status"), exitUsage,
		"invalid database URL from DATABASE_URL")
	inv, err := parseArgs([]string{"status"}, func(string) string { return "" })
	if err != nil || inv.schema != migrations.DefaultSchema || inv.url != "" {
		t.Fatalf("defaults: %+v, %v", inv, err)
	}
}

func TestConcurrentUp(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	const n = 8
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = db(t, schema, "up") })
	}
	wg.Wait()
	for _, r := range results {
		wantOK(t, r)
	}
	if n := tableCount(t, schema); n != 6 {
		t.Fatalf("%d tables, want 6", n)
	}
	wantOK(t, db(t, schema, "up"), "already at version")
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"bogus"}, `unknown command "bogus"`},
		{nil, []string{"UP"}, `unknown command "UP"`},
		{nil, []string{"down", "0"}, `invalid number of migrations "0"`},
		{nil, []string{"down", "x"}, `invalid number of migrations "x"`},
		{nil, []string{"down", "1.5"}, `invalid number of migrations "1.5"`},
		{nil, []string{"down", "99999999999"}, `invalid number of migrations "99999999999"`},
		{nil, []string{"down", "-1"}, "flag provided but not defined: -1"},
		{nil, []string{"down", "1", "2"}, "at most one argument"},
		{nil, []string{"down", "1", "--to", "0"}, "either N or --to V"},
		{nil, []string{"sql", "down", "0"}, `invalid number of migrations "0"`},
		{nil, []string{"up", "2"}, "up takes no arguments"},
		{nil, []string{"up", "--to", "99"}, `invalid value "99" for flag -to`},
		{nil, []string{"up", "--to", "-1"}, `invalid value "-1" for flag -to`},
		{nil, []string{"up", "--to", "one"}, `invalid value "one" for flag -to`},
		{nil, []string{"status", "--to", "1"}, "status does not take --to"},
		{nil, []string{"status", "now"}, "status takes no arguments"},
		{nil, []string{"sql"}, "sql needs a direction"},
		{nil, []string{"sql", "sideways"}, `unknown direction "sideways"`},
		{nil, []string{"sql", "up", "1"}, "sql up takes no arguments"},
		{nil, []string{"--nope", "up"}, "flag provided but not defined: -nope"},
		{nil, []string{"up", "--schema"}, "flag needs an argument: -schema"},
		{nil, []string{"up", "--schema", ""}, `--schema: invalid schema name ""`},
		{nil, []string{"up", "--schema", "Omniq"}, `invalid schema name "Omniq"`},
		{nil, []string{"up", "--schema", "1q"}, `invalid schema name "1q"`},
		{nil, []string{"up", "--schema", "pg_x"}, `invalid schema name "pg_x"`},
		{nil, []string{"up", "--schema", "a-b"}, `invalid schema name "a-b"`},
		{nil, []string{"up", "--schema", "x;drop"}, `invalid schema name "x;drop"`},
		{nil, []string{"up", "--schema", strings.Repeat("s", 64)}, "invalid schema name"},
		{map[string]string{"OMNIQ_SCHEMA": "Bad"}, []string{"up"}, `OMNIQ_SCHEMA: invalid schema name "Bad"`},
	} {
		r := omniqMigrate(t, c.env, append([]string{"--database-url", url}, c.args...)...)
		wantFail(t, r, exitUsage, c.want, "--help")
	}
}

func TestBadDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"postgres://%zz",
		"postgres://postgres:secret@127.0.0.1:%zz/postgres",
		"postgres://postgres:secret@127.0.0.1:port/postgres",
		"postgres://postgres:se%zzcret@127.0.0.1/postgres",
		"postgres://postgres:secret@[::1/postgres",
		"postgres://postgres:secret@127.0.0.1/postgres?sslmode=sometimes",
		"postgresql://postgres@127.0.0.1/postgres?password=secret&sslmode=sometimes",
		"host=127.0.0.1 password=secret port=port",
		"host=127.0.0.1 password='secret' sslmode=sometimes",
		"not a url",
	} {
		wantFail(t, omniqMigrate(t, nil, "status", "--database-url", url), exitUsage,
			"invalid database URL from --database-url")
		r := omniqMigrate(t, map[string]string{"OMNIQ_DATABASE_URL": url}, "up")
		wantFail(t, r, exitUsage, "invalid database URL from OMNIQ_DATABASE_URL")
		if strings.Contains(r.stderr, "secret") || strings.Contains(r.stderr, "cret") {
			t.Errorf("message for %q shows the password:\n%v", url, r)
		}
	}
}

func TestUnreachableDatabase(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"postgres://postgres:secret@127.0.0.1:1/postgres",
		"host=127.0.0.1 port=1 user=postgres password=secret dbname=postgres",
	} {
		for _, args := range [][]string{{"up"}, {"down"}, {"status"}, {"sql", "up"}} {
			start := time.Now()
			r := omniqMigrate(t, nil, append(args, "--database-url", url)...)
			wantFail(t, r, exitFailure, "cannot connect to PostgreSQL at 127.0.0.1:1", `user "postgres"`, "refused")
			if strings.Contains(r.stderr, "secret") {
				t.Errorf("message shows the password:\n%v", r)
			}
			if d := time.Since(start); d > connectTimeout {
				t.Errorf("%v took %v to fail", args, d)
			}
		}
	}
}

// A server that accepts connections and never answers: the connection
// attempt gives up after connect_timeout and names the address.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	addr := ln.Addr().String()
	start := time.Now()
	r := omniqMigrate(t, nil, "status", "--database-url", "postgres://postgres:secret@"+addr+"/postgres?connect_timeout=1")
	wantFail(t, r, exitFailure, "cannot connect to PostgreSQL at "+addr, "timeout")
	if d := time.Since(start); d > connectTimeout {
		t.Errorf("took %v to give up", d)
	}
	if strings.Contains(r.stderr, "secret") {
		t.Errorf("message shows the password:\n%v", r)
	}

	// Without connect_timeout, the default applies.
	cfg, err := parseConfig("postgres://postgres@"+addr+"/postgres", "test")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ConnectTimeout != connectTimeout {
		t.Errorf("ConnectTimeout = %v, want %v", cfg.ConnectTimeout, connectTimeout)
	}
}

func TestFailedMigration(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	execSQL(t, fmt.Sprintf("CREATE SCHEMA %s; CREATE TABLE %s (x int)",
		pgx.Identifier{schema}.Sanitize(), pgx.Identifier{schema, "tasks"}.Sanitize()))

	r := db(t, schema, "up")
	wantFail(t, r, exitFailure, "migration 001_core.sql (version 1, up) failed", schema,
		"42P07", `relation "tasks" already exists`, "is at version 0")
	if n := tableCount(t, schema); n != 1 {
		t.Fatalf("%d tables after the failed migration, want only the conflicting one", n)
	}

	// A failed down names its direction and PostgreSQL's reason.
	execSQL(t, "DROP TABLE "+pgx.Identifier{schema, "tasks"}.Sanitize())
	wantOK(t, db(t, schema, "up"))
	// A view on clients, which only 001_core.sql drops, makes that down fail.
	execSQL(t, fmt.Sprintf("CREATE VIEW %s AS SELECT id FROM %s",
		pgx.Identifier{schema, "client_ids"}.Sanitize(), pgx.Identifier{schema, "clients"}.Sanitize()))
	wantFail(t, db(t, schema, "down", "--to", "0"), exitFailure, "migration 001_core.sql (version 1, down) failed",
		"2BP01", "hint:", "is at version 1")
}

func TestWrongDirection(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	wantFail(t, db(t, schema, "down"), exitFailure, "cannot roll back 1 migration(s)", "at version 0")
	wantFail(t, db(t, schema, "sql", "down"), exitFailure, "cannot roll back 1 migration(s)")
	wantFail(t, db(t, schema, "down", "--to", "1"), exitFailure, "below --to 1", "use up --to 1")
	wantOK(t, db(t, schema, "up"))
	wantFail(t, db(t, schema, "up", "--to", "0"), exitFailure, "above --to 0", "use down --to 0")
	wantFail(t, db(t, schema, "down", "99"), exitFailure, "cannot roll back 99 migration(s)")
	if n := tableCount(t, schema); n != 6 {
		t.Fatalf("a refused command changed the schema: %d tables", n)
	}
}

func TestSchemaNewerThanBuild(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	wantOK(t, db(t, schema, "up"))
	execSQL(t, "UPDATE "+pgx.Identifier{schema, migrations.VersionTable}.Sanitize()+" SET version = 99")

	wantOK(t, db(t, schema, "status"), "version:  99", "pending:  unknown")
	for _, args := range [][]string{{"up"}, {"down"}, {"down", "--to", "0"}, {"sql", "--to", "0"}} {
		wantFail(t, db(t, schema, args...), exitFailure, "at version 99, newer than this build")
	}
}

func TestPasswordsIn(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		raw  string
		want string
	}{
		{"postgres://u:secret@h/db", "secret"},
		{"postgresql://u:s%40cret@h/db", "s@cret"},
		{"postgres://u:a@b@h/db", "a@b"},
		{"postgres://h/db?sslmode=disable&password=secret&x=y", "secret"},
		{"host=h password=secret dbname=db", "secret"},
		{"host=h password = 'se cret' dbname=db", "se cret"},
	} {
		got := passwordsIn(c.raw)
		msg := scrub("oops: "+c.want+" in "+c.raw, got)
		if strings.Contains(msg, c.want) {
			t.Errorf("passwordsIn(%q) = %q; scrubbed message still shows the password: %s", c.raw, got, msg)
		}
	}
	if got := scrub("user=postgres", []string{"", "x"}); got != "user=postgres" {
		t.Errorf("scrub with nothing to hide changed the message: %q", got)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"postgres://bob@db.example:6543/jobs":              `db.example:6543 (database "jobs", user "bob")`,
		"postgres://bob@[::1]:5432/jobs":                   `[::1]:5432 (database "jobs", user "bob")`,
		"host=/run/postgresql port=5433 user=a dbname=b":   `unix socket /run/postgresql/.s.PGSQL.5433 (database "b", user "a")`,
		"postgres://bob:pw@h1:1,h2:2/jobs?sslmode=disable": `h1:1, h2:2 (database "jobs", user "bob")`,
	} {
		cfg, err := pgx.ParseConfig(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := describe(cfg); got != want {
			t.Errorf("describe(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestBinary builds the real program and checks its exit statuses, the
// PG* fallback, and two processes migrating one schema at once.
func TestBinary(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build omniq-migrate: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "omniq-migrate")
	build := exec.CommandContext(t.Context(), goTool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cfg, err := pgx.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	pgEnv := []string{
		"PGHOST=" + cfg.Host,
		"PGPORT=" + strconv.Itoa(int(cfg.Port)),
		"PGUSER=" + cfg.User,
		"PGDATABASE=" + cfg.Database,
		"PGPASSWORD=" + cfg.Password,
		"PGSSLMODE=prefer",
	}
	start := func(env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		t.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env // nothing from the test's own environment
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &stdout, &stderr
	}
	wait := func(cmd *exec.Cmd, stdout, stderr *bytes.Buffer) result {
		err := cmd.Wait()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			t.Fatalf("%v: %v", cmd.Args, err)
		}
		return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	}
	runBin := func(env []string, args ...string) result {
		return wait(start(env, args...))
	}

	// Two processes at once on a fresh schema, configured by PG* and OMNIQ_SCHEMA only.
	schema := newSchema(t)
	env := append(pgEnv, "OMNIQ_SCHEMA="+schema)
	c1, o1, e1 := start(env, "up")
	c2, o2, e2 := start(env, "up")
	for _, r := range []result{wait(c1, o1, e1), wait(c2, o2, e2)} {
		wantOK(t, r)
	}
	wantOK(t, runBin(env, "status"), "schema:   "+schema, "version:  "+strconv.Itoa(int(migrations.Latest())), "pending:  none")
	wantOK(t, runBin(env, "--help"), "Usage: omniq-migrate")

	r := runBin(nil, "status", "--database-url", "postgres://postgres:secret@127.0.0.1:1/postgres")
	wantFail(t, r, exitFailure, "127.0.0.1:1")
	if strings.Contains(r.stderr, "secret") {
		t.Errorf("message shows the password:\n%v", r)
	}
	wantFail(t, runBin(env, "bogus"), exitUsage, `unknown command "bogus"`)
}
