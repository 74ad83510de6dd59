package minimax01

import (
	"github.com/lightninglm/lightning/attention"
	"github.com/lightninglm/lightning/model"
)

// State is one sequence's decoding state (spec §4.1): an fp32 lightning state
// per lightning layer and a KV cache per softmax layer. Nothing else is
// needed: positions come from the token count.
type State struct {
	m   *Model
	lin [][]float32         // [layers] → [heads, headDim, headDim] (nil for softmax layers)
	kv  []attention.KVCache // [layers] (empty for lightning layers)
	n   int                 // tokens absorbed
}

// NewState returns an empty state; the KV caches grow as tokens arrive.
func (m *Model) NewState() model.State { return m.newState(0) }

// NewStateCap returns an empty state whose KV caches already hold room for
// capacity tokens, so a forward within that length never allocates.
func (m *Model) NewStateCap(capacity int) *State { return m.newState(capacity) }

func (m *Model) newState(capacity int) *State {
	c := m.Config
	s := &State{m: m, lin: make([][]float32, c.Layers), kv: make([]attention.KVCache, c.Layers)}
	for l, k := range c.LayerKinds {
		if k == Lightning {
			s.lin[l] = make([]float32, c.Heads*c.HeadDim*c.HeadDim)
		} else {
			s.kv[l] = attention.NewKVCache(m.kvType, c.KVHeads, c.HeadDim, capacity)
		}
	}
	return s
}

// Len is the number of tokens the state has absorbed.
func (s *State) Len() int { return s.n }

// Bytes is the memory the state holds (lightning states plus KV capacity).
func (s *State) Bytes() int64 {
	var b int64
	for l := range s.lin {
		b += int64(len(s.lin[l])) * 4
		b += s.kv[l].Bytes()
	}
	return b
}

// Clone returns an independent deep copy.
func (s *State) Clone() model.State {
	c := &State{m: s.m, lin: make([][]float32, len(s.lin)), kv: make([]attention.KVCache, len(s.kv)), n: s.n}
	for l := range s.lin {
		if s.lin[l] != nil {
			c.lin[l] = append([]float32(nil), s.lin[l]...)
		} else {
			c.kv[l] = s.kv[l].Clone()
		}
	}
	return c
}

// Reset empties the state for reuse, keeping its memory.
func (s *State) Reset() {
	for l := range s.lin {
		clear(s.lin[l])
		s.kv[l].Truncate(0)
	}
	s.n = 0
}

// LightningState returns layer l's state [heads, headDim, headDim] (nil for
// a softmax layer). It aliases the state's memory.
func (s *State) LightningState(l int) []float32 { return s.lin[l] }

// KV returns layer l's KV cache (empty for a lightning layer). It aliases the
// state's memory.
func (s *State) KV(l int) *attention.KVCache { return &s.kv[l] }
