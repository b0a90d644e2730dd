package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omniqhq/omniq/migrations"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line, URL or schema name is unusable
)

func usage() string {
	var names []string
	if all, err := migrations.Migrations(migrations.DefaultSchema); err == nil {
		for _, m := range all {
			names = append(names, m.Name)
		}
	}
	return fmt.Sprintf(`Usage: omniq-migrate [flags] <command> [args]

Applies, rolls back and inspects OmniQ's tables in one PostgreSQL schema.

Commands:
  up                 apply every pending migration (or stop at --to V)
  down [N]           roll back the last N migrations (default 1), or down to --to V;
                     "down --to 0" drops every OmniQ table (the schema itself stays)
  status             show the schema's version, the latest version and the pending migrations
  sql up             print the SQL that "up" would run, without running it
  sql down [N]       print the SQL that "down [N]" would run, without running it
  sql --to V         print the SQL that would move the schema to version V
  help               show this help

Flags (before or after the command):
  --database-url URL PostgreSQL URL or key=value string; default $OMNIQ_DATABASE_URL,
                     then $DATABASE_URL, then libpq's PGHOST, PGPORT, PGUSER, PGPASSWORD,
                     PGDATABASE, ... variables
  --schema NAME      schema holding OmniQ's tables; default $OMNIQ_SCHEMA, then %q
  --to V             target version, 0 to %d
  -h, --help         show this help

Migrations in this build: %s (latest version %d).
Concurrent runs are safe: migrations take a PostgreSQL advisory lock and run one at a time.

Exit status: 0 on success, 1 when the command failed, 2 on a usage error
(bad command, flag, number, schema name or database URL).
`, migrations.DefaultSchema, migrations.Latest(), strings.Join(names, ", "), migrations.Latest())
}

// run is the whole program: it parses args, does one command, and returns the
// exit status. Messages for the user go to stderr, results to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	inv, err := parseArgs(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "omniq-migrate: %v\nRun 'omniq-migrate --help' for usage.\n", err)
		return exitUsage
	}
	if inv.help {
		fmt.Fprint(stdout, usage())
		return exitOK
	}
	secrets := passwordsIn(inv.url)
	cfg, err := parseConfig(inv.url, inv.urlSource)
	if err != nil {
		fmt.Fprintf(stderr, "omniq-migrate: %s\n", scrub(err.Error(), secrets))
		return exitUsage
	}
	secrets = append(secrets, cfg.Password)
	if err := inv.execute(ctx, cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "omniq-migrate: %s\n", scrub(err.Error(), secrets))
		return exitFailure
	}
	return exitOK
}

// invocation is one parsed command line.
type invocation struct {
	help      bool
	command   string // "up", "down", "status" or "sql"
	direction string // for "sql": "up", "down", or "" for sql --to V
	steps     int32  // for down N; 0 unless N applies
	to        versionFlag
	schema    string
	url       string
	urlSource string // where url came from, for messages
}

// usageError is a command line the program cannot act on (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// versionFlag is --to: a migration version this build knows.
type versionFlag struct {
	v   int32
	set bool
}

func (f *versionFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.Itoa(int(f.v))
}

func (f *versionFlag) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 || n > int64(migrations.Latest()) {
		return fmt.Errorf("want a version from 0 to %d", migrations.Latest())
	}
	f.v, f.set = int32(n), true
	return nil
}

// parseArgs reads flags wherever they appear among the positional arguments,
// then checks the command and its arguments. It does not touch the database.
func parseArgs(args []string, getenv func(string) string) (*invocation, error) {
	inv := &invocation{}
	fs := flag.NewFlagSet("omniq-migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&inv.url, "database-url", "", "")
	fs.StringVar(&inv.schema, "schema", "", "")
	fs.Var(&inv.to, "to", "")
	fs.BoolVar(&inv.help, "h", false, "")
	fs.BoolVar(&inv.help, "help", false, "")

	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, usagef("%w", err)
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		if n := len(rest) - len(left); n > 0 && rest[n-1] == "--" {
			pos = append(pos, left...) // everything after "--" is positional
			break
		}
		pos = append(pos, left[0])
		rest = left[1:]
	}
	if inv.help {
		return inv, nil
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if len(pos) == 0 {
		return nil, usagef("no command given")
	}
	inv.command = pos[0]
	cmdArgs := pos[1:]
	switch inv.command {
	case "help":
		inv.help = true
		return inv, nil
	case "up":
		if err := inv.parseUp("up", cmdArgs); err != nil {
			return nil, err
		}
	case "down":
		if err := inv.parseDown("down", cmdArgs); err != nil {
			return nil, err
		}
	case "status":
		if len(cmdArgs) > 0 {
			return nil, usagef("status takes no arguments, got %q", cmdArgs)
		}
		if inv.to.set {
			return nil, usagef("status does not take --to")
		}
	case "sql":
		if len(cmdArgs) == 0 {
			if !inv.to.set {
				return nil, usagef("sql needs a direction: sql up, sql down [N] or sql --to V")
			}
			break
		}
		inv.direction = cmdArgs[0]
		switch inv.direction {
		case "up":
			if err := inv.parseUp("sql up", cmdArgs[1:]); err != nil {
				return nil, err
			}
		case "down":
			if err := inv.parseDown("sql down", cmdArgs[1:]); err != nil {
				return nil, err
			}
		default:
			return nil, usagef("sql: unknown direction %q: want up or down", inv.direction)
		}
	default:
		return nil, usagef("unknown command %q: want up, down, status, sql or help", inv.command)
	}

	switch {
	case set["schema"]:
		if err := migrations.ValidateSchema(inv.schema); err != nil {
			return nil, usagef("--schema: %w", err)
		}
	case getenv("OMNIQ_SCHEMA") != "":
		inv.schema = getenv("OMNIQ_SCHEMA")
		if err := migrations.ValidateSchema(inv.schema); err != nil {
			return nil, usagef("OMNIQ_SCHEMA: %w", err)
		}
	default:
		inv.schema = migrations.DefaultSchema
	}

	switch {
	case set["database-url"]:
		inv.urlSource = "--database-url"
	case getenv("OMNIQ_DATABASE_URL") != "":
		inv.url, inv.urlSource = getenv("OMNIQ_DATABASE_URL"), "OMNIQ_DATABASE_URL"
	case getenv("DATABASE_URL") != "":
		inv.url, inv.urlSource = getenv("DATABASE_URL"), "DATABASE_URL"
	default:
		inv.urlSource = "the PG* environment variables"
	}
	return inv, nil
}

func (inv *invocation) parseUp(name string, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q (use --to V to stop at version V)", name, args)
	}
	return nil
}

func (inv *invocation) parseDown(name string, args []string) error {
	switch {
	case len(args) > 1:
		return usagef("%s takes at most one argument, the number of migrations to roll back; got %q", name, args)
	case len(args) == 1 && inv.to.set:
		return usagef("%s: give either N or --to V, not both", name)
	case len(args) == 1:
		n, err := strconv.ParseInt(args[0], 10, 32)
		if err != nil || n < 1 {
			return usagef("%s: invalid number of migrations %q: want a whole number of at least 1", name, args[0])
		}
		inv.steps = int32(n)
	case !inv.to.set:
		inv.steps = 1
	}
	return nil
}

// execute connects and does the command.
func (inv *invocation) execute(ctx context.Context, cfg *pgx.ConnConfig, stdout io.Writer) error {
	conn, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	current, err := migrations.Version(ctx, conn, inv.schema)
	if err != nil {
		return err
	}
	if inv.command == "status" {
		return inv.status(stdout, cfg, current)
	}
	target, err := inv.target(current)
	if err != nil {
		return err
	}
	if inv.command == "sql" {
		return inv.printSQL(stdout, current, target)
	}

	if target == current {
		fmt.Fprintf(stdout, "schema %q is already at version %d; nothing to do\n", inv.schema, current)
		return nil
	}
	steps, err := migrations.Steps(inv.schema, current, target)
	if err != nil {
		return err
	}
	if err := migrations.Migrate(ctx, conn, inv.schema, target); err != nil {
		return migrateError(ctx, conn, inv.schema, err)
	}
	dir, verb := direction(current, target), "migrated up"
	if dir == "down" {
		verb = "rolled back"
	}
	fmt.Fprintf(stdout, "schema %q %s from version %d to %d:\n", inv.schema, verb, current, target)
	for _, s := range steps {
		fmt.Fprintf(stdout, "  %-4s %s\n", dir, s.Name)
	}
	if target == 0 {
		fmt.Fprintf(stdout, "every OmniQ table is gone; the schema and its %s table remain\n", migrations.VersionTable)
	}
	return nil
}

// target is the version the command moves the schema to from current.
func (inv *invocation) target(current int32) (int32, error) {
	latest := migrations.Latest()
	if current > latest {
		return 0, fmt.Errorf("schema %q is at version %d, newer than this build of omniq-migrate knows (latest %d): use a newer omniq-migrate",
			inv.schema, current, latest)
	}
	dir := inv.command
	if dir == "sql" {
		dir = inv.direction
	}
	switch dir {
	case "up":
		target := latest
		if inv.to.set {
			target = inv.to.v
		}
		if target < current {
			return 0, fmt.Errorf("schema %q is at version %d, above --to %d: up never rolls back; use down --to %d",
				inv.schema, current, target, target)
		}
		return target, nil
	case "down":
		if inv.to.set {
			if inv.to.v > current {
				return 0, fmt.Errorf("schema %q is at version %d, below --to %d: down never applies migrations; use up --to %d",
					inv.schema, current, inv.to.v, inv.to.v)
			}
			return inv.to.v, nil
		}
		if inv.steps > current {
			return 0, fmt.Errorf("cannot roll back %d migration(s): schema %q is at version %d",
				inv.steps, inv.schema, current)
		}
		return current - inv.steps, nil
	default: // sql --to V
		return inv.to.v, nil
	}
}

func direction(from, to int32) string {
	if to < from {
		return "down"
	}
	return "up"
}

func (inv *invocation) status(w io.Writer, cfg *pgx.ConnConfig, current int32) error {
	all, err := migrations.Migrations(inv.schema)
	if err != nil {
		return err
	}
	latest := migrations.Latest()
	fmt.Fprintf(w, "database: %s\n", describe(cfg))
	fmt.Fprintf(w, "schema:   %s\n", inv.schema)
	fmt.Fprintf(w, "version:  %d\n", current)
	fmt.Fprintf(w, "latest:   %d\n", latest)
	switch {
	case current > latest:
		fmt.Fprintf(w, "pending:  unknown: the schema is newer than this build of omniq-migrate\n")
	case current == latest:
		fmt.Fprintf(w, "pending:  none (up to date)\n")
	default:
		fmt.Fprintf(w, "pending:  %d\n", latest-current)
		for _, m := range all[current:] {
			fmt.Fprintf(w, "  %s\n", m.Name)
		}
	}
	return nil
}

func (inv *invocation) printSQL(w io.Writer, current, target int32) error {
	if current == target {
		fmt.Fprintf(w, "-- schema %q is already at version %d; no SQL to run.\n", inv.schema, current)
		return nil
	}
	steps, err := migrations.Steps(inv.schema, current, target)
	if err != nil {
		return err
	}
	dir := direction(current, target)
	fmt.Fprintf(w, "-- SQL that omniq-migrate would run to move schema %q %s from version %d to %d.\n",
		inv.schema, dir, current, target)
	fmt.Fprintf(w, "-- Nothing was run. omniq-migrate also runs CREATE SCHEMA IF NOT EXISTS %s first,\n",
		pgx.Identifier{inv.schema}.Sanitize())
	fmt.Fprintf(w, "-- runs each migration in a transaction of its own, and records the version in %s.\n",
		pgx.Identifier{inv.schema, migrations.VersionTable}.Sanitize())
	for _, s := range steps {
		from, to, sql := s.Version-1, s.Version, s.Up
		if dir == "down" {
			from, to, sql = s.Version, s.Version-1, s.Down
		}
		fmt.Fprintf(w, "\n-- %s (%s: version %d -> %d)\n", s.Name, dir, from, to)
		fmt.Fprintf(w, "%s\n", strings.TrimSpace(sql))
	}
	return nil
}

// migrationFailure is a migration PostgreSQL refused, told with the
// PostgreSQL error's code, message, detail and hint.
type migrationFailure struct {
	schema  string
	err     *migrations.Error
	version int32 // the schema's version after the failure; -1 when unknown
}

func (f *migrationFailure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "migration %s (version %d, %s) failed on schema %q", f.err.Name, f.err.Version, f.err.Direction, f.schema)
	var pgErr *pgconn.PgError
	if errors.As(f.err, &pgErr) {
		fmt.Fprintf(&b, ": PostgreSQL %s %s: %s", pgErr.Severity, pgErr.Code, pgErr.Message)
		if pgErr.Detail != "" {
			fmt.Fprintf(&b, "\n  detail: %s", pgErr.Detail)
		}
		if pgErr.Hint != "" {
			fmt.Fprintf(&b, "\n  hint: %s", pgErr.Hint)
		}
	} else {
		fmt.Fprintf(&b, ": %v", f.err.Err)
	}
	if f.version >= 0 {
		fmt.Fprintf(&b, "\nschema %q is at version %d", f.schema, f.version)
	}
	return b.String()
}

func (f *migrationFailure) Unwrap() error { return f.err }

func migrateError(ctx context.Context, conn *pgx.Conn, schema string, err error) error {
	var me *migrations.Error
	if !errors.As(err, &me) {
		return err
	}
	f := &migrationFailure{schema: schema, err: me, version: -1}
	if v, verr := migrations.Version(ctx, conn, schema); verr == nil {
		f.version = v
	}
	return f
}
