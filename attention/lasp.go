package attention

import (
	"math"

	"github.com/lightninglm/lightning/kernels"
)

// Sequence-parallel prefill (LASP, linear-attention sequence parallelism):
// a sequence's new tokens are cut into contiguous chunks, one per rank, and
// every rank computes its chunk's attention with only small messages from
// the ranks before it.
//
// Lightning: a rank runs LightningPrefill on its chunk of n tokens from a
// zero state, which gives the chunk's local outputs and its own state
// contribution S_local. With S_in the state after every earlier token
// (spec §2.5.3; the previous rank's output state), the recurrence unrolls to
//
//	S_out = λⁿ·S_in + S_local                       (LightningCarry)
//	o_t  += λ^(t+1)·q_t·S_in,  t = 0 .. n-1          (LightningPrefixOut)
//
// so only S_in ([d, d] per head) crosses between ranks.
//
// Softmax: ring attention. A rank attends its queries to its own chunk
// (causal) and to each earlier chunk's keys and values (all visible) with
// FlashAttendBlock, which also returns each row's log-sum-exp, and combines
// the partial results with MergeAttention (the online-softmax merge).

// LightningCarry advances a chunk's state over the tokens before it: state
// holds the chunk's own contribution S_local (computed from a zero state)
// and becomes λⁿ·prefix + S_local, the state after the chunk's n tokens
// when prefix ([d, d]) is the state before them. λ = exp(-slope).
func LightningCarry(state, prefix []float32, d, n int, slope float32) {
	decay := float32(math.Exp(-float64(slope) * float64(n)))
	kernels.Axpy(state[:d*d], decay, prefix[:d*d])
}

// LightningPrefixOut adds to the outputs of a chunk of n tokens the part
// that comes from the tokens before it: o_t += exp(-slope·(t+1))·q_t·prefix,
// prefix ([d, d]) being the state before the chunk. Rows are laid out as in
// LightningPrefill (q row t at q[t·ld:], o row t at o[t·ldo:]); ws is a
// LightningScratch whose block length bounds the rows multiplied at once.
func LightningPrefixOut(o []float32, ldo int, q []float32, ld, n, d int, prefix []float32, slope float32, ws *LightningScratch) {
	B := len(ws.kd) / d
	for r0 := 0; r0 < n; r0 += B {
		m := min(B, n-r0)
		qd := ws.kd[:m*d] // [m, d]: q rows scaled by their decay from the chunk start
		for c := 0; c < m; c++ {
			row := qd[c*d : (c+1)*d]
			copy(row, q[(r0+c)*ld:(r0+c)*ld+d])
			kernels.Scale(row, float32(math.Exp(-float64(slope)*float64(r0+c+1))))
		}
		kernels.Sgemm(false, false, m, d, d, qd, d, prefix, d, o[r0*ldo:], ldo, true)
	}
}

// FlashAttendBlock computes tile `tile` (of FlashTiles(n, group)) of the
// attention of n query tokens at positions qPos .. qPos+n-1 to a block of m
// keys and values at positions kPos .. kPos+m-1, for the group query heads
// g·group .. g·group+group-1 that share KV head g: query t sees key s when
// kPos+s ≤ qPos+t (a block wholly before the queries is fully visible). It
// writes the softmax-weighted values and each row's log-sum-exp of the
// scaled scores, for MergeAttention.
//
//	q:    query row t, head h at q[t·ldq + h·d : … + d] (after RoPE)
//	k, v: row s, KV head g at k[s·ldk + g·d : … + d], v[s·ldv + g·d : … + d]
//	o:    row t, head h at o[t·ldo + h·d : … + d] (overwritten)
//	lse:  row t, head h at lse[t·ldl + h] (overwritten)
//
// Requires qPos ≥ kPos (the block starts no later than the queries).
func FlashAttendBlock(o []float32, ldo int, lse []float32, ldl int, q []float32, ldq int, k []float32, ldk int, v []float32, ldv int,
	g, group, d, qPos, n, kPos, m, tile int, scale float32, ws *FlashScratch) {
	src := kvSource{k: k, v: v, ldk: ldk, ldv: ldv, n: m}
	flashTile(o, ldo, lse, ldl, q, ldq, &src, g, group, d, qPos-kPos, n, tile, scale, ws)
}

// MergeAttention folds a second partial attention result into a first, for
// n rows of heads heads of dim d: both are softmax-weighted values over
// disjoint sets of keys with their log-sum-exps; the merge is the result
// over the union,
//
//	L = log(e^lse + e^lse2),  o = e^(lse−L)·o + e^(lse2−L)·o2,  lse = L.
//
// o row t, head h at o[t·ldo + h·d], lse[t·ldl + h]; o2 and lse2 alike
// with strides ldo2 and ldl2. A row with lse2 = -Inf (no keys) is kept.
func MergeAttention(o []float32, ldo int, lse []float32, ldl int, o2 []float32, ldo2 int, lse2 []float32, ldl2 int, n, heads, d int) {
	for t := 0; t < n; t++ {
		for h := 0; h < heads; h++ {
			l1, l2 := lse[t*ldl+h], lse2[t*ldl2+h]
			if math.IsInf(float64(l2), -1) {
				continue
			}
			mx := max(l1, l2)
			w1 := float32(math.Exp(float64(l1 - mx)))
			w2 := float32(math.Exp(float64(l2 - mx)))
			sum := w1 + w2
			a, b := w1/sum, w2/sum
			dst, src := o[t*ldo+h*d:t*ldo+h*d+d], o2[t*ldo2+h*d:t*ldo2+h*d+d]
			for i := range dst {
				dst[i] = a*dst[i] + b*src[i]
			}
			lse[t*ldl+h] = mx + float32(math.Log(float64(sum)))
		}
	}
}
