package tokenizer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A tokenizer.json file is mostly its vocabulary and merges: hundreds of
// thousands of short strings. encoding/json decodes them through reflection
// several times slower than this small scanner, which reads exactly the two
// shapes involved ({"token": id, ...} and ["a b", ...] or [["a", "b"], ...])
// with encoding/json's string rules (escapes, surrogate pairs, U+FFFD for
// invalid UTF-8 and lone surrogates). jsonscan_test.go compares the two on
// the golden files.

type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *jsonScanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte without consuming it
// (0 at the end).
func (s *jsonScanner) next() byte {
	s.skipSpace()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) expect(c byte) error {
	if s.next() != c {
		return s.errorf("want %q", c)
	}
	s.i++
	return nil
}

// str reads a JSON string.
func (s *jsonScanner) str() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	start := s.i
	plain := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if plain {
				return string(raw), nil
			}
			return unquoteJSON(raw)
		case c == '\\':
			plain = false
			s.i += 2
		case c < 0x20:
			return "", s.errorf("control character in string")
		default:
			if c >= utf8.RuneSelf {
				plain = false // checked (and repaired) by unquoteJSON
			}
			s.i++
		}
	}
	return "", s.errorf("unterminated string")
}

// unquoteJSON decodes the inside of a JSON string as encoding/json does.
func unquoteJSON(raw []byte) (string, error) {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRune(raw[i:])
			b.WriteRune(r) // RuneError for invalid bytes, as encoding/json
			i += n
			continue
		}
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return "", errors.New("bad escape")
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := hex4(raw[i+2:])
			if !ok {
				return "", errors.New("bad \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(raw[min(i+2, len(raw)):]); ok && i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						b.WriteRune(dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
			continue
		default:
			return "", fmt.Errorf("bad escape \\%c", e)
		}
		i += 2
	}
	return b.String(), nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// id reads a non-negative integer that fits an int32.
func (s *jsonScanner) id() (int32, error) {
	s.skipSpace()
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 32)
	if err != nil {
		return 0, s.errorf("want a token id: %v", err)
	}
	return int32(v), nil
}

// list reads a JSON array, calling item for each element.
func (s *jsonScanner) list(item func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.next() == ']' {
		s.i++
		return nil
	}
	for {
		if err := item(); err != nil {
			return err
		}
		switch s.next() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errorf("want ',' or ']'")
		}
	}
}

// skipValue skips one JSON value of any kind and returns its bytes. It
// checks only what finding the end needs; the bytes are parsed later.
func (s *jsonScanner) skipValue() ([]byte, error) {
	s.skipSpace()
	start, depth := s.i, 0
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case '"':
			s.i++
			for s.i < len(s.b) && s.b[s.i] != '"' {
				if s.b[s.i] == '\\' {
					s.i++
				}
				s.i++
			}
			if s.i >= len(s.b) {
				return nil, s.errorf("unterminated string")
			}
			s.i++
		case '{', '[':
			depth++
			s.i++
		case '}', ']':
			if depth == 0 { // the end of the enclosing value
				return s.b[start:s.i], nil
			}
			depth--
			s.i++
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return s.b[start:s.i], nil
			}
			s.i++
		default:
			s.i++
		}
		if depth == 0 && s.i > start {
			if c := s.b[s.i-1]; c == '"' || c == '}' || c == ']' {
				return s.b[start:s.i], nil
			}
		}
	}
	if depth != 0 || s.i == start {
		return nil, s.errorf("unexpected end of input")
	}
	return s.b[start:s.i], nil
}

// object reads a JSON object, calling field with each key; field must
// consume the value.
func (s *jsonScanner) object(field func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.next() == '}' {
		s.i++
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch s.next() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errorf("want ',' or '}'")
		}
	}
}

// splitTokenizerJSON cuts a tokenizer.json file into its top-level values
// and the model's values, without decoding them, so that the large vocab
// and merges go to parseVocab and parseMergesJSON and everything else to
// encoding/json.
func splitTokenizerJSON(data []byte) (top, model map[string][]byte, err error) {
	s := &jsonScanner{b: data}
	top, model = map[string][]byte{}, map[string][]byte{}
	err = s.object(func(key string) error {
		if key == "model" && s.next() == '{' {
			return s.object(func(k string) error {
				v, err := s.skipValue()
				model[k] = v
				return err
			})
		}
		v, err := s.skipValue()
		top[key] = v
		return err
	})
	if err == nil && s.next() != 0 {
		err = s.errorf("data after the top-level object")
	}
	return top, model, err
}

// parseVocab reads {"token": id, ...}. A token listed twice keeps its last
// id, as with encoding/json.
func parseVocab(raw []byte) (map[string]int32, error) {
	s := &jsonScanner{b: raw}
	if err := s.expect('{'); err != nil {
		return nil, fmt.Errorf("vocab: %w", err)
	}
	vocab := make(map[string]int32, len(raw)/16)
	if s.next() == '}' {
		return vocab, nil
	}
	for {
		tok, err := s.str()
		if err != nil {
			return nil, fmt.Errorf("vocab: %w", err)
		}
		if err := s.expect(':'); err != nil {
			return nil, fmt.Errorf("vocab: %w", err)
		}
		id, err := s.id()
		if err != nil {
			return nil, fmt.Errorf("vocab: %w", err)
		}
		vocab[tok] = id
		switch s.next() {
		case ',':
			s.i++
		case '}':
			return vocab, nil
		default:
			return nil, fmt.Errorf("vocab: %w", s.errorf("want ',' or '}'"))
		}
	}
}

// parseMergesJSON reads merges as ["a b", ...] or [["a", "b"], ...]; null
// gives none.
func parseMergesJSON(raw []byte) ([][2]string, error) {
	s := &jsonScanner{b: raw}
	if c := s.next(); c == 0 || c == 'n' {
		return nil, nil
	}
	merges := make([][2]string, 0, len(raw)/12)
	err := s.list(func() error {
		if s.next() == '[' {
			var p [2]string
			n := 0
			err := s.list(func() error {
				x, err := s.str()
				if n < 2 {
					p[n] = x
				}
				n++
				return err
			})
			if err == nil && n != 2 {
				err = s.errorf("merge pair has %d elements", n)
			}
			merges = append(merges, p)
			return err
		}
		l, err := s.str()
		if err != nil {
			return err
		}
		a, b, ok := strings.Cut(l, " ")
		if !ok || strings.Contains(b, " ") {
			return fmt.Errorf("entry %d %q is not two tokens separated by one space", len(merges), l)
		}
		merges = append(merges, [2]string{a, b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("merges: %w", err)
	}
	return merges, nil
}
