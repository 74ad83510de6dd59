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

// TestToolNeed checks need, the bytes that close a block, against a
// breadth-first search for the shortest completion that the recognizer
// accepts, over every byte that the format's literals, the names and JSON
// use, at every other prefix of a few outputs.
func TestToolNeed(t *testing.T) {
	required := toolGrammar{names: []string{"get_weather", "ab"}, multi: true}
	alphabet := map[byte]bool{}
	for _, s := range append([]string{toolCallsStart, toolCallArgs, toolCallEnd, toolCallsEnd, "0123456789abcdefABCDEF\"\\/:,{}[]-+.eE truefalsenull\t\r"}, required.names...) {
		for i := range len(s) {
			alphabet[s[i]] = true
		}
	}
	outs := []string{
		"<tool_calls>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Pa\\u00e9\\\\s\", \"n\": [1.5e-3, -0, true, {\"k\": null}]}}\n{\"name\": \"ab\", \"arguments\": {}}\n</tool_calls>",
		"<tool_calls>\n{\"name\": \"ab\", \"arguments\": { \"x\": [ ] , \"y\" : 12 }}\n</tool_calls>",
	}
	for _, out := range outs {
		st := toolState{phase: tpLiteral, lit: toolCallsStart, next: tpName}
		for i := 0; i <= len(out); i++ {
			if i%2 == 0 || i == len(out) {
				if got, want := st.need(&required), shortestClose(t, &required, &st, alphabet); got != want {
					t.Errorf("after %q: need %d, shortest completion %d", out[:i], got, want)
				}
			}
			if i < len(out) && !st.feed(&required, out[i]) {
				t.Fatalf("%q rejected at %d", out, i)
			}
		}
	}
}

// shortestClose returns the length of the shortest string over alphabet
// that takes st to the closed block (breadth-first over states, each
// visited once).
func shortestClose(t *testing.T, g *toolGrammar, st *toolState, alphabet map[byte]bool) int {
	t.Helper()
	key := func(s *toolState) string {
		a := &s.args
		return string(append(append(append([]byte{byte(s.phase), byte(s.next), byte(s.space), byte(a.mode), byte(a.num), a.hex}, s.name...), '|'), a.stack...)) +
			"|" + s.lit + "|" + a.lit + map[bool]string{true: "|k"}[a.key]
	}
	var start toolState
	start.copyFrom(st)
	maxDepth := max(len(start.args.stack), 1)
	frontier := []toolState{start}
	seen := map[string]bool{key(&start): true}
	for depth := 0; depth < 200; depth++ {
		var next []toolState
		for i := range frontier {
			if frontier[i].phase == tpDone {
				return depth
			}
			for c := range alphabet {
				var s toolState
				s.copyFrom(&frontier[i])
				// Opening a container adds at least its two brackets, so a
				// shortest completion opens none beyond the arguments' own;
				// pruning those keeps the search from growing exponentially.
				if s.feed(g, c) && len(s.args.stack) <= maxDepth && !seen[key(&s)] {
					seen[key(&s)] = true
					next = append(next, s)
				}
			}
		}
		frontier = next
	}
	t.Fatal("no completion within 200 bytes")
	return -1
}
