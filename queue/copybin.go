package queue

import (
	"encoding/binary"
	"io"
	"math"
	"math/bits"
	"time"
)

// This file writes tasks in PostgreSQL's binary COPY format (the "Binary
// Format" section of the COPY documentation) for copyInsert. pgx's CopyFrom
// does the same from [][]any, but it boxes every value and looks up an
// encode plan for each one: half of EnqueueMany's client CPU went there and
// into building the rows. The column types are migrations' (tasks as 007 to
// 010 leave it); TestCopyMatchesInsert checks every column against the
// INSERT path.

// copySignature starts every binary COPY stream, followed by a 32-bit flags
// field and the length of a header extension, both 0.
const copySignature = "PGCOPY\n\xff\r\n\x00"

// pgEpochMicros is 2000-01-01 00:00 UTC, where PostgreSQL counts timestamps
// from, in microseconds since the Unix epoch.
const pgEpochMicros = 946_684_800_000_000

// textOID is the type of a text[] value's elements, which array_recv checks.
const textOID = 25

// copyChunk is about how many bytes copyReader renders at a time: the size of
// the CopyData message pgconn sends.
const copyChunk = 64 << 10

// copyReader renders tasks as one binary COPY stream, a chunk at a time as
// the connection asks for bytes, so the client encodes while the server
// stores what was sent, and memory stays at a chunk whatever the batch's
// size. It writes the columns shape.columns() names. Tasks that rotate go to
// partition gen, the rest to the sticky one. pgconn reads it on a goroutine
// of its own and returns after the last Read.
type copyReader struct {
	params  []*InsertParams
	shape   copyShape
	gen     int16
	now     time.Time
	horizon time.Duration

	buf     []byte
	off     int
	started bool
	done    bool
	// err is why rendering stopped (a callback or metadata that cannot be
	// encoded): pgconn turns it into a CopyFail, and the caller reports it.
	err error
}

func (r *copyReader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.done || r.err != nil {
			if r.err != nil {
				return 0, r.err
			}
			return 0, io.EOF
		}
		r.fill()
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// fill renders the next chunk: the header first, the trailer last.
func (r *copyReader) fill() {
	b := r.buf[:0]
	r.off = 0
	if !r.started {
		r.started = true
		b = append(b, copySignature...)
		b = binary.BigEndian.AppendUint32(b, 0) // flags
		b = binary.BigEndian.AppendUint32(b, 0) // header extension length
	}
	for len(b) < copyChunk && len(r.params) > 0 {
		var err error
		if b, err = r.appendTask(b, r.params[0]); err != nil {
			r.err = err
			break
		}
		r.params = r.params[1:]
	}
	if len(r.params) == 0 && r.err == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff) // the trailer: a tuple of -1 fields
		r.done = true
	}
	r.buf = b
}

// appendTask appends p as one tuple of r.shape's columns.
func (r *copyReader) appendTask(b []byte, p *InsertParams) ([]byte, error) {
	ncol := len(copyColumns) + bits.OnesCount(uint(r.shape)) // one column per optional column written
	b = binary.BigEndian.AppendUint16(b, uint16(ncol))
	b = appendField(b, p.ID[:])
	b = appendText(b, p.Kind)
	b = appendText(b, p.Queue)
	b = appendJSONB(b, p.Args)
	b = appendText(b, p.Codec)
	b = appendTextOrNull(b, p.Name)
	b = appendTextOrNull(b, p.Description)
	b = appendTextArray(b, p.Tags)
	b = appendInt16(b, int16(p.Priority))
	b = appendInt32(b, int32(p.MaxAttempts))
	b = appendInterval(b, p.RetryDelay)
	b = appendText(b, string(p.RetryBackoff))
	if p.ExpiresAt != nil {
		b = appendTimestamptz(b, *p.ExpiresAt)
	} else {
		b = appendNull(b)
	}
	b = appendIntervalOrNull(b, p.Timeout)
	cb, err := p.callbackJSON()
	if err != nil {
		return b, err
	}
	if cb != nil {
		b = appendJSONB(b, cb)
	} else {
		b = appendNull(b)
	}
	b = appendIntervalOrNull(b, p.ResultTTL)
	b = appendBool(b, p.StoreResult)
	g := int16(0)
	if p.rotates(r.now, r.horizon) {
		g = r.gen
	}
	b = appendInt16(b, g)
	if r.shape&copyMetadata != 0 {
		md, err := p.metadataJSON()
		if err != nil {
			return b, err
		}
		b = appendJSONB(b, md)
	}
	if r.shape&copyRunAt != 0 {
		b = appendTimestamptz(b, p.RunAt)
	}
	return b, nil
}

// appendField appends one field: its length, then its bytes.
func appendField(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func appendNull(b []byte) []byte { return binary.BigEndian.AppendUint32(b, math.MaxUint32) } // length -1

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendTextOrNull(b []byte, s string) []byte {
	if s == "" {
		return appendNull(b)
	}
	return appendText(b, s)
}

// appendJSONB appends JSON text as jsonb: a version byte (1), then the text.
func appendJSONB(b, j []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(j)+1))
	b = append(b, 1)
	return append(b, j...)
}

func appendInt16(b []byte, v int16) []byte {
	b = binary.BigEndian.AppendUint32(b, 2)
	return binary.BigEndian.AppendUint16(b, uint16(v))
}

func appendInt32(b []byte, v int32) []byte {
	b = binary.BigEndian.AppendUint32(b, 4)
	return binary.BigEndian.AppendUint32(b, uint32(v))
}

func appendBool(b []byte, v bool) []byte {
	b = binary.BigEndian.AppendUint32(b, 1)
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendTimestamptz appends t to the microsecond, truncated as pgx does.
func appendTimestamptz(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixMicro()-pgEpochMicros))
}

// appendInterval appends d as an interval of microseconds, no days or months,
// truncated as pgx does.
func appendInterval(b []byte, d time.Duration) []byte {
	b = binary.BigEndian.AppendUint32(b, 16)
	b = binary.BigEndian.AppendUint64(b, uint64(d.Microseconds()))
	b = binary.BigEndian.AppendUint32(b, 0)    // days
	return binary.BigEndian.AppendUint32(b, 0) // months
}

// appendIntervalOrNull appends d, or NULL where d is not positive (no
// timeout, no result TTL of the task's own).
func appendIntervalOrNull(b []byte, d time.Duration) []byte {
	if d <= 0 {
		return appendNull(b)
	}
	return appendInterval(b, d)
}

// appendTextArray appends ss as a one-dimensional text[] ('{}' when empty).
func appendTextArray(b []byte, ss []string) []byte {
	size := 12
	if len(ss) > 0 {
		size += 8
	}
	for _, s := range ss {
		size += 4 + len(s)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	ndim := uint32(0)
	if len(ss) > 0 {
		ndim = 1
	}
	b = binary.BigEndian.AppendUint32(b, ndim)
	b = binary.BigEndian.AppendUint32(b, 0) // no NULL elements
	b = binary.BigEndian.AppendUint32(b, textOID)
	if len(ss) > 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(len(ss)))
		b = binary.BigEndian.AppendUint32(b, 1) // lower bound
	}
	for _, s := range ss {
		b = appendText(b, s)
	}
	return b
}
