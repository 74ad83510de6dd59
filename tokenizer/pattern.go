package tokenizer

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/dlclark/regexp2/v2"
)

// span is a byte range [start, end) of a string.
type span struct{ start, end int }

// matcher finds the non-overlapping matches of a pattern, left to right, the
// way the reference's Pattern::find_matches does (Split pre-tokenizer, Replace
// normalizer and decoder).
type matcher interface {
	findAll(s string, dst []span) []span
}

// literalMatcher matches occurrences of a fixed string ("String" patterns).
// An empty literal matches nothing.
type literalMatcher string

func (m literalMatcher) findAll(s string, dst []span) []span {
	if m == "" {
		return dst
	}
	for off := 0; ; {
		k := strings.Index(s[off:], string(m))
		if k < 0 {
			return dst
		}
		dst = append(dst, span{off + k, off + k + len(m)})
		off += k + len(m)
	}
}

// runeMatcher matches every rune for which the predicate holds, each rune
// being one match (the reference's `Fn(char) -> bool` patterns).
type runeMatcher func(rune) bool

func (m runeMatcher) findAll(s string, dst []span) []span {
	for i := 0; i < len(s); {
		r, n := runeAt(s, i)
		if m(r) {
			dst = append(dst, span{i, i + n})
		}
		i += n
	}
	return dst
}

// fastMatcher is a hand-written matcher from fastregex.go.
type fastMatcher func(s string, i int) int

func (m fastMatcher) findAll(s string, dst []span) []span { return fastFindAll(m, s, dst) }

// regexMatcher is the general fallback: any pattern regexp2 accepts.
type regexMatcher struct{ re *regexp2.Regexp }

func (m regexMatcher) findAll(s string, dst []span) []span {
	idx, err := m.re.FindAllStringIndex(s, -1)
	if err != nil {
		// Only a timeout or a backtracking-stack limit can fail here; no
		// timeout is set, and the limit would need a pathological pattern.
		panic(fmt.Sprintf("tokenizer: regex %q: %v", m.re.String(), err))
	}
	for _, p := range idx {
		dst = append(dst, span{p[0], p[1]})
	}
	return dst
}

// compileRegex compiles an Oniguruma pattern from a tokenizer.json file. A
// pattern with a hand-written matcher gets it unless slow is set (tests use
// slow to compare the two).
func compileRegex(src string, slow bool) (matcher, error) {
	if f, ok := fastMatchers[src]; ok && !slow {
		return f, nil
	}
	re, err := regexp2.Compile(src, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", src, err)
	}
	return regexMatcher{re}, nil
}

// isWordRune reports whether r is in Rust regex's Unicode \w: Alphabetic,
// marks, decimal digits, connector punctuation and the joiners.
func isWordRune(r rune) bool {
	if r < 0x80 {
		return r == '_' || (r >= '0' && r <= '9') || (r|0x20 >= 'a' && r|0x20 <= 'z')
	}
	return unicode.IsLetter(r) || unicode.In(r, unicode.Nl, unicode.Other_Alphabetic, unicode.M, unicode.Nd, unicode.Pc) ||
		r == 0x200C || r == 0x200D
}

// isPunctRune is the reference's punctuation test for the Punctuation and
// Bert pre-tokenizers: ASCII punctuation (which includes symbols like '$')
// or a Unicode punctuation category.
func isPunctRune(r rune) bool {
	if r < 0x80 {
		return r > ' ' && r < 0x7F && !(r >= '0' && r <= '9') && !(r|0x20 >= 'a' && r|0x20 <= 'z')
	}
	return unicode.IsPunct(r)
}

// matchWordsOrSymbols matches \w+|[^\w\s]+ (the Whitespace pre-tokenizer).
func matchWordsOrSymbols(s string, i int) int {
	r, n := runeAt(s, i)
	word := isWordRune(r)
	if !word && unicode.IsSpace(r) {
		return -1
	}
	e := i + n
	for e < len(s) {
		r, n := runeAt(s, e)
		if isWordRune(r) != word || (!word && unicode.IsSpace(r)) {
			break
		}
		e += n
	}
	return e
}
