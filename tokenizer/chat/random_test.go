package chat

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/lightninglm/lightning/tokenizer/jinja"
)

// TestRandomConversations renders the random conversations of
// testdata/random_cases.jsonl.gz (made by testdata/gen_random.py with
// Python Jinja2) with all nine templates: output byte for byte, or the same
// error type and message.
func TestRandomConversations(t *testing.T) {
	f, err := os.Open("testdata/random_cases.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tmpls := map[string]*Template{}
	for _, name := range goldenTemplates {
		tmpls[name] = loadGoldenTemplate(t, name)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	n := 0
	for sc.Scan() {
		var c struct {
			ID      int
			Results map[string]struct {
				Rendered *string
				Error    *struct{ Type, Message string }
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		v, err := jinja.DecodeJSON(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		req := requestFromCase(v.(*jinja.Dict))
		req.Now = pinnedNow
		for name, want := range c.Results {
			tmpl, ok := tmpls[name]
			if !ok {
				t.Fatalf("case %d: unknown template %s", c.ID, name)
			}
			n++
			out, err := tmpl.Render(req)
			var je *jinja.Error
			switch {
			case want.Error != nil:
				if !errors.As(err, &je) || je.Type != want.Error.Type || je.Message != want.Error.Message {
					t.Errorf("case %d %s: got %q, %v; want %s: %s", c.ID, name, out, err, want.Error.Type, want.Error.Message)
				}
			case err != nil:
				t.Errorf("case %d %s: %v", c.ID, name, err)
			case out != *want.Rendered:
				t.Errorf("case %d %s:\n got: %q\nwant: %q", c.ID, name, out, *want.Rendered)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 1000 {
		t.Errorf("only %d renderings", n)
	}
}
