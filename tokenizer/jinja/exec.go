package jinja

import "fmt"

// ctl is the control-flow outcome of running statements.
type ctl uint8

const (
	ctlNone ctl = iota
	ctlBreak
	ctlContinue
)

func (st *state) exec(body []node, sc *scope) (ctl, error) {
	for _, n := range body {
		c, err := st.execOne(n, sc)
		if err != nil || c != ctlNone {
			return c, err
		}
	}
	return ctlNone, nil
}

func (st *state) execOne(n node, sc *scope) (ctl, error) {
	switch n := n.(type) {
	case *dataNode:
		st.out.WriteString(n.text)
	case *outputNode:
		v, err := st.eval(n.e, sc)
		if err != nil {
			return ctlNone, err
		}
		st.out.WriteString(pyStr(v))
	case *ifNode:
		for i, t := range n.tests {
			v, err := st.eval(t, sc)
			if err != nil {
				return ctlNone, err
			}
			if truthy(v) {
				return st.exec(n.bodies[i], sc)
			}
		}
		return st.exec(n.els, sc)
	case *forNode:
		it, err := st.eval(n.iter, sc)
		if err != nil {
			return ctlNone, err
		}
		return ctlNone, st.runLoop(n, it, sc, 0)
	case *setNode:
		v, err := st.eval(n.value, sc)
		if err != nil {
			return ctlNone, err
		}
		return ctlNone, st.assign(n.target, v, sc)
	case *setBlockNode:
		inner := newScope(sc)
		s, err := st.capture(func() error { _, err := st.exec(n.body, inner); return err })
		if err != nil {
			return ctlNone, err
		}
		var v Value = s
		if n.filter != nil {
			if v, err = st.evalFilter(n.filter, sc, s); err != nil {
				return ctlNone, err
			}
		}
		return ctlNone, st.assign(n.target, v, sc)
	case *macroNode:
		sc.set(n.m.name, &macro{def: n.m, closure: sc})
	case *callBlockNode:
		caller := &macro{def: n.caller, closure: sc}
		v, err := st.evalCall(n.call, sc, caller)
		if err != nil {
			return ctlNone, err
		}
		st.out.WriteString(pyStr(v))
	case *filterBlockNode:
		inner := newScope(sc)
		s, err := st.capture(func() error { _, err := st.exec(n.body, inner); return err })
		if err != nil {
			return ctlNone, err
		}
		v, err := st.evalFilter(n.filter, sc, s)
		if err != nil {
			return ctlNone, err
		}
		st.out.WriteString(pyStr(v))
	case *withNode:
		inner := newScope(sc)
		vals := make([]Value, len(n.values))
		for i, e := range n.values {
			v, err := st.eval(e, sc)
			if err != nil {
				return ctlNone, err
			}
			vals[i] = v
		}
		for i, t := range n.targets {
			if err := st.assign(t, vals[i], inner); err != nil {
				return ctlNone, err
			}
		}
		return st.exec(n.body, inner)
	case *generationNode:
		inner := newScope(sc)
		s, err := st.capture(func() error { _, err := st.exec(n.body, inner); return err })
		if err != nil {
			return ctlNone, err
		}
		st.out.WriteString(s)
	case *loopCtlNode:
		if n.isBreak {
			return ctlBreak, nil
		}
		return ctlContinue, nil
	default:
		return ctlNone, newErr("TemplateRuntimeError", "unknown node %T", n)
	}
	return ctlNone, nil
}

// assign binds target (a name, namespace attribute or tuple of targets).
func (st *state) assign(target expr, v Value, sc *scope) error {
	switch t := target.(type) {
	case *nameExpr:
		sc.set(t.name, v)
		return nil
	case *nsRefExpr:
		obj, _ := sc.lookup(t.name)
		ns, ok := obj.(*Namespace)
		if !ok {
			return newErr("TemplateRuntimeError", "cannot assign attribute on non-namespace object")
		}
		ns.attrs.Set(t.attr, v)
		return nil
	case *tupleExpr:
		items, err := iterate(v)
		if err != nil {
			return typeErr("cannot unpack non-iterable %s object", typeName(v))
		}
		if len(items) < len(t.items) {
			return newErr("ValueError", "not enough values to unpack (expected %d, got %d)", len(t.items), len(items))
		}
		if len(items) > len(t.items) {
			return newErr("ValueError", "too many values to unpack (expected %d)", len(t.items))
		}
		for i, sub := range t.items {
			if err := st.assign(sub, items[i], sc); err != nil {
				return err
			}
		}
		return nil
	}
	return newErr("TemplateRuntimeError", "cannot assign to %T", target)
}

// runLoop runs a for loop over itv; depth0 counts recursive calls.
func (st *state) runLoop(n *forNode, itv Value, sc *scope, depth0 int) error {
	items, err := iterate(itv)
	if err != nil {
		return err
	}
	if n.cond != nil {
		kept := make([]Value, 0, len(items))
		for _, it := range items {
			tsc := newScope(sc)
			if err := st.assign(n.target, it, tsc); err != nil {
				return err
			}
			c, err := st.eval(n.cond, tsc)
			if err != nil {
				return err
			}
			if truthy(c) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	loop := &loopContext{items: items, index0: -1, depth0: depth0}
	if n.recursive {
		loop.recurse = func(v Value) (Value, error) {
			if st.depth >= maxDepth {
				return nil, newErr("RecursionError", "maximum recursion depth exceeded while calling a Python object")
			}
			st.depth++
			defer func() { st.depth-- }()
			return st.capture(func() error { return st.runLoop(n, v, sc, depth0+1) })
		}
	}
	for i, it := range items {
		loop.index0 = i
		isc := newScope(sc)
		if err := st.assign(n.target, it, isc); err != nil {
			return err
		}
		isc.set("loop", loop)
		c, err := st.exec(n.body, isc)
		if err != nil {
			return err
		}
		if c == ctlBreak {
			break
		}
	}
	if len(items) == 0 && len(n.els) > 0 {
		_, err := st.exec(n.els, newScope(sc))
		return err
	}
	return nil
}

// loopContext is the "loop" variable of a for loop.
type loopContext struct {
	items   []Value
	index0  int
	depth0  int
	changed []Value // last arguments of loop.changed, nil before the first call
	called  bool
	recurse func(Value) (Value, error)
}

func (l *loopContext) length() (int, error) { return len(l.items), nil }

// attr returns loop.<name>.
func (l *loopContext) attr(name string) (Value, bool) {
	n := len(l.items)
	i := l.index0
	switch name {
	case "index0":
		return int64(i), true
	case "index":
		return int64(i + 1), true
	case "revindex0":
		return int64(n - i - 1), true
	case "revindex":
		return int64(n - i), true
	case "first":
		return i == 0, true
	case "last":
		return i == n-1, true
	case "length":
		return int64(n), true
	case "depth0":
		return int64(l.depth0), true
	case "depth":
		return int64(l.depth0 + 1), true
	case "previtem":
		if i == 0 {
			return undefinedHint("there is no previous item"), true
		}
		return l.items[i-1], true
	case "nextitem":
		if i+1 >= n {
			return undefinedHint("there is no next item"), true
		}
		return l.items[i+1], true
	case "cycle":
		return &builtin{name: "cycle", fn: func(_ *state, args []Value, kw []kwarg) (Value, error) {
			if len(kw) > 0 {
				return nil, typeErr("cycle() got an unexpected keyword argument '%s'", kw[0].name)
			}
			if len(args) == 0 {
				return nil, typeErr("no items for cycling given")
			}
			return args[l.index0%len(args)], nil
		}}, true
	case "changed":
		return &builtin{name: "changed", fn: func(_ *state, args []Value, _ []kwarg) (Value, error) {
			if l.called && equal(NewTuple(l.changed...), NewTuple(args...)) {
				return false, nil
			}
			l.called, l.changed = true, args
			return true, nil
		}}, true
	}
	return nil, false
}

// macro is a macro bound to the scope it was defined in.
type macro struct {
	def     *macroDef
	closure *scope
}

func (m *macro) name() string { return m.def.name }

// callMacro invokes m as jinja2.runtime.Macro.__call__ does.
func (st *state) callMacro(m *macro, args []Value, kw []kwarg) (Value, error) {
	d := m.def
	if st.depth >= maxDepth {
		return nil, newErr("RecursionError", "maximum recursion depth exceeded while calling a Python object")
	}
	st.depth++
	defer func() { st.depth-- }()

	sc := newScope(m.closure)
	kwargs := NewDict()
	for _, k := range kw {
		kwargs.Set(k.name, k.val)
	}
	take := func(name string) (Value, bool) {
		v, ok := kwargs.Get(name)
		if ok {
			h, _ := hashKey(name)
			kwargs = dictWithout(kwargs, h)
		}
		return v, ok
	}
	nPos := len(d.params)
	if len(args) < nPos {
		nPos = len(args)
	}
	firstDefault := len(d.params) - len(d.defaults)
	foundCaller := d.explicitCall && len(args) >= len(d.params)
	for i, name := range d.params {
		var v Value
		ok := false
		if i < nPos {
			v, ok = args[i], true
		} else {
			if name == "caller" {
				foundCaller = true
			}
			v, ok = take(name)
		}
		if !ok {
			if i >= firstDefault {
				dv, err := st.eval(d.defaults[i-firstDefault], sc)
				if err != nil {
					return nil, err
				}
				v = dv
			} else {
				v = &Undefined{hint: fmt.Sprintf("parameter %s was not provided", strRepr(name)), name: name}
			}
		}
		sc.set(name, v)
	}
	if d.usesCaller && !foundCaller {
		c, ok := take("caller")
		if !ok || c == nil {
			c = &Undefined{hint: "No caller defined", name: "caller"}
		}
		sc.set("caller", c)
	}
	if d.usesKwargs {
		sc.set("kwargs", kwargs)
	} else if kwargs.Len() > 0 {
		if _, ok := kwargs.Get("caller"); ok {
			return nil, typeErr("macro %s was invoked with two values for the special caller argument. This is most likely a bug.", strRepr(d.name))
		}
		return nil, typeErr("macro %s takes no keyword argument %s", strRepr(d.name), pyRepr(kwargs.keys[0]))
	}
	if d.usesVarargs {
		var extra []Value
		if len(args) > len(d.params) {
			extra = args[len(d.params):]
		}
		sc.set("varargs", NewTuple(extra...))
	} else if len(args) > len(d.params) {
		return nil, typeErr("macro %s takes not more than %d argument(s)", strRepr(d.name), len(d.params))
	}
	return st.capture(func() error { _, err := st.exec(d.body, sc); return err })
}

// dictWithout returns d minus the key with hash h.
func dictWithout(d *Dict, h hkey) *Dict {
	out := NewDict()
	for i, k := range d.keys {
		kh, _ := hashKey(k)
		if kh != h {
			out.set(kh, k, d.vals[i])
		}
	}
	return out
}
