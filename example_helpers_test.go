package omniq_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/migrations"
)

// exampleDB migrates a fresh schema for an example and returns a pool on it
// and a function that drops it. In an application the schema is migrated
// once, by omniq-migrate or migrations.Migrate, and the pool is the
// application's own.
func exampleDB(ctx context.Context) (*pgxpool.Pool, string, func()) {
	url := os.Getenv("OMNIQ_TEST_DATABASE_URL")
	if url == "" {
		url = pgtest.LocalURL
	}
	schema := pgtest.NewSchemaName()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		log.Fatal(err)
	}
	err = migrations.Migrate(ctx, conn.Conn(), schema, migrations.Latest())
	conn.Release()
	if err != nil {
		log.Fatal(err)
	}
	return pool, schema, func() {
		_, _ = pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		pool.Close()
	}
}
