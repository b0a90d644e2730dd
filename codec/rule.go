package codec

import (
	"encoding"
	"encoding/gob"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Interface types the walk looks for. Read-only.
var (
	jsonMarshalerType   = reflect.TypeFor[interface{ MarshalJSON() ([]byte, error) }]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	binaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
	gobEncoderType      = reflect.TypeFor[gob.GobEncoder]()
)

// view says whose eyes the walk sees a value with: which struct fields exist
// and which types encode themselves.
type view uint8

const (
	// jsonView: fields JSON encodes (exported, not tagged "-", plus embedded
	// structs); json.Marshaler and encoding.TextMarshaler values are opaque.
	jsonView view = iota
	// gobView: fields gob encodes (exported, not func or chan); GobEncoder,
	// BinaryMarshaler and TextMarshaler values are opaque.
	gobView
)

// cycleCheckDepth is the reference depth past which the walk tracks the
// pointers, maps and slices on its path to detect cycles, as encoding/json
// does: ordinary values are checked without allocating.
const cycleCheckDepth = 1000

// maxPathSegments bounds the path printed in an error.
const maxPathSegments = 12

type refKey struct {
	typ reflect.Type
	ptr uintptr
	n   int
}

// segment is one step of the path from the root to the value being walked.
type segment struct {
	field string        // struct field name, if a field
	index int           // slice or array index, if >= 0
	key   reflect.Value // map key, if valid
}

// walker walks a value as one codec would encode it, to find what no codec
// can carry (a func, chan, unsafe.Pointer or cycle: an error) and, in the
// JSON view, the first thing JSON cannot carry (lossy).
type walker struct {
	view  view
	types *typeCache // jsonView only
	root  reflect.Type
	depth int
	seen  map[refKey]struct{}
	path  []segment
	lossy string // first reason JSON cannot carry the value, with its path
}

// checkJSON walks v as JSON sees it. It returns an ErrUnsupported error, or
// the reason JSON cannot carry v ("" when it can).
func checkJSON(v any, types *typeCache) (lossy string, err error) {
	w := walker{view: jsonView, types: types, root: reflect.TypeOf(v)}
	err = w.walkDynamic(reflect.ValueOf(v))
	return w.lossy, err
}

// checkGob walks v as gob sees it and returns an ErrUnsupported error for a
// func, chan or unsafe.Pointer gob would have to encode, or for a pointer
// cycle (on which encoding/gob would recurse until the stack overflows).
func checkGob(v any) error {
	w := walker{view: gobView, root: reflect.TypeOf(v)}
	return w.walk(reflect.ValueOf(v))
}

// walkDynamic walks a value whose type is only known at run time: the root
// or what an interface holds. The JSON encoder compiles an encoder for such a
// type as a whole, so that type is first checked for map keys JSON rejects.
func (w *walker) walkDynamic(v reflect.Value) error {
	if v.IsValid() && w.view == jsonView && w.lossy == "" {
		if r := w.types.jsonLoss(v.Type(), v.CanAddr()); r != "" {
			w.lose(r)
		}
	}
	return w.walk(v)
}

func (w *walker) walk(v reflect.Value) error {
	if !v.IsValid() {
		return nil
	}
	t := v.Type()
	if w.opaque(v, t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return w.unsupported(t, "a "+t.Kind().String())
	case reflect.Float32, reflect.Float64:
		if w.view == jsonView && w.lossy == "" {
			switch f := v.Float(); {
			case math.IsNaN(f) || math.IsInf(f, 0):
				w.lose(fmt.Sprintf("%v value %v", t, f))
			case t.Kind() == reflect.Float32 && math.Abs(f) == math.MaxFloat32:
				// Written as ±3.4028235e+38, which the decoder then rejects
				// as out of float32 range.
				w.lose(fmt.Sprintf("%v value %v (±math.MaxFloat32 does not survive the JSON decoder)", t, f))
			}
		}
	case reflect.Complex64, reflect.Complex128:
		if w.view == jsonView && w.lossy == "" {
			w.lose(t.String() + " value")
		}
	case reflect.String:
		if w.view == jsonView && w.lossy == "" {
			w.checkString(v.String())
		}
	case reflect.Interface:
		if !v.IsNil() {
			return w.walkDynamic(v.Elem())
		}
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		if err := w.enter(t, v.Pointer(), 0); err != nil {
			return err
		}
		err := w.walk(v.Elem())
		w.leave(t, v.Pointer(), 0)
		return err
	case reflect.Map:
		return w.walkMap(v, t)
	case reflect.Slice:
		if v.Len() == 0 || w.trivial(t.Elem()) {
			return nil
		}
		if err := w.enter(t, v.Pointer(), v.Len()); err != nil {
			return err
		}
		err := w.walkElems(v)
		w.leave(t, v.Pointer(), v.Len())
		return err
	case reflect.Array:
		if v.Len() == 0 || w.trivial(t.Elem()) {
			return nil
		}
		return w.walkElems(v)
	case reflect.Struct:
		return w.walkStruct(v, t)
	}
	return nil
}

// jsonKey reports whether JSON can encode map keys of type t: string and
// integer kinds, and types implementing encoding.TextMarshaler.
func jsonKey(t reflect.Type) bool {
	return t.Kind() == reflect.String || isInteger(t.Kind()) || t.Implements(textMarshalerType)
}

// typeCache remembers, per type and addressability, whether the JSON encoder
// rejects a type as a whole (see jsonLoss). It lives in a Manager.
type typeCache struct {
	m sync.Map // typeKey -> string
}

type typeKey struct {
	t    reflect.Type
	addr bool
}

// jsonLoss returns why the JSON encoder rejects type t, or "". The encoder
// (github.com/goccy/go-json) compiles a type and all the static types it
// reaches at once, and fails on any map whose key type it cannot write, even
// a nil or empty map, behind a nil pointer or in an empty slice. It does not
// look inside types that encode themselves (json.Marshaler,
// encoding.TextMarshaler; pointer-receiver methods count when addressable),
// fields JSON skips, or interface types (their values are checked when met).
func (c *typeCache) jsonLoss(t reflect.Type, addr bool) string {
	k := typeKey{t, addr}
	if r, ok := c.m.Load(k); ok {
		return r.(string)
	}
	r := scanJSONType(t, addr, make(map[typeKey]bool))
	c.m.Store(k, r)
	return r
}

func scanJSONType(t reflect.Type, addr bool, visiting map[typeKey]bool) string {
	k := typeKey{t, addr}
	if visiting[k] {
		return ""
	}
	visiting[k] = true
	for _, it := range []reflect.Type{jsonMarshalerType, textMarshalerType} {
		if t.Implements(it) || (addr && reflect.PointerTo(t).Implements(it)) {
			return ""
		}
	}
	switch t.Kind() {
	case reflect.Map:
		if !jsonKey(t.Key()) {
			return fmt.Sprintf("map key type %v (in type %v)", t.Key(), t)
		}
		return scanJSONType(t.Elem(), false, visiting)
	case reflect.Pointer, reflect.Slice:
		return scanJSONType(t.Elem(), true, visiting)
	case reflect.Array:
		return scanJSONType(t.Elem(), addr, visiting)
	case reflect.Struct:
		w := walker{view: jsonView}
		for i := range t.NumField() {
			sf := t.Field(i)
			if !w.visible(&sf) {
				continue
			}
			if r := scanJSONType(sf.Type, addr, visiting); r != "" {
				return r
			}
		}
	}
	return ""
}

func (w *walker) walkElems(v reflect.Value) error {
	for i := range v.Len() {
		w.path = append(w.path, segment{index: i})
		err := w.walk(v.Index(i))
		w.path = w.path[:len(w.path)-1]
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) walkMap(v reflect.Value, t reflect.Type) error {
	if v.Len() == 0 {
		return nil
	}
	kt := t.Key()
	// checkKeys: walk the keys themselves. Keys JSON writes as strings are
	// only checked for text jsonb would reject or alter.
	checkKeys := !w.trivial(kt)
	stringKeys := false
	if w.view == jsonView {
		switch {
		case kt.Kind() == reflect.String:
			checkKeys, stringKeys = false, true
		case jsonKey(kt):
			checkKeys = false
		default:
			// Normally already found by the type check in walkDynamic.
			if w.lossy == "" {
				w.lose(fmt.Sprintf("map key type %v", kt))
			}
		}
	}
	if !checkKeys && !stringKeys && w.trivial(t.Elem()) {
		return nil
	}
	if err := w.enter(t, v.Pointer(), 0); err != nil {
		return err
	}
	defer w.leave(t, v.Pointer(), 0)
	it := v.MapRange()
	for it.Next() {
		k := it.Key()
		w.path = append(w.path, segment{index: -1, key: k})
		var err error
		switch {
		case stringKeys:
			if w.lossy == "" {
				w.checkString(k.String())
			}
		case checkKeys:
			err = w.walk(k)
		}
		if err == nil {
			err = w.walk(it.Value())
		}
		w.path = w.path[:len(w.path)-1]
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) walkStruct(v reflect.Value, t reflect.Type) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		if !w.visible(&sf) {
			continue
		}
		w.path = append(w.path, segment{field: sf.Name, index: -1})
		err := w.walk(v.Field(i))
		w.path = w.path[:len(w.path)-1]
		if err != nil {
			return err
		}
	}
	return nil
}

// visible reports whether the codec of w's view encodes the struct field.
func (w *walker) visible(sf *reflect.StructField) bool {
	if w.view == gobView {
		k := sf.Type.Kind()
		return sf.IsExported() && k != reflect.Func && k != reflect.Chan
	}
	if sf.Tag.Get("json") == "-" {
		return false
	}
	if sf.IsExported() {
		return true
	}
	// Unexported embedded structs still contribute their exported fields.
	ft := sf.Type
	if ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	return sf.Anonymous && ft.Kind() == reflect.Struct
}

// opaque reports whether the value encodes itself in w's view, so that the
// walk does not look inside it. Pointer-receiver methods count only for
// addressable values, as in encoding/json.
func (w *walker) opaque(v reflect.Value, t reflect.Type) bool {
	if t.NumMethod() == 0 && !v.CanAddr() {
		return false
	}
	var ifaces [3]reflect.Type
	n := 0
	if w.view == jsonView {
		ifaces[0], ifaces[1], n = jsonMarshalerType, textMarshalerType, 2
	} else {
		ifaces[0], ifaces[1], ifaces[2], n = gobEncoderType, binaryMarshalerType, textMarshalerType, 3
	}
	for _, it := range ifaces[:n] {
		if t.Implements(it) || (v.CanAddr() && reflect.PointerTo(t).Implements(it)) {
			return true
		}
	}
	return false
}

// trivial reports whether values of type t can hold nothing the walk looks
// for, so that slices, arrays and maps of them need not be walked.
func (w *walker) trivial(t reflect.Type) bool {
	switch k := t.Kind(); {
	case k == reflect.Bool || isInteger(k):
		return true
	case k == reflect.String || k == reflect.Float32 || k == reflect.Float64 ||
		k == reflect.Complex64 || k == reflect.Complex128:
		// JSON must check their values; gob carries every value.
		return w.view == gobView
	}
	return false
}

func isInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

// checkString records strings JSON would alter (invalid UTF-8 becomes
// U+FFFD) or jsonb would reject (\u0000).
func (w *walker) checkString(s string) {
	switch {
	case !utf8.ValidString(s):
		w.lose("string that is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		w.lose("string containing NUL (U+0000), which jsonb rejects")
	}
}

// enter tracks a reference on the walk's path once deep enough to suspect a
// cycle, and reports a cycle when the reference is already on it.
func (w *walker) enter(t reflect.Type, ptr uintptr, n int) error {
	w.depth++
	if w.depth <= cycleCheckDepth {
		return nil
	}
	if w.seen == nil {
		w.seen = make(map[refKey]struct{})
	}
	k := refKey{t, ptr, n}
	if _, ok := w.seen[k]; ok {
		w.depth--
		return w.unsupported(t, "a cycle through "+t.String())
	}
	w.seen[k] = struct{}{}
	return nil
}

func (w *walker) leave(t reflect.Type, ptr uintptr, n int) {
	if w.depth > cycleCheckDepth {
		delete(w.seen, refKey{t, ptr, n})
	}
	w.depth--
}

func (w *walker) lose(reason string) {
	w.lossy = reason + " at " + w.pathString()
}

func (w *walker) unsupported(t reflect.Type, what string) error {
	return fmt.Errorf("%w: %v at %s: no codec can carry %s", ErrUnsupported, t, w.pathString(), what)
}

// pathString renders the walk's path from the root type, e.g.
// `main.Args.Meta["k"][2]`, eliding the middle of very long paths.
func (w *walker) pathString() string {
	var b strings.Builder
	if w.root != nil {
		b.WriteString(w.root.String())
	} else {
		b.WriteString("value")
	}
	segs := w.path
	if len(segs) > maxPathSegments {
		head, tail := segs[:maxPathSegments/2], segs[len(segs)-maxPathSegments/2:]
		writeSegments(&b, head)
		fmt.Fprintf(&b, "…(%d more)…", len(segs)-len(head)-len(tail))
		writeSegments(&b, tail)
		return b.String()
	}
	writeSegments(&b, segs)
	return b.String()
}

func writeSegments(b *strings.Builder, segs []segment) {
	for _, s := range segs {
		switch {
		case s.field != "":
			b.WriteByte('.')
			b.WriteString(s.field)
		case s.index >= 0:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		case s.key.IsValid():
			if s.key.Kind() == reflect.String {
				fmt.Fprintf(b, "[%q]", s.key.String())
			} else {
				fmt.Fprintf(b, "[%v]", s.key)
			}
		}
	}
}
