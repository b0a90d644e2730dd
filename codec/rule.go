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

// This file implements the rule documented on Manager: a walk over a value,
// as one codec would encode it, that finds what no codec can carry (an
// error) and, in the JSON view, the first thing JSON cannot carry.

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

// plan is what the walk needs to know about a type in one view, at one
// addressability (pointer-receiver methods count only for addressable
// values, as in encoding/json). Plans are computed once per Manager.
type plan struct {
	// inert: a value of the type can hold nothing the walk looks for
	// (including when it encodes itself), so it need not be visited.
	inert bool
	// fields of a struct type that the codec encodes and that are not inert.
	fields []fieldPlan
}

type fieldPlan struct {
	index int
	name  string
}

type planKey struct {
	t    reflect.Type
	addr bool
}

// planCache holds plans and JSON type checks by type. It lives in a Manager;
// the number of entries is bounded by the types the program encodes.
type planCache struct {
	plans [2][2]sync.Map // [view][addr]: reflect.Type -> *plan
	loss  [2]sync.Map    // [addr]: reflect.Type -> string, see jsonLoss
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *planCache) plan(vw view, t reflect.Type, addr bool) *plan {
	if p, ok := c.plans[vw][b2i(addr)].Load(t); ok {
		return p.(*plan)
	}
	return c.build(vw, t, addr, make(map[planKey]bool))
}

// build computes and stores the plan of t. Types already being built (a
// recursive type) are taken as not inert, which only means walking more.
func (c *planCache) build(vw view, t reflect.Type, addr bool, building map[planKey]bool) *plan {
	if p, ok := c.plans[vw][b2i(addr)].Load(t); ok {
		return p.(*plan)
	}
	inert := func(t reflect.Type, addr bool) bool {
		if building[planKey{t, addr}] {
			return false
		}
		return c.build(vw, t, addr, building).inert
	}
	building[planKey{t, addr}] = true
	p := &plan{}
	switch k := t.Kind(); {
	case encodesItself(vw, t, addr):
		p.inert = true
	case k == reflect.Bool || isInteger(k):
		p.inert = true
	case k == reflect.String || k == reflect.Float32 || k == reflect.Float64 ||
		k == reflect.Complex64 || k == reflect.Complex128:
		// JSON must check their values; gob carries every value.
		p.inert = vw == gobView
	case k == reflect.Pointer || k == reflect.Slice:
		p.inert = inert(t.Elem(), true)
	case k == reflect.Array:
		p.inert = t.Len() == 0 || inert(t.Elem(), addr)
	case k == reflect.Map:
		// A JSON-rejected key type is found by jsonLoss, by type.
		p.inert = inert(t.Key(), false) && inert(t.Elem(), false)
	case k == reflect.Struct:
		for i := range t.NumField() {
			sf := t.Field(i)
			if visible(vw, &sf) && !inert(sf.Type, addr) {
				p.fields = append(p.fields, fieldPlan{index: i, name: sf.Name})
			}
		}
		p.inert = len(p.fields) == 0
	}
	// Func, Chan, UnsafePointer and Interface are never inert.
	actual, _ := c.plans[vw][b2i(addr)].LoadOrStore(t, p)
	return actual.(*plan)
}

// encodesItself reports whether the codec of view vw leaves values of type t
// to their own methods.
func encodesItself(vw view, t reflect.Type, addr bool) bool {
	ifaces := []reflect.Type{jsonMarshalerType, textMarshalerType}
	if vw == gobView {
		ifaces = []reflect.Type{gobEncoderType, binaryMarshalerType, textMarshalerType}
	}
	for _, it := range ifaces {
		if t.Implements(it) || (addr && reflect.PointerTo(t).Implements(it)) {
			return true
		}
	}
	return false
}

// visible reports whether the codec of view vw encodes the struct field.
func visible(vw view, sf *reflect.StructField) bool {
	if vw == gobView {
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

// jsonLoss returns why the JSON encoder rejects type t as a whole, or "".
// The encoder (github.com/goccy/go-json) compiles a type and all the static
// types it reaches at once, and fails on any map whose key type it cannot
// write, even a nil or empty map, behind a nil pointer or in an empty slice.
// It does not look inside types that encode themselves, fields JSON skips,
// or interface types (their values are checked when the walk meets them).
func (c *planCache) jsonLoss(t reflect.Type, addr bool) string {
	if r, ok := c.loss[b2i(addr)].Load(t); ok {
		return r.(string)
	}
	r := scanJSONType(t, addr, make(map[planKey]bool))
	c.loss[b2i(addr)].Store(t, r)
	return r
}

func scanJSONType(t reflect.Type, addr bool, visiting map[planKey]bool) string {
	k := planKey{t, addr}
	if visiting[k] || encodesItself(jsonView, t, addr) {
		return ""
	}
	visiting[k] = true
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
		for i := range t.NumField() {
			sf := t.Field(i)
			if !visible(jsonView, &sf) {
				continue
			}
			if r := scanJSONType(sf.Type, addr, visiting); r != "" {
				return r
			}
		}
	}
	return ""
}

// jsonKey reports whether JSON can encode map keys of type t: string and
// integer kinds, and types implementing encoding.TextMarshaler.
func jsonKey(t reflect.Type) bool {
	return t.Kind() == reflect.String || isInteger(t.Kind()) || t.Implements(textMarshalerType)
}

func isInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

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

// walker walks one value in one view.
type walker struct {
	view  view
	plans *planCache
	root  reflect.Type
	track bool // keep the path, for error messages
	depth int
	seen  map[refKey]struct{}
	path  []segment
	lossy string // first reason JSON cannot carry the value
}

// checkJSON walks v as JSON sees it. It returns an ErrUnsupported error, or
// the reason JSON cannot carry v ("" when it can).
func checkJSON(v any, plans *planCache) (lossy string, err error) {
	w := walker{view: jsonView, plans: plans, root: reflect.TypeOf(v)}
	if err := w.walkDynamic(reflect.ValueOf(v)); err == nil && w.lossy == "" {
		return "", nil
	}
	// Walk again, keeping the path, to say where.
	w = walker{view: jsonView, plans: plans, root: reflect.TypeOf(v), track: true}
	err = w.walkDynamic(reflect.ValueOf(v))
	return w.lossy, err
}

// checkGob walks v as gob sees it and returns an ErrUnsupported error for a
// func, chan or unsafe.Pointer gob would have to encode, or for a pointer
// cycle (on which encoding/gob would recurse until the stack overflows).
func checkGob(v any, plans *planCache) error {
	w := walker{view: gobView, plans: plans, root: reflect.TypeOf(v)}
	if w.walk(reflect.ValueOf(v), false) == nil {
		return nil
	}
	w = walker{view: gobView, plans: plans, root: reflect.TypeOf(v), track: true}
	return w.walk(reflect.ValueOf(v), false)
}

// walkDynamic walks a value whose type is only known at run time: the root
// or what an interface holds. The JSON encoder compiles an encoder for such a
// type as a whole, so that type is first checked for map keys JSON rejects.
// Neither is addressable.
func (w *walker) walkDynamic(v reflect.Value) error {
	if v.IsValid() && w.view == jsonView && w.lossy == "" {
		if r := w.plans.jsonLoss(v.Type(), false); r != "" {
			w.lose(r)
		}
	}
	return w.walk(v, false)
}

// walk visits v. addr says whether v is addressable in the encoder's eyes
// (an element of a slice or what a pointer points to, or a field of such).
func (w *walker) walk(v reflect.Value, addr bool) error {
	if !v.IsValid() {
		return nil
	}
	t := v.Type()
	k := t.Kind()
	// Predeclared scalar types have no methods: skip the plan lookup.
	if !isScalar(k) || t.PkgPath() != "" {
		p := w.plans.plan(w.view, t, addr)
		if p.inert {
			return nil
		}
		if k == reflect.Struct {
			return w.walkStruct(v, p, addr)
		}
	}
	switch k {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return w.unsupported(t, "a "+k.String())
	case reflect.Float32, reflect.Float64:
		if w.view == jsonView && w.lossy == "" {
			switch f := v.Float(); {
			case math.IsNaN(f) || math.IsInf(f, 0):
				w.lose(fmt.Sprintf("%v value %v", t, f))
			case k == reflect.Float32 && math.Abs(f) == math.MaxFloat32:
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
		if v.IsNil() {
			return nil
		}
		return w.walkDynamic(v.Elem())
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		if err := w.enter(t, v.Pointer(), 0); err != nil {
			return err
		}
		err := w.walk(v.Elem(), true)
		w.leave(t, v.Pointer(), 0)
		return err
	case reflect.Map:
		return w.walkMap(v, t)
	case reflect.Slice:
		if v.Len() == 0 {
			return nil
		}
		if err := w.enter(t, v.Pointer(), v.Len()); err != nil {
			return err
		}
		err := w.walkElems(v, true)
		w.leave(t, v.Pointer(), v.Len())
		return err
	case reflect.Array:
		return w.walkElems(v, addr)
	}
	return nil
}

func isScalar(k reflect.Kind) bool {
	switch k {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128,
		reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return true
	}
	return isInteger(k)
}

func (w *walker) walkElems(v reflect.Value, addr bool) error {
	for i := range v.Len() {
		w.push(segment{index: i})
		err := w.walk(v.Index(i), addr)
		w.pop()
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) walkStruct(v reflect.Value, p *plan, addr bool) error {
	for _, f := range p.fields {
		w.push(segment{field: f.name, index: -1})
		err := w.walk(v.Field(f.index), addr)
		w.pop()
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
	walkKeys := !w.plans.plan(w.view, kt, false).inert
	stringKeys := false
	if w.view == jsonView {
		switch {
		case kt.Kind() == reflect.String:
			// Written as JSON strings: only their text matters.
			walkKeys, stringKeys = false, true
		case jsonKey(kt):
			walkKeys = false
		default:
			// Normally already found by jsonLoss.
			if w.lossy == "" {
				w.lose(fmt.Sprintf("map key type %v", kt))
			}
		}
	}
	walkValues := !w.plans.plan(w.view, t.Elem(), false).inert
	if !walkKeys && !stringKeys && !walkValues {
		return nil
	}
	if err := w.enter(t, v.Pointer(), 0); err != nil {
		return err
	}
	defer w.leave(t, v.Pointer(), 0)

	// Copy entries into two reused values rather than allocating per entry,
	// unless the map was reached through an unexported field (read-only).
	var key, val reflect.Value
	reuse := v.CanInterface()
	if reuse {
		key, val = reflect.New(kt).Elem(), reflect.New(t.Elem()).Elem()
	}
	var it reflect.MapIter
	it.Reset(v)
	for it.Next() {
		if reuse {
			key.SetIterKey(&it)
			val.SetIterValue(&it)
		} else {
			key, val = it.Key(), it.Value()
		}
		w.push(segment{index: -1, key: key})
		var err error
		switch {
		case stringKeys:
			if w.lossy == "" {
				w.checkString(key.String())
			}
		case walkKeys:
			err = w.walk(key, false)
		}
		if err == nil && walkValues {
			err = w.walk(val, false)
		}
		w.pop()
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) push(s segment) {
	if w.track {
		w.path = append(w.path, s)
	}
}

func (w *walker) pop() {
	if w.track {
		w.path = w.path[:len(w.path)-1]
	}
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
