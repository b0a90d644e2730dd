package pgtest_test

import (
	"context"
	"testing"

	"github.com/omniqhq/omniq/internal/pgtest"
)

func TestNewGivesMigratedSchema(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var n int
	err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('tasks','results','schedules','events')`,
		db.Schema).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("schema %s has %d of the 4 core tables", db.Schema, n)
	}
}
