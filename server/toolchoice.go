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

// toolPhase is where the recognizer is in the format.
type toolPhase uint8

const (
	tpLiteral toolPhase = iota // matching lit; then next
	tpName                     // the function name, up to its closing quote
	tpArgs                     // the arguments object (args)
	tpAfter                    // after a call line: another call or the closing tag
	tpDone                     // the block is closed
)

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
	st      toolState
	scratch toolState
}

func newToolConstraint(b *Backend, g toolGrammar) *toolConstraint {
	return &toolConstraint{toks: b.tokenTexts(), stops: b.StopTokens, g: g,
		st: toolState{phase: tpLiteral, lit: toolCallsStart, next: tpName}}
}

// Allowed reports whether tok keeps the output a prefix of the block; stop
// tokens are allowed once it is closed, and then only they. A special
// token (say "<tool_calls>" in a vocabulary that has one) is allowed only
// as a whole part of a literal.
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
	return true
}

// Accept advances past tok.
func (c *toolConstraint) Accept(tok int32) {
	text := c.toks.text[tok]
	for i := 0; i < len(text); i++ {
		c.st.feed(&c.g, text[i])
	}
}
