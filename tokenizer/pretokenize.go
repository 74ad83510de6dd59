package tokenizer

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// piece is one pre-token: a part of a normalized text segment.
type piece struct {
	s string
	// first: the piece starts at offset 0 of the original text (what the
	// reference's Metaspace prepend_scheme "first" looks at).
	first bool
}

// preTokenizer splits one piece into pieces, appended to dst. Like the
// reference's PreTokenizedString::split, callers drop empty pieces.
type preTokenizer interface {
	preTokenize(dst []piece, p piece, st *encodeState) []piece
}

// splitBehavior says what happens to the delimiters a pattern matches.
type splitBehavior int

const (
	splitRemoved            splitBehavior = iota // delimiters are dropped
	splitIsolated                                // each delimiter is its own piece
	splitMergedWithPrevious                      // a delimiter joins the piece before it
	splitMergedWithNext                          // a delimiter joins the piece after it
	splitContiguous                              // runs of delimiters form one piece
)

var splitBehaviors = map[string]splitBehavior{
	"Removed": splitRemoved, "Isolated": splitIsolated, "MergedWithPrevious": splitMergedWithPrevious,
	"MergedWithNext": splitMergedWithNext, "Contiguous": splitContiguous,
}

// seg is a part of a piece: a match of the pattern or the text between two.
type seg struct {
	start, end int
	match      bool
	remove     bool
}

// splitPieces cuts p at the matches (in order, non-overlapping) and appends
// the non-empty parts to dst, following the reference's
// NormalizedString::split for the given behavior and invert flag.
func splitPieces(dst []piece, p piece, matches []span, b splitBehavior, invert bool, st *encodeState) []piece {
	segs := st.segs[:0]
	prev := 0
	for _, m := range matches {
		if m.start > prev {
			segs = append(segs, seg{start: prev, end: m.start, match: invert})
		}
		segs = append(segs, seg{start: m.start, end: m.end, match: !invert})
		prev = m.end
	}
	if prev < len(p.s) {
		segs = append(segs, seg{start: prev, end: len(p.s), match: invert})
	}
	switch b {
	case splitIsolated:
	case splitRemoved:
		for i := range segs {
			segs[i].remove = segs[i].match
		}
	case splitContiguous, splitMergedWithPrevious:
		out := segs[:0]
		prevMatch := false
		for _, s := range segs {
			join := s.match == prevMatch
			if b == splitMergedWithPrevious {
				join = s.match && !prevMatch
			}
			if join && len(out) > 0 {
				out[len(out)-1].end = s.end
			} else {
				out = append(out, seg{start: s.start, end: s.end})
			}
			prevMatch = s.match
		}
		segs = out
	case splitMergedWithNext:
		// Walk backwards: a delimiter joins the piece that follows it. The
		// result goes to a second buffer since it is built in reverse.
		out := st.segs2[:0]
		prevMatch := false
		for i := len(segs) - 1; i >= 0; i-- {
			s := segs[i]
			if s.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].start = s.start
			} else {
				out = append(out, seg{start: s.start, end: s.end})
			}
			prevMatch = s.match
		}
		slices.Reverse(out)
		st.segs2 = out
		segs = append(segs[:0], out...)
	}
	for _, s := range segs {
		if !s.remove && s.end > s.start {
			dst = append(dst, piece{s: p.s[s.start:s.end], first: p.first && s.start == 0})
		}
	}
	st.segs = segs
	return dst
}

// splitPre is the Split pre-tokenizer (and the pattern-based ones built on
// it: Digits, Punctuation, Whitespace, WhitespaceSplit).
type splitPre struct {
	m        matcher
	behavior splitBehavior
	invert   bool
	regex    string // the pattern's source when it is a regex (see GGMLPre)
}

func (sp *splitPre) preTokenize(dst []piece, p piece, st *encodeState) []piece {
	st.spans = sp.m.findAll(p.s, st.spans[:0])
	if sp.behavior == splitIsolated && !sp.invert {
		// Fast path: every match and every gap is a piece.
		prev := 0
		for _, m := range st.spans {
			if m.start > prev {
				dst = append(dst, piece{s: p.s[prev:m.start], first: p.first && prev == 0})
			}
			dst = append(dst, piece{s: p.s[m.start:m.end], first: p.first && m.start == 0})
			prev = m.end
		}
		if prev < len(p.s) {
			dst = append(dst, piece{s: p.s[prev:], first: p.first && prev == 0})
		}
		return dst
	}
	return splitPieces(dst, p, st.spans, sp.behavior, sp.invert, st)
}

// byteLevelPre is the splitting half of the ByteLevel pre-tokenizer: an
// optional space in front of every piece that lacks one, then, with useRegex,
// the GPT-2 split. The byte-to-rune mapping itself is done by byteLevelMap,
// or by the model when ByteLevel is the last step (see preTokenizerSeq).
type byteLevelPre struct {
	addPrefixSpace bool
	split          *splitPre // nil unless use_regex
}

func (b *byteLevelPre) preTokenize(dst []piece, p piece, st *encodeState) []piece {
	if b.addPrefixSpace && !strings.HasPrefix(p.s, " ") {
		p.s = " " + p.s
	}
	if b.split == nil {
		return append(dst, p)
	}
	return b.split.preTokenize(dst, p, st)
}

// byteLevelMap rewrites each piece in the byte-level alphabet; used when
// another pre-tokenizer follows ByteLevel and must see the mapped text.
type byteLevelMap struct{}

func (byteLevelMap) preTokenize(dst []piece, p piece, st *encodeState) []piece {
	p.s = string(appendByteLevel(nil, p.s))
	return append(dst, p)
}

// metaspacePre is the Metaspace pre-tokenizer: spaces become the
// replacement rune, which is prepended per the scheme, and with split the
// piece is cut before each replacement rune.
type metaspacePre struct {
	repl    rune
	prepend string // "always", "first" or "never"
	split   bool
}

func (m *metaspacePre) preTokenize(dst []piece, p piece, st *encodeState) []piece {
	rs := string(m.repl)
	s := strings.ReplaceAll(p.s, " ", rs)
	if !strings.HasPrefix(s, rs) && (m.prepend == "always" || (m.prepend == "first" && p.first)) {
		s = rs + s
	}
	p.s = s
	if !m.split {
		return append(dst, p)
	}
	st.spans = runeMatcher(func(r rune) bool { return r == m.repl }).findAll(s, st.spans[:0])
	return splitPieces(dst, p, st.spans, splitMergedWithNext, false, st)
}

// preTokenizerSeq is the flattened pre-tokenizer pipeline: steps run in order,
// each over all the pieces the previous one produced. When the last step of
// the file's pipeline is ByteLevel, its mapping is left to the model
// (byteLevel is set), which then works on raw bytes and caches by them.
type preTokenizerSeq struct {
	steps     []preTokenizer
	byteLevel bool
}

// run pre-tokenizes one normalized segment, appending its non-empty pieces.
func (q *preTokenizerSeq) run(dst []piece, p piece, st *encodeState) []piece {
	if p.s == "" {
		return dst
	}
	base := len(dst)
	dst = append(dst, p)
	for _, step := range q.steps {
		cur := append(st.pieces2[:0], dst[base:]...)
		dst = dst[:base]
		for _, c := range cur {
			n := len(dst)
			dst = step.preTokenize(dst, c, st)
			// Drop empty pieces, as PreTokenizedString::split does.
			k := n
			for _, x := range dst[n:] {
				if x.s != "" {
					dst[k] = x
					k++
				}
			}
			dst = dst[:k]
		}
		st.pieces2 = cur
	}
	return dst
}

// buildPreTokenizer turns a parsed pre_tokenizer into a flat pipeline.
func buildPreTokenizer(c *component, slowRegex bool) (*preTokenizerSeq, error) {
	q := &preTokenizerSeq{}
	if c == nil {
		return q, nil
	}
	if err := q.add(c, slowRegex); err != nil {
		return nil, err
	}
	// A final ByteLevel's mapping is done by the model on raw bytes.
	if n := len(q.steps); n > 0 {
		if _, ok := q.steps[n-1].(byteLevelMap); ok {
			q.steps = q.steps[:n-1]
			q.byteLevel = true
		}
	}
	return q, nil
}

func (q *preTokenizerSeq) add(c *component, slowRegex bool) error {
	switch c.Type {
	case "Sequence":
		for i := range c.PreTokenizers {
			if err := q.add(&c.PreTokenizers[i], slowRegex); err != nil {
				return err
			}
		}
	case "ByteLevel":
		b := &byteLevelPre{addPrefixSpace: boolOr(c.AddPrefixSpace, true)}
		if boolOr(c.UseRegex, true) {
			m, err := compileRegex(patGPT2, slowRegex)
			if err != nil {
				return err
			}
			b.split = &splitPre{m: m, behavior: splitIsolated, regex: patGPT2}
		}
		if b.addPrefixSpace || b.split != nil {
			q.steps = append(q.steps, b)
		}
		q.steps = append(q.steps, byteLevelMap{})
	case "Split":
		m, err := c.Pattern.matcher(slowRegex)
		if err != nil {
			return fmt.Errorf("Split pre-tokenizer: %w", err)
		}
		b, ok := splitBehaviors[c.Behavior]
		if !ok {
			return fmt.Errorf("Split pre-tokenizer: unknown behavior %q", c.Behavior)
		}
		sp := &splitPre{m: m, behavior: b, invert: c.Invert}
		if c.Pattern.Regex != nil {
			sp.regex = *c.Pattern.Regex
		}
		q.steps = append(q.steps, sp)
	case "Digits":
		b := splitContiguous
		if c.IndividualDigits {
			b = splitIsolated
		}
		q.steps = append(q.steps, &splitPre{m: runeMatcher(unicode.IsNumber), behavior: b})
	case "Punctuation":
		b := splitIsolated
		if c.Behavior != "" {
			var ok bool
			if b, ok = splitBehaviors[c.Behavior]; !ok {
				return fmt.Errorf("Punctuation pre-tokenizer: unknown behavior %q", c.Behavior)
			}
		}
		q.steps = append(q.steps, &splitPre{m: runeMatcher(isPunctRune), behavior: b})
	case "Whitespace":
		q.steps = append(q.steps, &splitPre{m: fastMatcher(matchWordsOrSymbols), behavior: splitRemoved, invert: true})
	case "WhitespaceSplit":
		q.steps = append(q.steps, &splitPre{m: runeMatcher(unicode.IsSpace), behavior: splitRemoved})
	case "BertPreTokenizer":
		q.steps = append(q.steps,
			&splitPre{m: runeMatcher(unicode.IsSpace), behavior: splitRemoved},
			&splitPre{m: runeMatcher(isPunctRune), behavior: splitIsolated})
	case "Metaspace":
		repl, err := c.replacementRune()
		if err != nil {
			return fmt.Errorf("Metaspace pre-tokenizer: %w", err)
		}
		scheme, err := c.prependScheme()
		if err != nil {
			return fmt.Errorf("Metaspace pre-tokenizer: %w", err)
		}
		q.steps = append(q.steps, &metaspacePre{repl: repl, prepend: scheme, split: boolOr(c.Split, true)})
	default:
		return fmt.Errorf("pre_tokenizer: unsupported type %q", c.Type)
	}
	return nil
}
