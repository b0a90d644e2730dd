package events

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	enqueued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	started := enqueued.Add(time.Second)
	for _, tc := range []struct {
		name string
		e    Event
		want []Type
	}{
		{"first attempt", Event{Type: Completed, EnqueuedAt: enqueued, StartedAt: started},
			[]Type{Enqueued, Executing, Completed}},
		{"later attempt", Event{Type: Retry, StartedAt: started, Data: json.RawMessage(`{"run_at":"2026-01-01T00:00:05Z"}`)},
			[]Type{Executing, Retry}},
		{"cancelled before it started", Event{Type: Cancelled, EnqueuedAt: enqueued},
			[]Type{Enqueued, Cancelled}},
		{"level all", Event{Type: Completed, Data: json.RawMessage(`{}`)}, []Type{Completed}},
		{"not an outcome", Event{Type: QueuePaused, StartedAt: started}, []Type{QueuePaused}},
	} {
		var got []Type
		ex := Expand(tc.e)
		for i, e := range ex {
			got = append(got, e.Type)
			if e.Derived != (i < len(ex)-1) {
				t.Errorf("%s: event %d Derived = %v", tc.name, i, e.Derived)
			}
			switch e.Type {
			case Enqueued:
				if !e.Time.Equal(enqueued) {
					t.Errorf("%s: enqueued at %v, want %v", tc.name, e.Time, enqueued)
				}
			case Executing:
				if !e.Time.Equal(started) {
					t.Errorf("%s: executing at %v, want %v", tc.name, e.Time, started)
				}
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCompactFromData: rows written before migration 013 keep the compact
// times in data; they are read from there, and data that does not hold them
// (or is not an object) leaves them zero.
func TestCompactFromData(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		e                 Event
		enqueued, started string
	}{
		{"first attempt", Event{Type: Completed, Data: json.RawMessage(`{"enqueued_at":"2026-01-01T00:00:00Z","started_at":"2026-01-01T00:00:01Z"}`)},
			"2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"},
		{"later attempt", Event{Type: Retry, Data: json.RawMessage(`{"started_at":"2026-01-01T00:00:01+01:00","run_at":"2026-01-01T00:00:05Z"}`)},
			"", "2026-01-01T00:00:01+01:00"},
		{"not an outcome", Event{Type: QueuePaused, Data: json.RawMessage(`{"started_at":"2026-01-01T00:00:01Z"}`)}, "", ""},
		{"bad data", Event{Type: Completed, Data: json.RawMessage(`[]`)}, "", ""},
		{"bad time", Event{Type: Completed, Data: json.RawMessage(`{"started_at":"yesterday"}`)}, "", ""},
	} {
		tc.e.compactFromData()
		for _, c := range []struct {
			what string
			got  time.Time
			want string
		}{{"EnqueuedAt", tc.e.EnqueuedAt, tc.enqueued}, {"StartedAt", tc.e.StartedAt, tc.started}} {
			var want time.Time
			if c.want != "" {
				want, _ = time.Parse(time.RFC3339, c.want)
			}
			if !c.got.Equal(want) {
				t.Errorf("%s: %s %v, want %v", tc.name, c.what, c.got, want)
			}
		}
	}
}

func TestFilterTypesWithExpand(t *testing.T) {
	t.Parallel()
	f := Filter{Types: []Type{Executing}, Expand: true}
	got, err := f.storedTypes()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, string(Completed)) || !slices.Contains(got, string(Executing)) {
		t.Errorf("stored types %v", got)
	}
	if _, err := (&Filter{Types: []Type{"x"}}).storedTypes(); err == nil {
		t.Error("unknown type accepted")
	}
}
