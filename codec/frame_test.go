package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/omniqhq/omniq/codec"
)

// frameOf builds a frame by hand, for tests that need invalid ones.
func frameOf(magic string, version byte, name string, declared uint32, payload []byte) []byte {
	f := append([]byte(magic), version, byte(len(name)))
	f = append(f, name...)
	f = binary.BigEndian.AppendUint32(f, declared)
	return append(f, payload...)
}

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	tests := []struct {
		name      string
		in        any
		wantCodec string
	}{
		{"json", TaskArgs{Name: "x", Count: 2, Tags: []string{"t"}}, "json"},
		{"gob", Reading{Sensor: "s", Impedance: 1 + 2i}, "gob"},
		{"null", (*Address)(nil), "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			frame, err := m.MarshalFrame(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			name, data, err := m.Encode(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if want := frameOf("OQCF", 1, tt.wantCodec, uint32(len(data)), data); name != tt.wantCodec || !bytes.Equal(frame, want) {
				t.Fatalf("frame = %q\nwant    %q", frame, want)
			}
			got := reflect.New(reflect.TypeOf(tt.in))
			if err := m.UnmarshalFrame(frame, got.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Elem().Interface(), tt.in) {
				t.Errorf("got %#v, want %#v", got.Elem().Interface(), tt.in)
			}
		})
	}
}

func TestFrameErrors(t *testing.T) {
	t.Parallel()
	m := newManager(t, codec.WithMaxBytes(1000))
	good, err := m.MarshalFrame(TaskArgs{Name: "frame"})
	if err != nil {
		t.Fatal(err)
	}
	payload := good[10+len("json"):]
	tests := []struct {
		name    string
		frame   []byte
		wantErr error
		msg     []string
	}{
		{"empty", nil, codec.ErrCorrupt, []string{"truncated"}},
		{"magic only", []byte("OQCF"), codec.ErrCorrupt, []string{"truncated"}},
		{"bad magic", frameOf("OQCX", 1, "json", uint32(len(payload)), payload), codec.ErrCorrupt, []string{"magic"}},
		{"raw JSON is not a frame", []byte(`{"name":"frame","count":0}`), codec.ErrCorrupt, []string{"magic"}},
		{"version 0", frameOf("OQCF", 0, "json", uint32(len(payload)), payload), codec.ErrCorrupt, []string{"version 0"}},
		{"version 2", frameOf("OQCF", 2, "json", uint32(len(payload)), payload), codec.ErrCorrupt, []string{"version 2"}},
		{"empty name", frameOf("OQCF", 1, "", uint32(len(payload)), payload), codec.ErrCorrupt, []string{"empty codec name"}},
		{"name runs past the end", append([]byte("OQCF\x01\xffjson"), 0, 0, 0, 0), codec.ErrCorrupt, []string{"truncated"}},
		{"payload shorter than declared", frameOf("OQCF", 1, "json", uint32(len(payload)+1), payload), codec.ErrCorrupt, []string{"truncated"}},
		{"payload longer than declared", frameOf("OQCF", 1, "json", uint32(len(payload)-1), payload), codec.ErrCorrupt, []string{"after the frame"}},
		{"trailing byte", append(append([]byte{}, good...), 0), codec.ErrCorrupt, []string{"after the frame"}},
		{"unknown codec", frameOf("OQCF", 1, "msgpack", uint32(len(payload)), payload), codec.ErrUnknownCodec, []string{`"msgpack"`}},
		{"declared size over the limit", frameOf("OQCF", 1, "json", 1001, nil), codec.ErrTooLarge, []string{"1001"}},
		{"declared size 4 GiB", frameOf("OQCF", 1, "json", 0xffffffff, payload), codec.ErrTooLarge, nil},
		{"corrupt payload", frameOf("OQCF", 1, "json", 3, []byte(`{"n`)), codec.ErrCorrupt, []string{"json into"}},
		{"payload of the other codec", frameOf("OQCF", 1, "gob", uint32(len(payload)), payload), codec.ErrCorrupt, []string{"gob into"}},
	}
	// Every proper prefix of a good frame is truncated.
	for i := range len(good) {
		tests = append(tests, struct {
			name    string
			frame   []byte
			wantErr error
			msg     []string
		}{name: "prefix", frame: good[:i], wantErr: codec.ErrCorrupt})
	}
	for _, tt := range tests {
		var got TaskArgs
		err := m.UnmarshalFrame(tt.frame, &got)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s (%q): %v, want %v", tt.name, tt.frame, err, tt.wantErr)
			continue
		}
		for _, part := range tt.msg {
			if !bytes.Contains([]byte(err.Error()), []byte(part)) {
				t.Errorf("%s: error %q does not contain %q", tt.name, err, part)
			}
		}
	}
	if err := m.UnmarshalFrame(good, (*TaskArgs)(nil)); err == nil {
		t.Error("UnmarshalFrame into a nil pointer succeeded")
	}
}
