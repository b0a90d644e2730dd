// Package pgtest gives each test a real PostgreSQL schema of its own, migrated
// to the latest version and dropped when the test ends, so tests run in
// parallel against one server and leave nothing behind.
//
// The server is found in this order:
//  1. OMNIQ_TEST_DATABASE_URL;
//  2. postgres://postgres@127.0.0.1:5432/postgres;
//  3. a PostgreSQL container started with testcontainers-go, when a Docker engine answers;
//  4. otherwise the test fails with a message that says how to get a database.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/omniqhq/omniq/migrations"
)

// LocalURL is tried when OMNIQ_TEST_DATABASE_URL is unset.
const LocalURL = "postgres://postgres@127.0.0.1:5432/postgres"

// The server is found once per test binary; every test shares the answer.
var (
	findOnce sync.Once
	foundURL string
	findErr  error
)

// URL returns the URL of the test server, failing the test when there is none.
func URL(t testing.TB) string {
	t.Helper()
	findOnce.Do(func() { foundURL, findErr = find(context.Background()) })
	if findErr != nil {
		t.Fatalf("pgtest: %v", findErr)
	}
	return foundURL
}

func find(ctx context.Context) (string, error) {
	if url := os.Getenv("OMNIQ_TEST_DATABASE_URL"); url != "" {
		if err := ping(ctx, url); err != nil {
			return "", fmt.Errorf("OMNIQ_TEST_DATABASE_URL is set but the server does not answer: %w", err)
		}
		return url, nil
	}
	localErr := ping(ctx, LocalURL)
	if localErr == nil {
		return LocalURL, nil
	}
	url, dockerErr := startContainer(ctx)
	if dockerErr == nil {
		return url, nil
	}
	return "", fmt.Errorf("no PostgreSQL for tests.\n"+
		"  - OMNIQ_TEST_DATABASE_URL is not set;\n"+
		"  - %s: %v;\n"+
		"  - testcontainers: %v.\n"+
		"Set OMNIQ_TEST_DATABASE_URL=postgres://user:pass@host:port/db, start PostgreSQL on 127.0.0.1:5432 "+
		"(user postgres, trust auth), or start a Docker engine", LocalURL, localErr, dockerErr)
}

func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

func startContainer(ctx context.Context) (url string, err error) {
	defer func() {
		// testcontainers panics when no Docker engine can be found.
		if r := recover(); r != nil {
			err = fmt.Errorf("no Docker engine: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := tcpostgres.Run(ctx, "postgres:16-alpine",
		tcpostgres.WithDatabase("omniq"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		testcontainers.WithWaitStrategy(wait.ForLog("database system is ready to accept connections").
			WithOccurrence(2).WithStartupTimeout(2*time.Minute)),
	)
	if err != nil {
		return "", err
	}
	// The container is reaped by testcontainers' Ryuk when the test binary exits.
	return c.ConnectionString(ctx, "sslmode=disable")
}

// DB is a migrated schema of one test's own.
type DB struct {
	URL    string        // the server's URL
	Schema string        // the schema holding OmniQ's tables
	Pool   *pgxpool.Pool // a small pool on the server, closed at cleanup
}

// New creates a fresh schema, migrates it to the latest version, and drops it
// when the test ends.
func New(t testing.TB) *DB {
	t.Helper()
	url := URL(t)
	ctx := context.Background()
	schema := NewSchemaName()

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if err := migrations.Migrate(ctx, conn, schema, migrations.Latest()); err != nil {
		t.Fatalf("pgtest: migrate schema %s: %v", schema, err)
	}

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("pgtest: parse url: %v", err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		DropSchema(t, url, schema)
	})
	return &DB{URL: url, Schema: schema, Pool: pool}
}

// NewSchemaName returns an unused-looking schema name for a test.
func NewSchemaName() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "omniq_test_" + hex.EncodeToString(b[:])
}

// DropSchema drops schema and everything in it, ending any session still
// using it first.
func DropSchema(t testing.TB, url, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("pgtest: drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("pgtest: drop schema %s: %v", schema, err)
	}
}

// Exec runs sql on db's pool, failing the test on error.
func (db *DB) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("pgtest: exec %q: %v", sql, err)
	}
}

// Table returns the quoted, schema-qualified name of one of db's tables.
func (db *DB) Table(name string) string {
	return pgx.Identifier{db.Schema, name}.Sanitize()
}

// WaitFor polls cond every 10ms until it holds, failing the test with what
// it waited for once timeout has passed.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Scalar runs sql, which returns one row of one column, on pool and returns
// that value; the test fails on an error.
func Scalar[T any](t testing.TB, pool *pgxpool.Pool, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}
