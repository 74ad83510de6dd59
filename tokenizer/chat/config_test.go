package chat

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lightninglm/lightning/tokenizer/jinja"
)

func TestParseConfigNamedTemplates(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{
		"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
		"eos_token": "</s>",
		"unk_token": null,
		"pad_token": {"content": "<pad>"},
		"additional_special_tokens": [],
		"chat_template": [
			{"name": "default", "template": "D{{ bos_token }}{{ messages|length }}"},
			{"name": "tool_use", "template": "T{{ tools|length }}"}
		]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]jinja.Value{"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
	if !reflect.DeepEqual(cfg.SpecialTokens, want) {
		t.Errorf("special tokens %v, want %v", cfg.SpecialTokens, want)
	}
	if got := cfg.Names(); !reflect.DeepEqual(got, []string{"default", "tool_use"}) {
		t.Errorf("names %v", got)
	}
	msgs := jinja.NewList(jinja.NewDict())
	tools := jinja.NewList(jinja.NewDict(), jinja.NewDict())
	for _, tc := range []struct {
		name      string
		withTools bool
		want      string
	}{{"", false, "D<s>1"}, {"", true, "T2"}, {"default", true, "D<s>1"}} {
		tmpl, err := cfg.Template(tc.name, tc.withTools)
		if err != nil {
			t.Fatal(err)
		}
		req := &Request{Messages: msgs}
		if tc.withTools {
			req.Tools = tools
		}
		out, err := tmpl.Render(req)
		if err != nil {
			t.Fatal(err)
		}
		if out != tc.want {
			t.Errorf("Template(%q, %v) rendered %q, want %q", tc.name, tc.withTools, out, tc.want)
		}
	}
	if _, err := cfg.Template("nope", false); err == nil {
		t.Error("unknown template name accepted")
	}
	if _, err := (&Config{}).Template("", false); err != ErrNoTemplate {
		t.Errorf("empty config: %v", err)
	}
}

// TestLoadConfigPrefersJinjaFile: a chat_template.jinja beside the config
// replaces the config's template (transformers' precedence).
func TestLoadConfigPrefersJinjaFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	if err := os.WriteFile(cfgPath, []byte(`{"chat_template": "from config", "eos_token": "E"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(want string) {
		t.Helper()
		cfg, err := LoadConfig(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := cfg.Template("", false)
		if err != nil {
			t.Fatal(err)
		}
		out, err := tmpl.Render(&Request{})
		if err != nil {
			t.Fatal(err)
		}
		if out != want {
			t.Errorf("rendered %q, want %q", out, want)
		}
	}
	check("from config")
	if err := os.WriteFile(filepath.Join(dir, "chat_template.jinja"), []byte("from file {{ eos_token }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("from file E")
}

func TestKwargsOverrideSpecialTokens(t *testing.T) {
	tmpl, err := New("{{ bos_token }}|{{ eos_token }}", map[string]jinja.Value{"bos_token": "<s>", "eos_token": "</s>"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.Render(&Request{Kwargs: map[string]jinja.Value{"bos_token": "<B>"}})
	if err != nil || out != "<B>|</s>" {
		t.Errorf("got %q, %v", out, err)
	}
	if _, err := tmpl.Render(&Request{Kwargs: map[string]jinja.Value{"messages": 1}}); err == nil {
		t.Error("kwarg named messages accepted")
	}
}
