package chat

import (
	"math/rand/v2"
	"testing"
)

var reasoningCases = []struct {
	reply, reasoning, answer string
}{
	{"<think>\nLet me add.\n</think>\n\nIt is 4.", "Let me add.", "It is 4."},
	{"\n <think>a\n\nb</think>c", "a\n\nb", "c"},
	{"<think></think>answer", "", "answer"},
	{"<think>\ncut off while thinking\n", "cut off while thinking", ""},
	{"<think>\nstill at the tag </thi", "still at the tag ", ""},
	{"No thinking here. <think>x</think>", "", "No thinking here. <think>x</think>"},
	{"<thinking>is not the tag</thinking>", "", "<thinking>is not the tag</thinking>"},
	{"<thin", "", "<thin"},
	{"  \n", "", "  \n"},
	{"", "", ""},
	{"<think>a</think>\n\n<tool_calls>\n{}\n</tool_calls>", "a", "<tool_calls>\n{}\n</tool_calls>"},
	{"<think>a < b and </ c\n</think>\nyes\n\n", "a < b and </ c", "yes\n\n"},
	{"<think>a</think>b</think>c", "a", "b</think>c"},
}

func TestSplitReasoning(t *testing.T) {
	for _, c := range reasoningCases {
		r, a := SplitReasoning(c.reply)
		if r != c.reasoning || a != c.answer {
			t.Errorf("SplitReasoning(%q) = %q, %q; want %q, %q", c.reply, r, a, c.reasoning, c.answer)
		}
	}
}

// TestReasoningSplitterStreams feeds every case in random pieces (down to
// single bytes) and checks the streamed parts add up to the whole split.
func TestReasoningSplitterStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range reasoningCases {
		for trial := range 50 {
			var s ReasoningSplitter
			var r, a string
			for rest := c.reply; rest != ""; {
				n := 1 + rng.IntN(min(len(rest), 1+trial%7))
				pr, pa := s.Feed(rest[:n])
				r, a = r+pr, a+pa
				rest = rest[n:]
			}
			fr, fa := s.Flush()
			r, a = r+fr, a+fa
			if r != c.reasoning || a != c.answer {
				t.Fatalf("%q streamed: %q, %q; want %q, %q", c.reply, r, a, c.reasoning, c.answer)
			}
		}
	}
}
