package tokenizer

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// bpe is the BPE model: a vocabulary, ranked merges, and the options of the
// reference's BPE (unk, fuse_unk, byte_fallback, ignore_merges,
// continuing_subword_prefix, end_of_word_suffix). Dropout is not supported.
type bpe struct {
	vocab  map[string]int32 // token -> id
	idTok  []string         // id -> token; valid where idHas
	idHas  []bool           // [len(idTok)]
	merges mergeTable

	unk          int32 // id of unk_token, or -1
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix

	// Byte-level mode (the pre-tokenizer ends with ByteLevel): words arrive
	// as raw bytes and are mapped here.
	byteLevel bool
	fastBytes bool             // every byte's rune is a token and there is no prefix/suffix
	byteIDs   [256]int32       // id of byteRune[b]
	rawVocab  map[string]int32 // vocab keyed by the bytes tokens stand for (ignore_merges only)

	cache wordCache

	chunkOnce sync.Once
	chunks    *chunkTables // built on the first long word
}

// mergeTable maps a pair of ids (mergeKey) to its rank and merged id
// (mergeVal): an open-addressing hash table with linear probing, kept at most
// half full. It is the hottest lookup of BPE, and one probe usually touches
// one cache line, where Go's map touches two.
type mergeTable struct {
	slots []mergeSlot
	shift uint // 64 - log2(len(slots))
}

type mergeSlot struct{ key, val uint64 }

// emptyKey marks a free slot; no pair of ids below 2^31 packs to it.
const emptyKey = ^uint64(0)

func newMergeTable(n int) mergeTable {
	size, bits := 16, uint(4)
	for size < 2*n {
		size, bits = size*2, bits+1
	}
	t := mergeTable{slots: make([]mergeSlot, size), shift: 64 - bits}
	for i := range t.slots {
		t.slots[i].key = emptyKey
	}
	return t
}

func (t *mergeTable) home(key uint64) uint64 { return (key * 0x9E3779B97F4A7C15) >> t.shift }

// put sets key to val; the table must have room (newMergeTable's n).
func (t *mergeTable) put(key, val uint64) {
	mask := uint64(len(t.slots) - 1)
	for i := t.home(key); ; i = (i + 1) & mask {
		if s := &t.slots[i]; s.key == emptyKey || s.key == key {
			s.key, s.val = key, val
			return
		}
	}
}

func (t *mergeTable) get(key uint64) (uint64, bool) {
	mask := uint64(len(t.slots) - 1)
	for i := t.home(key); ; i = (i + 1) & mask {
		s := t.slots[i]
		if s.key == key {
			return s.val, true
		}
		if s.key == emptyKey {
			return 0, false
		}
	}
}

// mergeKey packs a pair of ids; mergeVal packs (rank, new id).
func mergeKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func mergeVal(rank int, id int32) uint64 { return uint64(uint32(rank))<<32 | uint64(uint32(id)) }

// newBPE builds the model from a vocabulary and merges (pairs of tokens, in
// rank order). As in the reference, every part and every merged token must
// be in the vocabulary, and a pair listed twice keeps its last rank.
func newBPE(vocab map[string]int32, merges [][2]string, unk string, prefix, suffix string) (*bpe, error) {
	m := &bpe{vocab: vocab, unk: -1, prefix: prefix, suffix: suffix}
	maxID := int32(-1)
	for _, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("model: negative id %d in vocab", id)
		}
		maxID = max(maxID, id)
	}
	m.idTok = make([]string, maxID+1)
	m.idHas = make([]bool, maxID+1)
	for tok, id := range vocab {
		m.idTok[id] = tok
		m.idHas[id] = true
	}
	m.merges = newMergeTable(len(merges))
	for rank, p := range merges {
		a, okA := vocab[p[0]]
		b, okB := vocab[p[1]]
		if !okA || !okB {
			return nil, fmt.Errorf("model: merge %d %q %q: part not in vocab", rank, p[0], p[1])
		}
		if len(p[1]) < len(prefix) {
			return nil, fmt.Errorf("model: merge %d %q %q: second part shorter than continuing_subword_prefix", rank, p[0], p[1])
		}
		merged := p[0] + p[1][len(prefix):]
		id, ok := vocab[merged]
		if !ok {
			return nil, fmt.Errorf("model: merge %d %q %q: merged token %q not in vocab", rank, p[0], p[1], merged)
		}
		m.merges.put(mergeKey(a, b), mergeVal(rank, id))
	}
	if unk != "" {
		id, ok := vocab[unk]
		if !ok {
			return nil, fmt.Errorf("model: unk_token %q is not in the vocabulary", unk)
		}
		m.unk = id
	}
	return m, nil
}

// setByteLevel switches the model to raw-byte input (see bpe.byteLevel).
func (m *bpe) setByteLevel() {
	m.byteLevel = true
	m.fastBytes = m.prefix == "" && m.suffix == ""
	for b := 0; b < 256; b++ {
		id, ok := m.vocab[byteRuneStr[b]]
		if !ok {
			id, m.fastBytes = -1, false
		}
		m.byteIDs[b] = id
	}
	if m.ignoreMerges {
		m.rawVocab = make(map[string]int32, len(m.vocab))
		var buf []byte
		for tok, id := range m.vocab {
			var ok bool
			if buf, ok = unByteLevel(buf[:0], tok); ok {
				m.rawVocab[string(buf)] = id
			}
		}
	}
}

// token returns the vocabulary string of id.
func (m *bpe) token(id int32) (string, bool) {
	if id < 0 || int(id) >= len(m.idTok) || !m.idHas[id] {
		return "", false
	}
	return m.idTok[id], true
}

// wordCache maps words to their ids, shared by all goroutines. Readers
// load an immutable snapshot map with one atomic load and take no lock.
// Words not in the snapshot go to a pending map under a mutex. A new
// snapshot holding both is published when the pending map has grown by a
// quarter of the snapshot (at least pendingMin words), or when pending words
// have been looked up as often as there are pending words; so copying costs
// O(1) per word amortized, and words that recur do not stay behind the
// mutex. At cacheCap words the cache starts over.
type wordCache struct {
	snap    atomic.Pointer[map[string][]int32]
	mu      sync.Mutex
	pending map[string][]int32
	hits    int // lookups answered from pending since the last publish
}

const (
	cacheCap        = 1 << 17
	pendingMin      = 256
	maxCacheWordLen = 256 // bytes; longer words are not cached (as in the reference)
)

// get looks w up in the snapshot, then in the pending map.
func (c *wordCache) get(w string) ([]int32, bool) {
	if m := c.snap.Load(); m != nil {
		if ids, ok := (*m)[w]; ok {
			return ids, true
		}
	}
	return c.getPending(w)
}

func (c *wordCache) getPending(w string) ([]int32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids, ok := c.pending[w]
	if ok {
		c.hits++
		c.maybePublish()
	}
	return ids, ok
}

func (c *wordCache) put(w string, ids []int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = make(map[string][]int32)
	}
	c.pending[w] = ids
	c.maybePublish()
}

// maybePublish merges pending into a new snapshot when it is worth it; c.mu
// is held.
func (c *wordCache) maybePublish() {
	var old map[string][]int32
	if m := c.snap.Load(); m != nil {
		old = *m
	}
	if len(c.pending) < max(pendingMin, len(old)/4) && c.hits < len(c.pending) {
		return
	}
	if len(old)+len(c.pending) > cacheCap {
		old = nil
	}
	next := make(map[string][]int32, len(old)+len(c.pending))
	for k, v := range old {
		next[k] = v
	}
	for k, v := range c.pending {
		next[k] = v
	}
	c.snap.Store(&next)
	c.pending, c.hits = nil, 0
}

// clear empties the cache (benchmarks use it).
func (c *wordCache) clear() {
	c.mu.Lock()
	c.snap.Store(nil)
	c.pending, c.hits = nil, 0
	c.mu.Unlock()
}

// appendWord tokenizes one pre-token w and appends its ids.
func (m *bpe) appendWord(dst []int32, w string, st *encodeState) []int32 {
	if len(w) >= maxCacheWordLen {
		return m.tokenizeWord(dst, w, st)
	}
	if ids, ok := m.cache.get(w); ok {
		return append(dst, ids...)
	}
	n := len(dst)
	dst = m.tokenizeWord(dst, w, st)
	m.cache.put(strings.Clone(w), slices.Clone(dst[n:]))
	return dst
}

// tokenizeWord runs the model on w without the cache.
func (m *bpe) tokenizeWord(dst []int32, w string, st *encodeState) []int32 {
	if m.ignoreMerges {
		var id int32
		var ok bool
		if m.byteLevel {
			id, ok = m.rawVocab[w]
		} else {
			id, ok = m.vocab[w]
		}
		if ok {
			return append(dst, id)
		}
	}
	if !m.byteLevel && m.prefix == "" && m.suffix == "" && len(w) >= chunkMin {
		return m.tokenizeChunks(dst, w, st)
	}
	return m.bpeWord(dst, w, st)
}

// bpeWord runs BPE on w: initial symbols, then merges.
func (m *bpe) bpeWord(dst []int32, w string, st *encodeState) []int32 {
	syms := st.syms[:0]
	if m.byteLevel && m.fastBytes {
		for i := 0; i < len(w); i++ {
			syms = append(syms, m.byteIDs[w[i]])
		}
	} else {
		s := w
		if m.byteLevel {
			st.buf = appendByteLevel(st.buf[:0], w)
			s = string(st.buf)
		}
		syms = m.initialSymbols(syms, s)
	}
	syms = m.mergeSymbols(syms, st)
	st.syms = syms
	return append(dst, syms...)
}

// Long words without a pre-tokenizer (SentencePiece-style BPE sees a whole
// text segment as one word) are cut where no merge can ever join the two
// sides, and the parts are tokenized (and cached) separately. A boundary
// between runes a and b is such a place when both are tokens by themselves
// (so their initial symbols are exactly "a" and "b") and no merged token
// contains "ab": a symbol spanning the boundary would be a merged token
// containing "ab". The result is the same as BPE on the whole word, since
// merges on the two sides never interact.

// chunkMin is the length from which a word is cut.
const chunkMin = 64

// chunkBits is the size (log2 bits) of the bit set of rune pairs that occur
// in merged tokens; a hash collision only makes a cut point look uncuttable.
const chunkBits = 21

type chunkTables struct {
	single []int32  // [0x10000] id of each BMP rune that is a token by itself, or -1
	pairs  []uint64 // bit set over pairHash of adjacent runes in merged tokens
}

func pairHash(a, b rune) uint32 {
	return uint32((uint64(uint32(a))<<32 | uint64(uint32(b))) * 0x9E3779B97F4A7C15 >> (64 - chunkBits))
}

func (m *bpe) buildChunkTables() {
	t := &chunkTables{single: make([]int32, 0x10000), pairs: make([]uint64, 1<<chunkBits/64)}
	for i := range t.single {
		t.single[i] = -1
	}
	for tok, id := range m.vocab {
		if r, n := utf8.DecodeRuneInString(tok); n == len(tok) && r < 0x10000 && r != utf8.RuneError {
			t.single[r] = id
		}
	}
	for _, e := range m.merges.slots {
		if e.key == emptyKey {
			continue
		}
		tok := m.idTok[int32(uint32(e.val))]
		prev := rune(-1)
		for _, r := range tok {
			if prev >= 0 {
				h := pairHash(prev, r)
				t.pairs[h/64] |= 1 << (h % 64)
			}
			prev = r
		}
	}
	m.chunks = t
}

// tokenizeChunks cuts w (see above) and tokenizes each part.
func (m *bpe) tokenizeChunks(dst []int32, w string, st *encodeState) []int32 {
	m.chunkOnce.Do(m.buildChunkTables)
	t := m.chunks
	start := 0
	prev, prevN := runeAt(w, 0)
	for i := prevN; i < len(w); {
		r, n := runeAt(w, i)
		if r < 0x10000 && prev < 0x10000 && t.single[r] >= 0 && t.single[prev] >= 0 {
			if h := pairHash(prev, r); t.pairs[h/64]&(1<<(h%64)) == 0 {
				dst = m.appendChunk(dst, w[start:i], st)
				start = i
			}
		}
		prev = r
		i += n
	}
	if start == 0 {
		return m.bpeWord(dst, w, st)
	}
	return m.appendChunk(dst, w[start:], st)
}

// appendChunk tokenizes one part of a cut word. Without ignore_merges a part
// goes through the cache like a word (tokenizeWord on it is plain BPE);
// with it, the whole-word lookup must not apply to parts.
func (m *bpe) appendChunk(dst []int32, c string, st *encodeState) []int32 {
	if m.ignoreMerges {
		return m.bpeWord(dst, c, st)
	}
	return m.appendWord(dst, c, st)
}

// initialSymbols splits w into one symbol per rune, following the
// reference's BPE::merge_word: the prefix goes before every rune but the
// first and the suffix after the last; a rune missing from the vocabulary
// becomes its <0xNN> byte tokens (byte_fallback) or unk (fused runs with
// fuse_unk) or, with neither, is dropped.
func (m *bpe) initialSymbols(syms []int32, w string) []int32 {
	pendingUnk := false
	for i := 0; i < len(w); {
		_, n := runeAt(w, i)
		s := w[i : i+n]
		if i > 0 && m.prefix != "" {
			s = m.prefix + s
		}
		if i+n == len(w) && m.suffix != "" {
			s += m.suffix
		}
		i += n
		if id, ok := m.vocab[s]; ok {
			if pendingUnk {
				syms = append(syms, m.unk)
				pendingUnk = false
			}
			syms = append(syms, id)
			continue
		}
		if m.byteFallback {
			ok := true
			k := len(syms)
			for j := 0; j < len(s); j++ {
				id, found := m.vocab[byteFallbackToken(s[j])]
				if !found {
					ok = false
					break
				}
				syms = append(syms, id)
			}
			if ok {
				continue
			}
			syms = syms[:k]
		}
		if m.unk >= 0 {
			if pendingUnk && !m.fuseUnk {
				syms = append(syms, m.unk)
			}
			pendingUnk = true
		}
	}
	if pendingUnk {
		syms = append(syms, m.unk)
	}
	return syms
}

// byteFallbackToken is the vocabulary spelling of a fallback byte, <0xE4>.
func byteFallbackToken(b byte) string {
	const hex = "0123456789ABCDEF"
	return string([]byte{'<', '0', 'x', hex[b>>4], hex[b&15], '>'})
}

// naiveMergeMax is the longest word merged by the quadratic scan; longer
// words use the heap. Both give the reference's result (bpe_test.go).
const naiveMergeMax = 48

// mergeSymbols applies the merges to syms: repeatedly the adjacent pair with
// the lowest rank, the leftmost one on ties, as the reference's
// Word::merge_all does with its priority queue.
func (m *bpe) mergeSymbols(syms []int32, st *encodeState) []int32 {
	if len(syms) < 2 {
		return syms
	}
	if len(syms) > naiveMergeMax {
		return m.mergeHeap(syms, st)
	}
	return m.mergeNaive(syms, st)
}

const noRank = math.MaxUint32

// pairRank returns the rank and merged id of the pair (a, b), or noRank.
func (m *bpe) pairRank(a, b int32) (uint32, int32) {
	v, ok := m.merges.get(mergeKey(a, b))
	if !ok {
		return noRank, -1
	}
	return uint32(v >> 32), int32(uint32(v))
}

func (m *bpe) mergeNaive(syms []int32, st *encodeState) []int32 {
	// ranks[i], ids[i]: the merge of the pair (syms[i], syms[i+1]).
	ranks := st.ranks[:0]
	ids := st.newIDs[:0]
	for i := 0; i+1 < len(syms); i++ {
		r, id := m.pairRank(syms[i], syms[i+1])
		ranks = append(ranks, r)
		ids = append(ids, id)
	}
	for len(syms) > 1 {
		best, bi := uint32(noRank), -1
		for i, r := range ranks {
			if r < best {
				best, bi = r, i
			}
		}
		if bi < 0 {
			break
		}
		syms[bi] = ids[bi]
		syms = slices.Delete(syms, bi+1, bi+2)
		// Pairs bi and bi+1 become the one pair bi.
		k := min(bi+1, len(ranks)-1)
		ranks = slices.Delete(ranks, k, k+1)
		ids = slices.Delete(ids, k, k+1)
		if bi > 0 {
			ranks[bi-1], ids[bi-1] = m.pairRank(syms[bi-1], syms[bi])
		}
		if bi < len(ranks) {
			ranks[bi], ids[bi] = m.pairRank(syms[bi], syms[bi+1])
		}
	}
	st.ranks, st.newIDs = ranks, ids
	return syms
}

// heapItem is a candidate merge of the symbol at pos with its right
// neighbour.
type heapItem struct {
	rank uint32
	pos  int32
	id   int32
}

func (a heapItem) less(b heapItem) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

// mergeHeap is the reference's algorithm: a min-heap of (rank, pos) over a
// doubly linked list of symbols, skipping stale entries.
func (m *bpe) mergeHeap(syms []int32, st *encodeState) []int32 {
	n := len(syms)
	if n < 2 {
		return syms
	}
	prev := growInt32(st.prev, n)
	next := growInt32(st.next, n)
	alive := growBool(st.alive, n)
	for i := range n {
		prev[i], next[i], alive[i] = int32(i-1), int32(i+1), true
	}
	next[n-1] = -1
	h := st.heap[:0]
	push := func(it heapItem) {
		h = append(h, it)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if !h[i].less(h[p]) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
	}
	pop := func() heapItem {
		top := h[0]
		last := len(h) - 1
		h[0] = h[last]
		h = h[:last]
		for i := 0; ; {
			l, r, s := 2*i+1, 2*i+2, i
			if l < len(h) && h[l].less(h[s]) {
				s = l
			}
			if r < len(h) && h[r].less(h[s]) {
				s = r
			}
			if s == i {
				break
			}
			h[i], h[s] = h[s], h[i]
			i = s
		}
		return top
	}
	for i := 0; i+1 < n; i++ {
		if r, id := m.pairRank(syms[i], syms[i+1]); r != noRank {
			push(heapItem{r, int32(i), id})
		}
	}
	for len(h) > 0 {
		top := pop()
		p := top.pos
		if !alive[p] || next[p] < 0 {
			continue
		}
		q := next[p]
		if _, id := m.pairRank(syms[p], syms[q]); id != top.id {
			continue // stale: the pair at p changed since this was pushed
		}
		syms[p] = top.id
		alive[q] = false
		next[p] = next[q]
		if next[q] >= 0 {
			prev[next[q]] = p
		}
		if prev[p] >= 0 {
			if r, id := m.pairRank(syms[prev[p]], syms[p]); r != noRank {
				push(heapItem{r, prev[p], id})
			}
		}
		if next[p] >= 0 {
			if r, id := m.pairRank(syms[p], syms[next[p]]); r != noRank {
				push(heapItem{r, p, id})
			}
		}
	}
	out := syms[:0]
	for i := 0; i < n; i++ {
		if alive[i] {
			out = append(out, syms[i])
		}
	}
	st.prev, st.next, st.alive, st.heap = prev, next, alive, h
	return out
}

func growInt32(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

func growBool(s []bool, n int) []bool {
	if cap(s) < n {
		return make([]bool, n)
	}
	return s[:n]
}
