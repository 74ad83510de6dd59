package jinja

import (
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokKind is a token type of jinja2.lexer.
type tokKind uint8

const (
	tEOF tokKind = iota
	tData
	tVarBegin   // {{
	tVarEnd     // }}
	tBlockBegin // {%
	tBlockEnd   // %}
	tName
	tString
	tInt
	tFloat
	tOp // operator; the text is in val
)

// token is one lexer token. val holds the name, operator text, decoded
// string, or data; num holds a number literal's value.
type token struct {
	kind tokKind
	val  string
	num  Value
	line int
}

// describe is jinja2.lexer.describe_token, used in syntax error messages.
func (t token) describe() string {
	switch t.kind {
	case tName:
		return t.val
	case tOp:
		return t.val
	case tEOF:
		return "end of template"
	case tData:
		return "template data / text"
	case tVarBegin:
		return "begin of print statement"
	case tVarEnd:
		return "end of print statement"
	case tBlockBegin:
		return "begin of statement block"
	case tBlockEnd:
		return "end of statement block"
	case tString:
		return "string"
	case tInt:
		return "integer"
	case tFloat:
		return "float"
	}
	return "?"
}

// operators of the Jinja lexer, longest first.
var operators = []string{"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"}

// pyIsSpace is Python's str.isspace for one character (also what \s matches
// in a Python regular expression): Go's unicode.IsSpace plus U+001C..U+001F.
func pyIsSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// pyRstrip is Python's str.rstrip() with no argument.
func pyRstrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }

// normalizeSource splits the source on \r\n, \r and \n, drops one trailing
// empty line (keep_trailing_newline=False) and joins with \n, as
// Lexer.tokeniter does.
func normalizeSource(src string) string {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.ReplaceAll(src, "\r", "\n")
	return strings.TrimSuffix(src, "\n")
}

// lexer turns template source into tokens following jinja2's lexer rules
// with trim_blocks and lstrip_blocks enabled.
type lexer struct {
	src          string
	pos          int
	line         int
	toks         []token
	lineStarting bool   // the previous match ended with a newline
	balance      []byte // open brackets inside a tag
}

func tokenize(src string) ([]token, error) {
	lx := &lexer{src: normalizeSource(src), line: 1, lineStarting: true}
	if err := lx.run(); err != nil {
		return nil, err
	}
	lx.toks = append(lx.toks, token{kind: tEOF, line: lx.line})
	return lx.toks, nil
}

func (lx *lexer) emit(kind tokKind, val string) {
	lx.toks = append(lx.toks, token{kind: kind, val: val, line: lx.line})
}

// advance moves to pos, counting newlines.
func (lx *lexer) advance(to int) {
	lx.line += strings.Count(lx.src[lx.pos:to], "\n")
	lx.pos = to
}

// skipSpace returns the offset after any whitespace starting at i.
func (lx *lexer) skipSpace(i int) int {
	for i < len(lx.src) {
		r, n := utf8.DecodeRuneInString(lx.src[i:])
		if !pyIsSpace(r) {
			break
		}
		i += n
	}
	return i
}

// stripText applies the "-" / lstrip_blocks rules to the text before a tag.
func (lx *lexer) stripText(text string, sign byte, isVariable bool) string {
	if sign == '-' {
		return pyRstrip(text)
	}
	if sign != '+' && !isVariable {
		lpos := strings.LastIndexByte(text, '\n') + 1
		if lpos > 0 || lx.lineStarting {
			rest := text[lpos:]
			if rest != "" && strings.TrimLeftFunc(rest, pyIsSpace) == "" {
				return text[:lpos]
			}
		}
	}
	return text
}

func (lx *lexer) run() error {
	src := lx.src
	for lx.pos < len(src) {
		// Find the next tag start.
		start := -1
		for i := lx.pos; i+1 < len(src); i++ {
			if src[i] == '{' && (src[i+1] == '{' || src[i+1] == '%' || src[i+1] == '#') {
				start = i
				break
			}
		}
		if start < 0 {
			lx.emit(tData, src[lx.pos:])
			lx.advance(len(src))
			return nil
		}
		kind := src[start+1]
		var sign byte
		after := start + 2
		if after < len(src) && (src[after] == '-' || src[after] == '+') {
			sign = src[after]
			after++
		}
		if kind == '%' {
			if end, ok := lx.matchRawBegin(after); ok {
				if t := lx.stripText(src[lx.pos:start], sign, false); t != "" {
					lx.emit(tData, t)
				}
				lx.lineStarting = src[end-1] == '\n'
				lx.advance(end)
				if err := lx.lexRaw(); err != nil {
					return err
				}
				continue
			}
		}
		if t := lx.stripText(src[lx.pos:start], sign, kind == '{'); t != "" {
			lx.emit(tData, t)
		}
		lx.advance(start)
		switch kind {
		case '#':
			if err := lx.lexComment(after); err != nil {
				return err
			}
		case '%':
			lx.emit(tBlockBegin, src[start:after])
			lx.advance(after)
			if err := lx.lexTag(false); err != nil {
				return err
			}
		case '{':
			lx.emit(tVarBegin, src[start:after])
			lx.advance(after)
			if err := lx.lexTag(true); err != nil {
				return err
			}
		}
	}
	return nil
}

// matchRawBegin matches `\s*raw\s*(?:-%}\s*|%})` at i.
func (lx *lexer) matchRawBegin(i int) (end int, ok bool) {
	src := lx.src
	i = lx.skipSpace(i)
	if !strings.HasPrefix(src[i:], "raw") {
		return 0, false
	}
	i = lx.skipSpace(i + 3)
	switch {
	case strings.HasPrefix(src[i:], "-%}"):
		return lx.skipSpace(i + 3), true
	case strings.HasPrefix(src[i:], "%}"):
		return i + 2, true
	}
	return 0, false
}

// lexRaw emits the body of a raw block as data and consumes its endraw tag.
func (lx *lexer) lexRaw() error {
	src := lx.src
	for i := lx.pos; i+1 < len(src); i++ {
		if src[i] != '{' || src[i+1] != '%' {
			continue
		}
		j := i + 2
		var sign byte
		if j < len(src) && (src[j] == '-' || src[j] == '+') {
			sign = src[j]
			j++
		}
		j = lx.skipSpace(j)
		if !strings.HasPrefix(src[j:], "endraw") {
			continue
		}
		j = lx.skipSpace(j + 6)
		end, ok := lx.matchBlockEnd(j)
		if !ok {
			continue
		}
		if t := lx.stripText(src[lx.pos:i], sign, false); t != "" {
			lx.emit(tData, t)
		}
		lx.lineStarting = src[end-1] == '\n'
		lx.advance(end)
		return nil
	}
	return syntaxErr(lx.line, "Missing end of raw directive")
}

// matchBlockEnd matches `\+%}|\-%}\s*|%}\n?` at i.
func (lx *lexer) matchBlockEnd(i int) (int, bool) {
	src := lx.src
	switch {
	case strings.HasPrefix(src[i:], "+%}"):
		return i + 3, true
	case strings.HasPrefix(src[i:], "-%}"):
		return lx.skipSpace(i + 3), true
	case strings.HasPrefix(src[i:], "%}"):
		if i+2 < len(src) && src[i+2] == '\n' {
			return i + 3, true
		}
		return i + 2, true
	}
	return 0, false
}

// lexComment consumes a comment whose body starts at i.
func (lx *lexer) lexComment(i int) error {
	src := lx.src
	for j := i; j < len(src); j++ {
		end := -1
		switch {
		case strings.HasPrefix(src[j:], "+#}"):
			end = j + 3
		case strings.HasPrefix(src[j:], "-#}"):
			end = lx.skipSpace(j + 3)
		case strings.HasPrefix(src[j:], "#}"):
			end = j + 2
			if end < len(src) && src[end] == '\n' {
				end++
			}
		}
		if end >= 0 {
			lx.lineStarting = src[end-1] == '\n'
			lx.advance(end)
			return nil
		}
	}
	return syntaxErr(lx.line, "Missing end of comment tag")
}

// lexTag lexes the inside of {{ }} (variable) or {% %} up to its end tag.
func (lx *lexer) lexTag(variable bool) error {
	src := lx.src
	lx.balance = lx.balance[:0]
	for {
		if lx.pos >= len(src) {
			return nil // the parser reports the missing end tag
		}
		if len(lx.balance) == 0 {
			if variable {
				switch {
				case strings.HasPrefix(src[lx.pos:], "-}}"):
					end := lx.skipSpace(lx.pos + 3)
					lx.emit(tVarEnd, src[lx.pos:end])
					lx.lineStarting = src[end-1] == '\n'
					lx.advance(end)
					return nil
				case strings.HasPrefix(src[lx.pos:], "}}"):
					lx.emit(tVarEnd, "}}")
					lx.lineStarting = false
					lx.advance(lx.pos + 2)
					return nil
				}
			} else if end, ok := lx.matchBlockEnd(lx.pos); ok {
				lx.emit(tBlockEnd, src[lx.pos:end])
				lx.lineStarting = src[end-1] == '\n'
				lx.advance(end)
				return nil
			}
		}
		if err := lx.lexOne(); err != nil {
			return err
		}
	}
}

// lexOne lexes one token inside a tag: whitespace, float, integer, name,
// string or operator, in the order of jinja2's tag rules.
func (lx *lexer) lexOne() error {
	src := lx.src
	p := lx.pos
	r, n := utf8.DecodeRuneInString(src[p:])
	if pyIsSpace(r) {
		lx.advance(lx.skipSpace(p))
		return nil
	}
	if r >= '0' && r <= '9' {
		if end, ok := lx.matchFloat(p); ok {
			text := strings.ReplaceAll(src[p:end], "_", "")
			f, err := strconv.ParseFloat(text, 64)
			if err != nil && !isRangeErr(err) {
				return syntaxErr(lx.line, "invalid float literal %q", text)
			}
			lx.toks = append(lx.toks, token{kind: tFloat, val: src[p:end], num: f, line: lx.line})
			lx.advance(end)
			return nil
		}
		end, v := lx.matchInt(p)
		lx.toks = append(lx.toks, token{kind: tInt, val: src[p:end], num: v, line: lx.line})
		lx.advance(end)
		return nil
	}
	if r == '_' || unicode.IsLetter(r) {
		end := p + n
		for end < len(src) {
			r, n := utf8.DecodeRuneInString(src[end:])
			if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r) && !unicode.Is(unicode.Mc, r) {
				break
			}
			end += n
		}
		lx.emit(tName, src[p:end])
		lx.advance(end)
		return nil
	}
	if r == '\'' || r == '"' {
		end := -1
		for i := p + 1; i < len(src); i++ {
			if src[i] == '\\' {
				i++
				continue
			}
			if src[i] == byte(r) {
				end = i + 1
				break
			}
		}
		if end >= 0 {
			s, err := unescapeString(src[p+1 : end-1])
			if err != nil {
				return syntaxErr(lx.line, "%s", err.Error())
			}
			lx.toks = append(lx.toks, token{kind: tString, val: s, line: lx.line})
			lx.advance(end)
			return nil
		}
	}
	for _, op := range operators {
		if !strings.HasPrefix(src[p:], op) {
			continue
		}
		switch op {
		case "{", "(", "[":
			closer := map[string]byte{"{": '}', "(": ')', "[": ']'}[op]
			lx.balance = append(lx.balance, closer)
		case "}", ")", "]":
			if len(lx.balance) == 0 {
				return syntaxErr(lx.line, "unexpected '%s'", op)
			}
			want := lx.balance[len(lx.balance)-1]
			lx.balance = lx.balance[:len(lx.balance)-1]
			if want != op[0] {
				return syntaxErr(lx.line, "unexpected '%s', expected '%c'", op, want)
			}
		}
		lx.emit(tOp, op)
		lx.advance(p + len(op))
		return nil
	}
	return syntaxErr(lx.line, "unexpected char %s at %d", strRepr(string(r)), p)
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// digitsUnderscore matches (\d+_)*\d+ at i and returns the end, or -1.
func digitsUnderscore(s string, i int) int {
	end := -1
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		end = i
		if i+1 < len(s) && s[i] == '_' && s[i+1] >= '0' && s[i+1] <= '9' {
			i++
			continue
		}
		break
	}
	return end
}

// matchFloat matches jinja2's float_re at p (not preceded by '.').
func (lx *lexer) matchFloat(p int) (int, bool) {
	s := lx.src
	if p > 0 && s[p-1] == '.' {
		return 0, false
	}
	i := digitsUnderscore(s, p)
	if i < 0 {
		return 0, false
	}
	exponent := func(j int) int {
		if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
			j++
			if j < len(s) && (s[j] == '+' || s[j] == '-') {
				j++
			}
			return digitsUnderscore(s, j)
		}
		return -1
	}
	if i < len(s) && s[i] == '.' {
		if f := digitsUnderscore(s, i+1); f >= 0 {
			if e := exponent(f); e >= 0 {
				return e, true
			}
			return f, true
		}
	}
	if e := exponent(i); e >= 0 {
		return e, true
	}
	return 0, false
}

// matchInt matches jinja2's integer_re at p: 0b/0o/0x prefixed, decimal,
// or a run of zeros, with optional single underscores between digits.
func (lx *lexer) matchInt(p int) (int, Value) {
	s := lx.src
	run := func(i int, ok func(byte) bool) int {
		end := -1
		for i < len(s) {
			j := i
			if s[j] == '_' {
				j++
			}
			if j < len(s) && ok(s[j]) {
				i = j + 1
				end = i
				continue
			}
			break
		}
		return end
	}
	lower := func(c byte) byte { return c | 0x20 }
	if s[p] == '0' && p+1 < len(s) {
		var base int
		var ok func(byte) bool
		switch lower(s[p+1]) {
		case 'b':
			base, ok = 2, func(c byte) bool { return c == '0' || c == '1' }
		case 'o':
			base, ok = 8, func(c byte) bool { return c >= '0' && c <= '7' }
		case 'x':
			base, ok = 16, func(c byte) bool {
				return (c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'f')
			}
		}
		if base != 0 {
			if end := run(p+2, ok); end > 0 {
				return end, parseIntLiteral(strings.ReplaceAll(s[p+2:end], "_", ""), base)
			}
		}
	}
	if s[p] == '0' {
		end := run(p+1, func(c byte) bool { return c == '0' })
		if end < 0 {
			end = p + 1
		}
		return end, int64(0)
	}
	end := run(p+1, func(c byte) bool { return c >= '0' && c <= '9' })
	if end < 0 {
		end = p + 1
	}
	return end, parseIntLiteral(strings.ReplaceAll(s[p:end], "_", ""), 10)
}

func parseIntLiteral(digits string, base int) Value {
	if v, err := strconv.ParseInt(digits, base, 64); err == nil {
		return v
	}
	b, _ := new(big.Int).SetString(digits, base)
	return normInt(b)
}

// unescapeString decodes a Jinja string literal body the way the lexer does:
// non-ASCII characters are first written as backslash escapes
// (backslashreplace) and the result is decoded with Python's unicode-escape
// codec, so \n, \t, \\, \', \", \xhh, \uhhhh, \Uhhhhhhhh and octal escapes
// work and unknown escapes keep their backslash.
func unescapeString(body string) (string, error) {
	if !strings.ContainsRune(body, '\\') {
		return body, nil
	}
	var ascii strings.Builder
	for _, r := range body {
		switch {
		case r < 0x80:
			ascii.WriteByte(byte(r))
		case r <= 0xff:
			ascii.WriteString(`\x` + hex(int64(r), 2))
		case r <= 0xffff:
			ascii.WriteString(`\u` + hex(int64(r), 4))
		default:
			ascii.WriteString(`\U` + hex(int64(r), 8))
		}
	}
	s := ascii.String()
	var out []rune
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, rune(c))
			continue
		}
		i++
		if i >= len(s) {
			return "", errString(`\ at end of string`)
		}
		switch c = s[i]; c {
		case '\n':
		case '\\', '\'', '"':
			out = append(out, rune(c))
		case 'a':
			out = append(out, 7)
		case 'b':
			out = append(out, 8)
		case 'f':
			out = append(out, 12)
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, 11)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := rune(c - '0')
			for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
				i++
				v = v*8 + rune(s[i]-'0')
			}
			out = append(out, v)
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			if i+n > len(s)-1 {
				return "", errString(truncatedEscape(c))
			}
			v, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
			if err != nil || strings.ContainsAny(s[i+1:i+1+n], "+-_") {
				return "", errString(truncatedEscape(c))
			}
			if v > unicode.MaxRune {
				return "", errString("illegal Unicode character")
			}
			out = append(out, rune(v))
			i += n
		case 'N':
			return "", errString(`\N{...} escapes are not supported`)
		default:
			out = append(out, '\\', rune(c))
		}
	}
	return string(combineSurrogates(out)), nil
}

func truncatedEscape(c byte) string {
	switch c {
	case 'x':
		return `truncated \xXX escape`
	case 'u':
		return `truncated \uXXXX escape`
	}
	return `truncated \UXXXXXXXX escape`
}

// combineSurrogates joins UTF-16 surrogate pairs written as two escapes.
// (Python keeps them as two lone surrogates, which cannot be encoded to
// UTF-8 anyway; combining them is the useful reading.)
func combineSurrogates(rs []rune) []rune {
	out := rs[:0]
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r >= 0xd800 && r < 0xdc00 && i+1 < len(rs) && rs[i+1] >= 0xdc00 && rs[i+1] < 0xe000 {
			r = 0x10000 + (r-0xd800)<<10 + (rs[i+1] - 0xdc00)
			i++
		}
		out = append(out, r)
	}
	return out
}

type errString string

func (e errString) Error() string { return string(e) }

func hex(v int64, width int) string {
	s := strconv.FormatInt(v, 16)
	for len(s) < width {
		s = "0" + s
	}
	return s
}
