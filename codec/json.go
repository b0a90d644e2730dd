package codec

import (
	"fmt"
	"reflect"

	json "github.com/goccy/go-json"
)

// JSON is the "json" codec, built on github.com/goccy/go-json. Its output is
// JSON text, valid as a PostgreSQL jsonb value when the value passes
// Manager.Encode's rule. The zero value is ready to use.
//
// What survives a round trip through JSON (and jsonb):
//   - integers of every Go integer type exactly, including math.MinInt64,
//     math.MaxInt64 and math.MaxUint64, when decoded into integer fields;
//   - finite floats exactly (shortest representation), except that -0 becomes
//     0 once stored in jsonb and that ±math.MaxFloat32 is written in a form
//     the decoder rejects for a float32 (Manager.Encode sends those to gob);
//   - strings that are valid UTF-8 without NUL; []byte (as base64);
//   - time.Time: the instant to the nanosecond and the UTC offset, but not the
//     Location's name nor the monotonic clock reading. A decoded time is in
//     UTC if the offset is zero (written "Z"), in time.Local if the offset
//     matches Local's, and otherwise in a fixed zone with that offset and no
//     name;
//   - structs by exported field (honoring json tags), embedded structs, maps
//     with string, integer or encoding.TextMarshaler keys, slices, pointers
//     (by the value they point to; nil as null).
//
// Numbers decoded into an interface value (any, map[string]any) become
// float64, so integers beyond 2^53 lose precision there; decode into typed
// fields to keep them exact.
type JSON struct{}

// Name returns "json".
func (JSON) Name() string { return JSONName }

// Marshal encodes v as JSON text.
func (JSON) Marshal(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("codec: json encode %T: %w", v, err)
	}
	return data, nil
}

// Unmarshal decodes the JSON text data into v, a non-nil pointer. Malformed
// or truncated input, trailing data, and values of the wrong shape for v give
// an error wrapping ErrCorrupt; Unmarshal does not panic on any input.
func (JSON) Unmarshal(data []byte, v any) (err error) {
	if err := checkTarget(v); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: json into %T: decoder panicked: %v", ErrCorrupt, v, r)
		}
	}()
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: json into %T: %w", ErrCorrupt, v, err)
	}
	return nil
}

// checkTarget reports an error unless v is a non-nil pointer.
func checkTarget(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("codec: decode target must be a non-nil pointer, got %T", v)
	}
	return nil
}
