package queue

import (
	"context"
	"reflect"
	"testing"

	"github.com/omniqhq/omniq/internal/pgtest"
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
		if _, err := conn.Conn().Prepare(ctx, f.Name, v.Field(i).String()); err != nil {
			t.Errorf("statement %s: %v", f.Name, err)
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
