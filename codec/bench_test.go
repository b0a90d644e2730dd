package codec_test

import (
	stdjson "encoding/json"
	"testing"
	"time"

	"github.com/omniqhq/omniq/codec"
)

// benchArgs is a typical task-args struct: strings, integers, a float, a
// bool, a time, a slice and a small map.
type benchArgs struct {
	TaskID    string            `json:"task_id"`
	Kind      string            `json:"kind"`
	UserID    int64             `json:"user_id"`
	Attempt   int               `json:"attempt"`
	Amount    float64           `json:"amount"`
	Email     string            `json:"email"`
	Urgent    bool              `json:"urgent"`
	CreatedAt time.Time         `json:"created_at"`
	Tags      []string          `json:"tags"`
	Meta      map[string]string `json:"meta"`
}

func newBenchArgs() benchArgs {
	return benchArgs{
		TaskID:    "0193b0c2-7f4e-7a51-9d0e-5b3c2a1f0e9d",
		Kind:      "send_invoice",
		UserID:    1234567890123,
		Attempt:   2,
		Amount:    1299.95,
		Email:     "ada@example.com",
		Urgent:    true,
		CreatedAt: time.Date(2025, 6, 1, 12, 30, 45, 123456789, time.FixedZone("", 2*3600)),
		Tags:      []string{"billing", "eu", "priority"},
		Meta:      map[string]string{"currency": "EUR", "locale": "fr-FR", "source": "api"},
	}
}

// BenchmarkMarshal compares the JSON codec (goccy/go-json) with
// encoding/json on the same value, and shows what Manager.Encode adds (the
// walk that applies the fallback rule).
func BenchmarkMarshal(b *testing.B) {
	v := newBenchArgs()
	b.Run("codec=json", func(b *testing.B) {
		b.ReportAllocs()
		var c codec.JSON
		for b.Loop() {
			if _, err := c.Marshal(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := stdjson.Marshal(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Manager.Encode", func(b *testing.B) {
		b.ReportAllocs()
		m := codec.NewManager()
		for b.Loop() {
			if _, _, err := m.Encode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkUnmarshal is the decoding side of BenchmarkMarshal.
func BenchmarkUnmarshal(b *testing.B) {
	data, err := stdjson.Marshal(newBenchArgs())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("codec=json", func(b *testing.B) {
		b.ReportAllocs()
		var c codec.JSON
		for b.Loop() {
			var v benchArgs
			if err := c.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v benchArgs
			if err := stdjson.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Manager.Decode", func(b *testing.B) {
		b.ReportAllocs()
		m := codec.NewManager()
		for b.Loop() {
			var v benchArgs
			if err := m.Decode(codec.JSONName, data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGob measures the fallback for comparison.
func BenchmarkGob(b *testing.B) {
	m := codec.NewManager()
	if err := m.Gob().Register(benchArgs{}); err != nil {
		b.Fatal(err)
	}
	v := newBenchArgs()
	data, err := m.Gob().Marshal(&v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Gob().Marshal(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out benchArgs
			if err := m.Gob().Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
