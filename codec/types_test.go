package codec_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/omniqhq/omniq/codec"
)

// Types shared by the tests: the kinds of values a task's args or result can
// be.

type Address struct {
	Street string `json:"street"`
	City   string `json:"city,omitempty"`
}

type Base struct {
	ID      int64     `json:"id"`
	Created time.Time `json:"created"`
}

type Extra struct {
	Level int `json:"level"`
}

type inner struct {
	Note string `json:"note"`
}

// TaskArgs is a typical task-args struct with json tags, embedded structs
// (exported, unexported, pointer), a skipped field and an unexported field.
type TaskArgs struct {
	Base
	inner
	*Extra
	Name    string            `json:"name"`
	Count   int               `json:"count"`
	Ratio   float64           `json:"ratio"`
	Tags    []string          `json:"tags"`
	Attrs   map[string]string `json:"attrs"`
	Address *Address          `json:"address,omitempty"`
	Blob    []byte            `json:"blob"`
	Secret  string            `json:"-"`
	private int
}

type Numbers struct {
	I64Max   int64
	I64Min   int64
	U64Max   uint64
	I32Min   int32
	I8Min    int8
	U8Max    uint8
	Int      int
	Uint     uint
	F64Max   float64
	F64Tiny  float64
	F64Tenth float64
	F64Sum   float64
	F32Max   float32
	F32Tiny  float32
	F32Tenth float32
}

type Pointers struct {
	P    *int
	PP   **string
	Nil  *Address
	Addr *Address
}

// TextKey is a map key JSON writes through encoding.TextMarshaler.
type TextKey struct{ A, B int }

func (k TextKey) MarshalText() ([]byte, error) { return fmt.Appendf(nil, "%d-%d", k.A, k.B), nil }

func (k *TextKey) UnmarshalText(b []byte) error {
	_, err := fmt.Sscanf(string(b), "%d-%d", &k.A, &k.B)
	return err
}

// Types JSON cannot carry, for the gob fallback.

type Reading struct {
	Sensor    string
	Impedance complex128
	At        time.Time
}

type Stats struct {
	Name string
	Mean float64
	Max  float32
}

type Point struct{ X, Y int }

type Grid struct {
	Cells map[Point]string
}

type Raw struct {
	S string
}

type Flags struct {
	On map[bool]int
}

// Node can form cycles.
type Node struct {
	Name string
	Next *Node
}

// Hidden has fields JSON does not encode.
type Hidden struct {
	Visible  int
	Callback func()       `json:"-"`
	NaN      float64      `json:"-"`
	Parent   *Hidden      `json:"-"`
	fn       func()       // unexported: never encoded
	ch       chan int     // unexported: never encoded
	Keys     map[bool]int `json:"-"`
	Embedded              // unexported fields are promoted only if exported
}

// Embedded is embedded in Hidden.
type Embedded struct{ E string }

// HiddenLossy is Hidden plus something JSON cannot carry, so that gob is
// chosen and its cycle check matters.
type HiddenLossy struct {
	C      complex64
	Parent *HiddenLossy `json:"-"`
}

// gobTypes returns the types registered with every test manager's gob codec.
func gobTypes() []any {
	return []any{
		Reading{}, Stats{}, Grid{}, Raw{}, Flags{}, Node{}, HiddenLossy{},
		map[[2]int]string{}, map[bool]int{}, map[float64]string{}, map[string]any{},
		float64(0), complex128(0), []any{}, TaskArgs{}, Numbers{},
	}
}

// newManager returns a Manager whose gob codec knows gobTypes.
func newManager(t testing.TB, opts ...codec.Option) *codec.Manager {
	t.Helper()
	m := codec.NewManager(opts...)
	if err := m.Gob().Register(gobTypes()...); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantErrContains fails t unless err is non-nil and its text has every part.
func wantErrContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}
