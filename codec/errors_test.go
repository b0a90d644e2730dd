package codec_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/omniqhq/omniq/codec"
)

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	m := newManager(t, codec.WithMaxBytes(1024))
	_, gobData, err := m.Encode(Reading{Sensor: "r", Impedance: 2i})
	if err != nil {
		t.Fatal(err)
	}
	jsonData := []byte(`{"name":"x","count":3,"tags":["a","b"]}`)

	type unregistered struct{ A int }
	tests := []struct {
		name    string
		codec   string
		data    []byte
		target  any
		wantErr error // nil: any error that is none of the sentinels
		msg     []string
	}{
		{"unknown codec", "msgpack", jsonData, new(TaskArgs), codec.ErrUnknownCodec, []string{`"msgpack"`}},
		{"empty codec name", "", jsonData, new(TaskArgs), codec.ErrUnknownCodec, nil},
		{"codec names are case-sensitive", "JSON", jsonData, new(TaskArgs), codec.ErrUnknownCodec, nil},
		{"json too large", "json", bytes.Repeat([]byte(" "), 1025), new(any), codec.ErrTooLarge, []string{"1025", "1024"}},
		{"gob too large", "gob", make([]byte, 1025), new(Reading), codec.ErrTooLarge, nil},
		{"json truncated", "json", jsonData[:len(jsonData)-3], new(TaskArgs), codec.ErrCorrupt, []string{"json into *codec_test.TaskArgs"}},
		{"json empty", "json", nil, new(TaskArgs), codec.ErrCorrupt, nil},
		{"json garbage", "json", []byte("\x00\xff{"), new(any), codec.ErrCorrupt, nil},
		{"json trailing data", "json", []byte(`{"name":"x"} {}`), new(TaskArgs), codec.ErrCorrupt, nil},
		{"json wrong shape", "json", []byte(`{"count":"seven"}`), new(TaskArgs), codec.ErrCorrupt, []string{"count"}},
		{"json int overflow", "json", []byte(`{"I8Min":-129}`), new(Numbers), codec.ErrCorrupt, nil},
		{"json uint64 overflow", "json", []byte(`{"U64Max":18446744073709551616}`), new(Numbers), codec.ErrCorrupt, nil},
		{"gob truncated", "gob", gobData[:len(gobData)-1], new(Reading), codec.ErrCorrupt, []string{"gob into *codec_test.Reading"}},
		{"gob header only", "gob", gobData[:3], new(Reading), codec.ErrCorrupt, nil},
		{"gob empty", "gob", nil, new(Reading), codec.ErrCorrupt, nil},
		{"gob garbage", "gob", []byte("not gob at all"), new(Reading), codec.ErrCorrupt, nil},
		{"gob trailing data", "gob", append(append([]byte{}, gobData...), 0), new(Reading), codec.ErrCorrupt, []string{"trailing"}},
		{"gob JSON bytes", "gob", jsonData, new(TaskArgs), codec.ErrCorrupt, nil},
		{"gob into wrong registered type", "gob", gobData, new(Numbers), codec.ErrCorrupt, nil},
		{"gob unregistered type", "gob", gobData, new(unregistered), codec.ErrUnregistered, []string{"codec_test.unregistered"}},
		{"gob into interface", "gob", gobData, new(any), codec.ErrUnregistered, nil},
		{"nil target", "json", jsonData, nil, nil, []string{"non-nil pointer"}},
		{"non-pointer target", "json", jsonData, TaskArgs{}, nil, []string{"non-nil pointer"}},
		{"nil pointer target", "gob", gobData, (*Reading)(nil), nil, []string{"non-nil pointer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := m.Decode(tt.codec, tt.data, tt.target)
			checkErr(t, err, tt.wantErr, tt.msg...)
		})
	}
}

// checkErr fails t unless err matches want (nil: an error matching no
// sentinel) and contains the message parts.
func checkErr(t *testing.T, err, want error, msg ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %v", err, want)
	}
	if want == nil {
		for _, s := range []error{codec.ErrUnknownCodec, codec.ErrTooLarge, codec.ErrCorrupt, codec.ErrUnsupported, codec.ErrUnregistered} {
			if errors.Is(err, s) {
				t.Fatalf("error %q wraps %v, want none of the sentinels", err, s)
			}
		}
	}
	wantErrContains(t, err, msg...)
}

func TestEncodeTooLarge(t *testing.T) {
	t.Parallel()
	m := newManager(t, codec.WithMaxBytes(64))
	if m.MaxBytes() != 64 {
		t.Fatalf("MaxBytes = %d", m.MaxBytes())
	}
	big := strings.Repeat("x", 100)
	if _, _, err := m.Encode(big); !errors.Is(err, codec.ErrTooLarge) {
		t.Errorf("json: %v, want ErrTooLarge", err)
	}
	if _, _, err := m.Encode(Raw{S: big + "\xff"}); !errors.Is(err, codec.ErrTooLarge) {
		t.Errorf("gob: %v, want ErrTooLarge", err)
	}
	if _, err := m.MarshalFrame(big); !errors.Is(err, codec.ErrTooLarge) {
		t.Errorf("frame: %v, want ErrTooLarge", err)
	}
	if name, _, err := m.Encode(strings.Repeat("x", 62)); err != nil || name != "json" {
		t.Errorf("64 bytes exactly: %s, %v", name, err)
	}
	if def := codec.NewManager(codec.WithMaxBytes(0)).MaxBytes(); def != codec.DefaultMaxBytes {
		t.Errorf("WithMaxBytes(0) gives %d, want the default %d", def, codec.DefaultMaxBytes)
	}
	if huge := codec.NewManager(codec.WithMaxBytes(math.MaxInt)).MaxBytes(); uint64(huge) > math.MaxUint32 {
		t.Errorf("WithMaxBytes(MaxInt) gives %d, more than a frame can declare", huge)
	}
}

func TestGobCodec(t *testing.T) {
	t.Parallel()
	g := codec.NewGob(128)
	if g.Name() != "gob" {
		t.Errorf("Name = %q", g.Name())
	}
	if err := g.Register(nil); err == nil {
		t.Error("Register(nil) succeeded")
	}
	if err := g.Register((*fmt.Stringer)(nil)); err == nil {
		t.Error("Register of an interface type succeeded")
	}
	if _, err := g.Marshal(Stats{}); !errors.Is(err, codec.ErrUnregistered) {
		t.Errorf("Marshal unregistered: %v", err)
	}
	if _, err := g.Marshal(nil); err == nil {
		t.Error("Marshal(nil) succeeded")
	}
	if err := g.Register((*Stats)(nil), Stats{}); err != nil { // twice is fine
		t.Fatal(err)
	}
	for _, v := range []any{Stats{Name: "a"}, &Stats{Name: "b"}} {
		if !g.Registered(v) {
			t.Errorf("Registered(%T) = false", v)
		}
	}
	data, err := g.Marshal(&Stats{Name: "p", Mean: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	var pp *Stats
	if err := g.Unmarshal(data, &pp); err != nil || pp == nil || pp.Name != "p" || pp.Mean != 1.5 {
		t.Errorf("Unmarshal into **Stats = %+v, %v", pp, err)
	}
	if _, err := g.Marshal(Stats{Name: strings.Repeat("x", 200)}); !errors.Is(err, codec.ErrTooLarge) {
		t.Errorf("Marshal over the limit: %v", err)
	}
	if err := g.Unmarshal(make([]byte, 129), new(Stats)); !errors.Is(err, codec.ErrTooLarge) {
		t.Errorf("Unmarshal over the limit: %v", err)
	}
	if codec.NewGob(0).Registered(Stats{}) {
		t.Error("registration leaked between Gob values")
	}
}

// brokenCodec fails or panics on purpose.
type brokenCodec struct {
	name  string
	panic bool
}

func (c brokenCodec) Name() string                { return c.name }
func (c brokenCodec) Marshal(any) ([]byte, error) { return nil, errors.New("broken marshal") }
func (c brokenCodec) Unmarshal([]byte, any) error {
	if c.panic {
		panic("broken unmarshal")
	}
	return errors.New("broken unmarshal")
}

func TestCustomCodecErrors(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	for _, c := range []brokenCodec{{name: "err"}, {name: "panics", panic: true}} {
		if err := m.Register(c); err != nil {
			t.Fatal(err)
		}
		err := m.Decode(c.name, []byte("x"), new(any))
		checkErr(t, err, codec.ErrCorrupt, c.name, "broken unmarshal")
	}
	if err := m.SetDefault("err"); err != nil {
		t.Fatal(err)
	}
	_, _, err := m.Encode(1)
	checkErr(t, err, nil, "broken marshal")
}

func TestRegister(t *testing.T) {
	t.Parallel()
	m := codec.NewManager()
	if m.Default() != "json" {
		t.Errorf("Default = %q", m.Default())
	}
	for _, name := range []string{"json", "gob"} {
		if c, ok := m.Codec(name); !ok || c.Name() != name {
			t.Errorf("Codec(%q) = %v, %v", name, c, ok)
		}
	}
	if c, ok := m.Codec("gob"); !ok || c.(*codec.Gob) != m.Gob() {
		t.Error("Codec(gob) is not Gob()")
	}
	if _, ok := m.Codec("nope"); ok {
		t.Error("Codec(nope) found")
	}
	tests := []struct {
		name    string
		c       codec.Codec
		wantErr error // nil: any non-sentinel error
		ok      bool
	}{
		{"custom", upper{}, nil, true},
		{"duplicate custom", upper{}, codec.ErrDuplicateCodec, false},
		{"duplicate json", brokenCodec{name: "json"}, codec.ErrDuplicateCodec, false},
		{"duplicate gob", codec.NewGob(0), codec.ErrDuplicateCodec, false},
		{"empty name", brokenCodec{name: ""}, nil, false},
		{"space in name", brokenCodec{name: "my codec"}, nil, false},
		{"non-ASCII name", brokenCodec{name: "jsön"}, nil, false},
		{"name too long", brokenCodec{name: strings.Repeat("n", 256)}, nil, false},
		{"longest name", brokenCodec{name: strings.Repeat("n", 255)}, nil, true},
		{"nil codec", nil, nil, false},
	}
	for _, tt := range tests {
		err := m.Register(tt.c)
		if tt.ok {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: Register succeeded", tt.name)
			continue
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	if err := m.SetDefault("nope"); !errors.Is(err, codec.ErrUnknownCodec) {
		t.Errorf("SetDefault(nope) = %v", err)
	}
	if err := m.SetDefault("upper"); err != nil {
		t.Fatal(err)
	}
	name, data, err := m.Encode("hi")
	if err != nil || name != "upper" || string(data) != "HI" {
		t.Errorf("Encode with custom default = %s, %q, %v", name, data, err)
	}
	var s string
	if err := m.Decode("upper", []byte("HI"), &s); err != nil || s != "hi" {
		t.Errorf("Decode(upper) = %q, %v", s, err)
	}
	frame, err := m.MarshalFrame("abc")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.UnmarshalFrame(frame, &s); err != nil || s != "abc" {
		t.Errorf("frame via custom codec = %q, %v", s, err)
	}
	// Stored as base64 in jsonb like any non-JSON codec.
	if stored := m.ToJSONB(name, data); string(stored) != `"SEk="` {
		t.Errorf("ToJSONB(upper) = %s", stored)
	}
}

// upper is a toy custom codec for strings.
type upper struct{}

func (upper) Name() string { return "upper" }
func (upper) Marshal(v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("upper: %T is not a string", v)
	}
	return []byte(strings.ToUpper(s)), nil
}
func (upper) Unmarshal(data []byte, v any) error {
	p, ok := v.(*string)
	if !ok {
		return fmt.Errorf("upper: cannot decode into %T", v)
	}
	*p = strings.ToLower(string(data))
	return nil
}
