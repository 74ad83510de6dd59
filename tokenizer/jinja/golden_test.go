package jinja

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"
)

// pinnedNow is the clock the golden files were generated with.
func pinnedNow() time.Time { return time.Date(2025, 7, 1, 9, 30, 0, 0, time.Local) }

// TestGolden renders every snippet of testdata/golden.jsonl (expected values
// from Python Jinja2 3.1 via testdata/gen_golden.py) and compares byte for
// byte, or the error type and message.
func TestGolden(t *testing.T) {
	f, err := os.Open("testdata/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	n := 0
	for sc.Scan() {
		var c struct {
			Name     string          `json:"name"`
			Template string          `json:"template"`
			Vars     json.RawMessage `json:"vars"`
			Rendered *string         `json:"rendered"`
			Error    *struct{ Type, Message string }
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		n++
		t.Run(c.Name, func(t *testing.T) {
			vv, err := DecodeJSON(c.Vars)
			if err != nil {
				t.Fatal(err)
			}
			vars := map[string]Value{}
			d := vv.(*Dict)
			for i, k := range d.Keys() {
				vars[k.(string)] = d.Values()[i]
			}
			out, err := render(c.Template, vars)
			if c.Error != nil {
				var je *Error
				if !errors.As(err, &je) {
					t.Fatalf("want %s: %s; got output %q, err %v", c.Error.Type, c.Error.Message, out, err)
				}
				if je.Type != c.Error.Type || je.Message != c.Error.Message {
					t.Errorf("error mismatch\n got: %s: %s\nwant: %s: %s", je.Type, je.Message, c.Error.Type, c.Error.Message)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if out != *c.Rendered {
				t.Errorf("mismatch\n got: %q\nwant: %q", out, *c.Rendered)
			}
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("only %d golden cases", n)
	}
}

func render(src string, vars map[string]Value) (string, error) {
	tmpl, err := Parse(src)
	if err != nil {
		return "", err
	}
	return tmpl.Render(vars, &Options{Now: pinnedNow})
}
