package chat

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/tokenizer/jinja"
)

// toolCallsOf lists the (name, arguments) of every assistant tool call in
// messages, with object arguments as json.dumps text.
func toolCallsOf(t *testing.T, msgs jinja.Value) []ToolCall {
	var out []ToolCall
	for _, m := range msgs.(*jinja.List).Items {
		calls, _ := m.(*jinja.Dict).Get("tool_calls")
		l, ok := calls.(*jinja.List)
		if !ok {
			continue
		}
		for _, c := range l.Items {
			fn, _ := c.(*jinja.Dict).Get("function")
			name, _ := getString(fn.(*jinja.Dict), "name")
			args, _ := fn.(*jinja.Dict).Get("arguments")
			s, ok := args.(string)
			if !ok {
				s = toJSON(t, args)
			}
			out = append(out, ToolCall{Name: name, Arguments: s})
		}
	}
	return out
}

// TestParseRenderedToolCalls parses the tool calls out of prompts that
// vLLM's MiniMax-M1 template rendered (golden) and compares them with the
// calls in the messages; then rebuilds the messages from the parsed calls
// and checks that they render to the same golden prompt (render -> parse ->
// render round trip).
func TestParseRenderedToolCalls(t *testing.T) {
	tmpl := loadGoldenTemplate(t, "vllm_minimax_m1_tool")
	n := 0
	for _, c := range readCases(t, "vllm_minimax_m1_tool") {
		want := toolCallsOf(t, c.req.Messages)
		if len(want) == 0 || c.Rendered == nil {
			continue
		}
		n++
		got := ParseToolCalls(*c.Rendered)
		if !reflect.DeepEqual(got.Calls, want) {
			t.Fatalf("%s: parsed %+v, want %+v", c.ID, got.Calls, want)
		}
		// Rebuild the assistant tool calls from the parsed ones.
		rebuilt := rebuildToolCalls(t, c.req.Messages, got.Calls)
		req := *c.req
		req.Messages = rebuilt
		out, err := tmpl.Render(&req)
		if err != nil {
			t.Fatal(err)
		}
		if out != *c.Rendered {
			t.Errorf("%s: re-rendered prompt differs\n got: %q\nwant: %q", c.ID, out, *c.Rendered)
		}
	}
	if n < 4 {
		t.Errorf("only %d cases with tool calls", n)
	}
}

// rebuildToolCalls replaces each assistant tool call's function with one
// built from parsed calls: arguments decoded back to an object where the
// original held one, kept as a JSON string where it held a string.
func rebuildToolCalls(t *testing.T, msgs jinja.Value, calls []ToolCall) jinja.Value {
	var out []jinja.Value
	k := 0
	for _, m := range msgs.(*jinja.List).Items {
		md := m.(*jinja.Dict)
		tc, _ := md.Get("tool_calls")
		l, ok := tc.(*jinja.List)
		if !ok {
			out = append(out, m)
			continue
		}
		nm := jinja.NewDict()
		for i, key := range md.Keys() {
			nm.Set(key, md.Values()[i])
		}
		var newCalls []jinja.Value
		for _, c := range l.Items {
			cd := c.(*jinja.Dict)
			fn, _ := cd.Get("function")
			oldArgs, _ := fn.(*jinja.Dict).Get("arguments")
			var args jinja.Value = calls[k].Arguments
			if _, isStr := oldArgs.(string); !isStr {
				v, err := jinja.DecodeJSON([]byte(calls[k].Arguments))
				if err != nil {
					t.Fatal(err)
				}
				args = v
			}
			nf := jinja.NewDict()
			nf.Set("name", calls[k].Name)
			nf.Set("arguments", args)
			nc := jinja.NewDict()
			for i, key := range cd.Keys() {
				nc.Set(key, cd.Values()[i])
			}
			nc.Set("function", nf)
			newCalls = append(newCalls, nc)
			k++
		}
		nm.Set("tool_calls", jinja.NewList(newCalls...))
		out = append(out, nm)
	}
	return jinja.NewList(out...)
}

// TestToolResultThroughMiniMaxTemplates normalizes OpenAI-style
// conversations with an assistant tool call and a tool result and renders
// them with MiniMax-M1's and Text-01's own templates: the prompts must equal
// the golden ones.
func TestToolResultThroughMiniMaxTemplates(t *testing.T) {
	raw := map[string]*Request{}
	for _, c := range readCases(t, "vllm_minimax_m1_tool") {
		raw[c.ID] = c.req
	}
	for _, name := range []string{"minimax_m1", "minimax_m1_pr18", "minimax_text01"} {
		tmpl := loadGoldenTemplate(t, name)
		n := 0
		for _, c := range readCases(t, name) {
			conv, _ := c.raw.Get("conversation")
			if !strings.HasPrefix(conv.(string), "tool_") || c.Rendered == nil {
				continue
			}
			req := *raw[c.ID]
			msgs, err := NormalizeMessages(req.Messages, tmpl.Format)
			if err != nil {
				t.Fatal(err)
			}
			req.Messages = msgs
			out, err := tmpl.Render(&req)
			if err != nil {
				t.Fatalf("%s %s: %v", name, c.ID, err)
			}
			if out != *c.Rendered {
				t.Errorf("%s %s:\n got: %q\nwant: %q", name, c.ID, out, *c.Rendered)
			}
			n++
		}
		if n < 6 {
			t.Errorf("%s: only %d tool conversations", name, n)
		}
	}
}

// parseExamples follow vLLM's minimax tool parser: one JSON object per line
// inside <tool_calls>, invalid lines skipped, calls inside <think> ignored,
// content = stripped text before the block. Beyond vLLM, a call may be laid
// out over several lines (any valid JSON layout).
var parseExamples = []struct {
	name   string
	output string
	want   Parsed
}{
	{"no calls", "Just text.\n", Parsed{Content: "Just text."}},
	{"one call", "<think>\nneed weather\n</think>\n\nLet me check.\n<tool_calls>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"上海\", \"days\": 2.0}}\n</tool_calls>",
		Parsed{Content: "<think>\nneed weather\n</think>\n\nLet me check.", Calls: []ToolCall{{"get_weather", `{"city": "上海", "days": 2.0}`}}}},
	{"two calls and junk", "<tool_calls>\n{\"name\": \"a\", \"arguments\": {}}\nnot json\n{\"name\": \"b\"}\n{bad json}\n  {\"name\": \"c\", \"arguments\": \"{\\\"x\\\": 1}\"}  \n</tool_calls>\nDone.",
		Parsed{After: "Done.", Calls: []ToolCall{{"a", "{}"}, {"c", `{"x": 1}`}}}},
	{"inside think", "<think>maybe <tool_calls>\n{\"name\": \"x\", \"arguments\": {}}\n</tool_calls></think>ok",
		Parsed{Content: "<think>maybe <tool_calls>\n{\"name\": \"x\", \"arguments\": {}}\n</tool_calls></think>ok"}},
	{"unterminated", "pre <tool_calls>\n{\"name\": \"f\", \"arguments\": {\"k\": [1, 2]}}",
		Parsed{Content: "pre", Calls: []ToolCall{{"f", `{"k": [1, 2]}`}}}},
	{"single line block", "<tool_calls>{\"name\": \"f\", \"arguments\": {}}</tool_calls>",
		Parsed{Calls: []ToolCall{{"f", "{}"}}}},
	{"partial tag at end", "text <tool_ca", Parsed{Content: "text <tool_ca"}},
	{"pretty-printed", "<tool_calls>\n{\n  \"name\": \"get_weather\",\n  \"arguments\": {\n    \"city\": \"Paris\"\n  }\n}\n\n\n   {\"name\": \"b\",\n\"arguments\": {}}</tool_calls>",
		Parsed{Calls: []ToolCall{{"get_weather", `{"city": "Paris"}`}, {"b", "{}"}}}},
	{"unbalanced line, then a call", "<tool_calls>\n{\"name\": \"a\", \"arguments\": {}\n{\"name\": \"b\", \"arguments\": {}}\n</tool_calls>",
		Parsed{Calls: []ToolCall{{"b", "{}"}}}},
	{"raw newline in a string, then a call", "<tool_calls>\n{\"name\": \"a\", \"arguments\": {\"x\": \"1\n{\"name\": \"b\", \"arguments\": {\"y\": \"}\"}}\n</tool_calls>",
		Parsed{Calls: []ToolCall{{"b", `{"y": "}"}`}}}},
	{"unterminated pretty-printed", "<tool_calls>\n{\"name\": \"f\",\n \"arguments\": {\"k\": 1}\n}",
		Parsed{Calls: []ToolCall{{"f", `{"k": 1}`}}}},
}

func TestParseToolCalls(t *testing.T) {
	for _, ex := range parseExamples {
		got := ParseToolCalls(ex.output)
		if !reflect.DeepEqual(got, ex.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", ex.name, got, ex.want)
		}
	}
}

// TestStreamMatchesParse feeds each example in random chunks: the
// concatenated text and calls must equal the batch result, and at every
// step the emitted text must be a prefix of the final text.
func TestStreamMatchesParse(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, ex := range parseExamples {
		for trial := 0; trial < 50; trial++ {
			checkStream(t, ex.output, rng)
		}
	}
}

func checkStream(t *testing.T, output string, rng *rand.Rand) {
	t.Helper()
	var s Stream
	var text strings.Builder
	var calls []ToolCall
	for rest := output; rest != ""; {
		n := 1 + rng.Intn(8)
		if n > len(rest) {
			n = len(rest)
		}
		tx, cs := s.Push(rest[:n])
		text.WriteString(tx)
		calls = append(calls, cs...)
		rest = rest[n:]
	}
	tx, cs := s.Close()
	text.WriteString(tx)
	calls = append(calls, cs...)
	var whole Stream
	wt, wc := whole.Push(output)
	wt2, wc2 := whole.Close()
	if text.String() != wt+wt2 || !reflect.DeepEqual(calls, append(wc, wc2...)) {
		t.Fatalf("chunked stream differs from one push for %q:\n %q %+v\n %q %+v", output, text.String(), calls, wt+wt2, append(wc, wc2...))
	}
	p := ParseToolCalls(output)
	if !reflect.DeepEqual(calls, p.Calls) {
		t.Fatalf("stream calls %+v, parse %+v", calls, p.Calls)
	}
}

// TestSafeTextLen: as an output grows, the safe length never shrinks, and
// once a tool-call block opens (outside <think>) it stops at the tag.
func TestSafeTextLen(t *testing.T) {
	for _, ex := range parseExamples {
		prev := 0
		for i := 0; i <= len(ex.output); i++ {
			n := SafeTextLen(ex.output[:i])
			if n < prev || n > i {
				t.Fatalf("%s: SafeTextLen of %d bytes = %d (previous %d)", ex.name, i, n, prev)
			}
			prev = n
		}
		if len(ex.want.Calls) > 0 {
			if tag := strings.Index(ex.output, toolCallsOpen); prev != tag {
				t.Errorf("%s: final safe length %d, want the tag offset %d", ex.name, prev, tag)
			}
		}
	}
	for s, want := range map[string]int{"abc <tool": 4, "abc <": 4, "abc <x": 6, "<think><tool_calls>": 19} {
		if n := SafeTextLen(s); n != want {
			t.Errorf("SafeTextLen(%q) = %d, want %d", s, n, want)
		}
	}
}

// TestFormatToolCallsRoundTrip: FormatToolCalls output parses back.
func TestFormatToolCallsRoundTrip(t *testing.T) {
	calls := []ToolCall{{"get_weather", `{"city": "Paris", "unit": "celsius"}`}, {"noop", "{}"}}
	got := ParseToolCalls("ok\n" + FormatToolCalls(calls))
	if !reflect.DeepEqual(got.Calls, calls) || got.Content != "ok" {
		t.Errorf("got %+v", got)
	}
}

// FuzzStream: any chunking of any output gives the batch result.
func FuzzStream(f *testing.F) {
	for _, ex := range parseExamples {
		f.Add(ex.output, int64(1))
	}
	f.Fuzz(func(t *testing.T, output string, seed int64) {
		checkStream(t, output, rand.New(rand.NewSource(seed)))
		if n := SafeTextLen(output); n > len(output) {
			t.Fatalf("SafeTextLen %d > len %d", n, len(output))
		}
	})
}

// BenchmarkStreamLongCall streams a 64 KiB argument one 4-byte token at a
// time; the cost must stay linear in the output length.
func BenchmarkStreamLongCall(b *testing.B) {
	out := "<tool_calls>\n{\"name\": \"write\", \"arguments\": {\"text\": \"" + strings.Repeat("abcd", 16<<10) + "\"}}\n</tool_calls>"
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		var s Stream
		for i := 0; i < len(out); i += 4 {
			s.Push(out[i:min(i+4, len(out))])
		}
		s.Close()
	}
}
