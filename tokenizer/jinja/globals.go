package jinja

import (
	"fmt"
	"strings"
	"time"
)

// maxRange is the sandbox's MAX_RANGE.
const maxRange = 100000

// globalScope holds the template globals: Jinja's range, dict, namespace,
// cycler and joiner, and transformers' raise_exception and strftime_now.
var globalScope = &scope{vars: map[string]Value{
	"range":           &builtin{name: "range", fn: globalRange},
	"dict":            &builtin{name: "dict", fn: globalDict},
	"namespace":       &builtin{name: "namespace", fn: globalNamespace},
	"cycler":          &builtin{name: "cycler", fn: globalCycler},
	"joiner":          &builtin{name: "joiner", fn: globalJoiner},
	"raise_exception": &builtin{name: "raise_exception", fn: globalRaise},
	"strftime_now":    &builtin{name: "strftime_now", fn: globalStrftimeNow},
}}

func globalRange(_ *state, args []Value, kw []kwarg) (Value, error) {
	if len(kw) > 0 {
		return nil, typeErr("range() takes no keyword arguments")
	}
	if len(args) == 0 || len(args) > 3 {
		return nil, typeErr("range expected at most 3 arguments, got %d", len(args))
	}
	ints := make([]int64, len(args))
	for i, a := range args {
		n, ok := asInt64(a)
		if !ok {
			return nil, typeErr("'%s' object cannot be interpreted as an integer", typeName(a))
		}
		ints[i] = n
	}
	start, stop, step := int64(0), ints[0], int64(1)
	if len(ints) > 1 {
		start, stop = ints[0], ints[1]
	}
	if len(ints) > 2 {
		step = ints[2]
	}
	if step == 0 {
		return nil, newErr("ValueError", "range() arg 3 must not be zero")
	}
	var n int64
	if step > 0 && stop > start {
		n = (stop - start + step - 1) / step
	} else if step < 0 && stop < start {
		n = (start - stop - step - 1) / -step
	}
	if n > maxRange {
		return nil, newErr("OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", maxRange)
	}
	items := make([]Value, n)
	for i := range items {
		items[i] = start + int64(i)*step
	}
	return NewList(items...), nil
}

// dictFrom is dict(*args, **kwargs).
func dictFrom(fname string, args []Value, kw []kwarg) (*Dict, error) {
	if len(args) > 1 {
		return nil, typeErr("%s expected at most 1 argument, got %d", fname, len(args))
	}
	d := NewDict()
	if len(args) == 1 {
		switch src := args[0].(type) {
		case *Dict:
			d = src.copy()
		default:
			items, err := iterate(src)
			if err != nil {
				return nil, err
			}
			for i, it := range items {
				pair, err := iterate(it)
				if err != nil {
					return nil, typeErr("cannot convert dictionary update sequence element #%d to a sequence", i)
				}
				if len(pair) != 2 {
					return nil, newErr("ValueError", "dictionary update sequence element #%d has length %d; 2 is required", i, len(pair))
				}
				h, ok := hashKey(pair[0])
				if !ok {
					return nil, typeErr("unhashable type: '%s'", typeName(pair[0]))
				}
				d.set(h, pair[0], pair[1])
			}
		}
	}
	for _, k := range kw {
		d.Set(k.name, k.val)
	}
	return d, nil
}

func globalDict(_ *state, args []Value, kw []kwarg) (Value, error) { return dictFrom("dict", args, kw) }

func globalNamespace(_ *state, args []Value, kw []kwarg) (Value, error) {
	d, err := dictFrom("dict", args, kw)
	if err != nil {
		return nil, err
	}
	return &Namespace{attrs: d}, nil
}

// cycler is jinja2.utils.Cycler.
type cycler struct {
	items []Value
	pos   int
}

func globalCycler(_ *state, args []Value, kw []kwarg) (Value, error) {
	if len(kw) > 0 {
		return nil, typeErr("Cycler.__init__() got an unexpected keyword argument '%s'", kw[0].name)
	}
	if len(args) == 0 {
		return nil, newErr("RuntimeError", "at least one item has to be provided")
	}
	return &cycler{items: args}, nil
}

func (c *cycler) attr(name string) (Value, bool) {
	switch name {
	case "items":
		return NewTuple(c.items...), true
	case "pos":
		return int64(c.pos), true
	case "current":
		return c.items[c.pos], true
	case "next":
		return method("next", func([]Value, []kwarg) (Value, error) {
			v := c.items[c.pos]
			c.pos = (c.pos + 1) % len(c.items)
			return v, nil
		}), true
	case "reset":
		return method("reset", func([]Value, []kwarg) (Value, error) {
			c.pos = 0
			return nil, nil
		}), true
	}
	return nil, false
}

// joiner is jinja2.utils.Joiner: "" on the first call, sep afterwards.
type joiner struct {
	sep  string
	used bool
}

func globalJoiner(_ *state, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("joiner", []string{"sep="}, args, kw)
	if err != nil {
		return nil, err
	}
	j := &joiner{sep: pyStr(orDefault(a[0], ", "))}
	return &builtin{name: "joiner", fn: func(*state, []Value, []kwarg) (Value, error) {
		if !j.used {
			j.used = true
			return "", nil
		}
		return j.sep, nil
	}}, nil
}

// globalRaise is transformers' raise_exception(message): TemplateError.
func globalRaise(_ *state, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("raise_exception", []string{"message"}, args, kw)
	if err != nil {
		return nil, err
	}
	return nil, &Error{Type: "TemplateError", Message: pyStr(a[0])}
}

// globalStrftimeNow is transformers' strftime_now(format):
// datetime.now().strftime(format) on the rendering clock.
func globalStrftimeNow(st *state, args []Value, kw []kwarg) (Value, error) {
	a, err := bind("strftime_now", []string{"format"}, args, kw)
	if err != nil {
		return nil, err
	}
	f, ok := a[0].(string)
	if !ok {
		return nil, typeErr("strftime() argument 1 must be str, not %s", typeName(a[0]))
	}
	return strftime(st.now(), f), nil
}

var (
	weekdays = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	months   = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
)

// strftime formats t like Python's datetime.strftime on a naive datetime in
// the C locale (glibc directives, including the "-" no-padding flag).
func strftime(t time.Time, format string) string {
	var b strings.Builder
	rs := []rune(format)
	for i := 0; i < len(rs); i++ {
		if rs[i] != '%' || i+1 >= len(rs) {
			b.WriteRune(rs[i])
			continue
		}
		i++
		noPad := false
		if rs[i] == '-' && i+1 < len(rs) {
			noPad = true
			i++
		}
		num := func(v, width int) string {
			if noPad {
				return fmt.Sprint(v)
			}
			return fmt.Sprintf("%0*d", width, v)
		}
		hour12 := t.Hour() % 12
		if hour12 == 0 {
			hour12 = 12
		}
		switch rs[i] {
		case 'a':
			b.WriteString(weekdays[t.Weekday()][:3])
		case 'A':
			b.WriteString(weekdays[t.Weekday()])
		case 'b', 'h':
			b.WriteString(months[t.Month()-1][:3])
		case 'B':
			b.WriteString(months[t.Month()-1])
		case 'c':
			b.WriteString(fmt.Sprintf("%s %s %2d %02d:%02d:%02d %d", weekdays[t.Weekday()][:3], months[t.Month()-1][:3], t.Day(), t.Hour(), t.Minute(), t.Second(), t.Year()))
		case 'd':
			b.WriteString(num(t.Day(), 2))
		case 'e':
			b.WriteString(fmt.Sprintf("%2d", t.Day()))
		case 'f':
			b.WriteString(fmt.Sprintf("%06d", t.Nanosecond()/1000))
		case 'H':
			b.WriteString(num(t.Hour(), 2))
		case 'I':
			b.WriteString(num(hour12, 2))
		case 'j':
			b.WriteString(num(t.YearDay(), 3))
		case 'm':
			b.WriteString(num(int(t.Month()), 2))
		case 'M':
			b.WriteString(num(t.Minute(), 2))
		case 'p':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'S':
			b.WriteString(num(t.Second(), 2))
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			b.WriteString(fmt.Sprint(wd))
		case 'w':
			b.WriteString(fmt.Sprint(int(t.Weekday())))
		case 'U':
			b.WriteString(num((t.YearDay()+6-int(t.Weekday()))/7, 2))
		case 'W':
			b.WriteString(num((t.YearDay()+6-(int(t.Weekday())+6)%7)/7, 2))
		case 'V':
			_, w := t.ISOWeek()
			b.WriteString(num(w, 2))
		case 'G':
			y, _ := t.ISOWeek()
			b.WriteString(fmt.Sprint(y))
		case 'x':
			b.WriteString(fmt.Sprintf("%02d/%02d/%02d", int(t.Month()), t.Day(), t.Year()%100))
		case 'X', 'T':
			b.WriteString(fmt.Sprintf("%02d:%02d:%02d", t.Hour(), t.Minute(), t.Second()))
		case 'D':
			b.WriteString(fmt.Sprintf("%02d/%02d/%02d", int(t.Month()), t.Day(), t.Year()%100))
		case 'F':
			b.WriteString(fmt.Sprintf("%d-%02d-%02d", t.Year(), int(t.Month()), t.Day()))
		case 'R':
			b.WriteString(fmt.Sprintf("%02d:%02d", t.Hour(), t.Minute()))
		case 'y':
			b.WriteString(num(t.Year()%100, 2))
		case 'Y':
			b.WriteString(fmt.Sprint(t.Year()))
		case 'z', 'Z':
			// datetime.now() is naive: no offset, no zone name.
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case '%':
			b.WriteByte('%')
		default:
			b.WriteRune('%')
			if noPad {
				b.WriteRune('-')
			}
			b.WriteRune(rs[i])
		}
	}
	return b.String()
}
