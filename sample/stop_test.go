package sample

import (
	"fmt"
	"strings"
	"testing"
)

func TestStopFind(t *testing.T) {
	cases := []struct {
		stops     []string
		text      string
		from      int
		pos, stop int
	}{
		{nil, "anything", 0, -1, -1},
		{[]string{"</s>"}, "hello</s>world", 0, 5, 0},
		{[]string{"</s>"}, "hello</s", 0, -1, -1},
		{[]string{"ab", "bc"}, "xabc", 0, 1, 0},     // overlapping stops: earliest start wins
		{[]string{"bc", "ab"}, "xabc", 0, 1, 1},     // regardless of list order
		{[]string{"abc", "b"}, "abc", 0, 0, 0},      // the longer one starts first
		{[]string{"b", "abc"}, "abc", 0, 0, 1},      //
		{[]string{"</s>", "</s"}, "a</s>", 0, 1, 0}, // same start: lowest index
		{[]string{"</s", "</s>"}, "a</s>", 0, 1, 0}, //
		{[]string{"aab"}, "aaab", 0, 1, 0},          // self-overlap
		{[]string{"aa"}, "aaaa", 0, 0, 0},           //
		{[]string{"aa"}, "aaaa", 1, 1, 0},           // from inside a match
		{[]string{"xy", "yz"}, "xyz", 1, 1, 1},      // a match before from is ignored
		{[]string{"\n\n", "User:"}, "ok\nUser:\n\n", 0, 3, 1},
		{[]string{"é"}, "café", 0, 3, 0}, // bytes, not runes
	}
	for _, c := range cases {
		m, err := NewStopMatcher(c.stops)
		if err != nil {
			t.Fatal(err)
		}
		if pos, stop := m.Find(c.text, c.from); pos != c.pos || stop != c.stop {
			t.Errorf("%q in %q from %d: (%d, %d), want (%d, %d)", c.stops, c.text, c.from, pos, stop, c.pos, c.stop)
		}
	}
}

func TestStopHoldback(t *testing.T) {
	cases := []struct {
		stops []string
		text  string
		want  int
	}{
		{nil, "abc", 0},
		{[]string{"</s>"}, "hello", 0},
		{[]string{"</s>"}, "hello<", 1},
		{[]string{"</s>"}, "hello</", 2},
		{[]string{"</s>"}, "hello</s", 3},
		{[]string{"</s>"}, "hello</s>", 0}, // a complete stop is Find's business
		{[]string{"</s>"}, "</", 2},
		{[]string{"aab"}, "xaa", 2},
		{[]string{"aab"}, "aaa", 2}, // "aa" is a prefix; "aaa" is not
		{[]string{"abcd", "cx"}, "zabc", 3},
		{[]string{"cx", "abcd"}, "zabc", 3}, // the longest over all stops
		{[]string{"ab"}, "", 0},
	}
	for _, c := range cases {
		m, err := NewStopMatcher(c.stops)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Holdback(c.text); got != c.want {
			t.Errorf("%q holdback of %q = %d, want %d", c.stops, c.text, got, c.want)
		}
	}
}

func TestStopEmpty(t *testing.T) {
	if _, err := NewStopMatcher([]string{"a", ""}); err == nil || !strings.Contains(err.Error(), "stop string 1") {
		t.Errorf("empty stop string: err = %v", err)
	}
}

// stream runs the streaming protocol of the StopMatcher doc comment over the
// chunks and returns what was sent. It fails if the release point moves
// backwards or a stop lands inside bytes already sent.
func stream(t testing.TB, m *StopMatcher, chunks []string) (sent string, stopped bool) {
	var text string
	n := 0
	for _, ch := range chunks {
		text += ch
		stop, safe := m.Next(text, n)
		if safe < n {
			t.Fatalf("release point moved back from %d to %d in %q", n, safe, text)
		}
		n = safe
		if stop >= 0 {
			return text[:stop], true
		}
	}
	if i, _ := m.Find(text, n); i >= 0 {
		if i < n {
			t.Fatalf("stop at %d inside bytes already sent (%d)", i, n)
		}
		return text[:i], true
	}
	return text, false
}

// checkStream compares streaming over chunks with the whole-text answer:
// the output is the text up to the first stop occurrence (earliest start
// over all stop strings), or all of it.
func checkStream(t testing.TB, stops []string, chunks []string) {
	m, err := NewStopMatcher(stops)
	if err != nil {
		return
	}
	full := strings.Join(chunks, "")
	want, wantStop := full, false
	for _, s := range stops {
		if i := strings.Index(full, s); i >= 0 && (!wantStop || i < len(want)) {
			want, wantStop = full[:i], true
		}
	}
	got, stopped := stream(t, m, chunks)
	if got != want || stopped != wantStop {
		t.Fatalf("stops %q chunks %q: sent %q (stopped %v), want %q (%v)", stops, chunks, got, stopped, want, wantStop)
	}
}

func TestStopStreaming(t *testing.T) {
	stops := []string{"</s>", "<|im_end|>", "aab", "\n\n"}
	texts := []string{
		"hello world",
		"hello </s> world",
		"<|im_<|im_end|>",
		"aaab",
		"aaaaab trailing",
		"one\ntwo\n\nthree",
		"</ </s </s>",
	}
	for _, text := range texts {
		for size := 1; size <= 4; size++ { // every chunking into pieces of up to size bytes
			var chunks []string
			for i := 0; i < len(text); i += size {
				chunks = append(chunks, text[i:min(i+size, len(text))])
			}
			checkStream(t, stops, chunks)
		}
	}
}

// FuzzStopMatcher streams fuzzed text in fuzzed chunk sizes against two
// fuzzed stop strings and checks the result against strings.Index on the
// whole text.
func FuzzStopMatcher(f *testing.F) {
	f.Add("hello </s> world", "</s>", "aab", uint64(0x1234))
	f.Add("aaab", "aab", "ab", uint64(7))
	f.Add("xxabcx", "abcd", "cx", uint64(99))
	f.Fuzz(func(t *testing.T, text, s1, s2 string, cuts uint64) {
		var chunks []string
		for len(text) > 0 {
			n := min(len(text), int(cuts%5)) // chunks of 0..4 bytes
			cuts = cuts/5 + 1
			chunks = append(chunks, text[:n])
			text = text[n:]
		}
		checkStream(t, []string{s1, s2}, chunks)
	})
}

// The streaming loop a server runs (see StopMatcher).
func ExampleStopMatcher() {
	m, _ := NewStopMatcher([]string{"</s>"})
	var text string
	sent := 0
	for _, piece := range []string{"Hi", " there<", "/s", ">junk"} {
		text += piece
		if i, _ := m.Find(text, sent); i >= 0 {
			fmt.Printf("send %q, stop\n", text[sent:i])
			break
		}
		safe := len(text) - m.Holdback(text)
		fmt.Printf("send %q\n", text[sent:safe])
		sent = safe
	}
	// Output:
	// send "Hi"
	// send " there"
	// send ""
	// send "", stop
}
