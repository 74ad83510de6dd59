package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/lightninglm/lightning/tokenizer/jinja"
)

// rawConversations are passed to every template unchanged by the golden
// generator (testdata/README.md), so they are not normalization examples.
var rawConversations = map[string]bool{
	"parts_text": true, "parts_with_image": true, "string_content_raw": true,
	"none_user_content": true, "missing_content": true, "numeric_content": true,
}

// conversations maps conversation id to its messages for one template.
func conversations(t *testing.T, name string) map[string]jinja.Value {
	out := map[string]jinja.Value{}
	for _, c := range readCases(t, name) {
		conv, _ := c.raw.Get("conversation")
		if _, ok := out[conv.(string)]; !ok {
			out[conv.(string)] = c.req.Messages
		}
	}
	return out
}

func toJSON(t *testing.T, v jinja.Value) string {
	t.Helper()
	s, err := jinja.ToJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestNormalizeMatchesGolden converts the OpenAI-style messages (as given to
// the string-content templates) and compares them with the messages the
// golden generator gave minimax_m1 and minimax_text01.
func TestNormalizeMatchesGolden(t *testing.T) {
	raw := conversations(t, "vllm_minimax_m1_tool")
	for _, tc := range []struct {
		name   string
		format ContentFormat
	}{{"minimax_m1", ContentM1Parts}, {"minimax_text01", ContentText01Parts}} {
		want := conversations(t, tc.name)
		n := 0
		for conv, msgs := range raw {
			if rawConversations[conv] {
				continue
			}
			got, err := NormalizeMessages(msgs, tc.format)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, conv, err)
			}
			if g, w := toJSON(t, got), toJSON(t, want[conv]); g != w {
				t.Errorf("%s %s:\n got: %s\nwant: %s", tc.name, conv, g, w)
			}
			n++
		}
		if n < 30 {
			t.Errorf("%s: only %d conversations compared", tc.name, n)
		}
	}
}

// TestNormalizeNameFromToolCallID: a tool result without "name" (the
// OpenAI shape) takes the name of the matching assistant tool call.
func TestNormalizeNameFromToolCallID(t *testing.T) {
	msgs, err := jinja.DecodeJSON([]byte(`[
		{"role": "assistant", "content": null, "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}, {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
		{"role": "tool", "tool_call_id": "b", "content": "2"}]`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := NormalizeMessages(msgs, ContentM1Parts)
	if err != nil {
		t.Fatal(err)
	}
	tool := got.(*jinja.List).Items[1]
	if s := toJSON(t, tool); s != `{"role": "tool", "tool_call_id": "b", "content": [{"name": "g", "type": "text", "text": "2"}]}` {
		t.Errorf("got %s", s)
	}
	got, err = NormalizeMessages(msgs, ContentText01Parts)
	if err != nil {
		t.Fatal(err)
	}
	if s := toJSON(t, got.(*jinja.List).Items[1]); s != `{"role": "function", "name": "g", "content": [{"type": "text", "text": "2"}]}` {
		t.Errorf("got %s", s)
	}
}

// TestDetectContentFormat checks the guess against the golden manifest.
func TestDetectContentFormat(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var man struct {
		Templates map[string]struct {
			ContentFormat string `json:"content_format"`
		}
	}
	if err := json.Unmarshal(b, &man); err != nil {
		t.Fatal(err)
	}
	for _, name := range goldenTemplates {
		tmpl := loadGoldenTemplate(t, name)
		want, err := ParseContentFormat(man.Templates[name].ContentFormat)
		if err != nil {
			t.Fatal(err)
		}
		if tmpl.Format != want {
			t.Errorf("%s: detected %v, manifest says %v", name, tmpl.Format, want)
		}
	}
}
