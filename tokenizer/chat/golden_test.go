package chat

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/lightninglm/lightning/tokenizer/jinja"
)

// The golden set (testdata/, copied from shared/chat-template-golden) was
// rendered by Python Jinja2 3.1.2 set up as transformers sets it up; see
// testdata/README.md.
var goldenTemplates = []string{
	"minimax_m1", "minimax_m1_pr18", "minimax_text01", "vllm_minimax_m1_tool",
	"llama3", "qwen3", "deepseek_v3", "mistral_v01", "hf_features",
}

// pinnedNow is the clock the golden set pins strftime_now to.
func pinnedNow() time.Time { return time.Date(2025, 7, 1, 9, 30, 0, 0, time.Local) }

type goldenCase struct {
	ID       string
	Rendered *string
	Error    *struct{ Type, Message string }
	req      *Request
	raw      *jinja.Dict
}

func readCases(t testing.TB, name string) []goldenCase {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name, "cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []goldenCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var c goldenCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		v, err := jinja.DecodeJSON(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		c.raw = v.(*jinja.Dict)
		c.req = requestFromCase(c.raw)
		c.req.Now = pinnedNow
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func requestFromCase(d *jinja.Dict) *Request {
	get := func(k string) jinja.Value { v, _ := d.Get(k); return v }
	r := &Request{Messages: get("messages"), Tools: get("tools"), Documents: get("documents"), Kwargs: map[string]jinja.Value{}}
	r.AddGenerationPrompt, _ = get("add_generation_prompt").(bool)
	if kw, ok := get("kwargs").(*jinja.Dict); ok {
		for i, k := range kw.Keys() {
			r.Kwargs[k.(string)] = kw.Values()[i]
		}
	}
	return r
}

// loadGoldenTemplate loads a golden template the way a model folder is
// loaded: from its tokenizer_config.json when it has one (checking that the
// template and special tokens match the golden's), else from template.jinja
// with special_tokens.json.
func loadGoldenTemplate(t testing.TB, name string) *Template {
	t.Helper()
	dir := filepath.Join("testdata", name)
	src, err := os.ReadFile(filepath.Join(dir, "template.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	stRaw, err := os.ReadFile(filepath.Join(dir, "special_tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	stv, err := jinja.DecodeJSON(stRaw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]jinja.Value{}
	for i, k := range stv.(*jinja.Dict).Keys() {
		want[k.(string)] = stv.(*jinja.Dict).Values()[i]
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	if _, err := os.Stat(cfgPath); err != nil {
		tmpl, err := New(string(src), want)
		if err != nil {
			t.Fatal(err)
		}
		return tmpl
	}
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.SpecialTokens, want) {
		t.Errorf("%s: special tokens %v, want %v", name, cfg.SpecialTokens, want)
	}
	tmpl, err := cfg.Template("", false)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Source != string(src) {
		t.Errorf("%s: config's chat_template differs from template.jinja", name)
	}
	return tmpl
}

// TestGolden renders every golden case of all nine templates byte for byte,
// or checks that rendering fails with the recorded error type and message.
func TestGolden(t *testing.T) {
	for _, name := range goldenTemplates {
		t.Run(name, func(t *testing.T) {
			tmpl := loadGoldenTemplate(t, name)
			pass, errs, cases := 0, 0, readCases(t, name)
			for _, c := range cases {
				out, err := tmpl.Render(c.req)
				switch {
				case c.Error != nil:
					errs++
					var je *jinja.Error
					if !errors.As(err, &je) {
						t.Errorf("%s: want %s: %s, got output %q (err %v)", c.ID, c.Error.Type, c.Error.Message, out, err)
						continue
					}
					if je.Type != c.Error.Type || je.Message != c.Error.Message {
						t.Errorf("%s: error %s: %s, want %s: %s", c.ID, je.Type, je.Message, c.Error.Type, c.Error.Message)
						continue
					}
				case err != nil:
					t.Errorf("%s: %v", c.ID, err)
					continue
				case out != *c.Rendered:
					t.Errorf("%s: mismatch\n got: %q\nwant: %q", c.ID, out, *c.Rendered)
					continue
				}
				pass++
			}
			t.Logf("%s: %d/%d cases pass (%d of them expected errors)", name, pass, len(cases), errs)
			if len(cases) != 78 {
				t.Errorf("%d cases, want 78", len(cases))
			}
		})
	}
}

// BenchmarkRender renders one golden conversation with each MiniMax
// template (tools, a tool call and its result: tool_call_dict_args).
func BenchmarkRender(b *testing.B) {
	for _, name := range []string{"minimax_m1", "minimax_text01", "vllm_minimax_m1_tool", "hf_features"} {
		b.Run(name, func(b *testing.B) {
			tmpl := loadGoldenTemplate(b, name)
			var req *Request
			for _, c := range readCases(b, name) {
				if c.ID == "tool_call_dict_args/agp=true" {
					req = c.req
				}
			}
			if req == nil {
				b.Fatal("case not found")
			}
			for b.Loop() {
				if _, err := tmpl.Render(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestConcurrentRender renders one template from several goroutines (run
// with -race to check that templates and inputs are only read).
func TestConcurrentRender(t *testing.T) {
	tmpl := loadGoldenTemplate(t, "hf_features")
	cases := readCases(t, "hf_features")
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			for _, c := range cases {
				out, err := tmpl.Render(c.req)
				if c.Rendered != nil && (err != nil || out != *c.Rendered) {
					done <- fmt.Errorf("%s: concurrent render differs", c.ID)
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
