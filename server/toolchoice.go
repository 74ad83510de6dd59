package server

import (
	"slices"
	"strings"
)

// Forced tool calls (tool_choice "required" or a named function): a
// byte-level recognizer constrains sampling to MiniMax's tool-call format,
//
//	<tool_calls>
//	{"name": "NAME", "arguments": {...}}
//	</tool_calls>
//
// with NAME one of the allowed functions and the arguments any JSON object;
// "required" allows further call lines before the closing tag. The stop
// tokens become allowed once the block is closed, and then only they.
//
// Only what a call needs is allowed: at most maxToolSpace whitespace bytes
// in a row inside the arguments (outside strings), and once the tokens left
// (max_tokens) are no more than the bytes the shortest way to close the
// block needs, only tokens that bring the close nearer. A token is at least
// one byte, so the block always closes within max_tokens when max_tokens
// covers the shortest call at all: a forced call cannot run on as
// whitespace, digits or a string until the length limit.

// toolPhase is where the recognizer is in the format.
type toolPhase uint8

const (
	tpLiteral toolPhase = iota // matching lit; then next
	tpName                     // the function name, up to its closing quote
	tpArgs                     // the arguments object (args)
	tpAfter                    // after a call line: another call or the closing tag
	tpDone                     // the block is closed
)

// maxToolSpace is the longest run of whitespace allowed between the
// arguments' tokens: one space after ':' or ',' is all a call needs.
const maxToolSpace = 1

const (
	toolCallsStart = "<tool_calls>\n" + toolCallHead
	toolCallHead   = `{"name": "`
	toolCallArgs   = `, "arguments": `
	toolCallEnd    = "}\n"
	toolCallsEnd   = "</tool_calls>"
)

// toolState is the recognizer's state.
type toolState struct {
	phase toolPhase
	lit   string    // literal bytes left (tpLiteral)
	next  toolPhase // phase after lit
	name  []byte    // name bytes so far (tpName)
	args  jsonState
	space int // whitespace bytes in a row inside the arguments, outside strings
}

// toolGrammar is what a request allows: the function names and whether
// more than one call may follow.
type toolGrammar struct {
	names []string
	multi bool
}

// feed consumes one byte; it reports false if the byte cannot continue the
// block.
func (s *toolState) feed(g *toolGrammar, c byte) bool {
	switch s.phase {
	case tpLiteral:
		if c != s.lit[0] {
			return false
		}
		if s.lit = s.lit[1:]; s.lit == "" {
			s.phase = s.next
			if s.phase == tpName {
				s.name = s.name[:0]
			}
		}
		return true
	case tpName:
		if c == '"' {
			if !slices.Contains(g.names, string(s.name)) {
				return false
			}
			s.phase, s.lit, s.next = tpLiteral, toolCallArgs, tpArgs
			s.args = jsonState{stack: s.args.stack[:0]}
			return true
		}
		s.name = append(s.name, c)
		for _, n := range g.names {
			if strings.HasPrefix(n, string(s.name)) {
				return true
			}
		}
		return false
	case tpArgs:
		if inString := s.args.mode == jsString || s.args.mode == jsEscape || s.args.mode == jsHex; inString || !isSpace(c) {
			s.space = 0
		} else if s.space++; s.space > maxToolSpace {
			return false
		}
		if !s.args.feed(c) {
			return false
		}
		if s.args.mode == jsDone {
			s.phase, s.lit, s.next = tpLiteral, toolCallEnd, tpAfter
		}
		return true
	case tpAfter:
		switch {
		case c == toolCallsEnd[0]:
			s.phase, s.lit, s.next = tpLiteral, toolCallsEnd[1:], tpDone
		case c == toolCallHead[0] && g.multi:
			s.phase, s.lit, s.next = tpLiteral, toolCallHead[1:], tpName
		default:
			return false
		}
		return true
	}
	return false
}

// need returns the fewest bytes that close the block from s: the shortest
// allowed name, empty arguments, the closing literals.
func (s *toolState) need(g *toolGrammar) int {
	const tail = len(toolCallEnd) + len(toolCallsEnd)  // "}\n</tool_calls>"
	const afterName = 1 + len(toolCallArgs) + 2 + tail // `", "arguments": {}` + tail
	switch s.phase {
	case tpLiteral:
		switch s.next {
		case tpName:
			return len(s.lit) + shortestName(g, nil) + afterName
		case tpArgs:
			return len(s.lit) + 2 + tail
		case tpAfter:
			return len(s.lit) + len(toolCallsEnd)
		}
		return len(s.lit)
	case tpName:
		return shortestName(g, s.name) - len(s.name) + afterName
	case tpArgs:
		return s.args.need() + tail
	case tpAfter:
		return len(toolCallsEnd)
	}
	return 0
}

// shortestName returns the length of the shortest allowed name starting
// with prefix (the grammar keeps prefix a prefix of one).
func shortestName(g *toolGrammar, prefix []byte) int {
	best := -1
	for _, n := range g.names {
		if len(n) >= len(prefix) && n[:len(prefix)] == string(prefix) && (best < 0 || len(n) < best) {
			best = len(n)
		}
	}
	return max(best, len(prefix))
}

// copyFrom makes s a copy of o, reusing s's memory.
func (s *toolState) copyFrom(o *toolState) {
	name := append(s.name[:0], o.name...)
	args := s.args
	args.copyFrom(&o.args)
	*s = *o
	s.name, s.args = name, args
}

// toolConstraint is an engine.Constraint forcing a tool-call block.
type toolConstraint struct {
	toks    *tokenBytes
	stops   []int32
	g       toolGrammar
	left    int // tokens the request may still generate
	need    int // st.need: bytes that close the block
	st      toolState
	scratch toolState
}

// newToolConstraint forces a block within maxTokens tokens.
func newToolConstraint(b *Backend, g toolGrammar, maxTokens int) *toolConstraint {
	c := &toolConstraint{toks: b.tokenTexts(), stops: b.StopTokens, g: g, left: maxTokens,
		st: toolState{phase: tpLiteral, lit: toolCallsStart, next: tpName}}
	c.need = c.st.need(&c.g)
	return c
}

// Allowed reports whether tok keeps the output a prefix of the block; stop
// tokens are allowed once it is closed, and then only they. A special
// token (say "<tool_calls>" in a vocabulary that has one) is allowed only
// as a whole part of a literal. When the tokens left after tok would not
// cover the bytes still needed to close the block, tok must shorten that
// need.
func (c *toolConstraint) Allowed(tok int32) bool {
	if slices.Contains(c.stops, tok) {
		return c.st.phase == tpDone
	}
	if int(tok) >= len(c.toks.text) {
		return false
	}
	text := c.toks.text[tok]
	if text == "" || c.toks.special[tok] && !(c.st.phase == tpLiteral && strings.HasPrefix(c.st.lit, text)) {
		return false
	}
	c.scratch.copyFrom(&c.st)
	for i := 0; i < len(text); i++ {
		if !c.scratch.feed(&c.g, text[i]) {
			return false
		}
	}
	need := c.scratch.need(&c.g)
	return need <= c.left-1 || need < c.need
}

// Accept advances past tok.
func (c *toolConstraint) Accept(tok int32) {
	c.left--
	text := c.toks.text[tok]
	for i := 0; i < len(text); i++ {
		c.st.feed(&c.g, text[i])
	}
	c.need = c.st.need(&c.g)
}
