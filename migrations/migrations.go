// Package migrations owns OmniQ's database schema: numbered SQL files in tern/v2
// format, embedded in the binary, applied to a schema of the caller's choosing.
//
// Every table OmniQ uses lives in one PostgreSQL schema (default "omniq"). The
// files refer to it as {{.schema}}; Migrate fills it in quoted as an identifier,
// so a schema name is never spliced into SQL unquoted ({{.schema_name}} is the
// same name as a string literal, for functions that compute channel names).
//
// Migrate takes a session-level advisory lock (tern's) for the whole run, so two
// processes migrating at once run one after the other and the second finds
// nothing to do.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed sql/*.sql
var files embed.FS

// DefaultSchema is the schema OmniQ's tables live in unless configured otherwise.
const DefaultSchema = "omniq"

// VersionTable is the table, inside the schema, that records the applied version.
const VersionTable = "schema_version"

// ErrInvalidSchema is returned for a schema name OmniQ will not use.
var ErrInvalidSchema = errors.New("invalid schema name")

// ErrBadVersion is returned for a target version outside 0..Latest().
var ErrBadVersion = errors.New("invalid migration version")

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ValidateSchema reports whether name can hold OmniQ's tables: lower-case
// letters, digits and underscores, starting with a letter or underscore, at most
// 63 bytes (PostgreSQL's identifier limit), and not a system schema.
func ValidateSchema(name string) error {
	if !schemaRE.MatchString(name) {
		return fmt.Errorf("%w %q: use 1-63 lower-case letters, digits or underscores, not starting with a digit", ErrInvalidSchema, name)
	}
	if strings.HasPrefix(name, "pg_") || name == "information_schema" {
		return fmt.Errorf("%w %q: reserved by PostgreSQL", ErrInvalidSchema, name)
	}
	return nil
}

// Migration is one numbered step, with its SQL rendered for a schema.
type Migration struct {
	Version int32
	Name    string
	Up      string
	Down    string
}

// Migrations returns every migration with its SQL rendered for schema.
func Migrations(schema string) ([]Migration, error) {
	if err := ValidateSchema(schema); err != nil {
		return nil, err
	}
	m, err := newMigrator(context.Background(), nil, schema)
	if err != nil {
		return nil, err
	}
	out := make([]Migration, 0, len(m.Migrations))
	for _, mig := range m.Migrations {
		out = append(out, Migration{Version: mig.Sequence, Name: mig.Name, Up: mig.UpSQL, Down: mig.DownSQL})
	}
	return out, nil
}

// Latest is the highest migration version this build knows.
func Latest() int32 {
	names, err := migrate.FindMigrations(sqlFS())
	if err != nil {
		panic(fmt.Sprintf("omniq migrations: embedded files unreadable: %v", err))
	}
	return int32(len(names))
}

// Version returns the schema's applied version; 0 when the schema or its version
// table does not exist.
func Version(ctx context.Context, conn *pgx.Conn, schema string) (int32, error) {
	if err := ValidateSchema(schema); err != nil {
		return 0, err
	}
	var exists bool
	if err := conn.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = $2)`,
		schema, VersionTable).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version of %q: %w", schema, err)
	}
	if !exists {
		return 0, nil
	}
	var v int32
	if err := conn.QueryRow(ctx, "SELECT version FROM "+versionTable(schema)).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version of %q: %w", schema, err)
	}
	return v, nil
}

// Steps returns the migrations that Migrate would run to move schema from
// version from to version to, in order, with the SQL of the direction taken.
func Steps(schema string, from, to int32) ([]Migration, error) {
	all, err := Migrations(schema)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(to); err != nil {
		return nil, err
	}
	if err := checkVersion(from); err != nil {
		return nil, err
	}
	var steps []Migration
	for v := from; v < to; v++ {
		steps = append(steps, all[v])
	}
	for v := from; v > to; v-- {
		steps = append(steps, all[v-1])
	}
	return steps, nil
}

// Error is a migration that PostgreSQL refused.
type Error struct {
	Version   int32
	Name      string
	Direction string // "up" or "down"
	Err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("migration %s (%s) failed: %v", e.Name, e.Direction, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Migrate moves schema to target (0 removes every table; Latest() applies all),
// creating the schema if needed. It is safe to call concurrently from several
// processes, and calling it at the version already applied does nothing.
func Migrate(ctx context.Context, conn *pgx.Conn, schema string, target int32) error {
	if err := ValidateSchema(schema); err != nil {
		return err
	}
	if err := checkVersion(target); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		// Two processes creating the schema at once: the loser sees a unique violation.
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			return fmt.Errorf("create schema %q: %w", schema, err)
		}
	}
	m, err := newMigrator(ctx, conn, schema)
	if err != nil {
		return fmt.Errorf("prepare migrations for schema %q: %w", schema, err)
	}
	var current struct {
		seq       int32
		name, dir string
	}
	m.OnStart = func(seq int32, name, dir, _ string) {
		current.seq, current.name, current.dir = seq, name, dir
	}
	if err := m.MigrateTo(ctx, target); err != nil {
		if current.name != "" {
			return &Error{Version: current.seq, Name: current.name, Direction: current.dir, Err: err}
		}
		return fmt.Errorf("migrate schema %q: %w", schema, err)
	}
	return nil
}

func checkVersion(v int32) error {
	if v < 0 || v > Latest() {
		return fmt.Errorf("%w %d: this build knows versions 0 to %d", ErrBadVersion, v, Latest())
	}
	return nil
}

func versionTable(schema string) string {
	return pgx.Identifier{schema, VersionTable}.Sanitize()
}

func sqlFS() fs.FS {
	sub, err := fs.Sub(files, "sql")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

func newMigrator(ctx context.Context, conn *pgx.Conn, schema string) (*migrate.Migrator, error) {
	m, err := migrate.NewMigratorEx(ctx, conn, versionTable(schema), &migrate.MigratorOptions{})
	if err != nil {
		return nil, err
	}
	m.Data["schema"] = pgx.Identifier{schema}.Sanitize()
	// The name as a SQL string literal; ValidateSchema allows no quote characters.
	m.Data["schema_name"] = "'" + schema + "'"
	if err := m.LoadMigrations(sqlFS()); err != nil {
		return nil, err
	}
	return m, nil
}
