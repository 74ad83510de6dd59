package jinja

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that parsing never panics, and that rendering a parsed
// template without loops, macros or repetition (which could run for long)
// never panics either.
func FuzzParse(f *testing.F) {
	if fh, err := os.Open("testdata/golden.jsonl"); err == nil {
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		for sc.Scan() {
			var c struct{ Template string }
			if json.Unmarshal(sc.Bytes(), &c) == nil {
				f.Add(c.Template)
			}
		}
		fh.Close()
	}
	for _, s := range []string{"", "{{", "{%", "{#", "{{ x }", "{% if %}", "{{ 'a' 'b' }}", "{%- raw -%}", "}}%}#}", "{{ {'a': [1, (2,)]}[0:1:2] }}"} {
		f.Add(s)
	}
	vars := map[string]Value{
		"messages": NewList(NewDict(), "x", nil, int64(3), 2.5, NewList()),
		"x":        "text",
	}
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := Parse(src)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse returned %T, want *Error", err)
			}
			return
		}
		for _, risky := range []string{"for", "macro", "call", "range", "*", "recursive"} {
			if strings.Contains(src, risky) {
				return
			}
		}
		if _, err := tmpl.Render(vars, &Options{Now: pinnedNow}); err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Render returned %T, want *Error", err)
			}
		}
	})
}
