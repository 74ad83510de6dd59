package chat

import (
	"bytes"
	"strings"
	"unicode"

	"github.com/lightninglm/lightning/tokenizer/jinja"
)

// The tags of MiniMax's tool-call output (MiniMax-M1's template and vLLM's
// "minimax" tool parser). Tool calls written inside <think>...</think> are
// reasoning, not calls.
const (
	toolCallsOpen  = "<tool_calls>"
	toolCallsClose = "</tool_calls>"
	thinkOpen      = "<think>"
	thinkClose     = "</think>"
)

// ToolCall is one function call the model wrote.
type ToolCall struct {
	Name string
	// Arguments is the JSON text of the arguments: an object as Python's
	// json.dumps(ensure_ascii=False) writes it (keys in the model's order),
	// or, when the model wrote the arguments as a JSON string, that string's
	// contents.
	Arguments string
}

// Parsed is model output split into text and tool calls.
type Parsed struct {
	// Content is the text before the first tool-call block, surrounding
	// whitespace removed (vLLM's content).
	Content string
	// After is the text after the first block that lies outside blocks,
	// surrounding whitespace removed.
	After string
	Calls []ToolCall
}

// ParseToolCalls reads complete model output in MiniMax's format:
//
//	text <tool_calls>
//	{"name": "f", "arguments": {"x": 1}}
//	{"name": "g", "arguments": {}}
//	</tool_calls>
//
// One JSON object per line; lines that are not a {...} object with a string
// "name" and an "arguments" member are skipped, as vLLM's parser skips them.
// An unterminated block runs to the end of the output. <tool_calls> inside
// <think>...</think> is left as text (vLLM masks only closed think blocks;
// here an unclosed one also runs to the end, which streaming needs).
func ParseToolCalls(output string) Parsed {
	var s Stream
	var before, after strings.Builder
	emit := func(text string, afterBlock bool) {
		if afterBlock {
			after.WriteString(text)
		} else {
			before.WriteString(text)
		}
	}
	var p Parsed
	call := func(c ToolCall) { p.Calls = append(p.Calls, c) }
	s.push(output, emit, call)
	s.close(emit, call)
	p.Content = strings.TrimFunc(before.String(), isPySpace)
	p.After = strings.TrimFunc(after.String(), isPySpace)
	return p
}

// SafeTextLen returns how many leading bytes of a growing output are plain
// text that no continuation can turn into part of a tool-call block: the
// text before the first <tool_calls>, minus a trailing prefix of a tag
// ("<tool_ca") that may still complete.
func SafeTextLen(output string) int {
	var s Stream
	n := 0
	s.push(output, func(text string, afterBlock bool) {
		if !afterBlock {
			n += len(text)
		}
	}, func(ToolCall) {})
	return n
}

// FormatToolCalls writes calls in the format ParseToolCalls reads (the
// inverse, e.g. to put a tool-calling turn back into a MiniMax-M1 prompt as
// assistant text). Arguments must hold a JSON object.
func FormatToolCalls(calls []ToolCall) string {
	var b strings.Builder
	b.WriteString(toolCallsOpen + "\n")
	for _, c := range calls {
		name, _ := jinja.ToJSON(c.Name)
		args := c.Arguments
		if args == "" {
			args = "{}"
		}
		b.WriteString(`{"name": ` + name + `, "arguments": ` + args + "}\n")
	}
	b.WriteString(toolCallsClose)
	return b.String()
}

// Stream splits model output into text and tool calls as it is generated.
// Push never returns text that a later delta could turn into a tool call,
// and returns each call once its line is complete. The zero value is ready.
type Stream struct {
	pending []byte // input not yet consumed (a partial tag or line)
	scanned int    // in a block: bytes of pending already searched for a newline or the end tag
	mode    streamMode
	blocks  int // tool-call blocks opened so far
}

type streamMode uint8

const (
	modeText streamMode = iota
	modeThink
	modeTools
)

// Push consumes delta and returns the text that became safe to emit and
// the tool calls completed by it.
func (s *Stream) Push(delta string) (text string, calls []ToolCall) {
	var b strings.Builder
	s.push(delta, func(t string, _ bool) { b.WriteString(t) }, func(c ToolCall) { calls = append(calls, c) })
	return b.String(), calls
}

// Close ends the output: withheld text (a tag prefix that never completed)
// is returned, and the last line of an unterminated block is parsed.
func (s *Stream) Close() (text string, calls []ToolCall) {
	var b strings.Builder
	s.close(func(t string, _ bool) { b.WriteString(t) }, func(c ToolCall) { calls = append(calls, c) })
	return b.String(), calls
}

// InToolCalls reports whether a tool-call block has been opened.
func (s *Stream) InToolCalls() bool { return s.blocks > 0 }

func (s *Stream) push(delta string, emit func(string, bool), call func(ToolCall)) {
	s.pending = append(s.pending, delta...)
	for {
		after := s.blocks > 0
		p := s.pending
		switch s.mode {
		case modeText:
			i, tag := firstTag(p, toolCallsOpen, thinkOpen)
			if i < 0 {
				keep := partialSuffix(p, toolCallsOpen, thinkOpen)
				emit(string(p[:len(p)-keep]), after)
				s.consume(len(p) - keep)
				return
			}
			emit(string(p[:i]), after)
			if tag == thinkOpen {
				emit(thinkOpen, after)
				s.mode = modeThink
			} else {
				s.mode = modeTools
				s.scanned = 0
				s.blocks++
			}
			s.consume(i + len(tag))
		case modeThink:
			i := bytes.Index(p, []byte(thinkClose))
			if i < 0 {
				keep := partialSuffix(p, thinkClose)
				emit(string(p[:len(p)-keep]), after)
				s.consume(len(p) - keep)
				return
			}
			emit(string(p[:i+len(thinkClose)]), after)
			s.consume(i + len(thinkClose))
			s.mode = modeText
		case modeTools:
			// Resume where the previous push stopped (minus a possible
			// partial end tag), so a long line costs linear time.
			from := max(0, s.scanned-len(toolCallsClose)+1)
			i := bytes.Index(p[from:], []byte(toolCallsClose))
			body := p
			if i >= 0 {
				i += from
				body = p[:i]
			}
			// p[:scanned] holds no newline (it was cut after the last one).
			nlFrom := min(s.scanned, len(body))
			last := bytes.LastIndexByte(body[nlFrom:], '\n')
			if last >= 0 {
				last += nlFrom
				for _, line := range strings.Split(string(body[:last]), "\n") {
					if c, ok := parseCallLine(line); ok {
						call(c)
					}
				}
			}
			if i < 0 {
				s.consume(last + 1)
				s.scanned = len(s.pending)
				return
			}
			if c, ok := parseCallLine(string(body[last+1:])); ok {
				call(c)
			}
			s.consume(i + len(toolCallsClose))
			s.scanned = 0
			s.mode = modeText
		}
	}
}

// consume drops the first n pending bytes.
func (s *Stream) consume(n int) {
	s.pending = s.pending[n:]
	if len(s.pending) == 0 {
		s.pending = nil
	}
}

func (s *Stream) close(emit func(string, bool), call func(ToolCall)) {
	if s.mode == modeTools {
		if c, ok := parseCallLine(string(s.pending)); ok {
			call(c)
		}
	} else {
		emit(string(s.pending), s.blocks > 0)
	}
	s.pending = nil
}

// firstTag returns the earliest occurrence of any tag.
func firstTag(s []byte, tags ...string) (int, string) {
	best, which := -1, ""
	for _, t := range tags {
		if i := bytes.Index(s, []byte(t)); i >= 0 && (best < 0 || i < best) {
			best, which = i, t
		}
	}
	return best, which
}

// partialSuffix returns the length of the longest suffix of s that is a
// proper prefix of one of the tags.
func partialSuffix(s []byte, tags ...string) int {
	best := 0
	for _, t := range tags {
		for n := min(len(t)-1, len(s)); n > best; n-- {
			if bytes.HasSuffix(s, []byte(t[:n])) {
				best = n
				break
			}
		}
	}
	return best
}

// parseCallLine parses one {"name": ..., "arguments": ...} line.
func parseCallLine(line string) (ToolCall, bool) {
	line = strings.TrimFunc(line, isPySpace)
	if !strings.HasPrefix(line, "{") || !strings.HasSuffix(line, "}") {
		return ToolCall{}, false
	}
	v, err := jinja.DecodeJSON([]byte(line))
	if err != nil {
		return ToolCall{}, false
	}
	d, ok := v.(*jinja.Dict)
	if !ok {
		return ToolCall{}, false
	}
	name, ok := getString(d, "name")
	if !ok {
		return ToolCall{}, false
	}
	args, ok := d.Get("arguments")
	if !ok {
		return ToolCall{}, false
	}
	if s, isStr := args.(string); isStr {
		return ToolCall{Name: name, Arguments: s}, true
	}
	text, err := jinja.ToJSON(args)
	if err != nil {
		return ToolCall{}, false
	}
	return ToolCall{Name: name, Arguments: text}, true
}

// isPySpace is Python's str.isspace for one character.
func isPySpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }
