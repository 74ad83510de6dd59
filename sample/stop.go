package sample

import (
	"fmt"
	"strings"
)

// StopMatcher finds stop strings in generated text. It works on bytes; the
// caller keeps incomplete UTF-8 sequences back on its own.
//
// A streaming caller keeps the text generated so far and the number of bytes
// already sent, and after appending each token's text does:
//
//	stop, safe := m.Next(text, sent)
//	send(text[sent:safe])
//	sent = safe
//	if stop >= 0 {
//		return // the stop string and what follows are dropped
//	}
//
// and when generation ends for another reason cuts the rest at
// m.Find(text, sent) (if found) and sends it. The result does not depend on
// how the text was split into tokens: it is always the text before the
// earliest occurrence of any stop string.
type StopMatcher struct {
	stops []string
}

// NewStopMatcher returns a matcher for stops. A nil or empty list gives a
// matcher that never stops. It returns an error for an empty stop string,
// which would match before any text.
func NewStopMatcher(stops []string) (*StopMatcher, error) {
	for i, s := range stops {
		if s == "" {
			return nil, fmt.Errorf("sample: stop string %d is empty", i)
		}
	}
	return &StopMatcher{stops: append([]string(nil), stops...)}, nil
}

// Find returns the smallest offset i ≥ from at which a stop string occurs in
// text, and the index in the stop list of that string (the lowest index if
// several start at i), or (-1, -1). Occurrences may overlap each other and
// from: the whole stop string must lie in text[from:].
func (m *StopMatcher) Find(text string, from int) (i, which int) {
	i, which = -1, -1
	rest := text[from:]
	for k, s := range m.stops {
		r := rest
		if i >= 0 { // only an occurrence starting before i can win
			r = rest[:min(len(rest), i-1+len(s))]
		}
		if j := strings.Index(r, s); j >= 0 {
			i, which = j, k
		}
	}
	if i >= 0 {
		i += from
	}
	return i, which
}

// Next is one streaming step (see the type's doc): given the text so far
// and how much of it was sent, it returns the stop position (or -1) and how
// far it is safe to send. A stop string found at i is only final when no
// other stop string can still complete at an earlier offset, i.e. when no
// proper prefix of a stop string starts before i at the end of the text;
// otherwise the caller waits for more text.
func (m *StopMatcher) Next(text string, sent int) (stop, safe int) {
	safe = max(len(text)-m.Holdback(text), sent)
	if i, _ := m.Find(text, sent); i >= 0 && i <= safe {
		return i, i
	}
	return -1, safe
}

// Holdback returns the length of the longest suffix of text that is a proper
// prefix of some stop string: the bytes that must not be sent yet because the
// next token may complete a stop string that starts there.
func (m *StopMatcher) Holdback(text string) int {
	best := 0
	for _, s := range m.stops {
		for n := min(len(s)-1, len(text)); n > best; n-- {
			if strings.HasSuffix(text, s[:n]) {
				best = n
				break
			}
		}
	}
	return best
}
