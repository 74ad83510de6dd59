package server

import (
	"slices"
	"sync"
)

// JSON mode (response_format {"type": "json_object"}): a byte-level JSON
// recognizer constrains sampling so the output is always a prefix of one
// JSON object, and the stop tokens become allowed exactly when the object is
// complete. Output cut by max_tokens is a prefix, as with OpenAI.

// jsonMode is where the recognizer is in the grammar.
type jsonMode uint8

const (
	jsStart        jsonMode = iota // before the top-level object: whitespace or '{'
	jsValue                        // a value is required
	jsValueOrClose                 // first element of an array, or ']'
	jsKeyOrClose                   // first key of an object, or '}'
	jsKey                          // a key is required (after ',')
	jsColon                        // ':' after a key
	jsCommaOrClose                 // after a value inside a container
	jsString                       // inside a string
	jsEscape                       // after '\' in a string
	jsHex                          // inside \uXXXX (hex counts the digits left)
	jsNumber                       // inside a number (num is its state)
	jsLiteral                      // inside true/false/null (lit is what is left)
	jsDone                         // the top-level object is complete
)

// Number states, after: minus, a leading zero, integer digits, '.', fraction
// digits, 'e', the exponent's sign, exponent digits.
const (
	numMinus uint8 = iota
	numZero
	numInt
	numDot
	numFrac
	numE
	numESign
	numExp
)

// jsonState is the recognizer's state; the zero value expects an object.
type jsonState struct {
	stack []byte // open containers, '{' or '['
	mode  jsonMode
	key   bool   // the current string is an object key
	hex   uint8  // hex digits left in \uXXXX
	num   uint8  // number state
	lit   string // literal bytes left
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// afterValue moves on once a value has ended.
func (s *jsonState) afterValue() {
	if len(s.stack) == 0 {
		s.mode = jsDone
	} else {
		s.mode = jsCommaOrClose
	}
}

// startValue begins a value at c; it reports false if c cannot start one.
func (s *jsonState) startValue(c byte) bool {
	switch {
	case c == '{':
		s.stack = append(s.stack, '{')
		s.mode = jsKeyOrClose
	case c == '[':
		s.stack = append(s.stack, '[')
		s.mode = jsValueOrClose
	case c == '"':
		s.mode, s.key = jsString, false
	case c == '-':
		s.mode, s.num = jsNumber, numMinus
	case c == '0':
		s.mode, s.num = jsNumber, numZero
	case c >= '1' && c <= '9':
		s.mode, s.num = jsNumber, numInt
	case c == 't':
		s.mode, s.lit = jsLiteral, "rue"
	case c == 'f':
		s.mode, s.lit = jsLiteral, "alse"
	case c == 'n':
		s.mode, s.lit = jsLiteral, "ull"
	default:
		return false
	}
	return true
}

// close pops the container c closes; it reports false on a mismatch.
func (s *jsonState) close(c byte) bool {
	want := byte('{')
	if c == ']' {
		want = '['
	}
	if len(s.stack) == 0 || s.stack[len(s.stack)-1] != want {
		return false
	}
	s.stack = s.stack[:len(s.stack)-1]
	s.afterValue()
	return true
}

// feed consumes one byte; it reports false if the byte cannot continue a
// JSON object.
func (s *jsonState) feed(c byte) bool {
	switch s.mode {
	case jsStart:
		if isSpace(c) {
			return true
		}
		if c != '{' {
			return false
		}
		s.stack = append(s.stack, '{')
		s.mode = jsKeyOrClose
	case jsValue:
		return isSpace(c) || s.startValue(c)
	case jsValueOrClose:
		if c == ']' {
			return s.close(c)
		}
		return isSpace(c) || s.startValue(c)
	case jsKeyOrClose, jsKey:
		switch {
		case isSpace(c):
		case c == '"':
			s.mode, s.key = jsString, true
		case c == '}' && s.mode == jsKeyOrClose:
			return s.close(c)
		default:
			return false
		}
	case jsColon:
		switch {
		case isSpace(c):
		case c == ':':
			s.mode = jsValue
		default:
			return false
		}
	case jsCommaOrClose:
		switch {
		case isSpace(c):
		case c == ',':
			if s.stack[len(s.stack)-1] == '{' {
				s.mode = jsKey
			} else {
				s.mode = jsValue
			}
		case c == '}' || c == ']':
			return s.close(c)
		default:
			return false
		}
	case jsString:
		switch {
		case c == '"':
			if s.key {
				s.mode = jsColon
			} else {
				s.afterValue()
			}
		case c == '\\':
			s.mode = jsEscape
		case c < 0x20:
			return false
		}
	case jsEscape:
		switch c {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			s.mode = jsString
		case 'u':
			s.mode, s.hex = jsHex, 4
		default:
			return false
		}
	case jsHex:
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
		if s.hex--; s.hex == 0 {
			s.mode = jsString
		}
	case jsNumber:
		return s.feedNumber(c)
	case jsLiteral:
		if c != s.lit[0] {
			return false
		}
		if s.lit = s.lit[1:]; s.lit == "" {
			s.afterValue()
		}
	case jsDone:
		return false
	}
	return true
}

// need returns the fewest bytes that complete the top-level object from s:
// close the current string (and give a key its ":0"), finish a number or
// literal, then close every open container.
func (s *jsonState) need() int {
	closers := len(s.stack)
	str := 1 + closers // the closing quote of a value
	if s.key {
		str = 3 + closers // `":0` after a key
	}
	switch s.mode {
	case jsStart:
		return 2
	case jsValue:
		return 1 + closers // a digit
	case jsKey:
		return 4 + closers // `"":0`
	case jsColon:
		return 2 + closers // `:0`
	case jsString:
		return str
	case jsEscape:
		return 1 + str
	case jsHex:
		return int(s.hex) + str
	case jsNumber:
		switch s.num {
		case numMinus, numDot, numE, numESign:
			return 1 + closers // a digit
		}
		return closers
	case jsLiteral:
		return len(s.lit) + closers
	case jsDone:
		return 0
	}
	return closers // jsValueOrClose, jsKeyOrClose, jsCommaOrClose
}

// feedNumber continues a number, or ends it and hands c to what follows.
func (s *jsonState) feedNumber(c byte) bool {
	digit := c >= '0' && c <= '9'
	switch s.num {
	case numMinus:
		switch {
		case c == '0':
			s.num = numZero
		case digit:
			s.num = numInt
		default:
			return false
		}
		return true
	case numZero, numInt:
		switch {
		case digit && s.num == numInt:
			return true
		case c == '.':
			s.num = numDot
			return true
		case c == 'e' || c == 'E':
			s.num = numE
			return true
		}
	case numDot:
		if !digit {
			return false
		}
		s.num = numFrac
		return true
	case numFrac:
		switch {
		case digit:
			return true
		case c == 'e' || c == 'E':
			s.num = numE
			return true
		}
	case numE:
		switch {
		case c == '+' || c == '-':
			s.num = numESign
		case digit:
			s.num = numExp
		default:
			return false
		}
		return true
	case numESign:
		if !digit {
			return false
		}
		s.num = numExp
		return true
	case numExp:
		if digit {
			return true
		}
	}
	// The number ended in an accepting state (zero, int, frac or exp digits):
	// c belongs to what comes after it.
	s.afterValue()
	return s.feed(c)
}

// copyFrom makes s a copy of o, reusing s's stack memory.
func (s *jsonState) copyFrom(o *jsonState) {
	stack := append(s.stack[:0], o.stack...)
	*s = *o
	s.stack = stack
}

// tokenBytes are the texts of a vocabulary's tokens as they appear inside
// generated text, for grammar checks; built once per tokenizer.
type tokenBytes struct {
	text    []string // [vocab]; a special token's content
	special []bool   // [vocab]
}

// tokenTexts returns the backend's token texts, building them on first use
// (one decode per vocabulary entry). A token's text is taken after an anchor
// token, so tokenizers that treat the first token of a text specially
// (SentencePiece's leading space) give its mid-text form.
func (b *Backend) tokenTexts() *tokenBytes {
	b.texts.once.Do(func() {
		t, V := b.Tokenizer, b.Engine.Info().VocabSize
		tb := &tokenBytes{text: make([]string, V), special: make([]bool, V)}
		var anchor []int
		if ids := t.Encode("a", false); len(ids) == 1 {
			anchor = ids
		}
		base := t.Decode(anchor, false)
		for id := range V {
			if tok, ok := t.IDToToken(id); !ok || t.IsSpecial(id) {
				tb.special[id] = true
				tb.text[id] = tok // its content, for literals of a forced format
				continue
			}
			if anchor == nil {
				tb.text[id] = t.Decode([]int{id}, false)
				continue
			}
			s := t.Decode(append(anchor[:1:1], id), false)
			if len(s) >= len(base) && s[:len(base)] == base {
				s = s[len(base):]
			}
			tb.text[id] = s
		}
		b.texts.t = tb
	})
	return b.texts.t
}

// tokenTextCache holds a backend's tokenBytes.
type tokenTextCache struct {
	once sync.Once
	t    *tokenBytes
}

// jsonConstraint is an engine.Constraint keeping output a valid JSON object.
type jsonConstraint struct {
	toks    *tokenBytes
	stops   []int32
	st      jsonState
	scratch jsonState
}

func newJSONConstraint(b *Backend) *jsonConstraint {
	return &jsonConstraint{toks: b.tokenTexts(), stops: b.StopTokens}
}

// Allowed reports whether tok keeps the output a prefix of a JSON object;
// stop tokens are allowed once the object is complete, and then only they.
func (c *jsonConstraint) Allowed(tok int32) bool {
	if slices.Contains(c.stops, tok) {
		return c.st.mode == jsDone
	}
	if int(tok) >= len(c.toks.text) || c.toks.special[tok] {
		return false
	}
	text := c.toks.text[tok]
	if text == "" {
		return false // makes no progress
	}
	c.scratch.copyFrom(&c.st)
	for i := 0; i < len(text); i++ {
		if !c.scratch.feed(text[i]) {
			return false
		}
	}
	return true
}

// Accept advances past tok.
func (c *jsonConstraint) Accept(tok int32) {
	text := c.toks.text[tok]
	for i := 0; i < len(text); i++ {
		c.st.feed(text[i])
	}
}
