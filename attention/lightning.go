// Package attention holds the two attention kinds of MiniMax-01 as plain
// functions over explicit state: lightning (linear) attention with a per-head
// decay and a fixed fp32 state, and softmax attention with grouped KV heads,
// partial RoPE and a KV cache. Functions work on one sequence; batching across
// sequences happens in the caller.
//
// Glossary: n = new tokens of the sequence, d = head dim, s = slope (decay
// rate) of a head, λ = exp(-s) the per-token decay, B = lightning block length.
package attention

import (
	"math"

	"github.com/lightninglm/lightning/kernels"
)

// ALiBiSlopes returns the base slopes of n heads by the ALiBi rule the official
// code uses (spec §2.5.2, golden README §9): for a power of two n the
// geometric series r^(h+1) with r = 2^(-8/n); otherwise the slopes of the
// largest power of two P < n followed by the even-indexed slopes of 2P, the
// first n-P of them. Computed in float64 like Python, then rounded to fp32.
func ALiBiSlopes(n int) []float32 {
	s64 := alibi(n)
	out := make([]float32, n)
	for i, v := range s64 {
		out[i] = float32(v)
	}
	return out
}

func alibi(n int) []float64 {
	pow2 := func(n int) []float64 {
		start := math.Pow(2, -math.Pow(2, -(math.Log2(float64(n))-3)))
		out := make([]float64, n)
		for i := range out {
			out[i] = start * math.Pow(start, float64(i))
		}
		return out
	}
	l := math.Log2(float64(n))
	if l == math.Trunc(l) {
		return pow2(n)
	}
	p := 1 << int(math.Floor(l))
	out := pow2(p)
	extra := alibi(2 * p)
	for i := 0; i < 2*p && len(out) < n; i += 2 {
		out = append(out, extra[i])
	}
	return out
}

// LayerSlopes returns the slopes of lightning layer l of an nLayers-layer
// model: base slopes × (1 − l/(nLayers−1) + 1e-5), the factor a float64 and
// the product fp32, as the official code computes it (spec §2.5.2; the HF
// port's factor differs by ~1e-7). l counts every layer, softmax ones too.
func LayerSlopes(base []float32, l, nLayers int) []float32 {
	f := 1e-5 + 1
	if nLayers > 1 {
		f = 1 - float64(l)/float64(nLayers-1) + 1e-5
	}
	out := make([]float32, len(base))
	for i, s := range base {
		out[i] = s * float32(f)
	}
	return out
}

// LightningScratch holds the per-head work buffers of the block algorithm;
// one per concurrently running head.
type LightningScratch struct {
	decay  []float32 // [B+1]: decay[j] = exp(-s·j)
	scores []float32 // [B, B]: masked, decayed Q Kᵀ of one block
	kd     []float32 // [B, d]: K rows scaled by their decay to the block end
}

// NewLightningScratch sizes the buffers for blocks of blockLen tokens and head
// dim d.
func NewLightningScratch(blockLen, d int) *LightningScratch {
	return &LightningScratch{
		decay:  make([]float32, blockLen+1),
		scores: make([]float32, blockLen*blockLen),
		kd:     make([]float32, blockLen*d),
	}
}

// Bytes is the memory the buffers hold.
func (ws *LightningScratch) Bytes() int64 {
	return int64(len(ws.decay)+len(ws.scores)+len(ws.kd)) * 4
}

// LightningPrefill runs one head of lightning attention over n tokens with the
// block algorithm of spec §2.5.4, starting from state and leaving in it the
// state after the last token (spec §2.5.3: the recurrence S_t = λ·S_{t-1} +
// k_tᵀv_t, o_t = q_t·S_t, which this equals for any n and any incoming state).
//
//	q, k, v: row t at [t·ld : t·ld+d]   (SiLU already applied)
//	o:       row t at [t·ldo : t·ldo+d] (overwritten)
//	state:   [d, d], key dim first, float32
//
// blockLen is the block B (256 in the official code); results do not depend
// on it beyond rounding. ws must come from NewLightningScratch(≥ blockLen, d).
func LightningPrefill(o []float32, ldo int, q, k, v []float32, ld, n, d int, state []float32, slope float32, blockLen int, ws *LightningScratch) {
	B := blockLen
	dec := decayTable(ws.decay[:B+1], slope)
	for r0 := 0; r0 < n; r0 += B {
		m := min(B, n-r0)
		lightningBlockOut(o[r0*ldo:], ldo, q[r0*ld:], k[r0*ld:], v[r0*ld:], ld, m, d, state, dec, B, ws)
		lightningBlockState(state, k[r0*ld:], v[r0*ld:], ld, m, d, dec, ws)
	}
}

// decayTable fills dec[j] = exp(-s·j) (rounded from float64) and returns it.
func decayTable(dec []float32, slope float32) []float32 {
	for j := range dec {
		dec[j] = float32(math.Exp(-float64(slope) * float64(j)))
	}
	return dec
}

// lightningBlockOut writes the outputs of one block of m ≤ B tokens that
// starts with state (spec §2.5.4): O = (Q ⊙ qd)·S + ((Q Kᵀ) ⊙ M)·V.
//
//	ob: row c at [c·ldo : c·ldo+d] (overwritten); qb, kb, vb: row c at [c·ld:]
//	state: [d, d]; dec: decayTable of ≥ B+1 entries
func lightningBlockOut(ob []float32, ldo int, qb, kb, vb []float32, ld, m, d int, state, dec []float32, B int, ws *LightningScratch) {
	// Inter-block: O = (Q ⊙ qd)·S with qd[c] = exp(-s(c+1)).
	kernels.Sgemm(false, false, m, d, d, qb, ld, state, d, ob, ldo, false)
	for c := 0; c < m; c++ {
		kernels.Scale(ob[c*ldo:c*ldo+d], dec[c+1])
	}
	// Intra-block: O += ((Q Kᵀ) ⊙ M)·V with M[c,c'] = exp(-s(c-c')) for c ≥ c', else 0.
	sc := ws.scores[:m*B]
	maskedProduct(sc, B, qb, ld, kb, ld, m, d, dec)
	kernels.Sgemm(false, false, m, d, m, sc, B, vb, ld, ob, ldo, true)
}

// maskedProduct writes dst = (A Bᵀ) ⊙ M for two blocks of m rows of d
// elements (row strides lda, ldb): dst is [m, m] with row stride lds,
// M[c,c'] = dec[c-c'] for c ≥ c', else 0.
func maskedProduct(dst []float32, lds int, a []float32, lda int, b []float32, ldb, m, d int, dec []float32) {
	kernels.Sgemm(false, true, m, m, d, a, lda, b, ldb, dst, lds, false)
	for c := 0; c < m; c++ {
		row := dst[c*lds : c*lds+m]
		for c2 := 0; c2 <= c; c2++ {
			row[c2] *= dec[c-c2]
		}
		clear(row[c+1:])
	}
}

// lightningBlockState advances state over one block of m tokens (spec
// §2.5.4): S = exp(-s·m)·S + (K ⊙ kd)ᵀ·V with kd[c] = exp(-s(m-1-c)).
func lightningBlockState(state, kb, vb []float32, ld, m, d int, dec []float32, ws *LightningScratch) {
	kernels.Scale(state[:d*d], dec[m])
	kd := ws.kd[:m*d]
	for c := 0; c < m; c++ {
		row := kd[c*d : c*d+d]
		copy(row, kb[c*ld:c*ld+d])
		kernels.Scale(row, dec[m-1-c])
	}
	kernels.Sgemm(true, false, d, d, m, kd, d, vb, ld, state, d, true)
}

// LightningStep runs one head of lightning attention for a single token by
// the recurrence (spec §2.5.3): S = λ·S + kᵀv, then o = q·S. q, k, v and o
// have d elements; state is [d, d].
func LightningStep(o, q, k, v, state []float32, d int, slope float32) {
	lambda := float32(math.Exp(-float64(slope)))
	v = v[:d]
	for i := 0; i < d; i++ {
		row := state[i*d : i*d+d]
		kernels.Scale(row, lambda)
		kernels.Axpy(row, k[i], v)
	}
	o = o[:d]
	clear(o)
	for i := 0; i < d; i++ {
		kernels.Axpy(o, q[i], state[i*d:i*d+d])
	}
}
