package chat

import "strings"

// ReasoningSplitter separates a reply's thinking from its answer as text
// streams in. MiniMax-M1 (like other reasoning models) opens its reply with
// "<think>", thinks, and closes with "</think>" before the answer. A reply
// that, after leading whitespace, opens with "<think>" has everything up to
// "</think>" as reasoning, newlines next to the tags trimmed; a reply that
// opens otherwise is all answer. A reply cut off while thinking is all
// reasoning, so streaming and whole-text splits always agree.
//
// The zero value is ready. Feed it the reply's text in pieces of any size,
// then call Flush once.
type ReasoningSplitter struct {
	state   reasoningState
	pending strings.Builder // text held back until it can be classified
}

type reasoningState uint8

const (
	reasoningUndecided   reasoningState = iota // before the first non-space text
	reasoningStart                             // after <think>: newlines are still trimmed
	reasoningInside                            // thinking, before </think>
	reasoningAnswerStart                       // after </think>: newlines are still trimmed
	reasoningAnswer                            // the rest is answer
)

// Feed takes the next piece of the reply and returns the reasoning and
// answer text it completes. Text that might still turn out to be part of a
// tag, or newlines next to one, is held back until a later Feed or Flush.
func (r *ReasoningSplitter) Feed(text string) (reasoning, answer string) {
	if r.state == reasoningAnswer {
		return "", text
	}
	r.pending.WriteString(text)
	s := r.pending.String()
	r.pending.Reset()
	var rb, ab strings.Builder
	for s != "" {
		switch r.state {
		case reasoningUndecided:
			t := strings.TrimLeft(s, " \t\r\n")
			switch {
			case strings.HasPrefix(t, thinkOpen):
				r.state = reasoningStart
				s = t[len(thinkOpen):]
			case strings.HasPrefix(thinkOpen, t): // "", or a prefix of the tag
				r.pending.WriteString(s)
				return rb.String(), ab.String()
			default:
				r.state = reasoningAnswer
				ab.WriteString(s)
				s = ""
			}
		case reasoningStart:
			s = strings.TrimLeft(s, "\r\n")
			if s != "" {
				r.state = reasoningInside
			}
		case reasoningInside:
			if i := strings.Index(s, thinkClose); i >= 0 {
				rb.WriteString(strings.TrimRight(s[:i], "\r\n"))
				r.state = reasoningAnswerStart
				s = s[i+len(thinkClose):]
				continue
			}
			// Hold back a possible start of </think> and the newlines
			// before it.
			keep := len(s) - len(strings.TrimRight(s[:len(s)-partialSuffix([]byte(s), thinkClose)], "\r\n"))
			rb.WriteString(s[:len(s)-keep])
			r.pending.WriteString(s[len(s)-keep:])
			return rb.String(), ab.String()
		case reasoningAnswerStart:
			s = strings.TrimLeft(s, "\r\n")
			if s != "" {
				r.state = reasoningAnswer
			}
		case reasoningAnswer:
			ab.WriteString(s)
			s = ""
		}
	}
	return rb.String(), ab.String()
}

// Flush returns the text still held back at the end of the reply: answer
// text if the reply never opened a think block, else reasoning (an
// unfinished "</think>" or newlines at the end of cut-off thinking are
// dropped, as the whole-text split drops them).
func (r *ReasoningSplitter) Flush() (reasoning, answer string) {
	s := r.pending.String()
	r.pending.Reset()
	switch r.state {
	case reasoningUndecided:
		return "", s
	case reasoningStart, reasoningInside:
		s = s[:len(s)-partialSuffix([]byte(s), thinkClose)]
		return strings.TrimRight(s, "\r\n"), ""
	}
	return "", ""
}

// SplitReasoning splits a whole reply as ReasoningSplitter does.
func SplitReasoning(reply string) (reasoning, answer string) {
	var r ReasoningSplitter
	reasoning, answer = r.Feed(reply)
	fr, fa := r.Flush()
	return reasoning + fr, answer + fa
}
