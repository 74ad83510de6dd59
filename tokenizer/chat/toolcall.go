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
	pending []byte     // input not yet consumed (a partial tag, line or call)
	scanned int        // in a block: bytes of pending already searched for the end tag
	obj     objectScan // in a block: the call object starting at pending[0], if any
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
			// partial end tag), so a long call costs linear time.
			from := max(0, s.scanned-len(toolCallsClose)+1)
			i := bytes.Index(p[from:], []byte(toolCallsClose))
			if i < 0 {
				s.consume(s.scanCalls(p, false, call))
				s.scanned = len(s.pending)
				return
			}
			s.scanCalls(p[:i+from], true, call)
			s.consume(i + from + len(toolCallsClose))
			s.scanned = 0
			s.mode = modeText
		}
	}
}

// scanCalls reads the calls in body, the text of a block after what earlier
// pushes consumed, and returns how many bytes it is done with. Each call is
// a JSON object in any layout (one per line as MiniMax writes them, or
// pretty-printed across lines); text between objects is skipped line by
// line, as vLLM skips lines that are not calls. An object that is broken (a
// raw newline inside a string) or cut by the end of the block is read as a
// line instead, so a bad line does not swallow the calls after it. ended
// says the block's end tag follows body.
func (s *Stream) scanCalls(body []byte, ended bool, call func(ToolCall)) int {
	pos := 0
	for {
		for pos < len(body) && isJSONSpace(body[pos]) {
			pos++
		}
		if pos == len(body) {
			return pos
		}
		rest := body[pos:]
		if rest[0] == '{' {
			n := s.obj.scan(rest)
			if n > 0 {
				if c, ok := parseCall(rest[:n]); ok {
					call(c)
				}
				s.obj = objectScan{}
				pos += n
				continue
			}
			if n == 0 && !ended {
				return pos // the object goes on in a later push
			}
			s.obj = objectScan{}
		}
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			if !ended {
				return pos // wait for the end of the line
			}
			nl = len(rest)
		}
		if c, ok := parseCall(bytes.TrimFunc(rest[:nl], isPySpace)); ok {
			call(c)
		}
		pos += min(nl+1, len(rest))
	}
}

// objectScan finds the end of a JSON object across pushes: n bytes of it
// are scanned, depth containers are open, and whether the scan is inside a
// string or just after a backslash in one. The zero value starts an object.
type objectScan struct {
	n          int
	depth      int
	inStr, esc bool
}

// scan continues over b, which starts at the object's '{'. It returns the
// object's length once its braces balance, 0 if it needs more input, or -1
// if a raw newline in a string shows it is not JSON.
func (o *objectScan) scan(b []byte) int {
	for ; o.n < len(b); o.n++ {
		c := b[o.n]
		switch {
		case o.esc:
			o.esc = false
		case o.inStr:
			switch c {
			case '\\':
				o.esc = true
			case '"':
				o.inStr = false
			case '\n':
				return -1
			}
		case c == '"':
			o.inStr = true
		case c == '{' || c == '[':
			o.depth++
		case c == '}' || c == ']':
			if o.depth--; o.depth == 0 {
				o.n++
				return o.n
			}
		}
	}
	return 0
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// consume drops the first n pending bytes.
func (s *Stream) consume(n int) {
	s.pending = s.pending[n:]
	if len(s.pending) == 0 {
		s.pending = nil
	}
}

func (s *Stream) close(emit func(string, bool), call func(ToolCall)) {
	if s.mode == modeTools {
		s.scanCalls(s.pending, true, call)
		s.obj = objectScan{}
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

// parseCall parses one {"name": ..., "arguments": ...} object.
func parseCall(obj []byte) (ToolCall, bool) {
	if !bytes.HasPrefix(obj, []byte("{")) || !bytes.HasSuffix(obj, []byte("}")) {
		return ToolCall{}, false
	}
	v, err := jinja.DecodeJSON(obj)
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
