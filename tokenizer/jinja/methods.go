package jinja

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// unsafeUndefined is what the immutable sandbox returns for a mutating
// method: calling it raises SecurityError.
func unsafeUndefined(obj Value, name string) *Undefined {
	return &Undefined{
		hint:   "access to attribute " + strRepr(name) + " of " + strRepr(typeName(obj)) + " object is unsafe.",
		obj:    obj,
		hasObj: true,
		name:   name,
		exc:    "SecurityError",
	}
}

func dictMethod(d *Dict, name string) (Value, bool) {
	switch name {
	case "get":
		return method("get", func(args []Value, kw []kwarg) (Value, error) {
			if len(kw) > 0 {
				return nil, typeErr("dict.get() takes no keyword arguments")
			}
			if len(args) < 1 || len(args) > 2 {
				return nil, typeErr("get expected at most 2 arguments, got %d", len(args))
			}
			if _, ok := hashKey(args[0]); !ok {
				return nil, typeErr("unhashable type: '%s'", typeName(args[0]))
			}
			if v, ok := d.Get(args[0]); ok {
				return v, nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return nil, nil
		}), true
	case "keys", "values", "items":
		return method(name, func(args []Value, kw []kwarg) (Value, error) {
			if len(args)+len(kw) > 0 {
				return nil, typeErr("dict.%s() takes no arguments (%d given)", name, len(args)+len(kw))
			}
			return dictView(d, name), nil
		}), true
	case "copy":
		return method("copy", func(args []Value, kw []kwarg) (Value, error) { return d.copy(), nil }), true
	case "clear", "pop", "popitem", "setdefault", "update":
		return unsafeUndefined(d, name), true
	}
	return nil, false
}

// dictView returns d.keys(), d.values() or d.items().
func dictView(d *Dict, which string) *List {
	switch which {
	case "keys":
		return &List{Items: append([]Value(nil), d.keys...), kind: kindKeys}
	case "values":
		return &List{Items: append([]Value(nil), d.vals...), kind: kindValues}
	}
	items := make([]Value, len(d.keys))
	for i, k := range d.keys {
		items[i] = NewTuple(k, d.vals[i])
	}
	return &List{Items: items, kind: kindItems}
}

func listMethod(l *List, name string) (Value, bool) {
	if l.kind != kindList && l.kind != kindTuple {
		return nil, false
	}
	switch name {
	case "index":
		return method("index", func(args []Value, kw []kwarg) (Value, error) {
			if len(args) < 1 || len(kw) > 0 {
				return nil, typeErr("index expected at least 1 argument, got %d", len(args))
			}
			lo, hi := 0, len(l.Items)
			var err error
			if len(args) > 1 {
				if lo, hi, _, err = sliceIndices(args[1], orNone(args, 2), nil, len(l.Items)); err != nil {
					return nil, err
				}
			}
			for i := lo; i < hi; i++ {
				if equal(l.Items[i], args[0]) {
					return int64(i), nil
				}
			}
			if l.kind == kindTuple {
				return nil, newErr("ValueError", "tuple.index(x): x not in tuple")
			}
			return nil, newErr("ValueError", "%s is not in list", pyRepr(args[0]))
		}), true
	case "count":
		return method("count", func(args []Value, kw []kwarg) (Value, error) {
			if len(args) != 1 || len(kw) > 0 {
				return nil, typeErr("count() takes exactly one argument (%d given)", len(args))
			}
			n := int64(0)
			for _, it := range l.Items {
				if equal(it, args[0]) {
					n++
				}
			}
			return n, nil
		}), true
	case "copy":
		if l.kind == kindList {
			return method("copy", func([]Value, []kwarg) (Value, error) {
				return NewList(append([]Value(nil), l.Items...)...), nil
			}), true
		}
	case "append", "clear", "pop", "reverse", "insert", "sort", "extend", "remove":
		if l.kind == kindList {
			return unsafeUndefined(l, name), true
		}
	}
	return nil, false
}

func orNone(args []Value, i int) Value {
	if i < len(args) {
		return args[i]
	}
	return nil
}

// strMethod returns the bound str method name of s.
func strMethod(s string, name string) (Value, bool) {
	m := func(params []string, fn func(a []Value) (Value, error)) (Value, bool) {
		return method(name, func(args []Value, kw []kwarg) (Value, error) {
			a, err := bind(name, params, args, kw)
			if err != nil {
				return nil, err
			}
			return fn(a)
		}), true
	}
	switch name {
	case "strip", "lstrip", "rstrip":
		return m([]string{"chars="}, func(a []Value) (Value, error) {
			chars := orDefault(a[0], nil)
			if chars != nil {
				if _, ok := chars.(string); !ok {
					return nil, typeErr("%s arg must be None or str", name)
				}
			}
			return pyStrip(s, chars, name), nil
		})
	case "split", "rsplit":
		return m([]string{"sep=", "maxsplit="}, func(a []Value) (Value, error) {
			sep := orDefault(a[0], nil)
			maxsplit, err := argInt(orDefault(a[1], int64(-1)))
			if err != nil {
				return nil, err
			}
			var parts []string
			if sep == nil {
				parts = splitWhitespace(s, maxsplit, name == "rsplit")
			} else {
				sp, ok := sep.(string)
				if !ok {
					return nil, typeErr("must be str or None, not %s", typeName(sep))
				}
				if sp == "" {
					return nil, newErr("ValueError", "empty separator")
				}
				if name == "rsplit" {
					parts = rsplitSep(s, sp, maxsplit)
				} else if maxsplit < 0 {
					parts = strings.Split(s, sp)
				} else {
					parts = strings.SplitN(s, sp, maxsplit+1)
				}
			}
			return strList(parts), nil
		})
	case "splitlines":
		return m([]string{"keepends="}, func(a []Value) (Value, error) {
			return strList(splitLines(s, truthy(orDefault(a[0], false)))), nil
		})
	case "startswith", "endswith":
		return m([]string{"prefix", "start=", "end="}, func(a []Value) (Value, error) {
			sub := s
			if a[1] != missing || a[2] != missing {
				rs := []rune(s)
				lo, hi, _, err := sliceIndices(orDefault(a[1], nil), orDefault(a[2], nil), nil, len(rs))
				if err != nil {
					return nil, err
				}
				if lo > hi {
					return false, nil
				}
				sub = string(rs[lo:hi])
			}
			var cands []Value
			switch p := a[0].(type) {
			case string:
				cands = []Value{p}
			case *List:
				if p.kind != kindTuple {
					return nil, typeErr("%s first arg must be str or a tuple of str, not %s", name, typeName(p))
				}
				cands = p.Items
			default:
				return nil, typeErr("%s first arg must be str or a tuple of str, not %s", name, typeName(p))
			}
			for _, c := range cands {
				cs, ok := c.(string)
				if !ok {
					return nil, typeErr("tuple for %s must only contain str, not %s", name, typeName(c))
				}
				if (name == "startswith" && strings.HasPrefix(sub, cs)) || (name == "endswith" && strings.HasSuffix(sub, cs)) {
					return true, nil
				}
			}
			return false, nil
		})
	case "upper":
		return m(nil, func([]Value) (Value, error) { return pyUpper(s), nil })
	case "lower":
		return m(nil, func([]Value) (Value, error) { return pyLower(s), nil })
	case "casefold":
		return m(nil, func([]Value) (Value, error) { return strings.ReplaceAll(pyLower(s), "ß", "ss"), nil })
	case "title":
		return m(nil, func([]Value) (Value, error) { return pyTitle(s), nil })
	case "capitalize":
		return m(nil, func([]Value) (Value, error) { return pyCapitalize(s), nil })
	case "swapcase":
		return m(nil, func([]Value) (Value, error) {
			var b strings.Builder
			for _, r := range s {
				switch {
				case unicode.IsUpper(r):
					b.WriteString(pyLower(string(r)))
				case unicode.IsLower(r):
					b.WriteString(pyUpper(string(r)))
				default:
					b.WriteRune(r)
				}
			}
			return b.String(), nil
		})
	case "replace":
		return m([]string{"old", "new", "count="}, func(a []Value) (Value, error) {
			old, err := argStr("replace", a[0])
			if err != nil {
				return nil, err
			}
			nw, err := argStr("replace", a[1])
			if err != nil {
				return nil, err
			}
			n, err := argInt(orDefault(a[2], int64(-1)))
			if err != nil {
				return nil, err
			}
			return pyReplace(s, old, nw, n), nil
		})
	case "find", "rfind", "index", "rindex", "count":
		return m([]string{"sub", "start=", "end="}, func(a []Value) (Value, error) {
			sub, ok := a[0].(string)
			if !ok {
				return nil, typeErr("must be str, not %s", typeName(a[0]))
			}
			rs := []rune(s)
			lo, hi, _, err := sliceIndices(orDefault(a[1], nil), orDefault(a[2], nil), nil, len(rs))
			if err != nil {
				return nil, err
			}
			if lo > hi {
				if name == "count" {
					return int64(0), nil
				}
				if name == "index" || name == "rindex" {
					return nil, newErr("ValueError", "substring not found")
				}
				return int64(-1), nil
			}
			hay := string(rs[lo:hi])
			if name == "count" {
				if sub == "" {
					return int64(hi - lo + 1), nil
				}
				return int64(strings.Count(hay, sub)), nil
			}
			var at int
			if name == "find" || name == "index" {
				at = strings.Index(hay, sub)
			} else {
				at = strings.LastIndex(hay, sub)
			}
			if at < 0 {
				if name == "index" || name == "rindex" {
					return nil, newErr("ValueError", "substring not found")
				}
				return int64(-1), nil
			}
			return int64(lo + utf8.RuneCountInString(hay[:at])), nil
		})
	case "join":
		return m([]string{"iterable"}, func(a []Value) (Value, error) {
			items, err := iterate(a[0])
			if err != nil {
				return nil, typeErr("can only join an iterable")
			}
			parts := make([]string, len(items))
			for i, it := range items {
				p, ok := it.(string)
				if !ok {
					return nil, typeErr("sequence item %d: expected str instance, %s found", i, typeName(it))
				}
				parts[i] = p
			}
			return strings.Join(parts, s), nil
		})
	case "format":
		return method("format", func(args []Value, kw []kwarg) (Value, error) { return strFormat(s, args, kw) }), true
	case "format_map":
		return method("format_map", func(args []Value, kw []kwarg) (Value, error) {
			if len(kw) > 0 {
				return nil, typeErr("format_map() takes no keyword arguments")
			}
			if len(args) != 1 {
				return nil, typeErr("format_map() takes exactly one argument (%d given)", len(args))
			}
			d, ok := args[0].(*Dict)
			if !ok {
				return nil, typeErr("format_map() argument must be a mapping")
			}
			var kws []kwarg
			for i, k := range d.keys {
				if ks, ok := k.(string); ok {
					kws = append(kws, kwarg{ks, d.vals[i]})
				}
			}
			return strFormat(s, nil, kws)
		}), true
	case "isdigit", "isdecimal", "isnumeric", "isalpha", "isalnum", "isspace", "islower", "isupper", "istitle", "isidentifier", "isascii":
		return m(nil, func([]Value) (Value, error) { return strPredicate(s, name), nil })
	case "center", "ljust", "rjust":
		return m([]string{"width", "fillchar="}, func(a []Value) (Value, error) {
			w, err := argInt(a[0])
			if err != nil {
				return nil, err
			}
			fill := " "
			if a[1] != missing {
				f, ok := a[1].(string)
				if !ok || utf8.RuneCountInString(f) != 1 {
					return nil, typeErr("The fill character must be exactly one character long")
				}
				fill = f
			}
			return pad(s, w, fill, name), nil
		})
	case "zfill":
		return m([]string{"width"}, func(a []Value) (Value, error) {
			w, err := argInt(a[0])
			if err != nil {
				return nil, err
			}
			n := utf8.RuneCountInString(s)
			if n >= w {
				return s, nil
			}
			zeros := strings.Repeat("0", w-n)
			if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
				return s[:1] + zeros + s[1:], nil
			}
			return zeros + s, nil
		})
	case "partition", "rpartition":
		return m([]string{"sep"}, func(a []Value) (Value, error) {
			sep, err := argStr(name, a[0])
			if err != nil {
				return nil, err
			}
			if sep == "" {
				return nil, newErr("ValueError", "empty separator")
			}
			var i int
			if name == "partition" {
				i = strings.Index(s, sep)
			} else {
				i = strings.LastIndex(s, sep)
			}
			if i < 0 {
				if name == "partition" {
					return NewTuple(s, "", ""), nil
				}
				return NewTuple("", "", s), nil
			}
			return NewTuple(s[:i], sep, s[i+len(sep):]), nil
		})
	case "removeprefix", "removesuffix":
		return m([]string{"affix"}, func(a []Value) (Value, error) {
			x, err := argStr(name, a[0])
			if err != nil {
				return nil, err
			}
			if name == "removeprefix" {
				return strings.TrimPrefix(s, x), nil
			}
			return strings.TrimSuffix(s, x), nil
		})
	}
	return nil, false
}

func strList(parts []string) *List {
	items := make([]Value, len(parts))
	for i, p := range parts {
		items[i] = p
	}
	return NewList(items...)
}

// pyStrip is str.strip/lstrip/rstrip with optional chars (None: Unicode
// whitespace as Python defines it).
func pyStrip(s string, chars Value, which string) string {
	cut := pyIsSpace
	if cs, ok := chars.(string); ok {
		cut = func(r rune) bool { return strings.ContainsRune(cs, r) }
	}
	if which != "rstrip" {
		s = strings.TrimLeftFunc(s, cut)
	}
	if which != "lstrip" {
		s = strings.TrimRightFunc(s, cut)
	}
	return s
}

// splitWhitespace is str.split()/rsplit() without a separator.
func splitWhitespace(s string, maxsplit int, fromRight bool) []string {
	rs := []rune(s)
	var out []string
	if !fromRight {
		i := 0
		for {
			for i < len(rs) && pyIsSpace(rs[i]) {
				i++
			}
			if i >= len(rs) {
				break
			}
			if maxsplit >= 0 && len(out) == maxsplit {
				out = append(out, string(rs[i:]))
				break
			}
			j := i
			for j < len(rs) && !pyIsSpace(rs[j]) {
				j++
			}
			out = append(out, string(rs[i:j]))
			i = j
		}
		return out
	}
	i := len(rs)
	for {
		for i > 0 && pyIsSpace(rs[i-1]) {
			i--
		}
		if i <= 0 {
			break
		}
		if maxsplit >= 0 && len(out) == maxsplit {
			out = append(out, string(rs[:i]))
			break
		}
		j := i
		for j > 0 && !pyIsSpace(rs[j-1]) {
			j--
		}
		out = append(out, string(rs[j:i]))
		i = j
	}
	for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
		out[l], out[r] = out[r], out[l]
	}
	return out
}

func rsplitSep(s, sep string, maxsplit int) []string {
	if maxsplit < 0 {
		return strings.Split(s, sep)
	}
	var out []string
	for maxsplit > 0 {
		i := strings.LastIndex(s, sep)
		if i < 0 {
			break
		}
		out = append(out, s[i+len(sep):])
		s = s[:i]
		maxsplit--
	}
	out = append(out, s)
	for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
		out[l], out[r] = out[r], out[l]
	}
	return out
}

// isLineBreak reports the characters str.splitlines splits on.
func isLineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

// splitLines is str.splitlines.
func splitLines(s string, keepends bool) []string {
	var out []string
	rs := []rune(s)
	start := 0
	for i := 0; i < len(rs); i++ {
		if !isLineBreak(rs[i]) {
			continue
		}
		end := i + 1
		if rs[i] == '\r' && i+1 < len(rs) && rs[i+1] == '\n' {
			end = i + 2
		}
		if keepends {
			out = append(out, string(rs[start:end]))
		} else {
			out = append(out, string(rs[start:i]))
		}
		start = end
		i = end - 1
	}
	if start < len(rs) {
		out = append(out, string(rs[start:]))
	}
	return out
}

// pyReplace is str.replace with Python's count and empty-old semantics.
func pyReplace(s, old, nw string, count int) string {
	if count < 0 {
		count = -1
	}
	if old == "" {
		rs := []rune(s)
		var b strings.Builder
		n := 0
		for i := 0; i <= len(rs); i++ {
			if count < 0 || n < count {
				b.WriteString(nw)
				n++
			}
			if i < len(rs) {
				b.WriteRune(rs[i])
			}
		}
		return b.String()
	}
	return strings.Replace(s, old, nw, count)
}

// specialUpper and specialLower are the unconditional multi-character case
// mappings of Unicode's SpecialCasing.txt that Go's per-rune mapping lacks.
var specialUpper = map[rune]string{
	'ß': "SS", 'ŉ': "ʼN", 'ǰ': "J̌", 'ΐ': "Ϊ́", 'ΰ': "Ϋ́", 'և': "ԵՒ",
	'ẖ': "H̱", 'ẗ': "T̈", 'ẘ': "W̊", 'ẙ': "Y̊", 'ẚ': "Aʾ",
	'ﬀ': "FF", 'ﬁ': "FI", 'ﬂ': "FL", 'ﬃ': "FFI", 'ﬄ': "FFL", 'ﬅ': "ST", 'ﬆ': "ST",
	'ﬓ': "ՄՆ", 'ﬔ': "ՄԵ", 'ﬕ': "ՄԻ", 'ﬖ': "ՎՆ", 'ﬗ': "ՄԽ",
}

var specialLower = map[rune]string{'İ': "i̇"}

// specialTitle holds the multi-character titlecase mappings (first letter
// of a word) for the same characters.
var specialTitle = map[rune]string{
	'ß': "Ss", 'ŉ': "ʼN", 'ǰ': "J̌", 'ﬀ': "Ff", 'ﬁ': "Fi", 'ﬂ': "Fl", 'ﬃ': "Ffi", 'ﬄ': "Ffl", 'ﬅ': "St", 'ﬆ': "St",
	'և': "Եւ", 'ﬓ': "Մն", 'ﬔ': "Մե", 'ﬕ': "Մի", 'ﬖ': "Վն", 'ﬗ': "Մխ",
}

func pyUpper(s string) string {
	var b strings.Builder
	for _, r := range s {
		if m, ok := specialUpper[r]; ok {
			b.WriteString(m)
		} else {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

func pyLower(s string) string {
	var b strings.Builder
	for _, r := range s {
		if m, ok := specialLower[r]; ok {
			b.WriteString(m)
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func pyTitleRune(r rune) string {
	if m, ok := specialTitle[r]; ok {
		return m
	}
	return string(unicode.ToTitle(r))
}

func isCased(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }

// pyTitle is Python's str.title(): a cased character following a cased
// character is lowercased, any other is titlecased.
func pyTitle(s string) string {
	var b strings.Builder
	prevCased := false
	for _, r := range s {
		if prevCased {
			b.WriteString(pyLower(string(r)))
		} else {
			b.WriteString(pyTitleRune(r))
		}
		prevCased = isCased(r)
	}
	return b.String()
}

// pyCapitalize is Python 3.8+ str.capitalize(): the first character
// titlecased, the rest lowercased.
func pyCapitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return pyTitleRune(r) + pyLower(s[n:])
}

func strPredicate(s, name string) bool {
	if s == "" {
		return name == "isascii"
	}
	all := func(f func(rune) bool) bool {
		for _, r := range s {
			if !f(r) {
				return false
			}
		}
		return true
	}
	switch name {
	case "isdigit", "isdecimal":
		return all(unicode.IsDigit)
	case "isnumeric":
		return all(unicode.IsNumber)
	case "isalpha":
		return all(unicode.IsLetter)
	case "isalnum":
		return all(func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) })
	case "isspace":
		return all(pyIsSpace)
	case "isascii":
		return all(func(r rune) bool { return r < 0x80 })
	case "isidentifier":
		for i, r := range s {
			if !(r == '_' || unicode.IsLetter(r) || (i > 0 && (unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)))) {
				return false
			}
		}
		return true
	case "islower", "isupper":
		cased := false
		for _, r := range s {
			if unicode.IsUpper(r) || unicode.IsTitle(r) {
				if name == "islower" {
					return false
				}
				cased = true
			} else if unicode.IsLower(r) {
				if name == "isupper" {
					return false
				}
				cased = true
			}
		}
		return cased
	case "istitle":
		cased, prev := false, false
		for _, r := range s {
			switch {
			case unicode.IsUpper(r) || unicode.IsTitle(r):
				if prev {
					return false
				}
				prev, cased = true, true
			case unicode.IsLower(r):
				if !prev {
					return false
				}
				prev, cased = true, true
			default:
				prev = false
			}
		}
		return cased
	}
	return false
}

// pad is str.center/ljust/rjust.
func pad(s string, width int, fill, how string) string {
	n := utf8.RuneCountInString(s)
	if width <= n {
		return s
	}
	total := width - n
	var left int
	switch how {
	case "ljust":
		left = 0
	case "rjust":
		left = total
	default:
		left = total / 2
		if total%2 == 1 && width%2 == 1 {
			left++
		}
	}
	return strings.Repeat(fill, left) + s + strings.Repeat(fill, total-left)
}
