package tokenizer

import "unicode/utf8"

// Hand-written matchers for the pre-tokenizer regexes that real byte-level
// BPE tokenizers use. regexp2 is a general backtracking engine working on
// rune slices; these matchers do the same leftmost-first search for one fixed
// pattern directly on the UTF-8 string, several times faster. Each is chosen
// only when the tokenizer's pattern is byte-for-byte one of the patterns
// below, and each is tested against regexp2 on the golden strings and on
// random strings (fastregex_test.go), so the fast path never changes results.
//
// A matcher is a function at(s, i) that returns the end of the match that the
// pattern finds when the search is at position i, or -1 if no alternative
// matches there. None of these patterns can match the empty string.

// Patterns with a hand-written matcher, as they appear (JSON-decoded) in
// tokenizer.json files.
const (
	// patGPT2 is GPT-2's pattern, also the one the ByteLevel pre-tokenizer
	// uses when use_regex is true.
	patGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// patCL100K is OpenAI's cl100k_base pattern, used by Llama 3.
	patCL100K = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// patQwen2 is cl100k with single digits, used by Qwen2 and Qwen3.
	patQwen2 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// patO200K is OpenAI's o200k_base pattern (GPT-4o).
	patO200K = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// patDigits3 is the first split of DeepSeek-V3.
	patDigits3 = `\p{N}{1,3}`
	// patDeepSeekCJK is the second split of DeepSeek-V3: runs of CJK
	// ideographs up to U+9FA5, hiragana and katakana.
	patDeepSeekCJK = `[一-龥぀-ゟ゠-ヿ]+`
	// patDeepSeek is the third split of DeepSeek-V3 (its file holds raw CR and
	// LF characters inside the classes, not escapes).
	patDeepSeek = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
)

// fastMatchers maps a pattern to its hand-written matcher.
var fastMatchers = map[string]matcher{
	patGPT2:        fastMatcher(matchGPT2),
	patCL100K:      fastMatcher(func(s string, i int) int { return matchCL100K(s, i, 3) }),
	patQwen2:       fastMatcher(func(s string, i int) int { return matchCL100K(s, i, 1) }),
	patO200K:       fastMatcher(matchO200K),
	patDigits3:     digitsMatcher(3),
	patDeepSeekCJK: cjkMatcher{},
	patDeepSeek:    fastMatcher(matchDeepSeek),
}

// digitsMatcher matches \p{N}{1,max}, skipping ASCII non-digits quickly.
type digitsMatcher int

func (m digitsMatcher) findAll(s string, dst []span) []span {
	initClasses()
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf && (c < '0' || c > '9') {
			i++
			continue
		}
		if e := matchDigits(s, i, int(m)); e > 0 {
			dst = append(dst, span{i, e})
			i = e
			continue
		}
		_, n := runeAt(s, i)
		i += n
	}
	return dst
}

// cjkMatcher matches patDeepSeekCJK. Its runes (U+3040 to U+9FA5) are
// three-byte sequences led by 0xE3 to 0xE9, so other bytes are skipped.
type cjkMatcher struct{}

func (cjkMatcher) findAll(s string, dst []span) []span {
	for i := 0; i < len(s); {
		if c := s[i]; c < 0xE3 || c > 0xE9 {
			i++
			continue
		}
		if e := matchDeepSeekCJK(s, i); e > 0 {
			dst = append(dst, span{i, e})
			i = e
			continue
		}
		_, n := runeAt(s, i)
		i += n
	}
	return dst
}

// fastFindAll appends the matches of at in s, searching left to right and
// resuming after each match, as Oniguruma's find_iter does.
func fastFindAll(at func(string, int) int, s string, dst []span) []span {
	initClasses()
	for i := 0; i < len(s); {
		if e := at(s, i); e > i {
			dst = append(dst, span{i, e})
			i = e
			continue
		}
		_, n := runeAt(s, i)
		i += n
	}
	return dst
}

// contraction matches one of 's 't 're 've 'm 'll 'd at s[i] (s[i] == '\”)
// and returns its end, or -1. With fold, letters match case-insensitively as
// Oniguruma folds them: 's' also matches 'S' and 'ſ' (U+017F, whose case fold
// is 's'); the other letters fold only with their ASCII capitals.
func contraction(s string, i int, fold bool) int {
	j := i + 1
	if j >= len(s) {
		return -1
	}
	lower := func(c byte) byte {
		if fold && c >= 'A' && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	switch lower(s[j]) {
	case 's', 't', 'm', 'd':
		return j + 1
	case 'r', 'v':
		if j+1 < len(s) && lower(s[j+1]) == 'e' {
			return j + 2
		}
	case 'l':
		if j+1 < len(s) && lower(s[j+1]) == 'l' {
			return j + 2
		}
	case 0xC5: // 'ſ' is C5 BF
		if fold && j+1 < len(s) && s[j+1] == 0xBF {
			return j + 2
		}
	}
	return -1
}

// whitespaceTail matches the three whitespace alternatives that end the
// cl100k-style patterns, \s*[\r\n]+|\s+(?!\S)|\s+, at i (s[i] is white
// space). The first takes the whitespace up to and including its last CR or
// LF; the second backs off one rune so the next rune stays white space,
// unless the run ends the text; the third takes the run.
func whitespaceTail(s string, i int, crlf bool) int {
	end, lastNL, lastStart := i, -1, i
	for end < len(s) {
		r, n, c := classAt(s, end)
		if c&clSpace == 0 {
			break
		}
		if r == '\r' || r == '\n' {
			lastNL = end
		}
		lastStart = end
		end += n
	}
	if crlf && lastNL >= 0 {
		return lastNL + 1
	}
	if end == len(s) || lastStart == i {
		return end
	}
	return lastStart
}

// matchGPT2 matches patGPT2.
func matchGPT2(s string, i int) int {
	r0, _, c0 := classAt(s, i)
	if r0 == '\'' {
		if e := contraction(s, i, false); e > 0 {
			return e
		}
	}
	j, cj := i, c0
	if r0 == ' ' && i+1 < len(s) {
		_, _, c1 := classAt(s, i+1)
		if c1&clSpace == 0 {
			j, cj = i+1, c1
		}
	}
	switch {
	case cj&clL != 0:
		return runWhile(s, j, clL)
	case cj&clN != 0:
		return runWhile(s, j, clN)
	case cj&clSpace == 0:
		return runOther(s, j)
	}
	return whitespaceTail(s, i, false)
}

// runOther returns the end of the run of runes from i that are neither white
// space, letters nor numbers ([^\s\p{L}\p{N}]+).
func runOther(s string, i int) int {
	for i < len(s) {
		_, n, c := classAt(s, i)
		if c&(clSpace|clL|clN) != 0 {
			break
		}
		i += n
	}
	return i
}

// runCRLF extends e over CR, LF and, with slash, '/' ([\r\n]* or [\r\n/]*).
func runCRLF(s string, e int, slash bool) int {
	for e < len(s) && (s[e] == '\r' || s[e] == '\n' || (slash && s[e] == '/')) {
		e++
	}
	return e
}

// matchCL100K matches patCL100K (maxDigits 3) and patQwen2 (maxDigits 1).
func matchCL100K(s string, i int, maxDigits int) int {
	r0, n0, c0 := classAt(s, i)
	if r0 == '\'' {
		if e := contraction(s, i, true); e > 0 {
			return e
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c0&clL != 0 {
		return runWhile(s, i, clL)
	}
	if r0 != '\r' && r0 != '\n' && c0&clN == 0 && i+n0 < len(s) {
		if _, _, c1 := classAt(s, i+n0); c1&clL != 0 {
			return runWhile(s, i+n0, clL)
		}
	}
	// \p{N}{1,K}
	if c0&clN != 0 {
		return matchDigits(s, i, maxDigits)
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	if e := spaceThenOther(s, i, r0, c0); e > 0 {
		return runCRLF(s, e, false)
	}
	if c0&clSpace != 0 {
		return whitespaceTail(s, i, true)
	}
	return -1
}

// spaceThenOther matches ' ?[^\s\p{L}\p{N}]+' at i and returns its end or -1.
func spaceThenOther(s string, i int, r0 rune, c0 uint16) int {
	if r0 == ' ' && i+1 < len(s) {
		if _, _, c1 := classAt(s, i+1); c1&(clSpace|clL|clN) == 0 {
			return runOther(s, i+1)
		}
	}
	if c0&(clSpace|clL|clN) == 0 {
		return runOther(s, i)
	}
	return -1
}

// matchDigits matches \p{N}{1,max} at i.
func matchDigits(s string, i int, max int) int {
	e := i
	for k := 0; k < max && e < len(s); k++ {
		_, n, c := classAt(s, e)
		if c&clN == 0 {
			break
		}
		e += n
	}
	if e == i {
		return -1
	}
	return e
}

// o200k letter classes: upper-ish [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and
// lower-ish [\p{Ll}\p{Lm}\p{Lo}\p{M}].
const (
	clUpperish = clLu | clLt | clLm | clLo | clM
	clLowerish = clLl | clLm | clLo | clM
)

// o200kWord1 matches [U]*[W]+ at j (U upper-ish, W lower-ish) and returns
// its end or -1. U* first takes the whole upper-ish run; if a lower-ish rune
// follows, W+ takes the lower-ish run from there; otherwise U* gives back
// runes until its last lower-ish rune (Lm, Lo or M, which are in both
// classes) can be W+.
func o200kWord1(s string, j int) int {
	u, lastW := j, -1
	for u < len(s) {
		_, n, c := classAt(s, u)
		if c&clUpperish == 0 {
			break
		}
		if c&clLowerish != 0 {
			lastW = u + n
		}
		u += n
	}
	if u < len(s) {
		if _, _, c := classAt(s, u); c&clLowerish != 0 {
			return runWhile(s, u, clLowerish)
		}
	}
	return lastW
}

// o200kWord2 matches [U]+[W]* at j and returns its end or -1.
func o200kWord2(s string, j int) int {
	u := runWhile(s, j, clUpperish)
	if u == j {
		return -1
	}
	return runWhile(s, u, clLowerish)
}

// matchO200K matches patO200K.
func matchO200K(s string, i int) int {
	r0, n0, c0 := classAt(s, i)
	prefix := r0 != '\r' && r0 != '\n' && c0&(clL|clN) == 0 && i+n0 < len(s)
	for _, word := range [2]func(string, int) int{o200kWord1, o200kWord2} {
		e := -1
		if prefix {
			e = word(s, i+n0)
		}
		if e < 0 {
			e = word(s, i)
		}
		if e > i {
			if e < len(s) && s[e] == '\'' {
				if c := contraction(s, e, true); c > 0 {
					return c
				}
			}
			return e
		}
	}
	if c0&clN != 0 {
		return matchDigits(s, i, 3)
	}
	if e := spaceThenOther(s, i, r0, c0); e > 0 {
		return runCRLF(s, e, true)
	}
	if c0&clSpace != 0 {
		return whitespaceTail(s, i, true)
	}
	return -1
}

// inDeepSeekCJK reports whether r is in [一-龥぀-ゟ゠-ヿ].
func inDeepSeekCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FA5) || (r >= 0x3040 && r <= 0x309F) || (r >= 0x30A0 && r <= 0x30FF)
}

// matchDeepSeekCJK matches patDeepSeekCJK.
func matchDeepSeekCJK(s string, i int) int {
	e := i
	for e < len(s) {
		r, n := runeAt(s, e)
		if !inDeepSeekCJK(r) {
			break
		}
		e += n
	}
	if e == i {
		return -1
	}
	return e
}

func isASCIIPunct(c byte) bool {
	return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~')
}

func isASCIILetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }

// matchDeepSeek matches patDeepSeek.
func matchDeepSeek(s string, i int) int {
	// [ASCII punctuation][A-Za-z]+
	if isASCIIPunct(s[i]) && i+1 < len(s) && isASCIILetter(s[i+1]) {
		e := i + 1
		for e < len(s) && isASCIILetter(s[e]) {
			e++
		}
		return e
	}
	r0, n0, c0 := classAt(s, i)
	// [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ (a mark at i gives the same span
	// whether it is taken as the optional rune or as the first of the run)
	if c0&(clL|clM) != 0 {
		return runWhile(s, i, clL|clM)
	}
	if r0 != '\r' && r0 != '\n' && c0&(clP|clS) == 0 && i+n0 < len(s) {
		if _, _, c1 := classAt(s, i+n0); c1&(clL|clM) != 0 {
			return runWhile(s, i+n0, clL|clM)
		}
	}
	// ' ?[\p{P}\p{S}]+[\r\n]*'
	j := -1
	if r0 == ' ' && i+1 < len(s) {
		if _, _, c1 := classAt(s, i+1); c1&(clP|clS) != 0 {
			j = i + 1
		}
	}
	if j < 0 && c0&(clP|clS) != 0 {
		j = i
	}
	if j >= 0 {
		return runCRLF(s, runWhile(s, j, clP|clS), false)
	}
	if c0&clSpace != 0 {
		return whitespaceTail(s, i, true)
	}
	return -1
}
