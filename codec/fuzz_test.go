package codec_test

import (
	"errors"
	"testing"

	"github.com/omniqhq/omniq/codec"
)

// FuzzManagerDecode feeds untrusted bytes to UnmarshalFrame, Decode and
// FromJSONB. None may panic, every error must wrap one of the decoding
// sentinels, and a value that decodes from a frame must encode and decode
// again. Seeds are in testdata/fuzz/FuzzManagerDecode.
func FuzzManagerDecode(f *testing.F) {
	f.Add([]byte("OQCF\x01\x04json\x00\x00\x00\x02{}"))
	f.Add([]byte(`{"name":"n","count":1,"tags":["a"],"attrs":{"k":"v"},"created":"2025-01-02T03:04:05.6+05:30"}`))
	m := newManager(f, codec.WithMaxBytes(64<<10))
	targets := func() []any {
		return []any{new(TaskArgs), new(Reading), new(Grid), new(Node), new(map[string]any), new(any), new([]byte)}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range targets() {
			checkDecodeErr(t, "UnmarshalFrame", m.UnmarshalFrame(data, v))
		}
		for _, name := range []string{codec.JSONName, codec.GobName, "nope"} {
			for _, v := range targets() {
				checkDecodeErr(t, "Decode "+name, m.Decode(name, data, v))
			}
		}
		if raw, err := m.FromJSONB(codec.GobName, data); err != nil {
			checkDecodeErr(t, "FromJSONB", err)
		} else {
			checkDecodeErr(t, "Decode gob from jsonb", m.Decode(codec.GobName, raw, new(Reading)))
		}

		// What decodes must survive another round trip.
		var args TaskArgs
		if m.UnmarshalFrame(data, &args) == nil {
			frame, err := m.MarshalFrame(args)
			if err != nil {
				t.Fatalf("decoded %#v but cannot encode it again: %v", args, err)
			}
			var again TaskArgs
			if err := m.UnmarshalFrame(frame, &again); err != nil {
				t.Fatalf("re-encoded frame %q does not decode: %v", frame, err)
			}
		}
	})
}

func checkDecodeErr(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []error{codec.ErrCorrupt, codec.ErrTooLarge, codec.ErrUnknownCodec, codec.ErrUnregistered} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s: error wraps no sentinel: %v", op, err)
}
