package jinja

import (
	"math"
	"math/big"
	"strings"
	"unicode/utf8"
)

// normInt returns b as int64 when it fits, else b itself.
func normInt(b *big.Int) Value {
	if b.IsInt64() {
		return b.Int64()
	}
	return b
}

// toBig converts an int-like value (bool, int64, *big.Int) to *big.Int.
func toBig(v Value) *big.Int {
	switch v := v.(type) {
	case bool:
		if v {
			return big.NewInt(1)
		}
		return big.NewInt(0)
	case int64:
		return big.NewInt(v)
	case *big.Int:
		return v
	}
	return nil
}

// isIntLike reports whether v is a Python int (bool included).
func isIntLike(v Value) bool {
	switch v.(type) {
	case bool, int64, *big.Int:
		return true
	}
	return false
}

func isNumber(v Value) bool {
	switch v.(type) {
	case bool, int64, *big.Int, float64:
		return true
	}
	return false
}

// asInt64 returns an int-like value as int64 (false for big or non-ints).
func asInt64(v Value) (int64, bool) {
	switch v := v.(type) {
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	case int64:
		return v, true
	}
	return 0, false
}

// toFloat converts a number to float64 (ints rounded to nearest).
func toFloat(v Value) (float64, bool) {
	switch v := v.(type) {
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	case int64:
		return float64(v), true
	case *big.Int:
		f, _ := new(big.Float).SetInt(v).Float64()
		return f, true
	case float64:
		return v, true
	}
	return 0, false
}

// truthy is Python's bool(v).
func truthy(v Value) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case int64:
		return v != 0
	case *big.Int:
		return v.Sign() != 0
	case float64:
		return v != 0
	case string:
		return v != ""
	case *List:
		return len(v.Items) > 0
	case *Dict:
		return v.Len() > 0
	case *Undefined:
		return false
	case *loopContext:
		n, _ := v.length()
		return n > 0
	}
	return true
}

func binOpErr(op string, a, b Value) error {
	return typeErr("unsupported operand type(s) for %s: '%s' and '%s'", op, typeName(a), typeName(b))
}

// undefinedOperand returns the failure of the first Undefined operand.
func undefinedOperand(a, b Value) error {
	if u, ok := a.(*Undefined); ok {
		return u.fail()
	}
	if u, ok := b.(*Undefined); ok {
		return u.fail()
	}
	return nil
}

// arith applies a binary arithmetic operator with Python semantics.
func arith(op string, a, b Value) (Value, error) {
	if err := undefinedOperand(a, b); err != nil {
		return nil, err
	}
	switch op {
	case "+":
		return add(a, b)
	case "*":
		return mul(a, b)
	case "%":
		if s, ok := a.(string); ok {
			return percentFormat(s, b)
		}
	}
	if !isNumber(a) || !isNumber(b) {
		if op == "**" {
			return nil, binOpErr("** or pow()", a, b)
		}
		return nil, binOpErr(op, a, b)
	}
	_, af := a.(float64)
	_, bf := b.(float64)
	if !af && !bf {
		return intArith(op, toBig(a), toBig(b))
	}
	x, _ := toFloat(a)
	y, _ := toFloat(b)
	return floatArith(op, x, y)
}

func add(a, b Value) (Value, error) {
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return x + y, nil
		}
		return nil, typeErr("can only concatenate str (not \"%s\") to str", typeName(b))
	case *List:
		if x.kind == kindList || x.kind == kindTuple {
			if y, ok := b.(*List); ok && y.kind == x.kind {
				items := make([]Value, 0, len(x.Items)+len(y.Items))
				items = append(append(items, x.Items...), y.Items...)
				return &List{Items: items, kind: x.kind}, nil
			}
			return nil, typeErr("can only concatenate %s (not \"%s\") to %s", typeName(a), typeName(b), typeName(a))
		}
	}
	if !isNumber(a) || !isNumber(b) {
		return nil, binOpErr("+", a, b)
	}
	_, af := a.(float64)
	_, bf := b.(float64)
	if !af && !bf {
		return intArith("+", toBig(a), toBig(b))
	}
	x, _ := toFloat(a)
	y, _ := toFloat(b)
	return x + y, nil
}

// repeatCount validates the int operand of sequence repetition.
func repeatCount(seq, n Value) (int, error) {
	if !isIntLike(n) {
		return 0, typeErr("can't multiply sequence by non-int of type '%s'", typeName(n))
	}
	c, ok := asInt64(n)
	if !ok {
		if toBig(n).Sign() < 0 {
			return 0, nil
		}
		return 0, newErr("OverflowError", "cannot fit 'int' into an index-sized integer")
	}
	if c < 0 {
		return 0, nil
	}
	if c > 1<<24 && c*int64(seqLen(seq)) > 1<<28 {
		return 0, newErr("MemoryError", "")
	}
	return int(c), nil
}

func seqLen(v Value) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case *List:
		return len(v.Items)
	}
	return 0
}

func mul(a, b Value) (Value, error) {
	seq, n := a, b
	if isIntLike(a) {
		seq, n = b, a
	}
	switch s := seq.(type) {
	case string:
		c, err := repeatCount(s, n)
		if err != nil {
			return nil, err
		}
		return strings.Repeat(s, c), nil
	case *List:
		if s.kind == kindList || s.kind == kindTuple {
			c, err := repeatCount(s, n)
			if err != nil {
				return nil, err
			}
			items := make([]Value, 0, len(s.Items)*c)
			for i := 0; i < c; i++ {
				items = append(items, s.Items...)
			}
			return &List{Items: items, kind: s.kind}, nil
		}
	}
	if !isNumber(a) || !isNumber(b) {
		return nil, binOpErr("*", a, b)
	}
	_, af := a.(float64)
	_, bf := b.(float64)
	if !af && !bf {
		return intArith("*", toBig(a), toBig(b))
	}
	x, _ := toFloat(a)
	y, _ := toFloat(b)
	return x * y, nil
}

func intArith(op string, x, y *big.Int) (Value, error) {
	switch op {
	case "+":
		return normInt(new(big.Int).Add(x, y)), nil
	case "-":
		return normInt(new(big.Int).Sub(x, y)), nil
	case "*":
		return normInt(new(big.Int).Mul(x, y)), nil
	case "/":
		if y.Sign() == 0 {
			return nil, newErr("ZeroDivisionError", "division by zero")
		}
		f, _ := new(big.Rat).SetFrac(x, y).Float64()
		return f, nil
	case "//", "%":
		if y.Sign() == 0 {
			if op == "//" {
				return nil, newErr("ZeroDivisionError", "integer division or modulo by zero")
			}
			return nil, newErr("ZeroDivisionError", "integer modulo by zero")
		}
		q, m := new(big.Int).DivMod(x, y, new(big.Int)) // Euclidean: 0 <= m < |y|
		if m.Sign() != 0 && y.Sign() < 0 {
			// Python floors: the remainder takes the divisor's sign.
			q.Sub(q, big.NewInt(1))
			m.Add(m, y)
		}
		if op == "//" {
			return normInt(q), nil
		}
		return normInt(m), nil
	case "**":
		if y.Sign() < 0 {
			fx, _ := toFloat(normInt(x))
			fy, _ := toFloat(normInt(y))
			return floatArith("**", fx, fy)
		}
		if y.BitLen() > 32 && x.CmpAbs(big.NewInt(1)) > 0 {
			return nil, newErr("MemoryError", "")
		}
		if x.BitLen()*int(y.Int64()) > 1<<22 {
			return nil, newErr("MemoryError", "")
		}
		return normInt(new(big.Int).Exp(x, y, nil)), nil
	}
	return nil, newErr("TemplateRuntimeError", "unknown operator %s", op)
}

// floatArith implements Python float operators, including float_divmod's
// floor division and modulo.
func floatArith(op string, x, y float64) (Value, error) {
	switch op {
	case "+":
		return x + y, nil
	case "-":
		return x - y, nil
	case "*":
		return x * y, nil
	case "/":
		if y == 0 {
			return nil, newErr("ZeroDivisionError", "float division by zero")
		}
		return x / y, nil
	case "//", "%":
		if y == 0 {
			if op == "//" {
				return nil, newErr("ZeroDivisionError", "float floor division by zero")
			}
			return nil, newErr("ZeroDivisionError", "float modulo")
		}
		div, mod := floatDivmod(x, y)
		if op == "//" {
			return div, nil
		}
		return mod, nil
	case "**":
		if x == 0 && y < 0 {
			return nil, newErr("ZeroDivisionError", "0.0 cannot be raised to a negative power")
		}
		if x < 0 && y != math.Trunc(y) {
			return nil, newErr("ValueError", "complex results are not supported")
		}
		r := math.Pow(x, y)
		if math.IsInf(r, 0) && !math.IsInf(x, 0) && !math.IsInf(y, 0) {
			return nil, newErr("OverflowError", "(34, 'Numerical result out of range')")
		}
		return r, nil
	}
	return nil, newErr("TemplateRuntimeError", "unknown operator %s", op)
}

// floatDivmod is CPython's float_divmod.
func floatDivmod(vx, wx float64) (float64, float64) {
	mod := math.Mod(vx, wx)
	div := (vx - mod) / wx
	if mod != 0 {
		if (wx < 0) != (mod < 0) {
			mod += wx
			div -= 1.0
		}
	} else {
		mod = math.Copysign(0, wx)
	}
	var floordiv float64
	if div != 0 {
		floordiv = math.Floor(div)
		if div-floordiv > 0.5 {
			floordiv += 1.0
		}
	} else {
		floordiv = math.Copysign(0, vx/wx)
	}
	return floordiv, mod
}

// neg is unary minus.
func neg(v Value) (Value, error) {
	switch x := v.(type) {
	case *Undefined:
		return nil, x.fail()
	case float64:
		return -x, nil
	}
	if isIntLike(v) {
		return normInt(new(big.Int).Neg(toBig(v))), nil
	}
	return nil, typeErr("bad operand type for unary -: '%s'", typeName(v))
}

// pos is unary plus.
func pos(v Value) (Value, error) {
	switch x := v.(type) {
	case *Undefined:
		return nil, x.fail()
	case float64:
		return x, nil
	case bool:
		return asIntValue(x), nil
	}
	if isIntLike(v) {
		return v, nil
	}
	return nil, typeErr("bad operand type for unary +: '%s'", typeName(v))
}

func asIntValue(b bool) Value {
	if b {
		return int64(1)
	}
	return int64(0)
}

// equal is Python's a == b.
func equal(a, b Value) bool {
	if isNumber(a) && isNumber(b) {
		c, ok := numCompare(a, b)
		return ok && c == 0
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case *List:
		y, ok := b.(*List)
		if !ok || y.kind != x.kind || len(x.Items) != len(y.Items) {
			return false
		}
		if x.kind == kindKeys {
			return sameKeySet(x.Items, y.Items)
		}
		if x.kind == kindValues {
			return x == y
		}
		for i := range x.Items {
			if !equal(x.Items[i], y.Items[i]) {
				return false
			}
		}
		return true
	case *Dict:
		y, ok := b.(*Dict)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for i, k := range x.keys {
			v, ok := y.Get(k)
			if !ok || !equal(x.vals[i], v) {
				return false
			}
		}
		return true
	case *Undefined:
		_, ok := b.(*Undefined)
		return ok
	case *Namespace, *macro, *builtin, *generator, *loopContext, *cycler, *joiner:
		return a == b
	}
	return false
}

func sameKeySet(a, b []Value) bool {
	for _, k := range a {
		found := false
		for _, j := range b {
			if equal(k, j) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// numCompare compares two numbers exactly (ints against floats included).
func numCompare(a, b Value) (int, bool) {
	af, aIsF := a.(float64)
	bf, bIsF := b.(float64)
	switch {
	case !aIsF && !bIsF:
		x, xok := asInt64(a)
		y, yok := asInt64(b)
		if xok && yok {
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		}
		return toBig(a).Cmp(toBig(b)), true
	case aIsF && bIsF:
		if math.IsNaN(af) || math.IsNaN(bf) {
			return 0, false
		}
		switch {
		case af < bf:
			return -1, true
		case af > bf:
			return 1, true
		}
		return 0, true
	case aIsF:
		c, ok := cmpIntFloat(toBig(b), af)
		return -c, ok
	default:
		return cmpIntFloat(toBig(a), bf)
	}
}

// cmpIntFloat compares an int with a float exactly.
func cmpIntFloat(i *big.Int, f float64) (int, bool) {
	if math.IsNaN(f) {
		return 0, false
	}
	if math.IsInf(f, 1) {
		return -1, true
	}
	if math.IsInf(f, -1) {
		return 1, true
	}
	return new(big.Float).SetInt(i).Cmp(big.NewFloat(f)), true
}

// compare applies an ordering operator (lt lteq gt gteq) with Python rules.
func compare(op string, a, b Value) (bool, error) {
	if err := undefinedOperand(a, b); err != nil {
		return false, err
	}
	sym := map[string]string{"lt": "<", "lteq": "<=", "gt": ">", "gteq": ">="}[op]
	c, ok, err := order(a, b, sym)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, nil // NaN involved
	}
	switch op {
	case "lt":
		return c < 0, nil
	case "lteq":
		return c <= 0, nil
	case "gt":
		return c > 0, nil
	}
	return c >= 0, nil
}

// order returns the ordering of a and b; ok is false for unordered NaNs.
func order(a, b Value, sym string) (int, bool, error) {
	if isNumber(a) && isNumber(b) {
		c, ok := numCompare(a, b)
		return c, ok, nil
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true, nil
		}
	case *List:
		if y, ok := b.(*List); ok && x.kind == y.kind && (x.kind == kindList || x.kind == kindTuple) {
			for i := 0; i < len(x.Items) && i < len(y.Items); i++ {
				if equal(x.Items[i], y.Items[i]) {
					continue
				}
				return order(x.Items[i], y.Items[i], sym)
			}
			switch {
			case len(x.Items) < len(y.Items):
				return -1, true, nil
			case len(x.Items) > len(y.Items):
				return 1, true, nil
			}
			return 0, true, nil
		}
	}
	return 0, false, typeErr("'%s' not supported between instances of '%s' and '%s'", sym, typeName(a), typeName(b))
}

// contains is Python's item in container.
func contains(container, item Value) (bool, error) {
	switch c := container.(type) {
	case *Undefined:
		return false, nil
	case string:
		s, ok := item.(string)
		if !ok {
			return false, typeErr("'in <string>' requires string as left operand, not %s", typeName(item))
		}
		return strings.Contains(c, s), nil
	case *List:
		if c.kind == kindKeys {
			for _, k := range c.Items {
				if equal(k, item) {
					return true, nil
				}
			}
			return false, nil
		}
		for _, it := range c.Items {
			if equal(it, item) {
				return true, nil
			}
		}
		return false, nil
	case *Dict:
		h, ok := hashKey(item)
		if !ok {
			return false, typeErr("unhashable type: '%s'", typeName(item))
		}
		_, found := c.idx[h]
		return found, nil
	case *generator:
		for c.pos < len(c.items) {
			it := c.items[c.pos]
			c.pos++
			if equal(it, item) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, typeErr("argument of type '%s' is not iterable", typeName(container))
}

// iterate returns the items a for loop over v visits.
func iterate(v Value) ([]Value, error) {
	switch x := v.(type) {
	case *Undefined:
		return nil, nil
	case string:
		out := make([]Value, 0, utf8.RuneCountInString(x))
		for _, r := range x {
			out = append(out, string(r))
		}
		return out, nil
	case *List:
		return x.Items, nil
	case *Dict:
		return x.keys, nil
	case *generator:
		return x.drain(), nil
	case *loopContext:
		return x.items, nil
	}
	return nil, typeErr("'%s' object is not iterable", typeName(v))
}

// length is Python's len(v).
func length(v Value) (int, error) {
	switch x := v.(type) {
	case string:
		return utf8.RuneCountInString(x), nil
	case *List:
		return len(x.Items), nil
	case *Dict:
		return x.Len(), nil
	case *Undefined:
		return 0, nil
	case *loopContext:
		return x.length()
	}
	return 0, typeErr("object of type '%s' has no len()", typeName(v))
}

// sliceIndices is PySlice_GetIndicesEx: it resolves optional start, stop and
// step against a sequence of n items.
func sliceIndices(start, stop, step Value, n int) (lo, hi, st int, err error) {
	get := func(v Value, def int) (int, error) {
		if v == nil {
			return def, nil
		}
		if !isIntLike(v) {
			return 0, typeErr("slice indices must be integers or None or have an __index__ method")
		}
		i, ok := asInt64(v)
		if !ok {
			if toBig(v).Sign() < 0 {
				return math.MinInt32, nil
			}
			return math.MaxInt32, nil
		}
		if i > math.MaxInt32 {
			i = math.MaxInt32
		}
		if i < math.MinInt32 {
			i = math.MinInt32
		}
		return int(i), nil
	}
	st, err = get(step, 1)
	if err != nil {
		return
	}
	if st == 0 {
		return 0, 0, 0, newErr("ValueError", "slice step cannot be zero")
	}
	var defLo, defHi int
	if st > 0 {
		defLo, defHi = 0, n
	} else {
		defLo, defHi = n-1, -1
	}
	adjust := func(i int, def int, isNone bool) int {
		if isNone {
			return def
		}
		if i < 0 {
			i += n
			if i < 0 {
				if st < 0 {
					return -1
				}
				return 0
			}
		} else if i >= n {
			if st < 0 {
				return n - 1
			}
			return n
		}
		return i
	}
	if lo, err = get(start, defLo); err != nil {
		return
	}
	if hi, err = get(stop, defHi); err != nil {
		return
	}
	lo = adjust(lo, defLo, start == nil)
	hi = adjust(hi, defHi, stop == nil)
	return lo, hi, st, nil
}

// sliceIndexList lists the indices a slice selects.
func sliceIndexList(lo, hi, st int) []int {
	var idx []int
	if st > 0 {
		for i := lo; i < hi; i += st {
			idx = append(idx, i)
		}
	} else {
		for i := lo; i > hi; i += st {
			idx = append(idx, i)
		}
	}
	return idx
}
