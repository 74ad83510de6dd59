package jinja

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
)

// identity is a stable per-object string for values compared by identity.
func identity(v Value) string { return fmt.Sprintf("%T%p", v, v) }

// pyStr is Python's str(v), which is what {{ v }} prints.
func pyStr(v Value) string {
	switch v := v.(type) {
	case string:
		return v
	case *Undefined:
		return ""
	}
	var b strings.Builder
	writeRepr(&b, v, true)
	return b.String()
}

// pyRepr is Python's repr(v).
func pyRepr(v Value) string {
	var b strings.Builder
	writeRepr(&b, v, false)
	return b.String()
}

// writeRepr writes repr(v), or str(v) for the top-level value when str is
// set (the two differ only for strings and Undefined).
func writeRepr(b *strings.Builder, v Value, str bool) {
	switch v := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if v {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case *big.Int:
		b.WriteString(v.String())
	case float64:
		b.WriteString(floatRepr(v))
	case string:
		if str {
			b.WriteString(v)
		} else {
			b.WriteString(strRepr(v))
		}
	case *Undefined:
		if !str {
			b.WriteString("Undefined")
		}
	case *List:
		open, close := "[", "]"
		switch v.kind {
		case kindTuple:
			open, close = "(", ")"
		case kindKeys:
			open, close = "dict_keys([", "])"
		case kindValues:
			open, close = "dict_values([", "])"
		case kindItems:
			open, close = "dict_items([", "])"
		}
		b.WriteString(open)
		for i, it := range v.Items {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, it, false)
		}
		if v.kind == kindTuple && len(v.Items) == 1 {
			b.WriteByte(',')
		}
		b.WriteString(close)
	case *Dict:
		writeDictRepr(b, v)
	case *Namespace:
		b.WriteString("<Namespace ")
		writeDictRepr(b, v.attrs)
		b.WriteString(">")
	case *macro:
		b.WriteString("<Macro " + strRepr(v.name()) + ">")
	case *builtin:
		b.WriteString("<built-in function " + v.name + ">")
	case *generator:
		b.WriteString("<generator object " + v.name + ">")
	case *loopContext:
		n, _ := v.length()
		fmt.Fprintf(b, "<LoopContext %d/%d>", v.index0+1, n)
	default:
		b.WriteString("<" + objectTypeRepr(v) + ">")
	}
}

func writeDictRepr(b *strings.Builder, d *Dict) {
	b.WriteByte('{')
	for i, k := range d.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		writeRepr(b, k, false)
		b.WriteString(": ")
		writeRepr(b, d.vals[i], false)
	}
	b.WriteByte('}')
}

// strRepr is repr() of a Python str: single quotes unless the text holds a
// single quote and no double quote; \t \n \r \\ and the quote escaped;
// non-printable characters as \xhh, \uhhhh or \Uhhhhhhhh.
func strRepr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x7f:
			b.WriteRune(r)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// floatRepr is Python's repr(float): the shortest digits that round-trip,
// positional when the decimal exponent is in [-4, 16), else scientific with
// a signed two-digit exponent, and always with a '.0' or exponent.
func floatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±XX
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expS, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expS)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1 // position of the decimal point relative to digits
	if decpt > -4 && decpt <= 16 {
		switch {
		case decpt <= 0:
			return sign + "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			return sign + digits[:decpt] + "." + digits[decpt:]
		}
	}
	out := digits[:1]
	if len(digits) > 1 {
		out += "." + digits[1:]
	}
	es := "+"
	if exp < 0 {
		es, exp = "-", -exp
	}
	if exp < 10 {
		es += "0"
	}
	return sign + out + "e" + es + strconv.Itoa(exp)
}

// Str is Python's str(v): what {{ v }} prints (None as "None", floats in
// repr form, lists and dicts in Python syntax, Undefined as "").
func Str(v Value) string { return pyStr(v) }
