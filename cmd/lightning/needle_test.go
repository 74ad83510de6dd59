package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/evalset/passkey"
	"github.com/lightninglm/lightning/server"
	"github.com/lightninglm/lightning/tokenizer"
)

// TestFitGroups compares the search with a brute-force scan on a count that
// grows unevenly, from guesses below, at and above the answer.
func TestFitGroups(t *testing.T) {
	calls := 0
	count := func(g int) int { calls++; return 40 + 20*g + (g*7)%3 }
	for limit := 0; limit < 3000; limit += 13 {
		want := -1
		for g := 0; count(g) <= limit; g++ {
			want = g
		}
		for _, guess := range []int{0, 1, 5, 50, 140, 500} {
			calls = 0
			got, ok := fitGroups(count, limit, guess)
			if ok != (want >= 0) || ok && got != want {
				t.Fatalf("limit %d guess %d: got %d %v, want %d", limit, guess, got, ok, want)
			}
			if calls > 30 {
				t.Errorf("limit %d guess %d: %d counts", limit, guess, calls)
			}
		}
	}
}

func qwenTokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := loadTokenizer(qwenModel(t))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func ints(ids []int32) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}

func encodeIDs(tok *tokenizer.Tokenizer, s string) []int32 {
	var out []int32
	for _, id := range tok.Encode(s, true) {
		out = append(out, int32(id))
	}
	return out
}

// TestNeedleGrid checks the prompts of a grid against the tokenizer: the
// order of the cells, that each prompt is the longest within its limit, and,
// read back from the token ids, where the needle sits.
func TestNeedleGrid(t *testing.T) {
	tok := qwenTokenizer(t)
	encode := func(s string) []int32 { return encodeIDs(tok, s) }
	limit := func(length int) int { return min(length, 290) } // as a 290-token model context would cap it
	lengths, depths := []int{120, 300}, []float64{0, 0.3, 1}
	cases, err := needleGrid(lengths, depths, 2, 5, limit, encode)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 12 {
		t.Fatalf("%d cases, want 12", len(cases))
	}
	for i, c := range cases {
		if c.Length != lengths[i/6] || c.Depth != depths[i/2%3] {
			t.Errorf("case %d is (%d, %v), want (%d, %v)", i, c.Length, c.Depth, lengths[i/6], depths[i/2%3])
		}
		if c.Key < 10000 || c.Key > 99999 {
			t.Errorf("case %d: key %d", i, c.Key)
		}
		lim := limit(c.Length)
		if !slices.Equal(c.ids, encode(passkey.Prompt(c.Key, c.Depth, c.Groups))) || c.Tokens != len(c.ids) || c.Tokens > lim {
			t.Errorf("case %d: %d tokens for %d groups, limit %d", i, c.Tokens, c.Groups, lim)
		}
		if more := len(encode(passkey.Prompt(c.Key, c.Depth, c.Groups+1))); more <= lim {
			t.Errorf("case %d: %d groups give %d tokens, but %d groups still fit (%d tokens)", i, c.Groups, c.Tokens, c.Groups+1, more)
		}
		// Placement, read from the prompt the model gets.
		text := tok.Decode(ints(c.ids), true)
		needle := fmt.Sprintf("The pass key is %d. Remember it. %d is the pass key.", c.Key, c.Key)
		at := strings.Index(text, needle)
		if at < 0 || !strings.HasPrefix(text, passkey.Intro) || !strings.HasSuffix(text, passkey.Question) {
			t.Fatalf("case %d: prompt %q", i, text)
		}
		before, after := strings.Count(text[:at], "The grass is green."), strings.Count(text[at:], "The grass is green.")
		wantBefore := int(c.Depth*float64(before+after) + 0.5)
		if before+after != c.Groups || before != wantBefore {
			t.Errorf("case %d (depth %v): %d groups before the needle and %d after, want %d of %d before", i, c.Depth, before, after, wantBefore, c.Groups)
		}
	}
	if cases[6].Tokens > 290 || cases[6].Tokens < 270 {
		t.Errorf("length 300 capped at 290: prompt of %d tokens", cases[6].Tokens)
	}
	again, _ := needleGrid(lengths, depths, 2, 5, limit, encode)
	other, _ := needleGrid(lengths, depths, 2, 6, limit, encode)
	if !slices.EqualFunc(cases, again, func(a, b needleCase) bool { return a.Key == b.Key }) ||
		slices.EqualFunc(cases, other, func(a, b needleCase) bool { return a.Key == b.Key }) {
		t.Error("keys do not follow the seed")
	}
	if _, err := needleGrid([]int{20}, depths, 1, 1, limit, encode); err == nil || !strings.Contains(err.Error(), "length 20") {
		t.Errorf("a length shorter than the bare prompt: %v", err)
	}
}

// TestSummarizeNeedle scores given continuations and checks the counts per
// cell, per length and overall, worked out by hand.
func TestSummarizeNeedle(t *testing.T) {
	mk := func(length int, depth float64, key, tokens int, cont string) needleCase {
		return needleCase{Length: length, Depth: depth, Key: key, Tokens: tokens, Groups: tokens / 20, Continuation: cont, Hit: passkey.Hit(cont, key)}
	}
	cases := []needleCase{
		mk(100, 0, 12345, 95, " 12345."),             // hit
		mk(100, 0, 12345, 97, " 123456"),             // miss: a digit too many
		mk(100, 1, 55555, 96, " 55555 is"),           // hit
		mk(100, 1, 55555, 99, " 5555 5."),            // miss
		mk(200, 0, 10000, 180, "10000"),              // hit
		mk(200, 0, 10001, 190, " 10002, not 10001."), // miss: the first number counts
		mk(200, 1, 77777, 185, " is 77777"),          // hit
		mk(200, 1, 77777, 185, " 77777."),            // hit
	}
	r := summarizeNeedle(cases, []int{100, 200}, []float64{0, 1}, func(l int) int { return min(l, 150) })
	type cellWant struct{ hits, n int }
	want := [][]cellWant{{{1, 2}, {1, 2}}, {{1, 2}, {2, 2}}}
	for i, row := range r.Lengths {
		for j, c := range row.Cells {
			if c.Hits != want[i][j].hits || c.N != want[i][j].n || c.Accuracy != float64(c.Hits)/float64(c.N) {
				t.Errorf("length %d depth %v: %+v, want %+v", row.Length, c.Depth, c, want[i][j])
			}
		}
	}
	l0, l1 := r.Lengths[0], r.Lengths[1]
	if l0.Hits != 2 || l0.N != 4 || l0.Accuracy != 0.5 || l1.Hits != 3 || l1.Accuracy != 0.75 || r.Hits != 5 || r.N != 8 || r.Accuracy != 5.0/8 {
		t.Errorf("totals: %+v %+v %d/%d", l0, l1, r.Hits, r.N)
	}
	if l0.TokensMin != 95 || l0.TokensMax != 99 || l1.TokensMin != 180 || l1.TokensMax != 190 || l0.Limit != 100 || l1.Limit != 150 ||
		l1.GroupsMin != 9 || l1.GroupsMax != 9 || l0.GroupsMin != 4 {
		t.Errorf("sizes: %+v %+v", l0, l1)
	}
	var b strings.Builder
	r.writeTable(&b)
	if !strings.Contains(b.String(), "95–99") || !strings.Contains(b.String(), "75.0") || !strings.Contains(b.String(), "5 of 8 prompts right (62.5%)") {
		t.Errorf("table:\n%s", b.String())
	}
}

// svgCells parses an SVG fully (so it must be well-formed XML) and returns
// its texts and the tooltips of its cells.
func svgCells(t *testing.T, svg string) (texts, titles []string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	var stack []string
	for {
		tk, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch v := tk.(type) {
		case xml.StartElement:
			stack = append(stack, v.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && stack[len(stack)-1] == "title" {
				titles = append(titles, string(v))
			} else if len(stack) > 0 && (stack[len(stack)-1] == "text" || stack[len(stack)-1] == "tspan") {
				texts = append(texts, string(v))
			}
		}
	}
	return texts, titles
}

// TestNeedleCommand runs the command on a tiny random model with a real
// tokenizer, then checks the table, the JSON, one continuation against the
// generate command on the same prompt, and the heat map.
func TestNeedleCommand(t *testing.T) {
	dir := qwenModel(t)
	tmp := t.TempDir()
	svgPath, jsonPath := filepath.Join(tmp, "h.svg"), filepath.Join(tmp, "r.json")
	out, stderr, code := runCLI(t, "needle", "-model", dir, "-lengths", "100,200", "-depths", "0,1", "-per-cell", "2", "-n", "4",
		"-seed", "3", "-parallel", "3", "-o", svgPath, "-json", jsonPath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "prompt tokens") || !strings.Contains(out, "overall: ") || strings.Count(out, "\n") != 5 {
		t.Errorf("table:\n%s", out)
	}
	if !strings.Contains(stderr, "ETA") || !strings.Contains(stderr, "length 200:") {
		t.Errorf("stderr: %s", stderr)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep needleReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Cases) != 8 || len(rep.Lengths) != 2 || len(rep.Lengths[0].Cells) != 2 || rep.Lengths[1].Cells[1].N != 2 || rep.Model != "model" {
		t.Fatalf("report: %+v", rep)
	}
	tok := qwenTokenizer(t)
	stops := server.DefaultStopTokens(tok)
	for i, c := range rep.Cases {
		if c.Tokens > c.Length || c.Hit != passkey.Hit(c.Continuation, c.Key) {
			t.Errorf("case %d: %+v", i, c)
		}
		if i%3 != 0 {
			continue
		}
		// The same prompt through 'generate' (greedy, one sequence alone).
		ids := encodeIDs(tok, passkey.Prompt(c.Key, c.Depth, c.Groups))
		gen, stderr, code := runCLI(t, "generate", "-model", dir, "-ids", joinIDs(ints(ids)), "-n", "4")
		if code != 0 {
			t.Fatalf("generate: %s", stderr)
		}
		var want []int
		for _, f := range strings.Split(strings.TrimSpace(gen), ",") {
			var id int
			fmt.Sscan(f, &id)
			if slices.Contains(stops, int32(id)) {
				break
			}
			want = append(want, id)
		}
		if got := tok.Decode(want, true); got != c.Continuation || len(ids) != c.Tokens {
			t.Errorf("case %d: continuation %q (%d prompt tokens), generate gives %q (%d)", i, c.Continuation, c.Tokens, got, len(ids))
		}
	}
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	texts, titles := svgCells(t, string(svg))
	if len(titles) != 2*3 || !strings.Contains(titles[0], "length 100, depth 0:") || !strings.Contains(titles[5], "length 200, all depths") {
		t.Errorf("cell titles %q", titles)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"Passkey retrieval: model", "needle depth", "context length", "100%", "all"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG lacks %q: %s", want, all)
		}
	}
}

func TestNeedleErrors(t *testing.T) {
	dir := qwenModel(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-depths", "0,1.5"}, 2, `"1.5"`},
		{[]string{"-lengths", "100,x"}, 2, `"x"`},
		{[]string{"-lengths", "100,100"}, 2, "twice"},
		{[]string{"-lengths", "10"}, 2, "length 10"},
		{[]string{"-per-cell", "0"}, 2, "-per-cell"},
	} {
		_, stderr, code := runCLI(t, append([]string{"needle", "-model", dir}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %s", c.args, code, stderr, c.code, c.want)
		}
	}
}
