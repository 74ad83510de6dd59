package jinja

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Value is a template value. Its dynamic type mirrors a Python object:
//
//	nil         None
//	bool        bool
//	int64       int (promoted to *big.Int when a result overflows int64)
//	*big.Int    int outside the int64 range (always normalized: never fits int64)
//	float64     float
//	string      str (UTF-8; indexing, slicing and len count code points)
//	*List       list or tuple (and dict views), see NewList and NewTuple
//	*Dict       dict with insertion order, see NewDict
//	*Namespace  jinja2's namespace()
//	*Undefined  jinja2's default Undefined
//
// Macros, loop contexts, generators and builtin functions are further,
// internal types.
type Value = any

// listKind distinguishes the Python sequence types backed by List.
type listKind uint8

const (
	kindList   listKind = iota
	kindTuple           // tuple: prints as (a, b), hashable
	kindKeys            // dict.keys() view
	kindValues          // dict.values() view
	kindItems           // dict.items() view
)

// List is a Python list or tuple. Templates never mutate lists (the sandbox
// forbids it), so Items is shared freely.
type List struct {
	Items []Value
	kind  listKind
}

// NewList returns a Python list holding items.
func NewList(items ...Value) *List { return &List{Items: items} }

// NewTuple returns a Python tuple holding items.
func NewTuple(items ...Value) *List { return &List{Items: items, kind: kindTuple} }

// IsTuple reports whether l is a tuple rather than a list.
func (l *List) IsTuple() bool { return l.kind == kindTuple }

// hkey is the hash key of a hashable value: equal Python values (1, 1.0 and
// True) share one key.
type hkey struct {
	kind byte
	i    int64
	s    string
}

// Dict is a Python dict: keys keep their first insertion order.
type Dict struct {
	keys []Value
	vals []Value
	idx  map[hkey]int
}

// NewDict returns an empty dict.
func NewDict() *Dict { return &Dict{idx: map[hkey]int{}} }

// Len returns the number of entries.
func (d *Dict) Len() int { return len(d.keys) }

// Set stores v under k. An existing key keeps its position, as in Python.
// It panics if k is unhashable (a list, dict or namespace holding one).
func (d *Dict) Set(k, v Value) {
	h, ok := hashKey(k)
	if !ok {
		panic("jinja: Dict.Set: unhashable key of type " + typeName(k))
	}
	d.set(h, k, v)
}

func (d *Dict) set(h hkey, k, v Value) {
	if i, ok := d.idx[h]; ok {
		d.vals[i] = v
		return
	}
	d.idx[h] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

// Get returns the value stored under k.
func (d *Dict) Get(k Value) (Value, bool) {
	h, ok := hashKey(k)
	if !ok {
		return nil, false
	}
	i, ok := d.idx[h]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// Keys returns the keys in insertion order. The slice must not be modified.
func (d *Dict) Keys() []Value { return d.keys }

// Values returns the values in key order. The slice must not be modified.
func (d *Dict) Values() []Value { return d.vals }

func (d *Dict) copy() *Dict {
	c := &Dict{keys: append([]Value(nil), d.keys...), vals: append([]Value(nil), d.vals...), idx: make(map[hkey]int, len(d.idx))}
	for k, v := range d.idx {
		c.idx[k] = v
	}
	return c
}

// Namespace is the mutable attribute holder made by namespace().
type Namespace struct{ attrs *Dict }

// Undefined is jinja2's default Undefined: it prints as "", is false,
// iterates as empty, and raises UndefinedError (or exc) when used otherwise.
type Undefined struct {
	hint   string
	obj    Value // the object the lookup failed on, when hasObj
	hasObj bool
	name   Value // the missing name, attribute or element
	exc    string
}

func undefinedName(name string) *Undefined { return &Undefined{name: name} }

func undefinedHint(hint string) *Undefined { return &Undefined{hint: hint} }

func undefinedOf(obj, name Value) *Undefined { return &Undefined{obj: obj, hasObj: true, name: name} }

// message is Undefined._undefined_message.
func (u *Undefined) message() string {
	if u.hint != "" {
		return u.hint
	}
	if !u.hasObj {
		return pyRepr(u.name) + " is undefined"
	}
	if _, ok := u.name.(string); !ok {
		return objectTypeRepr(u.obj) + " has no element " + pyRepr(u.name)
	}
	return pyRepr(objectTypeRepr(u.obj)) + " has no attribute " + pyRepr(u.name)
}

// fail is the error raised when an Undefined is used.
func (u *Undefined) fail() error {
	t := u.exc
	if t == "" {
		t = "UndefinedError"
	}
	return &Error{Type: t, Message: u.message()}
}

// generator is a one-shot iterator (what select, map, unique, ... return in
// Python): always true, no len, consumed by iteration.
type generator struct {
	items []Value
	pos   int
	name  string
}

func (g *generator) drain() []Value {
	rest := g.items[g.pos:]
	g.pos = len(g.items)
	return rest
}

// typeName is type(v).__name__.
func typeName(v Value) string {
	switch v := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case *List:
		switch v.kind {
		case kindTuple:
			return "tuple"
		case kindKeys:
			return "dict_keys"
		case kindValues:
			return "dict_values"
		case kindItems:
			return "dict_items"
		}
		return "list"
	case *Dict:
		return "dict"
	case *Namespace:
		return "Namespace"
	case *Undefined:
		return "Undefined"
	case *macro:
		return "Macro"
	case *builtin:
		return "builtin_function_or_method"
	case *generator:
		return "generator"
	case *loopContext:
		return "LoopContext"
	case *cycler:
		return "Cycler"
	case *joiner:
		return "Joiner"
	}
	return "object"
}

// objectTypeRepr is jinja2.utils.object_type_repr.
func objectTypeRepr(v Value) string {
	switch v.(type) {
	case nil:
		return "None"
	case *Namespace, *cycler, *joiner:
		return "jinja2.utils." + typeName(v) + " object"
	case *macro, *loopContext, *Undefined:
		return "jinja2.runtime." + typeName(v) + " object"
	}
	return typeName(v) + " object"
}

// hashKey returns the hash key of v, or false if v is unhashable.
func hashKey(v Value) (hkey, bool) {
	switch v := v.(type) {
	case nil:
		return hkey{kind: 'n'}, true
	case bool:
		if v {
			return hkey{kind: 'i', i: 1}, true
		}
		return hkey{kind: 'i'}, true
	case int64:
		return hkey{kind: 'i', i: v}, true
	case *big.Int:
		return hkey{kind: 'b', s: v.String()}, true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return hkey{kind: 'i', i: int64(v)}, true
		}
		if v == math.Trunc(v) && !math.IsInf(v, 0) {
			b, _ := big.NewFloat(v).Int(nil)
			return hkey{kind: 'b', s: b.String()}, true
		}
		return hkey{kind: 'f', s: strconv.FormatFloat(v, 'g', -1, 64)}, true
	case string:
		return hkey{kind: 's', s: v}, true
	case *List:
		if v.kind != kindTuple {
			return hkey{}, false
		}
		var b strings.Builder
		for _, it := range v.Items {
			h, ok := hashKey(it)
			if !ok {
				return hkey{}, false
			}
			b.WriteByte(h.kind)
			b.WriteString(strconv.FormatInt(h.i, 10))
			b.WriteByte(':')
			b.WriteString(strconv.Quote(h.s))
			b.WriteByte(',')
		}
		return hkey{kind: 't', s: b.String()}, true
	case *Dict:
		return hkey{}, false
	case *Undefined:
		return hkey{kind: 'u'}, true
	}
	// Other objects hash by identity.
	return hkey{kind: 'p', s: identity(v)}, true
}
