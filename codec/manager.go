package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sync"

	json "github.com/goccy/go-json"
)

// Manager holds the codecs an OmniQ client knows by name, chooses one when
// encoding and dispatches by name when decoding.
//
// A new Manager has "json" (the default) and "gob" registered. Gob decodes
// only registered types: register them with m.Gob().Register.
//
// A Manager is safe for concurrent use. Register, SetDefault and
// (*Gob).Register may be called at any time, also while other goroutines
// encode and decode; an Encode or Decode running at the same moment sees the
// registry either before or after the change.
//
// # Choosing a codec
//
// When the default codec is "json" (unless SetDefault changed it), Encode
// walks the value the way JSON encodes it (exported fields not tagged "-",
// embedded structs, map keys and values, slice and array elements, pointers
// and interfaces by what they hold; values implementing json.Marshaler or
// encoding.TextMarshaler are taken as they are) and decides:
//
//  1. It fails with ErrUnsupported, naming the Go type and where it was found,
//     if it reaches a func, a chan or an unsafe.Pointer (even a nil one), or
//     a pointer, map or slice that contains itself. Neither codec carries these.
//  2. It chooses "gob" if it finds anything JSON cannot carry faithfully:
//     - a float that is NaN or ±Inf, or a float32 that is ±math.MaxFloat32
//     (the JSON decoder, github.com/goccy/go-json, rejects the text it is
//     written as, 3.4028235e+38, as out of float32 range);
//     - a complex64 or complex128;
//     - a map type whose key type is not a string kind, an integer kind or
//     an encoding.TextMarshaler (for example bool, float, struct, array,
//     pointer or interface keys), anywhere in the static type of the value
//     or of what one of its interfaces holds, looking through pointers,
//     slices, arrays, map values and the struct fields JSON encodes. This is
//     decided by type: a nil or empty such map counts too, because the JSON
//     encoder rejects the whole type;
//     - a string, or string map key, that is not valid UTF-8 (JSON would
//     replace bytes with U+FFFD) or contains NUL (jsonb rejects \u0000).
//  3. Otherwise it chooses "json".
//
// Nothing else moves a value to gob; in particular what JSON does not keep
// but gob would not keep either (a time.Time's Location name, unexported
// fields) and -0 (which jsonb stores as 0) stay on JSON. See JSON for exactly
// what a JSON round trip preserves.
//
// The gob codec then requires the value's type to be registered
// (ErrUnregistered otherwise, with the reason JSON was not used). Before
// encoding with gob, the value is walked again as gob sees it, so that a
// cycle gob would follow forever is an ErrUnsupported error rather than a
// crash. The choice is made once, up front: if the chosen codec fails, Encode
// returns that error and does not try the other.
//
// When SetDefault made "gob" the default, every value goes to gob (with the
// cycle check). When it made another registered codec the default, every
// value goes to that codec, unwalked.
type Manager struct {
	maxBytes int
	json     JSON
	gob      *Gob
	plans    planCache

	mu     sync.RWMutex
	codecs map[string]Codec
	def    string
}

// Option configures a Manager.
type Option func(*Manager)

// WithMaxBytes limits encoded payloads, in both directions, to n bytes
// (DefaultMaxBytes, 1 MiB, when n <= 0; at most 4 GiB - 1, what a frame can
// declare). The limit applies to every codec's output and input and to the
// gob codec on its own.
func WithMaxBytes(n int) Option {
	return func(m *Manager) {
		switch {
		case n <= 0:
			m.maxBytes = DefaultMaxBytes
		case uint64(n) > math.MaxUint32:
			m.maxBytes = math.MaxUint32
		default:
			m.maxBytes = n
		}
	}
}

// NewManager returns a Manager with the "json" and "gob" codecs registered
// and "json" the default.
func NewManager(opts ...Option) *Manager {
	m := &Manager{maxBytes: DefaultMaxBytes}
	for _, o := range opts {
		o(m)
	}
	m.gob = NewGob(m.maxBytes)
	m.codecs = map[string]Codec{JSONName: m.json, GobName: m.gob}
	m.def = JSONName
	return m
}

// MaxBytes returns the payload limit.
func (m *Manager) MaxBytes() int { return m.maxBytes }

// Gob returns the built-in gob codec, to register the types it may carry.
func (m *Manager) Gob() *Gob { return m.gob }

// Register adds a codec under c.Name(). A nil codec or an invalid name is an
// error; a name already registered (including "json" and "gob") gives
// ErrDuplicateCodec.
func (m *Manager) Register(c Codec) error {
	if c == nil {
		return errors.New("codec: Register of a nil Codec")
	}
	name := c.Name()
	if err := checkName(name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.codecs[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateCodec, name)
	}
	m.codecs[name] = c
	return nil
}

// SetDefault makes the registered codec name the one Encode uses. With any
// default other than "json", Encode no longer chooses: see Manager. An
// unregistered name gives ErrUnknownCodec.
func (m *Manager) SetDefault(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.codecs[name]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownCodec, name)
	}
	m.def = name
	return nil
}

// Default returns the name of the default codec.
func (m *Manager) Default() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.def
}

// Codec returns the codec registered under name.
func (m *Manager) Codec(name string) (Codec, bool) {
	m.mu.RLock()
	c, ok := m.codecs[name]
	m.mu.RUnlock()
	return c, ok
}

func (m *Manager) lookup(name string) (Codec, error) {
	m.mu.RLock()
	c, ok := m.codecs[name]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownCodec, name)
	}
	return c, nil
}

// Encode encodes v with the codec chosen by the rule documented on Manager
// and returns that codec's name with the bytes. Errors: ErrUnsupported (no
// codec can carry v), ErrUnregistered (gob needed for an unregistered type),
// ErrTooLarge (the encoding exceeds the limit), or the codec's own error.
func (m *Manager) Encode(v any) (codecName string, data []byte, err error) {
	m.mu.RLock()
	def := m.def
	c := m.codecs[def]
	m.mu.RUnlock()

	switch def {
	case JSONName:
		c, data, err = m.encodeAuto(v)
	case GobName:
		if err = checkGob(v, &m.plans); err == nil {
			data, err = m.gob.Marshal(v)
		}
	default:
		if data, err = c.Marshal(v); err != nil {
			err = fmt.Errorf("codec: %s encode %T: %w", def, v, err)
		}
	}
	if err != nil {
		return "", nil, err
	}
	if len(data) > m.maxBytes {
		return "", nil, fmt.Errorf("%w: %s encoding of %T is %d bytes, limit %d", ErrTooLarge, c.Name(), v, len(data), m.maxBytes)
	}
	return c.Name(), data, nil
}

// encodeAuto applies the rule documented on Manager.
func (m *Manager) encodeAuto(v any) (Codec, []byte, error) {
	lossy, err := checkJSON(v, &m.plans)
	if err != nil {
		return nil, nil, err
	}
	if lossy == "" {
		data, err := m.json.Marshal(v)
		return m.json, data, err
	}
	if err := checkGob(v, &m.plans); err != nil {
		return nil, nil, err
	}
	data, err := m.gob.Marshal(v)
	if err != nil {
		return nil, nil, fmt.Errorf("codec: encoding %T with gob because JSON cannot carry its %s: %w", v, lossy, err)
	}
	return m.gob, data, nil
}

// Decode decodes data with the codec registered as codecName (never
// guessing) into v, a non-nil pointer. Errors: ErrUnknownCodec, ErrTooLarge
// (len(data) over the limit), ErrUnregistered (gob into an unregistered
// type) and ErrCorrupt for every other failure of the codec, including a
// panic inside it. A v that is not a non-nil pointer is an error that wraps
// none of these. Decode does not panic on any input.
func (m *Manager) Decode(codecName string, data []byte, v any) error {
	c, err := m.lookup(codecName)
	if err != nil {
		return err
	}
	return m.decode(c, data, v)
}

func (m *Manager) decode(c Codec, data []byte, v any) (err error) {
	if err := checkTarget(v); err != nil {
		return err
	}
	if len(data) > m.maxBytes {
		return fmt.Errorf("%w: %d bytes of %s, limit %d", ErrTooLarge, len(data), c.Name(), m.maxBytes)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s into %T: codec panicked: %v", ErrCorrupt, c.Name(), v, r)
		}
	}()
	err = c.Unmarshal(data, v)
	if err == nil || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnregistered) {
		return err
	}
	return fmt.Errorf("%w: %s into %T: %w", ErrCorrupt, c.Name(), v, err)
}

// ToJSONB returns what OmniQ stores in a jsonb column for data encoded by
// codecName: data itself for "json" (it is JSON text already), and for any
// other codec a JSON string holding the standard base64 encoding of data.
func (m *Manager) ToJSONB(codecName string, data []byte) []byte {
	if codecName == JSONName {
		return data
	}
	enc := base64.StdEncoding
	out := make([]byte, enc.EncodedLen(len(data))+2)
	out[0] = '"'
	enc.Encode(out[1:], data)
	out[len(out)-1] = '"'
	return out
}

// FromJSONB is the inverse of ToJSONB: given the jsonb value stored for
// codecName, it returns the encoded bytes to pass to Decode. For "json" it
// returns stored unchanged. For any other codec stored must be a JSON string
// of standard base64, else the error wraps ErrCorrupt; a string that would
// decode to more than the limit gives ErrTooLarge.
func (m *Manager) FromJSONB(codecName string, stored []byte) ([]byte, error) {
	if codecName == JSONName {
		return stored, nil
	}
	s := bytes.TrimSpace(stored)
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return nil, fmt.Errorf("%w: stored %s value is not a JSON string of base64 (%s)", ErrCorrupt, codecName, preview(s))
	}
	body := s[1 : len(s)-1]
	enc := base64.StdEncoding
	limit := enc.EncodedLen(m.maxBytes)
	if bytes.IndexByte(body, '\\') >= 0 {
		// Base64 needs no escapes, but a writer may have escaped "/" as "\/".
		if len(body) > 6*limit { // \uXXXX is the longest escape of a byte
			return nil, fmt.Errorf("%w: stored %s value of %d bytes, limit %d decoded bytes", ErrTooLarge, codecName, len(body), m.maxBytes)
		}
		var str string
		if err := json.Unmarshal(s, &str); err != nil {
			return nil, fmt.Errorf("%w: stored %s value is not a valid JSON string: %w", ErrCorrupt, codecName, err)
		}
		body = []byte(str)
	}
	if len(body) > limit {
		return nil, fmt.Errorf("%w: stored %s value of %d base64 bytes, limit %d decoded bytes", ErrTooLarge, codecName, len(body), m.maxBytes)
	}
	out := make([]byte, enc.DecodedLen(len(body)))
	n, err := enc.Decode(out, body)
	if err != nil {
		return nil, fmt.Errorf("%w: stored %s value is not standard base64: %w", ErrCorrupt, codecName, err)
	}
	if n > m.maxBytes {
		return nil, fmt.Errorf("%w: stored %s value decodes to %d bytes, limit %d", ErrTooLarge, codecName, n, m.maxBytes)
	}
	return out[:n], nil
}

// preview quotes the start of b for an error message.
func preview(b []byte) string {
	const n = 32
	if len(b) > n {
		return fmt.Sprintf("%q…", b[:n])
	}
	return fmt.Sprintf("%q", b)
}
