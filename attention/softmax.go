package attention

import (
	"math"

	"github.com/lightninglm/lightning/kernels"
)

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
	var kb, vb [attnTile * maxHeadDim]float32
	a := acc[:d]
	o = o[:d]
	m := float32(math.Inf(-1))
	var l float32
	for s0 := 0; s0 < nKeys; s0 += attnTile {
		n := min(attnTile, nKeys-s0)
		kt, kld := c.Keys(kb[:], s0, n, g)
		vt, vld := c.Values(vb[:], s0, n, g)
		tm := float32(math.Inf(-1))
		for j := 0; j < n; j++ {
			x := kernels.Dot(q[:d], kt[j*kld:j*kld+d]) * scale
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
			kernels.Axpy(a, p, vt[j*vld:j*vld+d])
		}
	}
	inv := 1 / l
	for i := range o {
		o[i] = a[i] * inv
	}
}
