package jinja

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// percentFormat is Python's printf-style str % args.
func percentFormat(format string, args Value) (Value, error) {
	var pos []Value
	var mapping *Dict
	switch a := args.(type) {
	case *List:
		if a.kind == kindTuple {
			pos = a.Items
		} else {
			pos = []Value{a}
		}
	case *Dict:
		mapping = a
		pos = []Value{a}
	default:
		pos = []Value{a}
	}
	next := 0
	take := func() (Value, error) {
		if next >= len(pos) {
			return nil, typeErr("not enough arguments for format string")
		}
		v := pos[next]
		next++
		return v, nil
	}
	usedMapping := false
	var b strings.Builder
	rs := []rune(format)
	for i := 0; i < len(rs); i++ {
		if rs[i] != '%' {
			b.WriteRune(rs[i])
			continue
		}
		i++
		if i >= len(rs) {
			return nil, newErr("ValueError", "incomplete format")
		}
		var arg Value
		haveArg := false
		if rs[i] == '(' {
			if mapping == nil {
				return nil, typeErr("format requires a mapping")
			}
			depth, j := 1, i+1
			for j < len(rs) && depth > 0 {
				if rs[j] == '(' {
					depth++
				} else if rs[j] == ')' {
					depth--
				}
				j++
			}
			if depth > 0 {
				return nil, newErr("ValueError", "incomplete format key")
			}
			key := string(rs[i+1 : j-1])
			v, ok := mapping.Get(key)
			if !ok {
				return nil, newErr("KeyError", "%s", strRepr(key))
			}
			arg, haveArg, usedMapping = v, true, true
			i = j
		}
		var sp fmtSpec
		for ; i < len(rs) && strings.ContainsRune("-+ #0", rs[i]); i++ {
			switch rs[i] {
			case '-':
				sp.align = '<'
			case '+':
				sp.sign = '+'
			case ' ':
				if sp.sign != '+' {
					sp.sign = ' '
				}
			case '#':
				sp.alt = true
			case '0':
				sp.zero = true
			}
		}
		readNum := func() (int, bool, error) {
			if i < len(rs) && rs[i] == '*' {
				i++
				v, err := take()
				if err != nil {
					return 0, false, err
				}
				n, ok := asInt64(v)
				if !ok {
					return 0, false, typeErr("* wants int")
				}
				return int(n), true, nil
			}
			start := i
			for i < len(rs) && rs[i] >= '0' && rs[i] <= '9' {
				i++
			}
			if i == start {
				return 0, false, nil
			}
			n, _ := strconv.Atoi(string(rs[start:i]))
			return n, true, nil
		}
		w, ok, err := readNum()
		if err != nil {
			return nil, err
		}
		if ok {
			if w < 0 {
				sp.align, w = '<', -w
			}
			sp.width = w
		}
		if i < len(rs) && rs[i] == '.' {
			i++
			p, _, err := readNum()
			if err != nil {
				return nil, err
			}
			sp.prec, sp.hasPrec = p, true
		}
		for i < len(rs) && strings.ContainsRune("hlL", rs[i]) {
			i++
		}
		if i >= len(rs) {
			return nil, newErr("ValueError", "incomplete format")
		}
		conv := rs[i]
		if conv == '%' {
			b.WriteByte('%')
			continue
		}
		if !haveArg {
			if arg, err = take(); err != nil {
				return nil, err
			}
		}
		var s string
		switch conv {
		case 's':
			s = pyStr(arg)
		case 'r', 'a':
			s = pyRepr(arg)
		case 'c':
			switch v := arg.(type) {
			case string:
				if utf8.RuneCountInString(v) != 1 {
					return nil, typeErr("%%c requires int or char")
				}
				s = v
			default:
				n, ok := asInt64(v)
				if !ok {
					return nil, typeErr("%%c requires int or char")
				}
				s = string(rune(n))
			}
		case 'd', 'i', 'u', 'x', 'X', 'o':
			n, err := intForFormat(arg, conv)
			if err != nil {
				return nil, err
			}
			sp.typ = map[rune]byte{'d': 'd', 'i': 'd', 'u': 'd', 'x': 'x', 'X': 'X', 'o': 'o'}[conv]
			if sp.align == 0 {
				sp.align = '>'
			}
			s = formatInt(n, &sp)
			if sp.hasPrec {
				s = zeroPadDigits(s, sp.prec)
			}
			s = zeroPadNumber(s, &sp)
		case 'e', 'E', 'f', 'F', 'g', 'G':
			f, ok := toFloat(arg)
			if !ok {
				return nil, typeErr("must be real number, not %s", typeName(arg))
			}
			sp.typ = byte(conv)
			if !sp.hasPrec {
				sp.prec, sp.hasPrec = 6, true
			}
			if sp.align == 0 {
				sp.align = '>'
			}
			s = formatFloat(f, &sp)
			s = zeroPadNumber(s, &sp)
		default:
			return nil, newErr("ValueError", "unsupported format character %s (0x%x) at index %d", strRepr(string(conv)), conv, i)
		}
		if sp.width > 0 {
			if sp.align == '<' {
				s = pad(s, sp.width, " ", "ljust")
			} else {
				s = pad(s, sp.width, " ", "rjust")
			}
		}
		b.WriteString(s)
	}
	if next < len(pos) && !usedMapping && mapping == nil {
		return nil, typeErr("not all arguments converted during string formatting")
	}
	return b.String(), nil
}

// zeroPadNumber applies printf's "0" flag: zeros after the sign and any
// 0x/0o prefix up to the width (ignored when left-aligned).
func zeroPadNumber(s string, sp *fmtSpec) string {
	if !sp.zero || sp.align == '<' || len(s) >= sp.width {
		return s
	}
	head := ""
	if s != "" && (s[0] == '-' || s[0] == '+' || s[0] == ' ') {
		head, s = s[:1], s[1:]
	}
	if len(s) > 1 && s[0] == '0' && strings.ContainsRune("xXob", rune(s[1])) {
		head, s = head+s[:2], s[2:]
	}
	return head + strings.Repeat("0", sp.width-len(head)-len(s)) + s
}

func zeroPadDigits(s string, prec int) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	for len(s) < prec {
		s = "0" + s
	}
	return sign + s
}

func intForFormat(arg Value, conv rune) (*big.Int, error) {
	if isIntLike(arg) {
		return toBig(arg), nil
	}
	if f, ok := arg.(float64); ok && (conv == 'd' || conv == 'i' || conv == 'u') {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, newErr("OverflowError", "cannot convert float infinity to integer")
		}
		b, _ := big.NewFloat(math.Trunc(f)).Int(nil)
		return b, nil
	}
	if conv == 'd' || conv == 'i' || conv == 'u' {
		return nil, typeErr("%%%c format: a real number is required, not %s", conv, typeName(arg))
	}
	return nil, typeErr("%%%c format: an integer is required, not %s", conv, typeName(arg))
}

// fmtSpec is a parsed format specification (str.format mini-language or
// printf-style).
type fmtSpec struct {
	fill     rune
	align    byte // < > ^ =
	sign     byte // + - space
	alt      bool
	zero     bool
	width    int
	grouping byte // , or _
	prec     int
	hasPrec  bool
	typ      byte
}

func parseFormatSpec(spec string) (fmtSpec, error) {
	var sp fmtSpec
	rs := []rune(spec)
	i := 0
	isAlign := func(r rune) bool { return r == '<' || r == '>' || r == '^' || r == '=' }
	if len(rs) >= 2 && isAlign(rs[1]) {
		sp.fill, sp.align = rs[0], byte(rs[1])
		i = 2
	} else if len(rs) >= 1 && isAlign(rs[0]) {
		sp.align = byte(rs[0])
		i = 1
	}
	if i < len(rs) && (rs[i] == '+' || rs[i] == '-' || rs[i] == ' ') {
		sp.sign = byte(rs[i])
		i++
	}
	if i < len(rs) && rs[i] == 'z' {
		i++
	}
	if i < len(rs) && rs[i] == '#' {
		sp.alt = true
		i++
	}
	if i < len(rs) && rs[i] == '0' {
		sp.zero = true
		i++
	}
	start := i
	for i < len(rs) && rs[i] >= '0' && rs[i] <= '9' {
		i++
	}
	if i > start {
		sp.width, _ = strconv.Atoi(string(rs[start:i]))
	}
	if i < len(rs) && (rs[i] == ',' || rs[i] == '_') {
		sp.grouping = byte(rs[i])
		i++
	}
	if i < len(rs) && rs[i] == '.' {
		i++
		start := i
		for i < len(rs) && rs[i] >= '0' && rs[i] <= '9' {
			i++
		}
		if i == start {
			return sp, newErr("ValueError", "Format specifier missing precision")
		}
		sp.prec, _ = strconv.Atoi(string(rs[start:i]))
		sp.hasPrec = true
	}
	if i < len(rs) {
		sp.typ = byte(rs[i])
		i++
	}
	if i < len(rs) {
		return sp, newErr("ValueError", "Invalid format specifier")
	}
	return sp, nil
}

// formatValue is format(v, spec) for str, int and float values.
func formatValue(v Value, spec string) (string, error) {
	sp, err := parseFormatSpec(spec)
	if err != nil {
		return "", err
	}
	var s string
	numeric := false
	switch x := v.(type) {
	case string:
		if sp.typ != 0 && sp.typ != 's' {
			return "", newErr("ValueError", "Unknown format code '%c' for object of type 'str'", sp.typ)
		}
		s = x
		if sp.hasPrec {
			rs := []rune(s)
			if sp.prec < len(rs) {
				s = string(rs[:sp.prec])
			}
		}
	case bool, int64, *big.Int:
		if b, ok := x.(bool); ok && sp.typ == 0 {
			s = pyStr(b)
			break
		}
		numeric = true
		switch sp.typ {
		case 'e', 'E', 'f', 'F', 'g', 'G', '%':
			f, _ := toFloat(x)
			s = formatFloat(f, &sp)
		case 0, 'd', 'n', 'b', 'o', 'x', 'X', 'c':
			if sp.typ == 'c' {
				n, _ := asInt64(x)
				s = string(rune(n))
				numeric = false
				break
			}
			s = formatInt(toBig(x), &sp)
		default:
			return "", newErr("ValueError", "Unknown format code '%c' for object of type 'int'", sp.typ)
		}
	case float64:
		numeric = true
		switch sp.typ {
		case 0, 'e', 'E', 'f', 'F', 'g', 'G', '%', 'n':
			s = formatFloat(x, &sp)
		default:
			return "", newErr("ValueError", "Unknown format code '%c' for object of type 'float'", sp.typ)
		}
	default:
		if spec != "" {
			return "", typeErr("unsupported format string passed to %s.__format__", typeName(v))
		}
		return pyStr(v), nil
	}
	return align(s, &sp, numeric), nil
}

func formatInt(n *big.Int, sp *fmtSpec) string {
	neg := n.Sign() < 0
	a := new(big.Int).Abs(n)
	var digits, prefix string
	switch sp.typ {
	case 'b':
		digits, prefix = a.Text(2), "0b"
	case 'o':
		digits, prefix = a.Text(8), "0o"
	case 'x':
		digits, prefix = a.Text(16), "0x"
	case 'X':
		digits, prefix = strings.ToUpper(a.Text(16)), "0X"
	default:
		digits = a.Text(10)
	}
	if sp.grouping != 0 {
		digits = group(digits, sp.grouping, 3)
	}
	if sp.alt {
		digits = prefix + digits
	}
	return signed(digits, neg, sp.sign)
}

func signed(s string, neg bool, sign byte) string {
	switch {
	case neg:
		return "-" + s
	case sign == '+':
		return "+" + s
	case sign == ' ':
		return " " + s
	}
	return s
}

func group(digits string, sep byte, n int) string {
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%n == 0 {
			b.WriteByte(sep)
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatFloat formats f per a spec with type e, f, g, %, or none.
func formatFloat(f float64, sp *fmtSpec) string {
	neg := math.Signbit(f) && !math.IsNaN(f)
	a := math.Abs(f)
	var s string
	prec := sp.prec
	switch {
	case math.IsInf(a, 0):
		s = "inf"
	case math.IsNaN(a):
		s = "nan"
	default:
		switch sp.typ {
		case 'e', 'E':
			if !sp.hasPrec {
				prec = 6
			}
			s = strconv.FormatFloat(a, 'e', prec, 64)
		case 'f', 'F':
			if !sp.hasPrec {
				prec = 6
			}
			s = strconv.FormatFloat(a, 'f', prec, 64)
		case '%':
			if !sp.hasPrec {
				prec = 6
			}
			s = strconv.FormatFloat(a*100, 'f', prec, 64) + "%"
		case 'g', 'G', 'n':
			if !sp.hasPrec {
				prec = 6
			}
			s = pyGeneral(a, prec, sp.alt, false)
		default:
			if !sp.hasPrec {
				s = floatRepr(a)
			} else {
				s = pyGeneral(a, prec, sp.alt, true)
			}
		}
	}
	if sp.typ == 'E' || sp.typ == 'G' || sp.typ == 'F' {
		s = strings.ToUpper(s)
	}
	if sp.grouping != 0 && !math.IsInf(a, 0) && !math.IsNaN(a) {
		intPart, frac, _ := strings.Cut(s, ".")
		if !strings.ContainsAny(intPart, "e") {
			intPart = group(intPart, sp.grouping, 3)
			if frac != "" || strings.Contains(s, ".") {
				s = intPart + "." + frac
			} else {
				s = intPart
			}
		}
	}
	return signed(s, neg, sp.sign)
}

// pyGeneral is the 'g' presentation type (repr-like: keep ".0" when the
// result would look like an integer and the type was omitted).
func pyGeneral(a float64, prec int, alt, noType bool) string {
	if prec == 0 {
		prec = 1
	}
	if a == 0 {
		if noType {
			return "0.0"
		}
		return "0"
	}
	e := strconv.FormatFloat(a, 'e', prec-1, 64)
	_, expS, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expS)
	var s string
	if exp < -4 || exp >= prec {
		mant, _, _ := strings.Cut(e, "e")
		if !alt && strings.Contains(mant, ".") {
			mant = strings.TrimRight(strings.TrimRight(mant, "0"), ".")
		}
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		es := strconv.Itoa(exp)
		if len(es) < 2 {
			es = "0" + es
		}
		return mant + "e" + sign + es
	}
	s = strconv.FormatFloat(a, 'f', prec-1-exp, 64)
	if !alt && strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if noType && !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// align pads s to the spec's width.
func align(s string, sp *fmtSpec, numeric bool) string {
	n := utf8.RuneCountInString(s)
	if sp.width <= n {
		return s
	}
	fill := sp.fill
	al := sp.align
	if sp.zero && al == 0 && numeric {
		fill, al = '0', '='
	}
	if fill == 0 {
		fill = ' '
	}
	if al == 0 {
		if numeric {
			al = '>'
		} else {
			al = '<'
		}
	}
	padN := sp.width - n
	f := string(fill)
	switch al {
	case '<':
		return s + strings.Repeat(f, padN)
	case '>':
		return strings.Repeat(f, padN) + s
	case '^':
		left := padN / 2
		return strings.Repeat(f, left) + s + strings.Repeat(f, padN-left)
	}
	// '=': padding after the sign.
	if len(s) > 0 && (s[0] == '-' || s[0] == '+' || s[0] == ' ') {
		return s[:1] + strings.Repeat(f, padN) + s[1:]
	}
	return strings.Repeat(f, padN) + s
}

// strFormat is str.format, with fields looked up through the sandbox.
func strFormat(format string, args []Value, kw []kwarg) (Value, error) {
	var b strings.Builder
	auto := 0
	rs := []rune(format)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		if c == '}' {
			if i+1 < len(rs) && rs[i+1] == '}' {
				b.WriteByte('}')
				i++
				continue
			}
			return nil, newErr("ValueError", "Single '}' encountered in format string")
		}
		if c != '{' {
			b.WriteRune(c)
			continue
		}
		if i+1 < len(rs) && rs[i+1] == '{' {
			b.WriteByte('{')
			i++
			continue
		}
		depth, j := 1, i+1
		for j < len(rs) && depth > 0 {
			if rs[j] == '{' {
				depth++
			} else if rs[j] == '}' {
				depth--
			}
			j++
		}
		if depth > 0 {
			return nil, newErr("ValueError", "expected '}' before end of string")
		}
		field := string(rs[i+1 : j-1])
		i = j - 1
		name, spec, _ := strings.Cut(field, ":")
		conv := ""
		if k := strings.IndexByte(name, '!'); k >= 0 {
			name, conv = name[:k], name[k+1:]
		}
		if strings.Contains(spec, "{") {
			nested, err := strFormat(spec, args, kw)
			if err != nil {
				return nil, err
			}
			spec = nested.(string)
		}
		first, rest := name, ""
		if k := strings.IndexAny(name, ".["); k >= 0 {
			first, rest = name[:k], name[k:]
		}
		var v Value
		switch {
		case first == "":
			if auto >= len(args) {
				return nil, newErr("IndexError", "Replacement index %d out of range for positional args tuple", auto)
			}
			v = args[auto]
			auto++
		case first[0] >= '0' && first[0] <= '9':
			n, err := strconv.Atoi(first)
			if err != nil || n >= len(args) {
				return nil, newErr("IndexError", "Replacement index %s out of range for positional args tuple", first)
			}
			v = args[n]
		default:
			found := false
			for _, k := range kw {
				if k.name == first {
					v, found = k.val, true
				}
			}
			if !found {
				return nil, newErr("KeyError", "%s", strRepr(first))
			}
		}
		for rest != "" {
			var err error
			if rest[0] == '.' {
				k := strings.IndexAny(rest[1:], ".[")
				attr := rest[1:]
				if k >= 0 {
					attr, rest = rest[1:k+1], rest[k+1:]
				} else {
					rest = ""
				}
				v, err = getattr(v, attr)
			} else {
				k := strings.IndexByte(rest, ']')
				if k < 0 {
					return nil, newErr("ValueError", "Missing ']' in format string")
				}
				key := rest[1:k]
				rest = rest[k+1:]
				var kv Value = key
				if n, e := strconv.Atoi(key); e == nil {
					kv = int64(n)
				}
				v, err = getitem(v, kv)
			}
			if err != nil {
				return nil, err
			}
		}
		switch conv {
		case "":
		case "s":
			v = pyStr(v)
		case "r", "a":
			v = pyRepr(v)
		default:
			return nil, newErr("ValueError", "Unknown conversion specifier %s", conv)
		}
		s, err := formatValue(v, spec)
		if err != nil {
			return nil, err
		}
		b.WriteString(s)
	}
	return b.String(), nil
}
