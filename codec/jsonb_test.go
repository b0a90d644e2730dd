package codec_test

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/omniqhq/omniq/codec"
)

func TestToFromJSONB(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	tests := []struct {
		name   string
		codec  string
		data   []byte
		stored string
	}{
		{"json is stored as is", "json", []byte(`{"a":[1,2]}`), `{"a":[1,2]}`},
		{"json null", "json", []byte(`null`), `null`},
		{"gob is base64", "gob", []byte{0, 1, 2, 0xfb, 0xff}, `"AAEC+/8="`},
		{"empty payload", "gob", []byte{}, `""`},
		{"any other codec is base64", "msgpack", []byte("\x81\xa1a\x01"), `"gaFhAQ=="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stored := m.ToJSONB(tt.codec, tt.data)
			if string(stored) != tt.stored {
				t.Errorf("ToJSONB = %s, want %s", stored, tt.stored)
			}
			if !stdjson.Valid(stored) {
				t.Errorf("ToJSONB = %s is not JSON", stored)
			}
			back, err := m.FromJSONB(tt.codec, stored)
			if err != nil || !bytes.Equal(back, tt.data) {
				t.Errorf("FromJSONB = %q, %v; want %q", back, err, tt.data)
			}
		})
	}
}

func TestFromJSONBErrors(t *testing.T) {
	t.Parallel()
	m := newManager(t, codec.WithMaxBytes(6))
	tests := []struct {
		name    string
		stored  string
		want    []byte // on success
		wantErr error
	}{
		{"as jsonb prints it, with spaces", ` "AAEC" `, []byte{0, 1, 2}, nil},
		{"escaped slash", `"\/\/8="`, []byte{0xff, 0xff}, nil},
		{"unicode escape", `"\u0041QEC"`, []byte{1, 1, 2}, nil},
		{"object", `{"a":1}`, nil, codec.ErrCorrupt},
		{"null", `null`, nil, codec.ErrCorrupt},
		{"number", `12`, nil, codec.ErrCorrupt},
		{"empty", ``, nil, codec.ErrCorrupt},
		{"lone quote", `"`, nil, codec.ErrCorrupt},
		{"unterminated", `"AAEC`, nil, codec.ErrCorrupt},
		{"not base64", `"AA!C"`, nil, codec.ErrCorrupt},
		{"URL-safe base64 is not standard", `"-_8="`, nil, codec.ErrCorrupt},
		{"missing padding", `"AAE"`, nil, codec.ErrCorrupt},
		{"bad escape", `"AA\qC"`, nil, codec.ErrCorrupt},
		{"quote inside", `"AA"C"`, nil, codec.ErrCorrupt},
		{"over the limit", `"` + strings.Repeat("A", 12) + `"`, nil, codec.ErrTooLarge},
		{"at the limit", `"` + strings.Repeat("A", 8) + `"`, make([]byte, 6), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := m.FromJSONB("gob", []byte(tt.stored))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("FromJSONB(%s) = %q, %v; want %v", tt.stored, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("FromJSONB(%s) = %q, %v; want %q", tt.stored, got, err, tt.want)
			}
		})
	}
	// For json the stored value is the data; Decode judges it.
	if got, err := m.FromJSONB("json", []byte("{oops")); err != nil || string(got) != "{oops" {
		t.Errorf("FromJSONB(json) = %q, %v", got, err)
	}
}
