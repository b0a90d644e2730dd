package codec

import (
	"errors"
	"fmt"
)

// Codec turns values into bytes and back. Implementations must be safe for
// concurrent use and must not retain data after Unmarshal returns.
type Codec interface {
	// Name identifies the codec; it is stored beside the bytes (in OmniQ's
	// codec column or in a frame) and chooses the codec when decoding. Names
	// are 1 to 255 printable ASCII characters without spaces.
	Name() string
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, which is a non-nil pointer.
	Unmarshal(data []byte, v any) error
}

// Names of the built-in codecs.
const (
	JSONName = "json"
	GobName  = "gob"
)

// DefaultMaxBytes is the default limit on an encoded payload: 1 MiB.
const DefaultMaxBytes = 1 << 20

// Sentinel errors. Every error returned by this package that a caller may
// want to branch on wraps exactly one of these; test with errors.Is.
var (
	// ErrUnknownCodec: no codec is registered under the given name.
	ErrUnknownCodec = errors.New("codec: unknown codec")
	// ErrTooLarge: a payload (encoded, declared in a frame, or given to
	// decode) is larger than the configured limit.
	ErrTooLarge = errors.New("codec: payload too large")
	// ErrCorrupt: the bytes are not a valid encoding of a value of the
	// target's type: truncated, malformed, trailing garbage, a bad frame, or
	// a well-formed value of an incompatible shape.
	ErrCorrupt = errors.New("codec: corrupt data")
	// ErrUnsupported: no codec can carry the value, because it holds a func,
	// a channel, an unsafe.Pointer or a pointer cycle. The message names the
	// Go type and where in the value it was found.
	ErrUnsupported = errors.New("codec: unsupported value")
	// ErrUnregistered: the gob codec was asked to encode or decode a type
	// that was not registered with it.
	ErrUnregistered = errors.New("codec: type not registered with gob codec")
	// ErrDuplicateCodec: Register was given a name already in use.
	ErrDuplicateCodec = errors.New("codec: codec name already registered")
)

// checkName reports whether name is usable as a codec name: 1 to 255 bytes of
// printable ASCII other than space, so that it fits a frame header and prints
// unambiguously.
func checkName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("codec: invalid codec name %q: must be 1 to 255 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("codec: invalid codec name %q: only printable ASCII without spaces", name)
		}
	}
	return nil
}
