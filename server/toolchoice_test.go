package server

import (
	"strings"
	"testing"

	"github.com/lightninglm/lightning/tokenizer/chat"
)

// TestToolGrammar feeds whole outputs byte by byte: accepted ones must be
// complete blocks that the tool-call parser reads back, and rejected ones
// must fail exactly where the format is broken.
func TestToolGrammar(t *testing.T) {
	named := toolGrammar{names: []string{"get_weather"}}
	required := toolGrammar{names: []string{"get_weather", "get_time"}, multi: true}
	cases := []struct {
		g     toolGrammar
		out   string
		ok    bool // every byte accepted
		done  bool // the block was closed when feeding ended
		calls []string
	}{
		{named, "<tool_calls>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_calls>", true, true, []string{"get_weather"}},
		{named, "<tool_calls>\n{\"name\": \"get_weather\", \"arguments\": {}}\n", true, false, nil},
		{named, "<tool_calls>\n{\"name\": \"get_weather\", \"arguments\": {\"a\": [1, {\"b\": null}]}}\n{", false, false, nil},
		{named, "<tool_calls>\n{\"name\": \"get_time\"", false, false, nil},
		{named, "<tool_calls>\n{\"name\": \"get_weather_now\"", false, false, nil},
		{named, "Sure! <tool_calls>", false, false, nil},
		{named, "<tool_calls>\n{\"name\": \"get_weather\", \"arguments\": [1]}", false, false, nil},
		{named, "<tool_calls>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_calls> more", false, true, nil}, // closed, then nothing more
		{required, "<tool_calls>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_calls>", true, true, []string{"get_time", "get_weather"}},
		{required, "<tool_calls>\n{\"name\": \"get_\", \"arguments\": {}}", false, false, nil},
	}
	for _, c := range cases {
		st := toolState{phase: tpLiteral, lit: toolCallsStart, next: tpName}
		ok := true
		for i := 0; i < len(c.out) && ok; i++ {
			ok = st.feed(&c.g, c.out[i])
		}
		if ok != c.ok || (st.phase == tpDone) != c.done {
			t.Errorf("%q: accepted %v, closed %v; want %v, %v", c.out, ok, st.phase == tpDone, c.ok, c.done)
			continue
		}
		if c.done && c.ok {
			var names []string
			for _, call := range chat.ParseToolCalls(c.out).Calls {
				names = append(names, call.Name)
			}
			if strings.Join(names, ",") != strings.Join(c.calls, ",") {
				t.Errorf("%q parses to calls %v, want %v", c.out, names, c.calls)
			}
		}
	}
}

// TestToolStateCopy checks that a copy is independent of its source (the
// constraint tries each token on a copy).
func TestToolStateCopy(t *testing.T) {
	g := toolGrammar{names: []string{"f"}}
	var a, b toolState
	a = toolState{phase: tpLiteral, lit: toolCallsStart, next: tpName}
	for _, c := range []byte("<tool_calls>\n{\"name\": \"f\", \"arguments\": {\"x\": [") {
		if !a.feed(&g, c) {
			t.Fatalf("rejected %q", c)
		}
	}
	b.copyFrom(&a)
	for _, c := range []byte("1]}}\n</tool_calls>") {
		if !b.feed(&g, c) {
			t.Fatalf("copy rejected %q", c)
		}
	}
	if b.phase != tpDone || a.phase != tpArgs || len(a.args.stack) != 2 {
		t.Errorf("copy %v, source %v with stack %q", b.phase, a.phase, a.args.stack)
	}
}
