package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Byte-level BPE training.
//
// The trainer does what Hugging Face's BpeTrainer does on a byte-level
// pipeline, and learns the same merges in the same order from the same texts
// (TestTrainBPEMatchesHFTrainer): texts are cut at the special tokens, split
// into pre-tokens by a regex, and the pre-tokens are counted; every distinct
// pre-token ("word") starts as its bytes, and the most frequent adjacent pair
// of symbols over all words (weighted by word count) is merged into a new
// symbol, leftmost first and without overlaps, again and again.
//
// Pair counts are kept incrementally: a merge rewrites only the words that
// contain the pair (each pair keeps the list of words it occurs in) and
// applies the change of their pair counts, and a max-heap with lazy deletion
// finds the next pair. An existing pair's count can only fall (every pair a
// merge creates contains the new symbol), so a heap entry is either exact or
// too high; a popped entry whose count is stale goes back with its current
// count, and the first exact entry is the true maximum.
//
// Ties go to the pair with the smaller (left id, right id), so the result
// depends only on the word counts: the same data and options give the same
// merges. A pair whose concatenation is already a token (another merge made
// the same bytes) is skipped, so every merge adds one token and the
// vocabulary is 256 bytes + merges + special tokens; BpeTrainer would merge
// it into the existing token instead. Neither the tests nor 90 MB of Go
// source ever produced such a pair.

// TrainPattern is the pre-tokenizer regex of trained tokenizers: OpenAI's
// o200k_base pattern (GPT-4o), which this package runs with a hand-written
// matcher that equals the regex (fastregex.go). It keeps letter runs with
// their leading space or punctuation, splits CamelCase, groups digits by up
// to three, and keeps newlines apart from other white space.
const TrainPattern = patO200K

// BPETrainer counts the pre-tokens of texts and learns byte-level BPE merges
// from them. Add texts, then call Train. Not safe for concurrent use.
type BPETrainer struct {
	specials []string
	added    *addedVocab      // finds the special tokens in a text
	pre      matcher          // TrainPattern
	wordID   map[string]int32 // pre-token → index in freq
	freq     []int64          // [words] occurrences

	spans  []span
	splits []addedSplit

	// Bytes is the number of text bytes added so far.
	Bytes int64
	// PreTokens is the number of pre-tokens counted so far.
	PreTokens int64
}

// NewBPETrainer returns a trainer whose tokenizer will have the given
// special tokens after its BPE tokens, in that order. Occurrences of a
// special token in the training text are cut out before counting, as the
// tokenizer matches them before BPE runs.
func NewBPETrainer(specials []string) (*BPETrainer, error) {
	seen := map[string]bool{}
	added := make([]AddedToken, len(specials))
	for i, s := range specials {
		if s == "" {
			return nil, errors.New("tokenizer: empty special token")
		}
		if seen[s] {
			return nil, fmt.Errorf("tokenizer: special token %q given twice", s)
		}
		seen[s] = true
		added[i] = AddedToken{ID: i, Content: s, Special: true}
	}
	m, err := compileRegex(TrainPattern, false)
	if err != nil {
		return nil, err
	}
	return &BPETrainer{
		specials: append([]string(nil), specials...),
		added:    newAddedVocab(added, func(string) (int, bool) { return 0, false }, 0, nil, true),
		pre:      m,
		wordID:   map[string]int32{},
	}, nil
}

// Add counts the pre-tokens of one text. Invalid UTF-8 is replaced by
// U+FFFD first, as Encode does.
func (t *BPETrainer) Add(text string) {
	t.Bytes += int64(len(text))
	text = strings.ToValidUTF8(text, "\uFFFD")
	t.splits = t.added.split(t.added.raw, text, t.splits[:0])
	for _, sp := range t.splits {
		if sp.id >= 0 {
			continue
		}
		seg := text[sp.start:sp.end]
		t.spans = t.pre.findAll(seg, t.spans[:0])
		t.PreTokens += int64(len(t.spans))
		for _, m := range t.spans {
			w := seg[m.start:m.end]
			if id, ok := t.wordID[w]; ok {
				t.freq[id]++
			} else {
				t.wordID[strings.Clone(w)] = int32(len(t.freq)) // a copy: not a view that keeps the text alive
				t.freq = append(t.freq, 1)
			}
		}
	}
}

// Words returns the number of distinct pre-tokens counted so far.
func (t *BPETrainer) Words() int { return len(t.freq) }

// TrainedBPE is the result of training: a byte-level BPE model and its
// special tokens.
type TrainedBPE struct {
	// Merges are the merges in rank order, as byte-level spellings
	// ("Ġ" for a space). Merge k makes token 256+k.
	Merges [][2]string
	// Specials are the special tokens, with ids 256+len(Merges) and up.
	Specials []string
	// Blocked counts the pairs skipped because their concatenation was
	// already a token.
	Blocked int
}

// VocabSize is the number of ids: 256 bytes, the merges and the specials.
func (b *TrainedBPE) VocabSize() int { return 256 + len(b.Merges) + len(b.Specials) }

// ErrVocabTooSmall is returned by Train when the vocabulary cannot hold the
// 256 byte tokens and the special tokens.
var ErrVocabTooSmall = errors.New("vocabulary too small")

// Train learns vocabSize − 256 − len(specials) merges from the counted
// pre-tokens. If the words run out of pairs first, it returns fewer merges
// (TrainedBPE.VocabSize tells). progress, if not nil, is called with the
// number of merges done, after every merge.
func (t *BPETrainer) Train(vocabSize int, progress func(merges int)) (*TrainedBPE, error) {
	nMerges := vocabSize - 256 - len(t.specials)
	if nMerges < 0 {
		return nil, fmt.Errorf("tokenizer: %w: %d ids < 256 byte tokens + %d special tokens = %d",
			ErrVocabTooSmall, vocabSize, len(t.specials), 256+len(t.specials))
	}
	s := newMergeState(t.wordID, t.freq)
	out := &TrainedBPE{Specials: append([]string(nil), t.specials...)}
	for len(out.Merges) < nMerges {
		pair, ok := s.best()
		if !ok {
			break
		}
		a, b := int32(pair>>32), int32(uint32(pair))
		tok := s.toks[a] + s.toks[b]
		if _, dup := s.ids[tok]; dup {
			out.Blocked++
			continue
		}
		s.merge(pair, tok)
		out.Merges = append(out.Merges, [2]string{s.spelling(a), s.spelling(b)})
		if progress != nil {
			progress(len(out.Merges))
		}
	}
	return out, nil
}

// mergeState is the trainer's working set: the words as symbol ids in one
// arena, the pair counts, the words each pair occurs in, and the heap.
type mergeState struct {
	syms  []int32 // arena: word w is syms[start[w] : start[w]+n[w]]
	start []int32 // [words]
	n     []int32 // [words], shrinks as merges join symbols
	freq  []int64 // [words]
	stamp []int32 // [words], last merge that visited the word (+1)

	counts map[uint64]int64   // pair → occurrences weighted by word count
	where  map[uint64][]int32 // pair → words it occurs in (may hold stale ones)
	heap   pairHeap

	toks []string         // id → token bytes
	ids  map[string]int32 // token bytes → id
	runs int32            // merges done

	delta map[uint64]int64 // scratch: count changes of one merge
	buf   []int32          // scratch: a word's symbols before a merge
}

func pairKey(a, b int32) uint64 { return uint64(a)<<32 | uint64(uint32(b)) }

func newMergeState(words map[string]int32, freq []int64) *mergeState {
	total := 0
	for w := range words {
		total += len(w)
	}
	s := &mergeState{
		syms:   make([]int32, 0, total),
		start:  make([]int32, 0, len(words)),
		n:      make([]int32, 0, len(words)),
		freq:   make([]int64, 0, len(words)),
		stamp:  make([]int32, len(words)),
		counts: map[uint64]int64{},
		where:  map[uint64][]int32{},
		toks:   make([]string, 256),
		ids:    make(map[string]int32, 256),
		delta:  map[uint64]int64{},
	}
	// Ids 0..255 are the bytes in byteOrder, the order of the byte-level
	// runes by code point.
	var byteID [256]int32
	for i, b := range byteOrder {
		byteID[b] = int32(i)
		s.toks[i] = string([]byte{b})
		s.ids[s.toks[i]] = int32(i)
	}
	for w, i := range words {
		f := freq[i]
		if len(w) < 2 {
			continue // no pair to merge
		}
		id := int32(len(s.start))
		s.start = append(s.start, int32(len(s.syms)))
		s.n = append(s.n, int32(len(w)))
		s.freq = append(s.freq, f)
		for i := 0; i < len(w); i++ {
			s.syms = append(s.syms, byteID[w[i]])
		}
		ws := s.word(id)
		for i := 0; i+1 < len(ws); i++ {
			k := pairKey(ws[i], ws[i+1])
			s.counts[k] += f
			s.addWhere(k, id)
		}
	}
	s.heap = make(pairHeap, 0, len(s.counts))
	for k, c := range s.counts {
		s.heap = append(s.heap, pairCount{c, k})
	}
	s.heap.init()
	return s
}

func (s *mergeState) word(w int32) []int32 { return s.syms[s.start[w] : s.start[w]+s.n[w]] }

// addWhere records that pair k occurs in word w (skipping a repeat of the
// last word recorded).
func (s *mergeState) addWhere(k uint64, w int32) {
	l := s.where[k]
	if len(l) > 0 && l[len(l)-1] == w {
		return
	}
	s.where[k] = append(l, w)
}

// best pops the most frequent pair (ties: smallest key), or false when no
// pair is left.
func (s *mergeState) best() (uint64, bool) {
	for len(s.heap) > 0 {
		top := s.heap.pop()
		c := s.counts[top.pair]
		if c == top.count {
			return top.pair, true
		}
		if c > 0 {
			s.heap.push(pairCount{c, top.pair})
		}
	}
	return 0, false
}

// merge replaces every occurrence of pair (leftmost first, not overlapping)
// by a new token with bytes tok, and updates the pair counts.
func (s *mergeState) merge(pair uint64, tok string) {
	a, b := int32(pair>>32), int32(uint32(pair))
	c := int32(len(s.toks))
	s.toks = append(s.toks, tok)
	s.ids[tok] = c
	s.runs++
	clear(s.delta)
	for _, w := range s.where[pair] {
		if s.stamp[w] == s.runs {
			continue
		}
		s.stamp[w] = s.runs
		ws := s.word(w)
		if !containsPair(ws, a, b) {
			continue // stale: an earlier merge took the pair away
		}
		f := s.freq[w]
		for i := 0; i+1 < len(ws); i++ {
			s.delta[pairKey(ws[i], ws[i+1])] -= f
		}
		s.buf = append(s.buf[:0], ws...)
		n := 0
		for i := 0; i < len(s.buf); i++ {
			if i+1 < len(s.buf) && s.buf[i] == a && s.buf[i+1] == b {
				ws[n] = c
				i++
			} else {
				ws[n] = s.buf[i]
			}
			n++
		}
		s.n[w] = int32(n)
		ws = ws[:n]
		for i := 0; i+1 < n; i++ {
			k := pairKey(ws[i], ws[i+1])
			s.delta[k] += f
			if ws[i] == c || ws[i+1] == c {
				s.addWhere(k, w)
			}
		}
	}
	for k, d := range s.delta {
		if d == 0 {
			continue
		}
		n := s.counts[k] + d
		switch {
		case n < 0:
			panic("tokenizer: negative pair count in BPE training")
		case n == 0:
			delete(s.counts, k)
			delete(s.where, k)
		default:
			s.counts[k] = n
		}
		if d > 0 {
			// Only pairs with the new token grow, and they are new: one
			// heap entry each.
			s.heap.push(pairCount{n, k})
		}
	}
	if s.counts[pair] != 0 {
		panic("tokenizer: merged pair still counted in BPE training")
	}
	delete(s.where, pair)
}

func containsPair(ws []int32, a, b int32) bool {
	for i := 0; i+1 < len(ws); i++ {
		if ws[i] == a && ws[i+1] == b {
			return true
		}
	}
	return false
}

// spelling is the byte-level spelling of token id.
func (s *mergeState) spelling(id int32) string {
	return string(appendByteLevel(nil, s.toks[id]))
}

// pairCount is a heap entry: a pair and its count when pushed.
type pairCount struct {
	count int64
	pair  uint64
}

// pairHeap is a max-heap by count, then min by pair key.
type pairHeap []pairCount

func (h pairHeap) before(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count > h[j].count
	}
	return h[i].pair < h[j].pair
}

func (h pairHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *pairHeap) push(x pairCount) {
	*h = append(*h, x)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.before(i, p) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *pairHeap) pop() pairCount {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	*h = q[:last]
	h.down(0)
	return top
}

func (h pairHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.before(r, l) {
			m = r
		}
		if !h.before(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// TokenizerJSON writes the trained tokenizer as a Hugging Face tokenizer.json:
// a BPE model with the vocabulary (the 256 byte tokens in byte-level rune
// order, then one token per merge) and the merges, the Split(TrainPattern)
// + ByteLevel pre-tokenizer (in the form of GPT-4o's tokenizer.json: the
// pattern keeps its matches, which cover the whole text), the ByteLevel decoder, and the special tokens as
// added tokens. The output depends only on b.
func (b *TrainedBPE) TokenizerJSON() []byte {
	var w bytes.Buffer
	q := func(s string) string { return quoteJSON(s) }
	w.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
	for i, sp := range b.Specials {
		if i > 0 {
			w.WriteByte(',')
		}
		fmt.Fprintf(&w, "\n    {\"id\": %d, \"content\": %s, \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}",
			256+len(b.Merges)+i, q(sp))
	}
	w.WriteString("\n  ],\n  \"normalizer\": null,\n")
	fmt.Fprintf(&w, `  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [`+
		`{"type": "Split", "pattern": {"Regex": %s}, "behavior": "Removed", "invert": true}, `+
		`{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},`+"\n", q(TrainPattern))
	w.WriteString(`  "post_processor": null,` + "\n")
	w.WriteString(`  "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},` + "\n")
	w.WriteString(`  "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, ` +
		`"end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,` + "\n")
	w.WriteString("    \"vocab\": {")
	for i, by := range byteOrder {
		if i > 0 {
			w.WriteByte(',')
		}
		fmt.Fprintf(&w, "\n      %s: %d", q(byteRuneStr[by]), i)
	}
	for k, m := range b.Merges {
		fmt.Fprintf(&w, ",\n      %s: %d", q(m[0]+m[1]), 256+k)
	}
	w.WriteString("\n    },\n    \"merges\": [")
	for k, m := range b.Merges {
		if k > 0 {
			w.WriteByte(',')
		}
		fmt.Fprintf(&w, "\n      %s", q(m[0]+" "+m[1]))
	}
	w.WriteString("\n    ]\n  }\n}\n")
	return w.Bytes()
}

// quoteJSON returns s as a JSON string, leaving '<', '>' and '&' as they
// are (the special tokens are full of them).
func quoteJSON(s string) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(s); err != nil {
		panic("tokenizer: a string failed to encode as JSON")
	}
	return strings.TrimSuffix(b.String(), "\n")
}
