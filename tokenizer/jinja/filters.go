package jinja

import (
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// filterFunc implements one filter: v is the filtered value.
type filterFunc func(st *state, v Value, args []Value, kw []kwarg) (Value, error)

// filters is the filter table (Jinja 3.1's builtins, tojson as transformers
// overrides it).
var filters map[string]filterFunc

func init() {
	filters = map[string]filterFunc{
		"abs":         filterAbs,
		"attr":        filterAttr,
		"batch":       filterBatch,
		"capitalize":  strFilter(pyCapitalize),
		"center":      filterCenter,
		"count":       filterLength,
		"d":           filterDefault,
		"default":     filterDefault,
		"dictsort":    filterDictsort,
		"e":           filterEscape,
		"escape":      filterEscape,
		"first":       filterFirst,
		"float":       filterFloat,
		"forceescape": filterEscape,
		"format":      filterFormat,
		"groupby":     filterGroupby,
		"indent":      filterIndent,
		"int":         filterInt,
		"items":       filterItems,
		"join":        filterJoin,
		"last":        filterLast,
		"length":      filterLength,
		"list":        filterList,
		"lower":       strFilter(pyLower),
		"map":         filterMap,
		"max":         minMax("max"),
		"min":         minMax("min"),
		"reject":      selectFilter(false, false),
		"rejectattr":  selectFilter(false, true),
		"replace":     filterReplace,
		"reverse":     filterReverse,
		"round":       filterRound,
		"safe":        strFilter(func(s string) string { return s }),
		"select":      selectFilter(true, false),
		"selectattr":  selectFilter(true, true),
		"slice":       filterSlice,
		"sort":        filterSort,
		"string":      strFilter(func(s string) string { return s }),
		"sum":         filterSum,
		"title":       strFilter(jinjaTitle),
		"tojson":      tojsonFilter,
		"trim":        filterTrim,
		"truncate":    filterTruncate,
		"unique":      filterUnique,
		"upper":       strFilter(pyUpper),
		"wordcount":   filterWordcount,
	}
}

// strFilter adapts a str -> str function that takes no arguments; the value
// is stringified first (soft_str).
func strFilter(f func(string) string) filterFunc {
	return func(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
		if len(args)+len(kw) > 0 {
			return nil, typeErr("filter takes no arguments")
		}
		return f(pyStr(v)), nil
	}
}

// jinjaTitle is Jinja's title filter: words start after runs of
// whitespace, '-', '(', '{', '[' or '<' (not after any uncased character,
// unlike str.title()).
func jinjaTitle(s string) string {
	isSep := func(r rune) bool { return pyIsSpace(r) || strings.ContainsRune("-({[<", r) }
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); {
		j := i
		sep := isSep(rs[i])
		for j < len(rs) && isSep(rs[j]) == sep {
			j++
		}
		b.WriteString(pyUpper(string(rs[i])))
		b.WriteString(pyLower(string(rs[i+1 : j])))
		i = j
	}
	return b.String()
}

func filterAbs(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	switch x := v.(type) {
	case float64:
		return math.Abs(x), nil
	case bool, int64, *big.Int:
		return normInt(new(big.Int).Abs(toBig(x))), nil
	}
	return nil, typeErr("bad operand type for abs(): '%s'", typeName(v))
}

func filterAttr(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("attr", []string{"name"}, args, kw)
	if err != nil {
		return nil, err
	}
	if u, ok := v.(*Undefined); ok {
		return nil, u.fail()
	}
	name, ok := a[0].(string)
	if !ok {
		return nil, typeErr("attribute name must be string, not '%s'", typeName(a[0]))
	}
	if r, ok := attribute(v, name); ok {
		return r, nil
	}
	return undefinedOf(v, name), nil
}

func filterBatch(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("batch", []string{"linecount", "fill_with="}, args, kw)
	if err != nil {
		return nil, err
	}
	n, err := argInt(a[0])
	if err != nil {
		return nil, err
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	fill := orDefault(a[1], nil)
	var out []Value
	var tmp []Value
	for _, it := range items {
		if len(tmp) == n {
			out = append(out, NewList(tmp...))
			tmp = nil
		}
		tmp = append(tmp, it)
	}
	if len(tmp) > 0 {
		if fill != nil {
			for len(tmp) < n {
				tmp = append(tmp, fill)
			}
		}
		out = append(out, NewList(tmp...))
	}
	return &generator{items: out, name: "do_batch"}, nil
}

func filterCenter(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("center", []string{"width="}, args, kw)
	if err != nil {
		return nil, err
	}
	w, err := argInt(orDefault(a[0], int64(80)))
	if err != nil {
		return nil, err
	}
	return pad(pyStr(v), w, " ", "center"), nil
}

func filterLength(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	n, err := length(v)
	return int64(n), err
}

func filterDefault(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("default", []string{"default_value=", "boolean="}, args, kw)
	if err != nil {
		return nil, err
	}
	_, undef := v.(*Undefined)
	if undef || (truthy(orDefault(a[1], false)) && !truthy(v)) {
		return orDefault(a[0], ""), nil
	}
	return v, nil
}

// ignoreCase lowercases strings for case-insensitive comparisons.
func ignoreCase(v Value) Value {
	if s, ok := v.(string); ok {
		return pyLower(s)
	}
	return v
}

// sortValues sorts items stably by key(item), as Python's sorted does.
func sortValues(items []Value, key func(Value) (Value, error), reverse bool) ([]Value, error) {
	keys := make([]Value, len(items))
	for i, it := range items {
		k, err := key(it)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	var err error
	sort.SliceStable(idx, func(i, j int) bool {
		a, b := keys[idx[i]], keys[idx[j]]
		if reverse {
			a, b = b, a
		}
		if u := undefinedOperand(a, b); u != nil {
			if err == nil {
				err = u
			}
			return false
		}
		c, ok, e := order(a, b, "<")
		if e != nil && err == nil {
			err = e
		}
		return ok && c < 0
	})
	if err != nil {
		return nil, err
	}
	out := make([]Value, len(items))
	for i, j := range idx {
		out[i] = items[j]
	}
	return out, nil
}

func filterDictsort(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("dictsort", []string{"case_sensitive=", "by=", "reverse="}, args, kw)
	if err != nil {
		return nil, err
	}
	d, ok := v.(*Dict)
	if !ok {
		return nil, newErr("AttributeError", "'%s' object has no attribute 'items'", typeName(v))
	}
	pos := 0
	switch orDefault(a[1], "key") {
	case "key":
	case "value":
		pos = 1
	default:
		return nil, newErr("FilterArgumentError", `You can only sort by either "key" or "value"`)
	}
	cs := truthy(orDefault(a[0], false))
	pairs := dictView(d, "items").Items
	out, err := sortValues(pairs, func(p Value) (Value, error) {
		k := p.(*List).Items[pos]
		if !cs {
			k = ignoreCase(k)
		}
		return k, nil
	}, truthy(orDefault(a[2], false)))
	if err != nil {
		return nil, err
	}
	return NewList(out...), nil
}

// htmlEscape is markupsafe.escape on a plain string.
func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&#39;", `"`, "&#34;").Replace(s)
}

func filterEscape(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	return htmlEscape(pyStr(v)), nil
}

func filterFirst(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	if g, ok := v.(*generator); ok {
		if g.pos < len(g.items) {
			g.pos++
			return g.items[g.pos-1], nil
		}
		return undefinedHint("No first item, sequence was empty."), nil
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return undefinedHint("No first item, sequence was empty."), nil
	}
	return items[0], nil
}

func filterLast(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	switch v.(type) {
	case *generator, *loopContext:
		return nil, typeErr("'%s' object is not reversible", typeName(v))
	}
	items, err := iterate(v)
	if err != nil {
		return nil, typeErr("'%s' object is not reversible", typeName(v))
	}
	if len(items) == 0 {
		return undefinedHint("No last item, sequence was empty."), nil
	}
	return items[len(items)-1], nil
}

// pyFloatFromString is float(str): Python float syntax with surrounding
// whitespace and digit underscores allowed.
func pyFloatFromString(s string) (float64, bool) {
	t := strings.TrimFunc(s, pyIsSpace)
	low := strings.ToLower(strings.TrimLeft(t, "+-"))
	switch low {
	case "inf", "infinity", "nan":
		f, _ := strconv.ParseFloat(t, 64)
		return f, true
	}
	if strings.Contains(t, "__") || strings.HasPrefix(low, "_") || strings.HasSuffix(t, "_") || strings.ContainsAny(low, "xp") {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	return f, true
}

func filterFloat(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("float", []string{"default="}, args, kw)
	if err != nil {
		return nil, err
	}
	def := orDefault(a[0], 0.0)
	switch x := v.(type) {
	case *Undefined:
		return nil, x.fail()
	case string:
		if f, ok := pyFloatFromString(x); ok {
			return f, nil
		}
		return def, nil
	}
	if f, ok := toFloat(v); ok {
		return f, nil
	}
	return def, nil
}

func filterInt(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("int", []string{"default=", "base="}, args, kw)
	if err != nil {
		return nil, err
	}
	def := orDefault(a[0], int64(0))
	base, err := argInt(orDefault(a[1], int64(10)))
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case *Undefined:
		return nil, x.fail()
	case string:
		if n, ok := pyIntFromString(x, base); ok {
			return n, nil
		}
		if f, ok := pyFloatFromString(x); ok && !math.IsInf(f, 0) && !math.IsNaN(f) {
			b, _ := big.NewFloat(math.Trunc(f)).Int(nil)
			return normInt(b), nil
		}
		return def, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return def, nil
		}
		b, _ := big.NewFloat(math.Trunc(x)).Int(nil)
		return normInt(b), nil
	case bool, int64, *big.Int:
		return normInt(toBig(x)), nil
	}
	return def, nil
}

// pyIntFromString is int(s, base).
func pyIntFromString(s string, base int) (Value, bool) {
	if base != 0 && (base < 2 || base > 36) {
		return nil, false // ValueError: base must be >= 2 and <= 36, or 0
	}
	t := strings.TrimFunc(s, pyIsSpace)
	neg := false
	if strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
		neg = t[0] == '-'
		t = t[1:]
	}
	low := strings.ToLower(t)
	if base == 0 || base == 16 || base == 8 || base == 2 {
		for p, b := range map[string]int{"0x": 16, "0o": 8, "0b": 2} {
			if strings.HasPrefix(low, p) && (base == 0 || base == b) {
				t, base = t[2:], b
				if strings.HasPrefix(t, "_") {
					t = t[1:]
				}
				break
			}
		}
		if base == 0 {
			base = 10
		}
	}
	if t == "" || strings.HasPrefix(t, "_") || strings.HasSuffix(t, "_") || strings.Contains(t, "__") {
		return nil, false
	}
	b, ok := new(big.Int).SetString(strings.ReplaceAll(t, "_", ""), base)
	if !ok {
		return nil, false
	}
	if neg {
		b.Neg(b)
	}
	return normInt(b), true
}

func filterFormat(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	if len(args) > 0 && len(kw) > 0 {
		return nil, newErr("FilterArgumentError", "can't handle positional and keyword arguments at the same time")
	}
	if len(kw) > 0 {
		d := NewDict()
		for _, k := range kw {
			d.Set(k.name, k.val)
		}
		return percentFormat(pyStr(v), d)
	}
	return percentFormat(pyStr(v), NewTuple(args...))
}

// attrGetter is make_attrgetter: a dotted path of attributes/items, digits
// as integer indices.
func attrGetter(attribute Value, postprocess func(Value) Value, def Value) func(Value) (Value, error) {
	var parts []Value
	switch a := attribute.(type) {
	case nil:
	case string:
		for _, p := range strings.Split(a, ".") {
			if p != "" && strings.TrimFunc(p, unicode.IsDigit) == "" {
				n, _ := strconv.ParseInt(p, 10, 64)
				parts = append(parts, n)
			} else {
				parts = append(parts, p)
			}
		}
	default:
		parts = []Value{a}
	}
	return func(it Value) (Value, error) {
		for _, p := range parts {
			var err error
			if it, err = getitem(it, p); err != nil {
				return nil, err
			}
			if _, undef := it.(*Undefined); undef && def != nil {
				it = def
			}
		}
		if postprocess != nil {
			it = postprocess(it)
		}
		return it, nil
	}
}

func filterGroupby(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("groupby", []string{"attribute", "default=", "case_sensitive="}, args, kw)
	if err != nil {
		return nil, err
	}
	def := orDefault(a[1], nil)
	cs := truthy(orDefault(a[2], false))
	var post func(Value) Value
	if !cs {
		post = ignoreCase
	}
	key := attrGetter(a[0], post, def)
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	sorted, err := sortValues(items, key, false)
	if err != nil {
		return nil, err
	}
	out := []Value{}
	var lastKey Value
	var group []Value
	flush := func() error {
		if group == nil {
			return nil
		}
		k := lastKey
		if !cs {
			var err error
			if k, err = attrGetter(a[0], nil, def)(group[0]); err != nil {
				return err
			}
		}
		out = append(out, &List{Items: []Value{k, NewList(group...)}, kind: kindTuple})
		return nil
	}
	for _, it := range sorted {
		k, err := key(it)
		if err != nil {
			return nil, err
		}
		if group != nil && equal(k, lastKey) {
			group = append(group, it)
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		lastKey, group = k, []Value{it}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return NewList(out...), nil
}

func filterIndent(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("indent", []string{"width=", "first=", "blank="}, args, kw)
	if err != nil {
		return nil, err
	}
	s, ok := v.(string)
	if !ok {
		if _, undef := v.(*Undefined); !undef {
			return nil, typeErr("unsupported operand type(s) for +=: '%s' and 'str'", typeName(v))
		}
		s = ""
	}
	var ind string
	switch w := orDefault(a[0], int64(4)).(type) {
	case string:
		ind = w
	default:
		n, err := argInt(w)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			ind = strings.Repeat(" ", n)
		}
	}
	s += "\n"
	lines := splitLines(s, false)
	var rv string
	if truthy(orDefault(a[2], false)) {
		rv = strings.Join(lines, "\n"+ind)
	} else {
		rv = lines[0]
		if len(lines) > 1 {
			rest := make([]string, len(lines)-1)
			for i, l := range lines[1:] {
				if l != "" {
					l = ind + l
				}
				rest[i] = l
			}
			rv += "\n" + strings.Join(rest, "\n")
		}
	}
	if truthy(orDefault(a[1], false)) {
		rv = ind + rv
	}
	return rv, nil
}

func filterItems(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	switch d := v.(type) {
	case *Undefined:
		return &generator{name: "do_items"}, nil
	case *Dict:
		return &generator{items: dictView(d, "items").Items, name: "do_items"}, nil
	}
	return nil, typeErr("Can only get item pairs from a mapping.")
}

func filterJoin(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("join", []string{"d=", "attribute="}, args, kw)
	if err != nil {
		return nil, err
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	if attr := orDefault(a[1], nil); attr != nil {
		get := attrGetter(attr, nil, nil)
		mapped := make([]Value, len(items))
		for i, it := range items {
			if mapped[i], err = get(it); err != nil {
				return nil, err
			}
		}
		items = mapped
	}
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = pyStr(it)
	}
	return strings.Join(parts, pyStr(orDefault(a[0], ""))), nil
}

func filterList(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	return NewList(append([]Value(nil), items...)...), nil
}

func filterMap(st *state, v Value, args []Value, kw []kwarg) (Value, error) {
	if !truthy(v) {
		return &generator{name: "sync_do_map"}, nil
	}
	var fn func(Value) (Value, error)
	attrIdx := -1
	for i, k := range kw {
		if k.name == "attribute" {
			attrIdx = i
		}
	}
	if len(args) == 0 && attrIdx >= 0 {
		var def Value
		for _, k := range kw {
			switch k.name {
			case "attribute":
			case "default":
				def = k.val
			default:
				return nil, newErr("FilterArgumentError", "Unexpected keyword argument %s", strRepr(k.name))
			}
		}
		fn = attrGetter(kw[attrIdx].val, nil, def)
	} else {
		if len(args) == 0 {
			return nil, newErr("FilterArgumentError", "map requires a filter argument")
		}
		name, _ := args[0].(string)
		f, ok := filters[name]
		if !ok {
			return nil, newErr("TemplateRuntimeError", "No filter named %s.", strRepr(pyStr(args[0])))
		}
		rest := args[1:]
		fn = func(it Value) (Value, error) { return f(st, it, rest, kw) }
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	out := make([]Value, len(items))
	for i, it := range items {
		if out[i], err = fn(it); err != nil {
			return nil, err
		}
	}
	return &generator{items: out, name: "sync_do_map"}, nil
}

func minMax(which string) filterFunc {
	return func(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
		a, err := bind(which, []string{"case_sensitive=", "attribute="}, args, kw)
		if err != nil {
			return nil, err
		}
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return undefinedHint("No aggregated item, sequence was empty."), nil
		}
		var post func(Value) Value
		if !truthy(orDefault(a[0], false)) {
			post = ignoreCase
		}
		key := attrGetter(orDefault(a[1], nil), post, nil)
		best := items[0]
		bk, err := key(best)
		if err != nil {
			return nil, err
		}
		for _, it := range items[1:] {
			k, err := key(it)
			if err != nil {
				return nil, err
			}
			if err := undefinedOperand(k, bk); err != nil {
				return nil, err
			}
			c, ok, err := order(k, bk, map[string]string{"min": "<", "max": ">"}[which])
			if err != nil {
				return nil, err
			}
			if ok && ((which == "min" && c < 0) || (which == "max" && c > 0)) {
				best, bk = it, k
			}
		}
		return best, nil
	}
}

// selectFilter builds select/reject (attr: selectattr/rejectattr).
func selectFilter(keep, attr bool) filterFunc {
	return func(st *state, v Value, args []Value, kw []kwarg) (Value, error) {
		const name = "select_or_reject"
		if !truthy(v) {
			return &generator{name: name}, nil
		}
		trans := func(x Value) (Value, error) { return x, nil }
		off := 0
		if attr {
			if len(args) == 0 {
				return nil, newErr("FilterArgumentError", "Missing parameter for attribute name")
			}
			trans = attrGetter(args[0], nil, nil)
			off = 1
		}
		test := func(x Value) (bool, error) { return truthy(x), nil }
		if len(args) > off {
			tname, _ := args[off].(string)
			t, ok := tests[tname]
			if !ok {
				return nil, newErr("TemplateRuntimeError", "No test named %s.", strRepr(pyStr(args[off])))
			}
			rest := args[off+1:]
			test = func(x Value) (bool, error) {
				r, err := t(st, x, rest, kw)
				return truthy(r), err
			}
		}
		items, err := iterate(v)
		if err != nil {
			return nil, err
		}
		var out []Value
		for _, it := range items {
			x, err := trans(it)
			if err != nil {
				return nil, err
			}
			ok, err := test(x)
			if err != nil {
				return nil, err
			}
			if ok == keep {
				out = append(out, it)
			}
		}
		return &generator{items: out, name: name}, nil
	}
}

func filterReplace(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("replace", []string{"old", "new", "count="}, args, kw)
	if err != nil {
		return nil, err
	}
	n := -1
	if c := orDefault(a[2], nil); c != nil {
		if n, err = argInt(c); err != nil {
			return nil, err
		}
	}
	return pyReplace(pyStr(v), pyStr(a[0]), pyStr(a[1]), n), nil
}

func filterReverse(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	if s, ok := v.(string); ok {
		rs := []rune(s)
		for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
			rs[i], rs[j] = rs[j], rs[i]
		}
		return string(rs), nil
	}
	items, err := iterate(v)
	if err != nil {
		return nil, newErr("FilterArgumentError", "argument must be iterable")
	}
	out := make([]Value, len(items))
	for i, it := range items {
		out[len(items)-1-i] = it
	}
	if _, ok := v.(*generator); ok {
		return NewList(out...), nil
	}
	return &generator{items: out, name: "reverseiterator"}, nil
}

func filterRound(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("round", []string{"precision=", "method="}, args, kw)
	if err != nil {
		return nil, err
	}
	prec, err := argInt(orDefault(a[0], int64(0)))
	if err != nil {
		return nil, err
	}
	methodName := orDefault(a[1], "common")
	switch methodName {
	case "common", "ceil", "floor":
	default:
		return nil, newErr("FilterArgumentError", "method must be common, ceil or floor")
	}
	if u, ok := v.(*Undefined); ok {
		return nil, u.fail()
	}
	if methodName == "common" {
		if isIntLike(v) {
			if prec >= 0 {
				return normInt(toBig(v)), nil
			}
			f, _ := toFloat(v)
			return int64(roundHalfEven(f, prec)), nil
		}
		f, ok := v.(float64)
		if !ok {
			return nil, typeErr("type %s doesn't define __round__ method", typeName(v))
		}
		return roundHalfEven(f, prec), nil
	}
	f, ok := toFloat(v)
	if !ok {
		return nil, typeErr("must be real number, not %s", typeName(v))
	}
	scale := math.Pow(10, float64(prec))
	if methodName == "ceil" {
		return math.Ceil(f*scale) / scale, nil
	}
	return math.Floor(f*scale) / scale, nil
}

// roundHalfEven is Python's round(f, ndigits) on the exact binary value.
func roundHalfEven(f float64, ndigits int) float64 {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return f
	}
	if ndigits >= 0 {
		r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', ndigits, 64), 64)
		return r
	}
	scale := math.Pow(10, float64(-ndigits))
	return math.RoundToEven(f/scale) * scale
}

func filterSlice(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("slice", []string{"slices", "fill_with="}, args, kw)
	if err != nil {
		return nil, err
	}
	n, err := argInt(a[0])
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, newErr("ZeroDivisionError", "integer division or modulo by zero")
	}
	seq, err := iterate(v)
	if err != nil {
		return nil, err
	}
	fill := orDefault(a[1], nil)
	per, extra := len(seq)/n, len(seq)%n
	offset := 0
	var out []Value
	for i := 0; i < n; i++ {
		start := offset + i*per
		if i < extra {
			offset++
		}
		end := offset + (i+1)*per
		tmp := append([]Value(nil), seq[start:end]...)
		if fill != nil && i >= extra {
			tmp = append(tmp, fill)
		}
		out = append(out, NewList(tmp...))
	}
	return &generator{items: out, name: "sync_do_slice"}, nil
}

func filterSort(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("sort", []string{"reverse=", "case_sensitive=", "attribute="}, args, kw)
	if err != nil {
		return nil, err
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	var post func(Value) Value
	if !truthy(orDefault(a[1], false)) {
		post = ignoreCase
	}
	attr := orDefault(a[2], nil)
	var attrs []Value
	if s, ok := attr.(string); ok {
		for _, p := range strings.Split(s, ",") {
			attrs = append(attrs, p)
		}
	} else {
		attrs = []Value{attr}
	}
	getters := make([]func(Value) (Value, error), len(attrs))
	for i, at := range attrs {
		getters[i] = attrGetter(at, post, nil)
	}
	key := func(it Value) (Value, error) {
		ks := make([]Value, len(getters))
		for i, g := range getters {
			k, err := g(it)
			if err != nil {
				return nil, err
			}
			ks[i] = k
		}
		return NewList(ks...), nil
	}
	out, err := sortValues(items, key, truthy(orDefault(a[0], false)))
	if err != nil {
		return nil, err
	}
	return NewList(out...), nil
}

func filterSum(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("sum", []string{"attribute=", "start="}, args, kw)
	if err != nil {
		return nil, err
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	get := attrGetter(orDefault(a[0], nil), nil, nil)
	total := orDefault(a[1], int64(0))
	if _, ok := total.(string); ok {
		return nil, typeErr("sum() can't sum strings [use ''.join(seq) instead]")
	}
	for _, it := range items {
		x, err := get(it)
		if err != nil {
			return nil, err
		}
		if total, err = arith("+", total, x); err != nil {
			return nil, err
		}
	}
	return total, nil
}

func filterTrim(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("trim", []string{"chars="}, args, kw)
	if err != nil {
		return nil, err
	}
	chars := orDefault(a[0], nil)
	if chars != nil {
		if _, ok := chars.(string); !ok {
			return nil, typeErr("strip arg must be None or str")
		}
	}
	return pyStrip(pyStr(v), chars, "strip"), nil
}

func filterTruncate(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("truncate", []string{"length=", "killwords=", "end=", "leeway="}, args, kw)
	if err != nil {
		return nil, err
	}
	n, err := argInt(orDefault(a[0], int64(255)))
	if err != nil {
		return nil, err
	}
	end := pyStr(orDefault(a[2], "..."))
	leeway, err := argInt(orDefault(a[3], int64(5)))
	if err != nil {
		return nil, err
	}
	endLen := utf8.RuneCountInString(end)
	if n < endLen {
		return nil, newErr("AssertionError", "expected length >= %d, got %d", endLen, n)
	}
	if leeway < 0 {
		return nil, newErr("AssertionError", "expected leeway >= 0, got %d", leeway)
	}
	s, ok := v.(string)
	if !ok {
		return nil, typeErr("object of type '%s' has no len()", typeName(v))
	}
	rs := []rune(s)
	if len(rs) <= n+leeway {
		return s, nil
	}
	cut := string(rs[:n-endLen])
	if truthy(orDefault(a[1], false)) {
		return cut + end, nil
	}
	if i := strings.LastIndex(cut, " "); i >= 0 {
		cut = cut[:i]
	}
	return cut + end, nil
}

func filterUnique(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("unique", []string{"case_sensitive=", "attribute="}, args, kw)
	if err != nil {
		return nil, err
	}
	var post func(Value) Value
	if !truthy(orDefault(a[0], false)) {
		post = ignoreCase
	}
	get := attrGetter(orDefault(a[1], nil), post, nil)
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	seen := map[hkey]bool{}
	var out []Value
	for _, it := range items {
		k, err := get(it)
		if err != nil {
			return nil, err
		}
		h, ok := hashKey(k)
		if !ok {
			return nil, typeErr("unhashable type: '%s'", typeName(k))
		}
		if !seen[h] {
			seen[h] = true
			out = append(out, it)
		}
	}
	return &generator{items: out, name: "sync_do_unique"}, nil
}

func filterWordcount(_ *state, v Value, args []Value, kw []kwarg) (Value, error) {
	n, in := 0, false
	for _, r := range pyStr(v) {
		w := r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)
		if w && !in {
			n++
		}
		in = w
	}
	return int64(n), nil
}
