package jinja

import "math/big"

// testFunc implements one test ("x is name(args)").
type testFunc func(st *state, v Value, args []Value, kw []kwarg) (Value, error)

// tests is the test table (Jinja 3.1's builtins).
var tests map[string]testFunc

func init() {
	cmp := func(op string) testFunc {
		return func(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
			a, err := bind(op, []string{"other"}, args, kw)
			if err != nil {
				return nil, err
			}
			switch op {
			case "eq":
				return equal(v, a[0]), nil
			case "ne":
				return !equal(v, a[0]), nil
			}
			return compare(op, v, a[0])
		}
	}
	pred := func(f func(Value) bool) testFunc {
		return func(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
			if len(args)+len(kw) > 0 {
				return nil, typeErr("test takes no arguments")
			}
			return f(v), nil
		}
	}
	parity := func(want int64) testFunc {
		return func(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
			r, err := arith("%", v, int64(2))
			if err != nil {
				return nil, err
			}
			return equal(r, want), nil
		}
	}
	tests = map[string]testFunc{
		"odd":  parity(1),
		"even": parity(0),
		"divisibleby": func(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
			a, err := bind("divisibleby", []string{"num"}, args, kw)
			if err != nil {
				return nil, err
			}
			r, err := arith("%", v, a[0])
			if err != nil {
				return nil, err
			}
			return equal(r, int64(0)), nil
		},
		"defined":   pred(func(v Value) bool { _, u := v.(*Undefined); return !u }),
		"undefined": pred(func(v Value) bool { _, u := v.(*Undefined); return u }),
		"filter": pred(func(v Value) bool {
			s, ok := v.(string)
			_, found := filters[s]
			return ok && found
		}),
		"test": pred(func(v Value) bool {
			s, ok := v.(string)
			_, found := tests[s]
			return ok && found
		}),
		"none":    pred(func(v Value) bool { return v == nil }),
		"boolean": pred(func(v Value) bool { _, ok := v.(bool); return ok }),
		"false":   pred(func(v Value) bool { b, ok := v.(bool); return ok && !b }),
		"true":    pred(func(v Value) bool { b, ok := v.(bool); return ok && b }),
		"integer": pred(func(v Value) bool {
			switch v.(type) {
			case int64, *big.Int:
				return true
			}
			return false
		}),
		"float":   pred(func(v Value) bool { _, ok := v.(float64); return ok }),
		"lower":   pred(func(v Value) bool { return strPredicate(pyStr(v), "islower") }),
		"upper":   pred(func(v Value) bool { return strPredicate(pyStr(v), "isupper") }),
		"string":  pred(func(v Value) bool { _, ok := v.(string); return ok }),
		"mapping": pred(func(v Value) bool { _, ok := v.(*Dict); return ok }),
		"number":  pred(isNumber),
		"sequence": pred(func(v Value) bool {
			switch x := v.(type) {
			case string, *Dict, *Undefined:
				return true
			case *List:
				return x.kind == kindList || x.kind == kindTuple
			}
			return false
		}),
		"iterable": pred(func(v Value) bool {
			switch v.(type) {
			case string, *List, *Dict, *Undefined, *generator, *loopContext:
				return true
			}
			return false
		}),
		"callable": pred(func(v Value) bool {
			switch v.(type) {
			case *macro, *builtin, *loopContext, *Undefined, *joiner:
				return true
			}
			return false
		}),
		"sameas": func(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
			a, err := bind("sameas", []string{"other"}, args, kw)
			if err != nil {
				return nil, err
			}
			return sameObject(v, a[0]), nil
		},
		"escaped": pred(func(Value) bool { return false }),
		"in": func(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
			a, err := bind("in", []string{"seq"}, args, kw)
			if err != nil {
				return nil, err
			}
			return contains(a[0], v)
		},
		"==": cmp("eq"), "eq": cmp("eq"), "equalto": cmp("eq"),
		"!=": cmp("ne"), "ne": cmp("ne"),
		">": cmp("gt"), "gt": cmp("gt"), "greaterthan": cmp("gt"),
		">=": cmp("gteq"), "ge": cmp("gteq"),
		"<": cmp("lt"), "lt": cmp("lt"), "lessthan": cmp("lt"),
		"<=": cmp("lteq"), "le": cmp("lteq"),
	}
}

// sameObject approximates Python's "is": None, bools and small ints are
// singletons, strings compare by value, other objects by identity.
func sameObject(a, b Value) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y && x >= -5 && x <= 256
	case string:
		y, ok := b.(string)
		return ok && x == y
	case float64, *big.Int:
		return false
	}
	return a == b
}
