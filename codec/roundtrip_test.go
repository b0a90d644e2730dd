package codec_test

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // zones for the time tests, whatever the host has

	"github.com/omniqhq/omniq/codec"
)

// roundTrip encodes in with m, stores and loads it the way the queue engine
// does (ToJSONB, FromJSONB), decodes it into a new value of in's type and
// returns the codec name and that value.
func roundTrip(t *testing.T, m *codec.Manager, in any) (string, any) {
	t.Helper()
	name, data, err := m.Encode(in)
	if err != nil {
		t.Fatalf("Encode(%T): %v", in, err)
	}
	stored := m.ToJSONB(name, data)
	if !stdjson.Valid(stored) {
		t.Fatalf("ToJSONB(%s) is not valid JSON: %q", name, stored)
	}
	if name == codec.JSONName && bytes.Contains(stored, []byte(`\u0000`)) {
		t.Fatalf("json output holds \\u0000, which jsonb rejects: %q", stored)
	}
	loaded, err := m.FromJSONB(name, stored)
	if err != nil {
		t.Fatalf("FromJSONB(%s): %v", name, err)
	}
	typ := reflect.TypeFor[any]()
	if in != nil {
		typ = reflect.TypeOf(in)
	}
	target := reflect.New(typ)
	if err := m.Decode(name, loaded, target.Interface()); err != nil {
		t.Fatalf("Decode(%s) into %T: %v\ndata: %q", name, target.Interface(), err, data)
	}
	return name, target.Elem().Interface()
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	one, str := 1, "s"
	pstr := &str
	nyc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2024, 3, 10, 1, 59, 59, 123456789, nyc) // instant and offset survive; see TestTimeRoundTrip

	full := TaskArgs{
		Base:    Base{ID: 42, Created: created},
		inner:   inner{Note: "promoted from an unexported embedded struct"},
		Extra:   &Extra{Level: 3},
		Name:    "send-invoice",
		Count:   7,
		Ratio:   0.1 + 0.2,
		Tags:    []string{"billing", "eu", ""},
		Attrs:   map[string]string{"currency": "EUR", "": "empty key"},
		Address: &Address{Street: "1 Rue de Rivoli", City: "Paris"},
		Blob:    []byte{0, 1, 2, 0xfe, 0xff},
		Secret:  "dropped: tagged json:\"-\"",
		private: 99,
	}
	fullWant := full
	fullWant.Secret, fullWant.private = "", 0
	fullWant.Base.Created = time.Time{} // compared below by instant and offset
	full.Base.Created = time.Time{}

	nan := math.NaN()
	tests := []struct {
		name      string
		in        any
		want      any // nil: in itself
		wantCodec string
		equal     func(a, b any) bool // nil: reflect.DeepEqual
	}{
		{name: "struct with json tags and embedded structs", in: full, want: fullWant, wantCodec: "json"},
		{name: "zero struct", in: TaskArgs{}, wantCodec: "json"},
		{name: "numbers at their limits", in: Numbers{
			I64Max: math.MaxInt64, I64Min: math.MinInt64, U64Max: math.MaxUint64,
			I32Min: math.MinInt32, I8Min: math.MinInt8, U8Max: math.MaxUint8,
			Int: math.MinInt, Uint: math.MaxUint,
			F64Max: math.MaxFloat64, F64Tiny: math.SmallestNonzeroFloat64, F64Tenth: 0.1, F64Sum: 0.1 + 0.2,
			F32Max: math.MaxFloat32 * 0.999999, F32Tiny: math.SmallestNonzeroFloat32, F32Tenth: 0.1,
		}, wantCodec: "json"},
		{name: "int64 max", in: int64(math.MaxInt64), wantCodec: "json"},
		{name: "int64 min", in: int64(math.MinInt64), wantCodec: "json"},
		{name: "uint64 max", in: uint64(math.MaxUint64), wantCodec: "json"},
		{name: "float pi", in: math.Pi, wantCodec: "json"},
		{name: "float third", in: 1.0 / 3, wantCodec: "json"},
		{name: "float 2^53+1 neighbour", in: float64(1<<53) + 2, wantCodec: "json"},
		{name: "float huge", in: -1e300, wantCodec: "json"},
		{name: "float tiny", in: 5e-324, wantCodec: "json"},
		{name: "float32", in: float32(16777217), wantCodec: "json"},
		{name: "string unicode", in: "héllo 世界 🎉 \u2028 <a href=\"x\">&amp;</a> \\ \t\n", wantCodec: "json"},
		{name: "empty string", in: "", wantCodec: "json"},
		{name: "bytes", in: []byte{0, 0xff, 'a', 0x80}, wantCodec: "json"},
		{name: "empty bytes", in: []byte{}, wantCodec: "json"},
		{name: "nil bytes", in: []byte(nil), wantCodec: "json"},
		{name: "bool", in: true, wantCodec: "json"},
		{name: "nil interface", in: nil, wantCodec: "json"},
		{name: "nil pointer", in: (*Address)(nil), wantCodec: "json"},
		{name: "pointer to struct", in: &Address{Street: "x"}, wantCodec: "json"},
		{name: "pointer fields", in: Pointers{P: &one, PP: &pstr, Addr: &Address{City: "Oslo"}}, wantCodec: "json"},
		{name: "nested maps", in: map[string]map[string][]int{"a": {"b": {1, 2}, "c": nil}, "d": {}}, wantCodec: "json"},
		{name: "int keys", in: map[int]string{-1: "neg", 0: "zero", math.MaxInt64: "max"}, wantCodec: "json"},
		{name: "uint64 keys", in: map[uint64]bool{math.MaxUint64: true}, wantCodec: "json"},
		{name: "text marshaler keys", in: map[TextKey]int{{1, 2}: 3, {-4, 5}: 6}, wantCodec: "json"},
		{name: "slices nil and empty", in: struct{ Nil, Empty []int }{nil, []int{}}, wantCodec: "json"},
		{name: "slice of slices", in: [][]string{{"a"}, {}, nil}, wantCodec: "json"},
		{name: "slice of pointers", in: []*Address{{Street: "a"}, nil}, wantCodec: "json"},
		{name: "array", in: [3]int{1, 2, 3}, wantCodec: "json"},
		{name: "negative zero stays on json", in: math.Copysign(0, -1), wantCodec: "json"},

		// The fallback, exactly where the rule says.
		{name: "complex", in: Reading{Sensor: "r1", Impedance: complex(50, -3.5)}, wantCodec: "gob"},
		{name: "NaN", in: Stats{Name: "s", Mean: nan, Max: float32(math.Inf(-1))}, wantCodec: "gob", equal: sameText},
		{name: "Inf", in: Stats{Mean: math.Inf(1)}, wantCodec: "gob"},
		{name: "struct map keys", in: Grid{Cells: map[Point]string{{1, 2}: "a", {-3, 4}: "b"}}, wantCodec: "gob"},
		{name: "array map keys", in: map[[2]int]string{{1, 2}: "x"}, wantCodec: "gob"},
		{name: "bool map keys", in: Flags{On: map[bool]int{true: 1, false: 0}}, wantCodec: "gob"},
		{name: "float map keys", in: map[float64]string{0.5: "half", -1: "minus"}, wantCodec: "gob"},
		{name: "invalid UTF-8", in: Raw{S: "ok\xff\xfe\xc3"}, wantCodec: "gob"},
		{name: "NUL in string", in: Raw{S: "a\x00b"}, wantCodec: "gob"},
		{name: "NaN in map[string]any", in: map[string]any{"x": nan, "s": "t"}, wantCodec: "gob", equal: sameText},
		{name: "gob top-level float", in: math.Inf(-1), wantCodec: "gob"},
		{name: "gob top-level complex", in: complex(1, -1), wantCodec: "gob"},
		{name: "MaxFloat32", in: Stats{Max: math.MaxFloat32}, wantCodec: "gob"},
		{name: "-MaxFloat32", in: Stats{Max: -math.MaxFloat32}, wantCodec: "gob"},
	}
	m := newManager(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name, got := roundTrip(t, m, tt.in)
			if name != tt.wantCodec {
				t.Errorf("codec = %q, want %q", name, tt.wantCodec)
			}
			want := tt.want
			if want == nil {
				want = tt.in
			}
			equal := tt.equal
			if equal == nil {
				equal = reflect.DeepEqual
			}
			if !equal(got, want) {
				t.Errorf("round trip changed the value\n got: %#v\nwant: %#v", got, want)
			}
		})
	}
}

// sameText compares values that hold NaN, which is not equal to itself.
func sameText(a, b any) bool { return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b) }

// TestFloatBits checks that JSON keeps every float64 and float32 bit for bit.
func TestFloatBits(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	f64 := []float64{0, 1, -1, 0.1, 0.2, 0.3, 0.1 + 0.2, 1.0 / 3, 2.0 / 3, math.Pi, math.E,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 2.2250738585072014e-308,
		1e21, 1e-7, 123456789.123456789, 9007199254740993, 1 << 62, 4.9406564584124654e-324}
	for _, f := range f64 {
		if name, got := roundTrip(t, m, f); name != "json" || math.Float64bits(got.(float64)) != math.Float64bits(f) {
			t.Errorf("float64 %v: got %v via %s", f, got, name)
		}
	}
	f32 := []float32{0.1, 1.0 / 3, math.Nextafter32(math.MaxFloat32, 0), math.SmallestNonzeroFloat32, 16777217, -2.5e-38}
	for _, f := range f32 {
		if name, got := roundTrip(t, m, f); name != "json" || math.Float32bits(got.(float32)) != math.Float32bits(f) {
			t.Errorf("float32 %v: got %v via %s", f, got, name)
		}
	}
}

// TestInterfaceNumbers documents a JSON property: numbers decoded into an
// interface value become float64, so integers above 2^53 lose precision there
// but not in typed fields.
func TestInterfaceNumbers(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	in := map[string]any{"big": int64(math.MaxInt64), "small": 3}
	name, data, err := m.Encode(in)
	if err != nil || name != "json" {
		t.Fatalf("Encode = %s, %v", name, err)
	}
	var asAny map[string]any
	if err := m.Decode(name, data, &asAny); err != nil {
		t.Fatal(err)
	}
	if got := asAny["small"]; got != float64(3) {
		t.Errorf("small = %#v, want float64(3)", got)
	}
	if got := asAny["big"].(float64); got != 9223372036854775807.0 || int64(got) == math.MaxInt64 {
		t.Errorf("big = %v: expected the float64 nearest MaxInt64 (2^63), not exact", got)
	}
	var typed struct{ Big int64 }
	if err := m.Decode(name, []byte(`{"Big":9223372036854775807}`), &typed); err != nil || typed.Big != math.MaxInt64 {
		t.Errorf("typed Big = %d, %v; want exact MaxInt64", typed.Big, err)
	}
}

// TestTimeRoundTrip pins down what both codecs keep of a time.Time: the
// instant to the nanosecond and the UTC offset, but not the Location's name
// nor the monotonic clock reading. A decoded time is in UTC when the offset
// is zero, in time.Local when the offset matches Local's, and otherwise in
// a fixed zone with that offset and no name.
func TestTimeRoundTrip(t *testing.T) {
	t.Parallel()
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	tests := []struct {
		name       string
		in         time.Time
		wantOffset string // as written in the JSON text
	}{
		{"UTC", time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), "Z"},
		{"New York winter", time.Date(2025, 1, 15, 9, 0, 0, 1, load("America/New_York")), "-05:00"},
		{"New York summer", time.Date(2025, 7, 15, 9, 0, 0, 999999999, load("America/New_York")), "-04:00"},
		{"Kolkata", time.Date(2025, 7, 15, 9, 0, 0, 0, load("Asia/Kolkata")), "+05:30"},
		{"Chatham", time.Date(2025, 1, 1, 0, 0, 0, 0, load("Pacific/Chatham")), "+13:45"},
		{"London winter is UTC", time.Date(2025, 1, 1, 12, 0, 0, 0, load("Europe/London")), "Z"},
		{"fixed zone", time.Date(1969, 12, 31, 23, 59, 59, 5, time.FixedZone("NST", -(3*3600+30*60))), "-03:30"},
		{"monotonic reading", time.Now().In(load("Asia/Tokyo")), "+09:00"},
	}
	m := newManager(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// JSON, as a field of ordinary args.
			name, data, err := m.Encode(Base{Created: tt.in})
			if err != nil || name != "json" {
				t.Fatalf("Encode = %s, %v", name, err)
			}
			if !strings.Contains(string(data), tt.wantOffset+`"`) {
				t.Errorf("JSON %s does not end the time with %q", data, tt.wantOffset)
			}
			var viaJSON Base
			if err := m.Decode(name, data, &viaJSON); err != nil {
				t.Fatal(err)
			}
			checkTime(t, "json", viaJSON.Created, tt.in)

			// Gob, as a field of args that need the fallback.
			name, data, err = m.Encode(Reading{Impedance: 1i, At: tt.in})
			if err != nil || name != "gob" {
				t.Fatalf("Encode = %s, %v", name, err)
			}
			var viaGob Reading
			if err := m.Decode(name, data, &viaGob); err != nil {
				t.Fatal(err)
			}
			checkTime(t, "gob", viaGob.At, tt.in)
		})
	}
}

func checkTime(t *testing.T, via string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s: instant %v, want %v", via, got, want)
	}
	if got.Nanosecond() != want.Nanosecond() {
		t.Errorf("%s: nanoseconds %d, want %d", via, got.Nanosecond(), want.Nanosecond())
	}
	_, gotOff := got.Zone()
	_, wantOff := want.Zone()
	if gotOff != wantOff {
		t.Errorf("%s: offset %d, want %d", via, gotOff, wantOff)
	}
	// The wall clock reads the same, since the offset is kept.
	if got.Format(time.DateTime) != want.Format(time.DateTime) {
		t.Errorf("%s: wall clock %s, want %s", via, got.Format(time.DateTime), want.Format(time.DateTime))
	}
	// The Location is never the original (named) one: it is UTC, Local
	// (when its offset matches) or a fixed zone without a name.
	if loc := got.Location(); loc != time.UTC && loc != time.Local && loc.String() != "" {
		t.Errorf("%s: decoded into location %q; want UTC, Local or a nameless fixed zone", via, loc)
	}
	if want.Location() == time.UTC && via == "json" && got.Location() != time.UTC {
		t.Errorf("%s: UTC decoded into %q", via, got.Location())
	}
	if strings.Contains(got.String(), " m=") {
		t.Errorf("%s: monotonic reading survived: %s", via, got)
	}
}
