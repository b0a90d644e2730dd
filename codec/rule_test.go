package codec_test

import (
	"errors"
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/omniqhq/omniq/codec"
)

// selfJSON encodes itself; the rule does not look inside it.
type selfJSON struct {
	NaN  float64
	Keys map[bool]int
}

func (selfJSON) MarshalJSON() ([]byte, error) { return []byte(`"self"`), nil }

// ptrText implements encoding.TextMarshaler with a pointer receiver only.
type ptrText struct{ Keys map[bool]int }

func (*ptrText) MarshalText() ([]byte, error) { return []byte("pt"), nil }

// ptrKey is a comparable ptrText.
type ptrKey struct{ A int }

func (*ptrKey) MarshalText() ([]byte, error) { return []byte("pk"), nil }

// errGob marks test cases where gob itself fails.
var errGob = errors.New("any error from encoding/gob")

// TestEncodeRule checks the codec Encode chooses, case by case, against the
// rule documented on Manager.
func TestEncodeRule(t *testing.T) {
	t.Parallel()
	nan, inf := math.NaN(), math.Inf(1)

	cycle := &Node{Name: "a"}
	cycle.Next = &Node{Name: "b", Next: cycle}
	selfLoop := &Node{Name: "self"}
	selfLoop.Next = selfLoop
	sliceCycle := []any{1, nil}
	sliceCycle[1] = sliceCycle
	mapCycle := map[string]any{}
	mapCycle["me"] = mapCycle
	shared := &Node{Name: "shared"}
	var long *Node // deep but acyclic: past the depth where cycle tracking starts
	for i := range 5000 {
		long = &Node{Name: string(rune('a' + i%26)), Next: long}
	}
	hiddenCycle := &Hidden{Visible: 1}
	hiddenCycle.Parent = hiddenCycle
	lossyCycle := &HiddenLossy{C: 1}
	lossyCycle.Parent = lossyCycle
	var iface any = map[bool]int(nil)

	tests := []struct {
		name    string
		v       any
		want    string // codec chosen, if no error
		wantErr error
		msg     []string // parts of the error text
	}{
		// 3. JSON by default.
		{name: "typical args", v: TaskArgs{Name: "x", Tags: []string{"a"}, Attrs: map[string]string{"k": "v"}}, want: "json"},
		{name: "nil", v: nil, want: "json"},
		{name: "time", v: time.Now(), want: "json"},
		{name: "finite floats", v: []float64{0, -1, math.MaxFloat64, math.SmallestNonzeroFloat64}, want: "json"},
		{name: "negative zero", v: math.Copysign(0, -1), want: "json"},
		{name: "float32 below max", v: math.Nextafter32(math.MaxFloat32, 0), want: "json"},
		{name: "string, integer and TextMarshaler keys", v: struct {
			S map[string]int
			I map[int8]int
			U map[uintptr]int
			T map[TextKey]int
		}{}, want: "json"},
		{name: "pointer keys implementing TextMarshaler", v: map[*ptrKey]int{{}: 1}, want: "json"},
		{name: "bytes that are not UTF-8", v: []byte{0xff, 0}, want: "json"},
		{name: "json.Marshaler is opaque", v: selfJSON{NaN: nan, Keys: map[bool]int{true: 1}}, want: "json"},
		{name: "pointer-receiver TextMarshaler, addressable", v: &struct{ P ptrText }{}, want: "json"},
		{name: "fields JSON skips are ignored", v: Hidden{Visible: 1, NaN: nan, Keys: map[bool]int{true: 1}, Callback: func() {}, fn: func() {}, ch: make(chan int)}, want: "json"},
		{name: "cycle through a json:\"-\" field", v: hiddenCycle, want: "json"},
		{name: "shared pointers are not a cycle", v: []*Node{shared, shared, {Next: shared}}, want: "json"},
		{name: "deep acyclic list", v: long, want: "json"},
		{name: "nil map of funcs", v: struct{ M map[string]func() }{}, want: "json"},
		{name: "empty slice of chans", v: []chan int{}, want: "json"},
		{name: "nil interface field", v: struct{ I any }{}, want: "json"},

		// 2. Gob where JSON cannot carry the value.
		{name: "NaN", v: nan, want: "gob", msg: nil},
		{name: "+Inf in a slice", v: []any{1.0, inf}, want: "gob"},
		{name: "float32 NaN in a struct", v: Stats{Max: float32(nan)}, want: "gob"},
		{name: "MaxFloat32", v: Stats{Max: math.MaxFloat32}, want: "gob"},
		{name: "complex", v: complex128(1i), want: "gob"},
		{name: "complex64 in HiddenLossy", v: HiddenLossy{C: 2}, want: "gob"},
		{name: "struct keys", v: Grid{Cells: map[Point]string{{}: "o"}}, want: "gob"},
		{name: "array keys", v: map[[2]int]string{{1, 2}: "a"}, want: "gob"},
		{name: "float keys", v: map[float64]string{1: "a"}, want: "gob"},
		{name: "bool keys, nil map (type-level)", v: Flags{}, want: "gob"},
		{name: "bool keys, empty map", v: Flags{On: map[bool]int{}}, want: "gob"},
		// Gob chosen, but gob cannot carry a user type inside an interface
		// (that needs encoding/gob's global gob.Register, which OmniQ never
		// calls): an error that says why gob was chosen.
		{name: "bool keys inside an interface", v: []any{iface}, wantErr: errGob, msg: []string{"JSON cannot carry", "map key type bool", "not registered for interface"}},
		{name: "pointer-receiver TextMarshaler key, not addressable", v: map[ptrKey]int{}, want: "gob"},
		{name: "invalid UTF-8 string", v: Raw{S: "\xc3\x28"}, want: "gob"},
		{name: "NUL in string", v: Raw{S: "\x00"}, want: "gob"},
		{name: "NUL in a map key", v: map[string]any{"a\x00": 1}, want: "gob"},
		{name: "invalid UTF-8 in a map key", v: map[string]any{"\xff": 1}, want: "gob"},
		{name: "NaN in map[string]any", v: map[string]any{"a": nan, "b": []int{1}}, want: "gob"},
		{name: "NaN in nested map[string]any", v: map[string]any{"a": map[string]any{"b": nan}}, wantErr: errGob, msg: []string{`float64 value NaN at map[string]interface {}["a"]["b"]`, "not registered for interface"}},

		// 1. Neither codec.
		{name: "func", v: func() {}, wantErr: codec.ErrUnsupported, msg: []string{"func()", "no codec can carry a func"}},
		{name: "nil func field", v: struct{ F func(int) error }{}, wantErr: codec.ErrUnsupported, msg: []string{"func(int) error", ".F"}},
		{name: "chan in map value", v: map[string]any{"c": make(chan string)}, wantErr: codec.ErrUnsupported, msg: []string{"chan string", `["c"]`}},
		{name: "chan in a slice", v: []any{1, make(<-chan int)}, wantErr: codec.ErrUnsupported, msg: []string{"<-chan int", "[1]"}},
		{name: "unsafe.Pointer", v: struct{ P unsafe.Pointer }{}, wantErr: codec.ErrUnsupported, msg: []string{"unsafe.Pointer", ".P"}},
		{name: "func even where gob would be chosen", v: struct {
			C complex64
			F func()
		}{}, wantErr: codec.ErrUnsupported, msg: []string{"func()"}},
		{name: "pointer cycle", v: cycle, wantErr: codec.ErrUnsupported, msg: []string{"cycle through *codec_test.Node", "*codec_test.Node.Next.Next"}},
		{name: "self loop", v: selfLoop, wantErr: codec.ErrUnsupported, msg: []string{"cycle"}},
		{name: "slice cycle", v: sliceCycle, wantErr: codec.ErrUnsupported, msg: []string{"cycle through []interface {}"}},
		{name: "map cycle", v: mapCycle, wantErr: codec.ErrUnsupported, msg: []string{"cycle through map[string]interface {}"}},
		{name: "cycle JSON skips but gob would follow", v: lossyCycle, wantErr: codec.ErrUnsupported, msg: []string{"cycle through *codec_test.HiddenLossy"}},

		// Gob needed for a type nobody registered.
		{name: "unregistered", v: struct{ C complex64 }{}, wantErr: codec.ErrUnregistered, msg: []string{"struct { C complex64 }", "complex64 value"}},
		{name: "unregistered map", v: map[bool]string{}, wantErr: codec.ErrUnregistered, msg: []string{"map key type bool"}},
	}
	m := newManager(t)
	if err := m.Gob().Register([]*Node{}, map[ptrKey]int{}, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name, data, err := m.Encode(tt.v)
			if tt.wantErr == errGob {
				if err == nil || errors.Is(err, codec.ErrUnsupported) || errors.Is(err, codec.ErrUnregistered) {
					t.Fatalf("Encode = %s, %v; want an error from gob", name, err)
				}
				wantErrContains(t, err, tt.msg...)
				return
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Encode = %s, %v; want error %v", name, err, tt.wantErr)
				}
				wantErrContains(t, err, tt.msg...)
				return
			}
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if name != tt.want {
				t.Errorf("codec = %q, want %q", name, tt.want)
			}
			if len(data) == 0 {
				t.Error("no data")
			}
		})
	}
}

// TestEncodeRuleFixedDefault checks that with another default no choice is
// made, but gob still refuses cycles.
func TestEncodeRuleFixedDefault(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	if err := m.SetDefault(codec.GobName); err != nil {
		t.Fatal(err)
	}
	if name, _, err := m.Encode(Stats{Mean: 1}); err != nil || name != "gob" {
		t.Errorf("Encode(plain struct) with gob default = %s, %v; want gob", name, err)
	}
	loop := &Node{}
	loop.Next = loop
	if _, _, err := m.Encode(loop); !errors.Is(err, codec.ErrUnsupported) {
		t.Errorf("Encode(cycle) with gob default: %v, want ErrUnsupported", err)
	}
	if _, _, err := m.Encode([]func(){nil}); !errors.Is(err, codec.ErrUnsupported) {
		t.Errorf("Encode([]func) with gob default: %v, want ErrUnsupported", err)
	}
	if err := m.SetDefault(codec.JSONName); err != nil {
		t.Fatal(err)
	}
	if name, _, err := m.Encode(Stats{Mean: 1}); err != nil || name != "json" {
		t.Errorf("Encode after SetDefault(json) = %s, %v; want json", name, err)
	}
}
