package queue

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/omniqhq/omniq/internal/pgtest"
	"github.com/omniqhq/omniq/migrations"
)

// TestStatementsPrepare parses and plans every statement against a migrated
// schema, so SQL that drifts from the tables fails here, not in production.
func TestStatementsPrepare(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	s := newStatements(db.Schema)
	v := reflect.ValueOf(s).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if f.Name == "schema" {
			continue
		}
		texts := []string{}
		var flatten func(reflect.Value)
		flatten = func(fv reflect.Value) {
			if fv.Kind() != reflect.Array {
				texts = append(texts, fv.String())
				return
			}
			for j := 0; j < fv.Len(); j++ {
				flatten(fv.Index(j))
			}
		}
		flatten(v.Field(i))
		for j, text := range texts {
			if _, err := conn.Conn().Prepare(ctx, fmt.Sprintf("%s_%d", f.Name, j), text); err != nil {
				t.Errorf("statement %s[%d]: %v", f.Name, j, err)
			}
		}
	}
}

func TestChannelNamesFitIdentifiers(t *testing.T) {
	t.Parallel()
	long := "s234567890123456789012345678901234567890123456789012345678901xx"
	for _, schema := range []string{"omniq", long} {
		for _, topic := range []string{topicInsert, topicControl, topicComplete} {
			if ch := Channel(schema, topic); len(ch) > 63 {
				t.Errorf("Channel(%q, %q) = %q is %d bytes", schema, topic, ch, len(ch))
			}
		}
	}
	if Channel(long, topicInsert) == Channel(long+"y", topicInsert) {
		t.Error("two long schemas share a channel")
	}
}

// The SQL function channel(topic) of migration 003 must name the same
// channels as Channel, or enqueue from SQL would wake nobody.
func TestSQLChannelMatchesGo(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	var got string
	if err := db.Pool.QueryRow(context.Background(), "SELECT "+table(db.Schema, "channel")+"($1)", topicInsert).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := Channel(db.Schema, topicInsert); got != want {
		t.Fatalf("SQL channel %q, Go channel %q", got, want)
	}
	// A schema long enough that the name is hashed.
	long := (db.Schema + "_long_long_long_long_long_long_long_long_long_long_long")[:63]
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	t.Cleanup(func() { pgtest.DropSchema(t, db.URL, long) })
	if err := migrations.Migrate(ctx, conn, long, migrations.Latest()); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT "+table(long, "channel")+"($1)", topicInsert).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := Channel(long, topicInsert); got != want {
		t.Fatalf("long schema: SQL channel %q, Go channel %q", got, want)
	}
}
