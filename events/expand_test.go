package events

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		e    Event
		want []Type
	}{
		{"first attempt", Event{Type: Completed, Data: json.RawMessage(`{"enqueued_at":"2026-01-01T00:00:00Z","started_at":"2026-01-01T00:00:01Z"}`)},
			[]Type{Enqueued, Executing, Completed}},
		{"later attempt", Event{Type: Retry, Data: json.RawMessage(`{"started_at":"2026-01-01T00:00:01Z","run_at":"2026-01-01T00:00:05Z"}`)},
			[]Type{Executing, Retry}},
		{"cancelled before it started", Event{Type: Cancelled, Data: json.RawMessage(`{"enqueued_at":"2026-01-01T00:00:00Z"}`)},
			[]Type{Enqueued, Cancelled}},
		{"level all", Event{Type: Completed, Data: json.RawMessage(`{}`)}, []Type{Completed}},
		{"not an outcome", Event{Type: QueuePaused, Data: json.RawMessage(`{"started_at":"2026-01-01T00:00:01Z"}`)}, []Type{QueuePaused}},
		{"bad data", Event{Type: Completed, Data: json.RawMessage(`[]`)}, []Type{Completed}},
	} {
		var got []Type
		for i, e := range Expand(tc.e) {
			got = append(got, e.Type)
			if e.Derived != (i < len(Expand(tc.e))-1) {
				t.Errorf("%s: event %d Derived = %v", tc.name, i, e.Derived)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
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
