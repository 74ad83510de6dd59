package jinja

import (
	"fmt"
	"strings"
)

// kwarg is one keyword argument of a call.
type kwarg struct {
	name string
	val  Value
}

// builtin is a callable implemented in Go: a global function or a bound
// method.
type builtin struct {
	name string
	fn   func(st *state, args []Value, kw []kwarg) (Value, error)
}

func (st *state) eval(e expr, sc *scope) (Value, error) {
	switch e := e.(type) {
	case *constExpr:
		return e.v, nil
	case *nameExpr:
		if v, ok := sc.lookup(e.name); ok {
			return v, nil
		}
		return undefinedName(e.name), nil
	case *listExpr:
		items, err := st.evalList(e.items, sc)
		if err != nil {
			return nil, err
		}
		return NewList(items...), nil
	case *tupleExpr:
		items, err := st.evalList(e.items, sc)
		if err != nil {
			return nil, err
		}
		return NewTuple(items...), nil
	case *dictExpr:
		d := NewDict()
		for i := range e.keys {
			k, err := st.eval(e.keys[i], sc)
			if err != nil {
				return nil, err
			}
			v, err := st.eval(e.vals[i], sc)
			if err != nil {
				return nil, err
			}
			h, ok := hashKey(k)
			if !ok {
				return nil, typeErr("unhashable type: '%s'", typeName(k))
			}
			d.set(h, k, v)
		}
		return d, nil
	case *getattrExpr:
		obj, err := st.eval(e.obj, sc)
		if err != nil {
			return nil, err
		}
		return getattr(obj, e.attr)
	case *getitemExpr:
		obj, err := st.eval(e.obj, sc)
		if err != nil {
			return nil, err
		}
		if s, ok := e.key.(*sliceExpr); ok {
			parts := [3]Value{}
			for i, p := range []expr{s.start, s.stop, s.step} {
				if p == nil {
					continue
				}
				if parts[i], err = st.eval(p, sc); err != nil {
					return nil, err
				}
			}
			return getslice(obj, parts)
		}
		key, err := st.eval(e.key, sc)
		if err != nil {
			return nil, err
		}
		return getitem(obj, key)
	case *callExpr:
		return st.evalCall(e, sc, nil)
	case *filterExpr:
		return st.evalFilter(e, sc, nil)
	case *testExpr:
		return st.evalTest(e, sc)
	case *negExpr:
		v, err := st.eval(e.x, sc)
		if err != nil {
			return nil, err
		}
		return neg(v)
	case *posExpr:
		v, err := st.eval(e.x, sc)
		if err != nil {
			return nil, err
		}
		return pos(v)
	case *notExpr:
		v, err := st.eval(e.x, sc)
		if err != nil {
			return nil, err
		}
		return !truthy(v), nil
	case *binExpr:
		l, err := st.eval(e.l, sc)
		if err != nil {
			return nil, err
		}
		r, err := st.eval(e.r, sc)
		if err != nil {
			return nil, err
		}
		return arith(e.op, l, r)
	case *concatExpr:
		var b strings.Builder
		for _, it := range e.items {
			v, err := st.eval(it, sc)
			if err != nil {
				return nil, err
			}
			b.WriteString(pyStr(v))
		}
		return b.String(), nil
	case *compareExpr:
		return st.evalCompare(e, sc)
	case *andExpr:
		l, err := st.eval(e.l, sc)
		if err != nil || !truthy(l) {
			return l, err
		}
		return st.eval(e.r, sc)
	case *orExpr:
		l, err := st.eval(e.l, sc)
		if err != nil || truthy(l) {
			return l, err
		}
		return st.eval(e.r, sc)
	case *condExpr:
		t, err := st.eval(e.test, sc)
		if err != nil {
			return nil, err
		}
		if truthy(t) {
			return st.eval(e.yes, sc)
		}
		if e.no == nil {
			return undefinedHint(fmt.Sprintf("the inline if-expression on line %d evaluated to false and no else section was defined.", e.line)), nil
		}
		return st.eval(e.no, sc)
	case *nsRefExpr:
		return nil, newErr("TemplateRuntimeError", "namespace reference outside an assignment")
	}
	return nil, newErr("TemplateRuntimeError", "unknown expression %T", e)
}

func (st *state) evalList(es []expr, sc *scope) ([]Value, error) {
	out := make([]Value, len(es))
	for i, e := range es {
		v, err := st.eval(e, sc)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (st *state) evalCompare(e *compareExpr, sc *scope) (Value, error) {
	l, err := st.eval(e.first, sc)
	if err != nil {
		return nil, err
	}
	for i, op := range e.ops {
		r, err := st.eval(e.rest[i], sc)
		if err != nil {
			return nil, err
		}
		var ok bool
		switch op {
		case "eq":
			ok = equal(l, r)
		case "ne":
			ok = !equal(l, r)
		case "in", "notin":
			if ok, err = contains(r, l); err != nil {
				return nil, err
			}
			if op == "notin" {
				ok = !ok
			}
		default:
			if ok, err = compare(op, l, r); err != nil {
				return nil, err
			}
		}
		if !ok {
			return false, nil
		}
		l = r
	}
	return true, nil
}

// evalArgs evaluates call arguments, expanding *args and **kwargs.
func (st *state) evalArgs(a *callArgs, sc *scope) ([]Value, []kwarg, error) {
	args, err := st.evalList(a.args, sc)
	if err != nil {
		return nil, nil, err
	}
	var kw []kwarg
	for i, name := range a.kwNames {
		v, err := st.eval(a.kwVals[i], sc)
		if err != nil {
			return nil, nil, err
		}
		kw = append(kw, kwarg{name, v})
	}
	if a.dynArgs != nil {
		v, err := st.eval(a.dynArgs, sc)
		if err != nil {
			return nil, nil, err
		}
		items, err := iterate(v)
		if err != nil {
			return nil, nil, err
		}
		args = append(args, items...)
	}
	if a.dynKwargs != nil {
		v, err := st.eval(a.dynKwargs, sc)
		if err != nil {
			return nil, nil, err
		}
		d, ok := v.(*Dict)
		if !ok {
			if _, undef := v.(*Undefined); !undef {
				return nil, nil, typeErr("argument after ** must be a mapping, not %s", typeName(v))
			}
			d = NewDict()
		}
		for i, k := range d.keys {
			name, ok := k.(string)
			if !ok {
				return nil, nil, typeErr("keywords must be strings")
			}
			kw = append(kw, kwarg{name, d.vals[i]})
		}
	}
	return args, kw, nil
}

// evalCall evaluates a call; caller, when set, is passed as the caller
// keyword (a {% call %} block).
func (st *state) evalCall(e *callExpr, sc *scope, caller *macro) (Value, error) {
	fn, err := st.eval(e.fn, sc)
	if err != nil {
		return nil, err
	}
	args, kw, err := st.evalArgs(&e.callArgs, sc)
	if err != nil {
		return nil, err
	}
	if caller != nil {
		kw = append(kw, kwarg{"caller", caller})
	}
	return st.call(fn, args, kw)
}

// call invokes a callable value.
func (st *state) call(fn Value, args []Value, kw []kwarg) (Value, error) {
	switch f := fn.(type) {
	case *Undefined:
		return nil, f.fail()
	case *macro:
		return st.callMacro(f, args, kw)
	case *builtin:
		return f.fn(st, args, kw)
	case *loopContext:
		if f.recurse == nil {
			return nil, typeErr("The loop must have the 'recursive' marker to be called recursively.")
		}
		if len(args) != 1 || len(kw) > 0 {
			return nil, typeErr("loop() takes exactly one argument")
		}
		return f.recurse(args[0])
	}
	return nil, typeErr("'%s' object is not callable", typeName(fn))
}

// evalFilter applies a filter; when the innermost filter has no base
// expression, base is the value filtered (a block's rendered text).
func (st *state) evalFilter(f *filterExpr, sc *scope, base Value) (Value, error) {
	v := base
	if f.base != nil {
		var err error
		if inner, ok := f.base.(*filterExpr); ok && base != nil {
			v, err = st.evalFilter(inner, sc, base)
		} else {
			v, err = st.eval(f.base, sc)
		}
		if err != nil {
			return nil, err
		}
	}
	fn, ok := filters[f.name]
	if !ok {
		return nil, newErr("TemplateRuntimeError", "No filter named %s found.", strRepr(f.name))
	}
	args, kw, err := st.evalArgs(&f.callArgs, sc)
	if err != nil {
		return nil, err
	}
	return fn(st, v, args, kw)
}

func (st *state) evalTest(t *testExpr, sc *scope) (Value, error) {
	v, err := st.eval(t.base, sc)
	if err != nil {
		return nil, err
	}
	fn, ok := tests[t.name]
	if !ok {
		return nil, newErr("TemplateRuntimeError", "No test named %s found.", strRepr(t.name))
	}
	args, kw, err := st.evalArgs(&t.callArgs, sc)
	if err != nil {
		return nil, err
	}
	r, err := fn(st, v, args, kw)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// getattr is the sandbox's Environment.getattr: a Python attribute first,
// then the item of that name, else Undefined.
func getattr(obj Value, name string) (Value, error) {
	if u, ok := obj.(*Undefined); ok {
		return nil, u.fail()
	}
	if v, ok := attribute(obj, name); ok {
		return v, nil
	}
	if v, ok := item(obj, name); ok {
		return v, nil
	}
	return undefinedOf(obj, name), nil
}

// getitem is the sandbox's Environment.getitem: the item first, then (for a
// string key) the attribute, else Undefined.
func getitem(obj, key Value) (Value, error) {
	if u, ok := obj.(*Undefined); ok {
		return nil, u.fail()
	}
	if v, ok := item(obj, key); ok {
		return v, nil
	}
	if name, ok := key.(string); ok {
		if v, ok := attribute(obj, name); ok {
			return v, nil
		}
	}
	return undefinedOf(obj, key), nil
}

// item is obj[key]; false where Python raises TypeError or LookupError.
func item(obj, key Value) (Value, bool) {
	switch o := obj.(type) {
	case *Dict:
		return o.Get(key)
	case *List:
		if o.kind != kindList && o.kind != kindTuple {
			return nil, false
		}
		i, ok := index(key, len(o.Items))
		if !ok {
			return nil, false
		}
		return o.Items[i], true
	case string:
		if !isIntLike(key) {
			return nil, false
		}
		rs := []rune(o)
		i, ok := index(key, len(rs))
		if !ok {
			return nil, false
		}
		return string(rs[i]), true
	}
	return nil, false
}

// index resolves a Python sequence index (negative from the end).
func index(key Value, n int) (int, bool) {
	i, ok := asInt64(key)
	if !ok {
		return 0, false
	}
	if i < 0 {
		i += int64(n)
	}
	if i < 0 || i >= int64(n) {
		return 0, false
	}
	return int(i), true
}

// getslice is obj[start:stop:step]. Jinja compiles slices to plain Python
// subscription (bypassing the sandbox's getitem), so failures raise.
func getslice(obj Value, parts [3]Value) (Value, error) {
	switch o := obj.(type) {
	case *Undefined:
		return nil, o.fail()
	case string:
		rs := []rune(o)
		lo, hi, step, err := sliceIndices(parts[0], parts[1], parts[2], len(rs))
		if err != nil {
			return nil, err
		}
		idx := sliceIndexList(lo, hi, step)
		out := make([]rune, len(idx))
		for i, j := range idx {
			out[i] = rs[j]
		}
		return string(out), nil
	case *List:
		if o.kind == kindList || o.kind == kindTuple {
			lo, hi, step, err := sliceIndices(parts[0], parts[1], parts[2], len(o.Items))
			if err != nil {
				return nil, err
			}
			idx := sliceIndexList(lo, hi, step)
			out := make([]Value, len(idx))
			for i, j := range idx {
				out[i] = o.Items[j]
			}
			return &List{Items: out, kind: o.kind}, nil
		}
	case *Dict:
		return nil, typeErr("unhashable type: 'slice'")
	}
	return nil, typeErr("'%s' object is not subscriptable", typeName(obj))
}

// attribute returns the Python attribute name of obj (methods included).
func attribute(obj Value, name string) (Value, bool) {
	switch o := obj.(type) {
	case string:
		return strMethod(o, name)
	case *Dict:
		return dictMethod(o, name)
	case *List:
		return listMethod(o, name)
	case *Namespace:
		return o.attrs.Get(name)
	case *loopContext:
		return o.attr(name)
	case *macro:
		switch name {
		case "name":
			return o.def.name, true
		case "arguments":
			args := make([]Value, len(o.def.params))
			for i, p := range o.def.params {
				args[i] = p
			}
			return NewTuple(args...), true
		case "catch_kwargs":
			return o.def.usesKwargs, true
		case "catch_varargs":
			return o.def.usesVarargs, true
		case "caller":
			return o.def.usesCaller, true
		}
	case *cycler:
		return o.attr(name)
	}
	return nil, false
}
