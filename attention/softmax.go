package attention

import (
	"math"

	"github.com/lightninglm/lightning/kernels"
)

// KVCache holds one softmax layer's keys (after RoPE) and values for one
// sequence, token-major as the reference stores them.
type KVCache struct {
	K, V   []float32 // [cap, kvHeads, d]; rows [0, Len) are valid
	Len    int       // tokens stored
	RowLen int       // kvHeads·d
}

// NewKVCache returns an empty cache for rows of rowLen = kvHeads·d floats
// with room for capacity tokens.
func NewKVCache(rowLen, capacity int) KVCache {
	return KVCache{K: make([]float32, 0, capacity*rowLen), V: make([]float32, 0, capacity*rowLen), RowLen: rowLen}
}

// Reserve grows the cache's capacity to hold at least n tokens, doubling so
// that appends amortise to no allocation per token.
func (c *KVCache) Reserve(n int) {
	need := n * c.RowLen
	if need <= cap(c.K) {
		return
	}
	newCap := max(need, 2*cap(c.K), 64*c.RowLen)
	k := make([]float32, len(c.K), newCap)
	copy(k, c.K)
	v := make([]float32, len(c.V), newCap)
	copy(v, c.V)
	c.K, c.V = k, v
}

// Append stores n rows of keys and values (each [n, kvHeads, d] with row
// stride ld) at the end of the cache.
func (c *KVCache) Append(k, v []float32, ld, n int) {
	c.Reserve(c.Len + n)
	for t := 0; t < n; t++ {
		c.K = append(c.K, k[t*ld:t*ld+c.RowLen]...)
		c.V = append(c.V, v[t*ld:t*ld+c.RowLen]...)
	}
	c.Len += n
}

// Truncate drops every token from n on.
func (c *KVCache) Truncate(n int) {
	if n < c.Len {
		c.Len = n
		c.K = c.K[:n*c.RowLen]
		c.V = c.V[:n*c.RowLen]
	}
}

// Bytes is the memory the cache holds.
func (c *KVCache) Bytes() int64 { return int64(cap(c.K)+cap(c.V)) * 4 }

// Clone returns a deep copy with capacity for exactly its tokens.
func (c *KVCache) Clone() KVCache {
	return KVCache{K: append([]float32(nil), c.K...), V: append([]float32(nil), c.V...), Len: c.Len, RowLen: c.RowLen}
}

// attnTile is how many keys the online softmax scores at once.
const attnTile = 128

// maxHeadDim bounds the per-head accumulator kept on the stack.
const maxHeadDim = 256

// SoftmaxAttend computes one query head's causal attention over the first
// nKeys cached tokens of KV head g (spec §2.4): o = Σ_s softmax_s(q·k_s·scale)
// v_s, with an online softmax over tiles of keys so no [n, n] matrix is ever
// built (flash-attention style). q and o have d elements; scores are fp32 and
// the running sums float64-free but rescaled per tile.
func SoftmaxAttend(o, q []float32, c *KVCache, g, d, nKeys int, scale float32) {
	var acc [maxHeadDim]float32
	var sc [attnTile]float32
	a := acc[:d]
	o = o[:d]
	m := float32(math.Inf(-1))
	var l float32
	base := g * d
	for s0 := 0; s0 < nKeys; s0 += attnTile {
		n := min(attnTile, nKeys-s0)
		tm := float32(math.Inf(-1))
		for j := 0; j < n; j++ {
			off := (s0+j)*c.RowLen + base
			x := kernels.Dot(q[:d], c.K[off:off+d]) * scale
			sc[j] = x
			if x > tm {
				tm = x
			}
		}
		if tm > m {
			r := float32(math.Exp(float64(m - tm)))
			kernels.Scale(a, r)
			l *= r
			m = tm
		}
		for j := 0; j < n; j++ {
			p := float32(math.Exp(float64(sc[j] - m)))
			l += p
			off := (s0+j)*c.RowLen + base
			kernels.Axpy(a, p, c.V[off:off+d])
		}
	}
	inv := 1 / l
	for i := range o {
		o[i] = a[i] * inv
	}
}
