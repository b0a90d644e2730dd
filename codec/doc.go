// Package codec owns OmniQ's serialization layer: how task arguments and
// results become bytes for PostgreSQL and how those bytes become values again.
//
// It provides the Codec interface, two built-in codecs and a Manager that
// chooses between them:
//
//   - "json" (JSON), on github.com/goccy/go-json, is the default and the fast
//     path. Its output is JSON text that OmniQ stores in a jsonb column.
//   - "gob" (Gob), on encoding/gob, is the fallback for values JSON cannot
//     carry (NaN, complex numbers, maps with struct keys, strings jsonb would
//     reject or alter). It decodes only into types the application registered
//     with that Gob value and never runs code other than those types' own
//     decoding methods.
//
// Manager.Encode applies a fixed, documented rule to pick the codec and
// returns its name with the bytes; Manager.Decode decodes by that name and
// never guesses. Frames (Manager.MarshalFrame, Manager.UnmarshalFrame) carry
// the codec name inside the bytes for places that have no codec column.
// Manager.ToJSONB and Manager.FromJSONB map encoded bytes to and from the
// value stored in a jsonb column.
//
// Failures a caller may branch on are sentinel errors: ErrUnknownCodec,
// ErrTooLarge, ErrCorrupt, ErrUnsupported, ErrUnregistered and
// ErrDuplicateCodec. Decoding never panics on any input.
package codec
