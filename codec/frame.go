package codec

import (
	"encoding/binary"
	"fmt"
)

// Frame layout, version 1. All integers are big-endian.
//
//	offset  size  field
//	0       4     magic "OQCF"
//	4       1     version, 1
//	5       1     n, length of the codec name, 1..255
//	6       n     codec name
//	6+n     4     payload length p
//	10+n    p     payload, as produced by the named codec
//
// A frame is exactly 10+n+p bytes; anything after the payload is corrupt.
const (
	frameMagic   = "OQCF"
	frameVersion = 1
	frameFixed   = len(frameMagic) + 1 + 1 + 4 // header bytes besides the name
)

// MarshalFrame encodes v like Encode and returns a self-describing frame: a
// small binary header naming the codec, then the payload. Use it where bytes
// are stored without a separate codec column.
func (m *Manager) MarshalFrame(v any) ([]byte, error) {
	name, data, err := m.Encode(v)
	if err != nil {
		return nil, err
	}
	frame := make([]byte, 0, frameFixed+len(name)+len(data))
	frame = append(frame, frameMagic...)
	frame = append(frame, frameVersion, byte(len(name)))
	frame = append(frame, name...)
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(data)))
	return append(frame, data...), nil
}

// UnmarshalFrame decodes a frame made by MarshalFrame into v, a non-nil
// pointer. The header is checked first: a short, truncated or otherwise
// malformed frame (bad magic, unknown version, empty name, a payload shorter
// or longer than declared) gives ErrCorrupt, except that a declared payload
// length over the limit gives ErrTooLarge. Then an unregistered codec name
// gives ErrUnknownCodec, and decoding the payload fails as Decode does.
// UnmarshalFrame does not panic on any input.
func (m *Manager) UnmarshalFrame(frame []byte, v any) error {
	if len(frame) < frameFixed {
		return fmt.Errorf("%w: frame truncated: %d bytes, a header needs at least %d", ErrCorrupt, len(frame), frameFixed+1)
	}
	if string(frame[:len(frameMagic)]) != frameMagic {
		return fmt.Errorf("%w: not a codec frame: bad magic %q", ErrCorrupt, frame[:len(frameMagic)])
	}
	if ver := frame[4]; ver != frameVersion {
		return fmt.Errorf("%w: unsupported frame version %d", ErrCorrupt, ver)
	}
	n := int(frame[5])
	if n == 0 {
		return fmt.Errorf("%w: frame has an empty codec name", ErrCorrupt)
	}
	if len(frame) < frameFixed+n {
		return fmt.Errorf("%w: frame truncated in its header: %d bytes, header is %d", ErrCorrupt, len(frame), frameFixed+n)
	}
	name := frame[6 : 6+n]
	size := binary.BigEndian.Uint32(frame[6+n:])
	if uint64(size) > uint64(m.maxBytes) {
		return fmt.Errorf("%w: frame declares a %d-byte payload, limit %d", ErrTooLarge, size, m.maxBytes)
	}
	payload := frame[frameFixed+n:]
	switch {
	case len(payload) < int(size):
		return fmt.Errorf("%w: frame truncated: payload has %d of %d bytes", ErrCorrupt, len(payload), size)
	case len(payload) > int(size):
		return fmt.Errorf("%w: %d bytes after the frame's %d-byte payload", ErrCorrupt, len(payload)-int(size), size)
	}
	c, err := m.lookup(string(name))
	if err != nil {
		return err
	}
	return m.decode(c, payload, v)
}
