package codec

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"reflect"
	"sync"
)

// Gob is the "gob" codec: the fallback for values JSON cannot carry, built on
// encoding/gob. It is OmniQ's safe counterpart of Python's pickle/dill:
//
//   - it encodes and decodes only types registered with this Gob value
//     (Register); registration lives in the value, not in a global;
//   - decoding fills a value of the registered type the caller passes and
//     never instantiates other types or runs code, except the registered
//     types' own GobDecode/UnmarshalBinary/UnmarshalText methods;
//   - it never calls encoding/gob's global gob.Register. An interface-typed
//     field inside a registered type can therefore only carry Go's predeclared
//     types (which encoding/gob knows) or types the application itself chose
//     to register globally with gob.Register;
//   - payloads larger than its limit are refused with ErrTooLarge before any
//     decoding.
//
// encoding/gob decodes nested values recursively and, unlike the JSON
// decoder, has no depth limit of its own: a registered recursive type (a
// linked list, a tree) can be nested as deep as the size limit allows, about
// half a million levels per MiB, which costs time and goroutine stack (some
// 100 MiB) but not a crash.
//
// Like JSON, gob drops unexported fields and ignores fields of func or chan
// type, and keeps a time.Time's instant and offset but not its Location name.
// Unlike JSON it carries NaN and infinities, complex numbers, -0, any
// comparable map key type and arbitrary bytes in strings.
//
// A Gob is safe for concurrent use, including Register.
type Gob struct {
	maxBytes int

	mu    sync.RWMutex
	types map[reflect.Type]struct{}
}

// NewGob returns a gob codec with no registered types that refuses payloads
// over maxBytes; maxBytes <= 0 means DefaultMaxBytes.
func NewGob(maxBytes int) *Gob {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Gob{maxBytes: maxBytes, types: make(map[reflect.Type]struct{})}
}

// Name returns "gob".
func (g *Gob) Name() string { return GobName }

// Register allows encoding and decoding values of the types of samples.
// Pointers are looked through: Register(&T{}), Register(T{}) and
// Register((*T)(nil)) all register T, and T, *T and **T are then accepted.
// A nil sample or an interface type is an error. Registering a type twice is
// not an error.
func (g *Gob) Register(samples ...any) error {
	for _, s := range samples {
		t := reflect.TypeOf(s)
		if t == nil {
			return fmt.Errorf("codec: gob register: nil sample")
		}
		t = baseType(t)
		if t.Kind() == reflect.Interface {
			return fmt.Errorf("codec: gob register %v: interface types cannot be registered, register concrete types", t)
		}
		g.mu.Lock()
		g.types[t] = struct{}{}
		g.mu.Unlock()
	}
	return nil
}

// Registered reports whether values of v's type (pointers looked through) may
// be encoded and decoded.
func (g *Gob) Registered(v any) bool {
	t := reflect.TypeOf(v)
	return t != nil && g.registered(baseType(t))
}

func (g *Gob) registered(t reflect.Type) bool {
	g.mu.RLock()
	_, ok := g.types[t]
	g.mu.RUnlock()
	return ok
}

// Marshal encodes v, whose type must be registered, as one self-contained
// gob stream (type definitions, then the value).
func (g *Gob) Marshal(v any) ([]byte, error) {
	t := reflect.TypeOf(v)
	if t == nil {
		return nil, fmt.Errorf("codec: gob cannot encode a nil interface value")
	}
	if bt := baseType(t); !g.registered(bt) {
		return nil, fmt.Errorf("%w: %v (register it with (*codec.Gob).Register)", ErrUnregistered, bt)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, fmt.Errorf("codec: gob encode %T: %w", v, err)
	}
	if buf.Len() > g.maxBytes {
		return nil, fmt.Errorf("%w: gob encoding of %T is %d bytes, limit %d", ErrTooLarge, v, buf.Len(), g.maxBytes)
	}
	return buf.Bytes(), nil
}

// Unmarshal decodes data into v, a non-nil pointer to a registered type.
// Oversized data gives ErrTooLarge; an unregistered target, ErrUnregistered;
// malformed or truncated data, trailing bytes or an incompatible value,
// ErrCorrupt. Unmarshal does not panic on any input.
func (g *Gob) Unmarshal(data []byte, v any) (err error) {
	if err := checkTarget(v); err != nil {
		return err
	}
	if bt := baseType(reflect.TypeOf(v)); !g.registered(bt) {
		return fmt.Errorf("%w: %v (register it with (*codec.Gob).Register)", ErrUnregistered, bt)
	}
	if len(data) > g.maxBytes {
		return fmt.Errorf("%w: %d bytes of gob, limit %d", ErrTooLarge, len(data), g.maxBytes)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: gob into %T: decoder panicked: %v", ErrCorrupt, v, r)
		}
	}()
	r := bytes.NewReader(data)
	if err := gob.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("%w: gob into %T: %w", ErrCorrupt, v, err)
	}
	if r.Len() != 0 {
		return fmt.Errorf("%w: gob into %T: %d bytes of trailing data", ErrCorrupt, v, r.Len())
	}
	return nil
}

// baseType looks through pointer types. The bound stops at self-referential
// pointer types such as "type P *P".
func baseType(t reflect.Type) reflect.Type {
	for i := 0; i < 64 && t.Kind() == reflect.Pointer; i++ {
		t = t.Elem()
	}
	return t
}
