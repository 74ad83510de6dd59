package minimax01

import (
	"math"
	"slices"

	"github.com/lightninglm/lightning/attention"
	"github.com/lightninglm/lightning/kernels"
)

// Sequence-parallel prefill (LASP): a sequence's new tokens are cut into
// contiguous chunks run at once by several processes (ranks) that each hold
// every layer; RunChunk runs one chunk. In each lightning layer a rank that
// has earlier chunks before it computes its chunk from a zero state, then
// receives the state after the earlier tokens and combines
// (attention.LightningCarry, attention.LightningPrefixOut); in each softmax
// layer its queries attend to its own keys and to each earlier block of keys
// and values as it arrives (ring attention: attention.FlashAttendBlock,
// attention.MergeAttention). The rank of the first chunk holds the
// sequence's state as it was before the chunks; the rank of the last one
// ends with the whole state (lightning states and full KV caches).

// ChunkRing links one rank's chunk of a sequence to the ranks of the chunks
// before and after it. The model calls it in layer order; a transport
// failure makes RecvState return zeros and RecvKV a block of no rows, and
// the caller, who owns the transport, reports the error after RunChunk
// (whose results are then garbage).
type ChunkRing interface {
	// Prev reports whether earlier tokens of the sequence are on other
	// ranks (the state given to RunChunk is then a NewStateAt one); Next
	// whether a later chunk follows on another rank.
	Prev() bool
	Next() bool
	// RecvState returns lightning layer l's state after every token before
	// the chunk ([heads, hd, hd]); SendState passes on the one after it.
	RecvState(l int) []float32
	SendState(l int, st []float32)
	// RecvKV returns the next block of softmax layer l's keys and values
	// (after RoPE; k and v [n, kvHeads·hd]) at positions [pos, pos+n); the
	// blocks cover every position before the chunk once, in any order, and
	// stay valid until RunChunk returns. SendKV passes a block on.
	// The Send methods must not keep their slices after returning.
	RecvKV(l int) (pos, n int, k, v []float32)
	SendKV(l, pos, n int, k, v []float32)
}

// NewStateAt returns an empty state that starts at position pos: the state
// of a chunk whose earlier tokens are on other ranks (RunChunk with
// ring.Prev()). Its lightning states are zero and its KV caches empty
// until RunChunk fills them.
func (m *Model) NewStateAt(pos int) *State {
	s := m.newState(0)
	s.n = pos
	return s
}

// RunChunk runs every layer on the hidden states x ([n, dim], n ≤
// MaxBatchTokens) of one chunk of the sequence st, in place, exchanging
// what crosses chunk boundaries through ring, and advances st by n. With
// ring.Prev() st must come from NewStateAt; with !ring.Next() st ends as
// the sequence's whole state (as if one process had run every chunk), else
// it holds only the chunk's part and should be dropped.
func (m *Model) RunChunk(x []float32, st *State, n int, ring ChunkRing) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st.m != m {
		panic("minimax01: RunChunk got a state that was not made by this model")
	}
	if n > m.maxT {
		panic("minimax01: RunChunk chunk exceeds MaxBatchTokens")
	}
	s := m.s
	s.spans = append(s.spans[:0], span{st: st, pos: st.n, tokens: s.rowToks[:n]})
	st.n += n
	copy(s.x[:n*m.Config.Dim], x)
	s.ring = ring
	defer func() { s.ring = nil }()
	p := m.prof
	if p != nil {
		p.Begin(stepPhase(s.spans, n))
	}
	m.layers(s, 0, m.Config.Layers, n, nil)
	p.End(n)
	copy(x, s.x[:n*m.Config.Dim])
}

// lightningRing completes lightning layer l of a chunk of T rows whose core
// ran from the chunk's own state: with earlier chunks it takes their state,
// carries the chunk's state over it and adds its part of the outputs; the
// state after the chunk goes to the next rank before that last step.
func (m *Model) lightningRing(s *scratch, l, T int) {
	c, ring := m.Config, s.ring
	d := c.HeadDim
	st := s.spans[0].st.lin[l]
	var in []float32
	if ring.Prev() {
		in = ring.RecvState(l)
		if len(in) != len(st) {
			in = make([]float32, len(st)) // a failed transport; the caller reports it
		}
		for h, slope := range m.slopes[l] {
			attention.LightningCarry(st[h*d*d:(h+1)*d*d], in[h*d*d:], d, T, slope)
		}
	}
	if ring.Next() {
		ring.SendState(l, st)
	}
	if in != nil {
		s.block = ringBlock{prefix: in, n: T}
		kernels.ParallelFor(c.Heads, 1, s.prefixFn)
	}
}

// prefixHeads adds, for heads [lo, hi) of the current lightning layer, the
// earlier chunks' part of the outputs (attention.LightningPrefixOut).
func (s *scratch) prefixHeads(lo, hi int) {
	m := s.m
	c := m.Config
	hd, d := c.Heads*c.HeadDim, c.HeadDim
	ws := <-s.linFree
	defer func() { s.linFree <- ws }()
	for h := lo; h < hi; h++ {
		attention.LightningPrefixOut(s.o[h*d:], hd, s.qkv[h*3*d:], 3*hd, s.block.n, d, s.block.prefix[h*d*d:(h+1)*d*d], m.slopes[s.layer][h], ws)
	}
}

// ringBlock is the argument of the ParallelFor bodies of the ring paths: an
// earlier block of keys and values with where its attention goes, or the
// incoming lightning state.
type ringBlock struct {
	k, v    []float32 // [m, kvHeads·hd] keys and values at positions kPos ..
	kPos, m int
	o, lse  []float32 // where the attention goes: [T, heads·hd] and [T, heads]
	n       int       // the chunk's rows
	prefix  []float32 // lightning: the state before the chunk [heads, hd, hd]
}

// softmaxRing runs softmax attention for a chunk with earlier chunks on
// other ranks (ring attention): its queries (rotated, in s.qkv) attend to
// its own keys (s.kbuf, s.vbuf; causal) and to each earlier block as it
// arrives, merging the partial results; each block is passed on first. The
// last rank then fills the sequence's KV cache in position order.
func (m *Model) softmaxRing(s *scratch, l, T int) {
	c, ring := m.Config, s.ring
	hd, kvd, heads := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.Heads
	sp := s.spans[0]
	k, v := s.kbuf[:T*kvd], s.vbuf[:T*kvd]
	if ring.Next() {
		ring.SendKV(l, sp.pos, T, k, v)
	}
	s.layer = l
	s.block = ringBlock{k: k, v: v, kPos: sp.pos, m: T, o: s.o, lse: s.lse, n: T}
	kernels.ParallelFor(c.KVHeads*attention.FlashTiles(T, heads/c.KVHeads), 1, s.blockFn)
	type block struct {
		pos, n int
		k, v   []float32
	}
	var blocks []block
	for got := 0; got < sp.pos; {
		pos, n, bk, bv := ring.RecvKV(l)
		if n == 0 {
			break // a failed transport; the caller reports it
		}
		if ring.Next() {
			ring.SendKV(l, pos, n, bk, bv)
		}
		s.block = ringBlock{k: bk, v: bv, kPos: pos, m: n, o: s.o2, lse: s.lse2, n: T}
		kernels.ParallelFor(c.KVHeads*attention.FlashTiles(T, heads/c.KVHeads), 1, s.blockFn)
		attention.MergeAttention(s.o, hd, s.lse, heads, s.o2, hd, s.lse2, heads, T, heads, c.HeadDim)
		blocks = append(blocks, block{pos, n, bk, bv})
		got += n
	}
	if !ring.Next() {
		slices.SortFunc(blocks, func(a, b block) int { return a.pos - b.pos })
		cache := &sp.st.kv[l]
		for _, b := range blocks {
			cache.Append(b.k, b.v, kvd, b.n)
		}
		cache.Append(k, v, kvd, T)
	}
}

// attendBlock runs work items [lo, hi) — (KV head, query tile) pairs — of
// the chunk's attention to the current block (attention.FlashAttendBlock).
func (s *scratch) attendBlock(lo, hi int) {
	c := s.m.Config
	hd, kvd, d := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.HeadDim
	group := c.Heads / c.KVHeads
	tiles := attention.FlashTiles(s.block.n, group)
	scale := float32(1 / math.Sqrt(float64(d)))
	ws := <-s.flashFree
	defer func() { s.flashFree <- ws }()
	b, sp := &s.block, &s.spans[0]
	for i := lo; i < hi; i++ {
		attention.FlashAttendBlock(b.o, hd, b.lse, c.Heads, s.qkv, hd, b.k, kvd, b.v, kvd,
			i/tiles, group, d, sp.pos, b.n, b.kPos, b.m, i%tiles, scale, ws)
	}
}

// sendCache passes softmax layer l's whole KV cache (every position up to
// the chunk's end) to the next rank: the first rank's block.
func (m *Model) sendCache(s *scratch, l int) {
	kv := &s.spans[0].st.kv[l]
	rl := kv.Heads * kv.Dim
	k, v := make([]float32, kv.Len*rl), make([]float32, kv.Len*rl)
	kv.Read(k, v, 0, kv.Len)
	s.ring.SendKV(l, 0, kv.Len, k, v)
}
