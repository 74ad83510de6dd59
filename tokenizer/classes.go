package tokenizer

import (
	"sync"
	"unicode"
	"unicode/utf8"
)

// Character classes used by the hand-written pre-tokenizer matchers
// (fastregex.go) and by the simple character-predicate splitters. Each class
// is a bit; classOf returns all the bits of a rune. The classes are Go's
// unicode tables, which is also what the regexp2 fallback uses.
const (
	clL     uint16 = 1 << iota // \p{L}
	clLu                       // \p{Lu}
	clLt                       // \p{Lt}
	clLl                       // \p{Ll}
	clLm                       // \p{Lm}
	clLo                       // \p{Lo}
	clM                        // \p{M}
	clN                        // \p{N}
	clP                        // \p{P}
	clS                        // \p{S}
	clSpace                    // \s: Unicode White_Space (unicode.IsSpace)
)

var classTables = []struct {
	bit uint16
	tab *unicode.RangeTable
}{
	{clL, unicode.L}, {clLu, unicode.Lu}, {clLt, unicode.Lt}, {clLl, unicode.Ll},
	{clLm, unicode.Lm}, {clLo, unicode.Lo}, {clM, unicode.M}, {clN, unicode.N},
	{clP, unicode.P}, {clS, unicode.S}, {clSpace, unicode.White_Space},
}

var (
	bmpOnce    sync.Once
	bmpClass   []uint16 // [0x10000] class bits of every BMP rune; built by initClasses
	asciiClass [utf8.RuneSelf]uint16
)

func init() {
	for c := rune(0); c < utf8.RuneSelf; c++ {
		for _, ct := range classTables {
			if unicode.Is(ct.tab, c) {
				asciiClass[c] |= ct.bit
			}
		}
	}
}

// initClasses builds the BMP class table (128 KB) on first use; the
// matchers call it before classifying runes.
func initClasses() { bmpOnce.Do(buildBMPClasses) }

func buildBMPClasses() {
	t := make([]uint16, 0x10000)
	for _, ct := range classTables {
		for _, r := range ct.tab.R16 {
			for c := int(r.Lo); c <= int(r.Hi); c += int(r.Stride) {
				t[c] |= ct.bit
			}
		}
	}
	bmpClass = t
}

// classOf returns the class bits of r. initClasses must have run.
func classOf(r rune) uint16 {
	if uint32(r) < 0x10000 {
		return bmpClass[r]
	}
	return classOfAstral(r)
}

func classOfAstral(r rune) uint16 {
	var c uint16
	for _, ct := range classTables {
		if unicode.Is(ct.tab, r) {
			c |= ct.bit
		}
	}
	return c
}

// runeAt decodes the rune at s[i] (i < len(s)) with an ASCII fast path.
func runeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// classAt returns the rune at s[i], its size and its class bits.
func classAt(s string, i int) (rune, int, uint16) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1, asciiClass[c]
	}
	return classAtSlow(s, i)
}

func classAtSlow(s string, i int) (rune, int, uint16) {
	r, n := utf8.DecodeRuneInString(s[i:])
	return r, n, classOf(r)
}

// runWhile returns the end of the run of runes from i whose classes intersect
// mask.
func runWhile(s string, i int, mask uint16) int {
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if asciiClass[c]&mask == 0 {
				break
			}
			i++
			continue
		}
		_, n, c := classAtSlow(s, i)
		if c&mask == 0 {
			break
		}
		i += n
	}
	return i
}
