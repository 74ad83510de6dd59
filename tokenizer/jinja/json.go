package jinja

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// jsonOptions are the json.dumps arguments transformers' tojson passes on.
type jsonOptions struct {
	ensureASCII bool
	indent      *string // nil: no newlines
	itemSep     string
	keySep      string
	sortKeys    bool
}

// ToJSON encodes v exactly as Python's json.dumps(v, ensure_ascii=False)
// does: ", " and ": " separators, keys in insertion order, no HTML escaping,
// floats in Python repr, ints exact.
func ToJSON(v Value) (string, error) {
	var b strings.Builder
	err := writeJSON(&b, v, &jsonOptions{itemSep: ", ", keySep: ": "}, 0)
	return b.String(), err
}

func writeJSON(b *strings.Builder, v Value, o *jsonOptions, level int) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case *big.Int:
		b.WriteString(x.String())
	case float64:
		b.WriteString(jsonFloat(x))
	case string:
		writeJSONString(b, x, o.ensureASCII)
	case *List:
		if x.kind != kindList && x.kind != kindTuple {
			return typeErr("Object of type %s is not JSON serializable", typeName(v))
		}
		if len(x.Items) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		sep := o.itemSep
		if o.indent != nil {
			nl := "\n" + strings.Repeat(*o.indent, level+1)
			b.WriteString(nl)
			sep += nl
		}
		for i, it := range x.Items {
			if i > 0 {
				b.WriteString(sep)
			}
			if err := writeJSON(b, it, o, level+1); err != nil {
				return err
			}
		}
		if o.indent != nil {
			b.WriteString("\n" + strings.Repeat(*o.indent, level))
		}
		b.WriteByte(']')
	case *Dict:
		if x.Len() == 0 {
			b.WriteString("{}")
			return nil
		}
		order := make([]int, x.Len())
		for i := range order {
			order[i] = i
		}
		if o.sortKeys {
			var err error
			sort.SliceStable(order, func(i, j int) bool {
				c, ok, e := order3(x.keys[order[i]], x.keys[order[j]])
				if e != nil && err == nil {
					err = e
				}
				return ok && c < 0
			})
			if err != nil {
				return err
			}
		}
		b.WriteByte('{')
		sep := o.itemSep
		if o.indent != nil {
			nl := "\n" + strings.Repeat(*o.indent, level+1)
			b.WriteString(nl)
			sep += nl
		}
		for n, i := range order {
			k, err := jsonKey(x.keys[i])
			if err != nil {
				return err
			}
			if n > 0 {
				b.WriteString(sep)
			}
			writeJSONString(b, k, o.ensureASCII)
			b.WriteString(o.keySep)
			if err := writeJSON(b, x.vals[i], o, level+1); err != nil {
				return err
			}
		}
		if o.indent != nil {
			b.WriteString("\n" + strings.Repeat(*o.indent, level))
		}
		b.WriteByte('}')
	default:
		return typeErr("Object of type %s is not JSON serializable", typeName(v))
	}
	return nil
}

func order3(a, b Value) (int, bool, error) { return order(a, b, "<") }

// jsonKey converts a dict key the way json.dumps does.
func jsonKey(k Value) (string, error) {
	switch x := k.(type) {
	case string:
		return x, nil
	case nil:
		return "null", nil
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	case int64, *big.Int:
		return pyStr(x), nil
	case float64:
		return jsonFloat(x), nil
	}
	return "", typeErr("keys must be str, int, float, bool or None, not %s", typeName(k))
}

// jsonFloat is float.__repr__ with json's spellings of the non-finite values.
func jsonFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case math.IsNaN(f):
		return "NaN"
	}
	return floatRepr(f)
}

// writeJSONString writes s as a JSON string the way Python's encoder does:
// only " \ and control characters escaped (as \n \r \t \b \f or \u00xx),
// or, with ensureASCII, everything outside printable ASCII as \uxxxx
// (surrogate pairs above the BMP).
func writeJSONString(b *strings.Builder, s string, ensureASCII bool) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20:
				fmt.Fprintf(b, `\u%04x`, r)
			case !ensureASCII || (r >= 0x20 && r <= 0x7e):
				b.WriteRune(r)
			case r >= 0x10000:
				r -= 0x10000
				fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			default:
				fmt.Fprintf(b, `\u%04x`, r)
			}
		}
	}
	b.WriteByte('"')
}

// tojsonFilter is transformers' tojson filter: json.dumps(x,
// ensure_ascii=False, indent=None, separators=None, sort_keys=False).
func tojsonFilter(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("tojson", []string{"ensure_ascii=", "indent=", "separators=", "sort_keys="}, args, kw)
	if err != nil {
		return nil, err
	}
	o := &jsonOptions{ensureASCII: truthy(orDefault(a[0], false)), sortKeys: truthy(orDefault(a[3], false))}
	switch ind := orDefault(a[1], nil).(type) {
	case nil:
	case string:
		o.indent = &ind
	default:
		n, ok := asInt64(ind)
		if !ok {
			return nil, typeErr("can't multiply sequence by non-int of type '%s'", typeName(ind))
		}
		s := ""
		if n > 0 {
			s = strings.Repeat(" ", int(n))
		}
		o.indent = &s
	}
	switch seps := orDefault(a[2], nil).(type) {
	case nil:
		o.itemSep, o.keySep = ", ", ": "
		if o.indent != nil {
			o.itemSep = ","
		}
	case *List:
		if len(seps.Items) != 2 {
			return nil, newErr("ValueError", "too many values to unpack (expected 2)")
		}
		is, ok1 := seps.Items[0].(string)
		ks, ok2 := seps.Items[1].(string)
		if !ok1 || !ok2 {
			return nil, typeErr("separators must be strings")
		}
		o.itemSep, o.keySep = is, ks
	default:
		return nil, typeErr("cannot unpack non-iterable %s object", typeName(seps))
	}
	var b strings.Builder
	if err := writeJSON(&b, v, o, 0); err != nil {
		return nil, err
	}
	return b.String(), nil
}

// DecodeJSON decodes JSON into template values as Python's json.loads
// does: objects become *Dict with their key order, arrays *List, numbers
// with a fraction or exponent float64 and others int64 (or *big.Int).
func DecodeJSON(data []byte) (Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("jinja: DecodeJSON: trailing data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("jinja: DecodeJSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			items := []Value{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				items = append(items, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("jinja: DecodeJSON: %w", err)
			}
			return NewList(items...), nil
		case '{':
			d := NewDict()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("jinja: DecodeJSON: %w", err)
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				d.Set(kt.(string), v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("jinja: DecodeJSON: %w", err)
			}
			return d, nil
		}
		return nil, fmt.Errorf("jinja: DecodeJSON: unexpected %v", t)
	case json.Number:
		return numberValue(string(t))
	case string, bool, nil:
		return t, nil
	}
	return nil, fmt.Errorf("jinja: DecodeJSON: unexpected token %v", tok)
}

// numberValue converts a JSON number literal: a fraction or exponent makes
// a float, anything else an int.
func numberValue(lit string) (Value, error) {
	if strings.ContainsAny(lit, ".eE") {
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil && !isRangeErr(err) {
			return nil, fmt.Errorf("jinja: DecodeJSON: bad number %q", lit)
		}
		return f, nil
	}
	if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
		return i, nil
	}
	b, ok := new(big.Int).SetString(lit, 10)
	if !ok {
		return nil, fmt.Errorf("jinja: DecodeJSON: bad number %q", lit)
	}
	return normInt(b), nil
}

// FromGo converts an ordinary Go value into a template value: nil, bool,
// integers, floats, strings, json.Number, json.RawMessage (decoded with
// DecodeJSON), slices, arrays, pointers and maps with string keys (keys
// sorted, since Go maps have no order; use *Dict or DecodeJSON to keep an
// order). Values that already are template values pass through; other
// types (structs, channels, ...) are an error.
func FromGo(v any) (Value, error) {
	switch x := v.(type) {
	case nil, bool, int64, *big.Int, float64, string, *List, *Dict, *Namespace, *Undefined:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case json.Number:
		return numberValue(string(x))
	case json.RawMessage:
		return DecodeJSON(x)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return normInt(new(big.Int).SetUint64(rv.Uint())), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, nil
		}
		items := make([]Value, rv.Len())
		for i := range items {
			it, err := FromGo(rv.Index(i).Interface())
			if err != nil {
				return nil, err
			}
			items[i] = it
		}
		return NewList(items...), nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("jinja: FromGo: map key type %s is not string", rv.Type().Key())
		}
		if rv.IsNil() {
			return nil, nil
		}
		keys := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		d := NewDict()
		for _, k := range keys {
			it, err := FromGo(rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key())).Interface())
			if err != nil {
				return nil, err
			}
			d.Set(k, it)
		}
		return d, nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return FromGo(rv.Elem().Interface())
	}
	return nil, fmt.Errorf("jinja: FromGo: unsupported type %T", v)
}
