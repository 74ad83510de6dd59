package attention

import "github.com/lightninglm/lightning/kernels"

// Training path of lightning attention: a forward that keeps the state at the
// start of every block, and the backward of the block algorithm (spec §2.5.4)
// that reads it. One head, one document of n tokens, from a zero state; a
// packed sequence calls both once per document segment. The slope is a fixed
// buffer and gets no gradient.
//
// Per block of m tokens with incoming state S (kept) and the gradient dS of
// the state after the block (zero after the last block), the forward
//
//	O    = (Q ⊙ qd)·S + P·V,           P = (Q Kᵀ) ⊙ M
//	Sout = exp(-s·m)·S + (K ⊙ kd)ᵀ·V
//
// has the backward, with dA = (dO Vᵀ) ⊙ M,
//
//	dQ = (dO·Sᵀ) ⊙ qd + dA·K
//	dK = (V·dSᵀ) ⊙ kd + dAᵀ·Q
//	dV = (K·dS) ⊙ kd + Pᵀ·dO
//	dS ← exp(-s·m)·dS + (Q ⊙ qd)ᵀ·dO   (the gradient of S, carried to the block before)
//
// where qd[c] = exp(-s(c+1)), kd[c] = exp(-s(m-1-c)) scale rows.

// LightningKeptLen returns the length of the kept states of an n-token
// document with blocks of blockLen tokens: ceil(n/blockLen)·d².
func LightningKeptLen(n, d, blockLen int) int {
	return (n + blockLen - 1) / blockLen * d * d
}

// LightningForwardKeep runs one head of lightning attention over the n
// tokens of one document from a zero state, with the block algorithm of
// LightningPrefill (its outputs are bitwise those of LightningPrefill from a
// zero state), and keeps the state at the start of every block for
// LightningBackward.
//
//	o:       row t at [t·ldo : t·ldo+d] (overwritten)
//	q, k, v: row t at [t·ld : t·ld+d]   (SiLU already applied)
//	kept:    [ceil(n/blockLen), d, d] (overwritten): kept[b] is the state
//	         before token b·blockLen, key dim first; kept[0] = 0
//
// Memory: kept holds ceil(n/B)·d² floats, 4·ceil(n/B)·d² bytes — 512 KiB per
// head for the MiniMax shape (n = 2048, B = 256, d = 128), so 32 MiB per layer
// of 64 heads. The state after the last token is not kept. ws must come from
// NewLightningScratch(≥ blockLen, d).
func LightningForwardKeep(o []float32, ldo int, q, k, v []float32, ld, n, d int, kept []float32, slope float32, blockLen int, ws *LightningScratch) {
	B, dd := blockLen, d*d
	if n <= 0 {
		return
	}
	if len(kept) < LightningKeptLen(n, d, B) {
		panic("attention: kept shorter than ceil(n/blockLen)·d²")
	}
	dec := decayTable(ws.decay[:B+1], slope)
	clear(kept[:dd])
	for b, r0 := 0, 0; r0 < n; b, r0 = b+1, r0+B {
		m := min(B, n-r0)
		state := kept[b*dd : (b+1)*dd]
		lightningBlockOut(o[r0*ldo:], ldo, q[r0*ld:], k[r0*ld:], v[r0*ld:], ld, m, d, state, dec, B, ws)
		if r0+m < n {
			next := kept[(b+1)*dd : (b+2)*dd]
			copy(next, state)
			lightningBlockState(next, k[r0*ld:], v[r0*ld:], ld, m, d, dec, ws)
		}
	}
}

// LightningGradScratch holds the per-head work buffers of LightningBackward;
// one per concurrently running head.
type LightningGradScratch struct {
	decay  []float32 // [B+1]: decay[j] = exp(-s·j)
	scores []float32 // [B, B]: P = (Q Kᵀ) ⊙ M of one block
	dA     []float32 // [B, B]: (dO Vᵀ) ⊙ M of one block
	qdo    []float32 // [B, d]: dO rows scaled by qd
	dS     []float32 // [d, d]: gradient of the state after the current block
}

// NewLightningGradScratch sizes the buffers for blocks of blockLen tokens and
// head dim d.
func NewLightningGradScratch(blockLen, d int) *LightningGradScratch {
	return &LightningGradScratch{
		decay:  make([]float32, blockLen+1),
		scores: make([]float32, blockLen*blockLen),
		dA:     make([]float32, blockLen*blockLen),
		qdo:    make([]float32, blockLen*d),
		dS:     make([]float32, d*d),
	}
}

// LightningBackward is the backward of LightningForwardKeep: given the
// gradient do of the outputs, it writes the gradients of q, k and v (the
// inputs after SiLU), running the blocks from last to first and carrying the
// gradient of the state between them (see the equations at the top of this
// file). The final state gets no gradient (training does not use it).
//
//	dq, dk, dv: row t at [t·ld : t·ld+d]   (overwritten, never read)
//	do:         row t at [t·ldo : t·ldo+d]
//	q, k, v:    row t at [t·ld : t·ld+d], as given to the forward
//	kept:       the states LightningForwardKeep kept, [ceil(n/blockLen), d, d]
//
// dq, dk, dv share the stride of q, k, v (the model interleaves all six per
// head in [T, heads·3·d] buffers) and must not overlap q, k, v or do.
// slope and blockLen must be the forward's. ws must come from
// NewLightningGradScratch(≥ blockLen, d). Work: per block of m tokens
// 8·m·d² + 10·m²·d FLOPs, about twice the forward's 4·m·d² + 4·m²·d.
func LightningBackward(dq, dk, dv []float32, ld int, do []float32, ldo int, q, k, v []float32, n, d int, kept []float32, slope float32, blockLen int, ws *LightningGradScratch) {
	B, dd := blockLen, d*d
	if n <= 0 {
		return
	}
	nb := (n + B - 1) / B
	if len(kept) < nb*dd {
		panic("attention: kept shorter than ceil(n/blockLen)·d²")
	}
	dec := decayTable(ws.decay[:B+1], slope)
	dS := ws.dS[:dd]
	clear(dS)
	for b := nb - 1; b >= 0; b-- {
		r0 := b * B
		m := min(B, n-r0)
		qb, kb, vb, dob := q[r0*ld:], k[r0*ld:], v[r0*ld:], do[r0*ldo:]
		dqb, dkb, dvb := dq[r0*ld:], dk[r0*ld:], dv[r0*ld:]
		state := kept[b*dd : (b+1)*dd]
		P, dA := ws.scores[:m*B], ws.dA[:m*B]
		maskedProduct(P, B, qb, ld, kb, ld, m, d, dec)
		maskedProduct(dA, B, dob, ldo, vb, ld, m, d, dec)
		// dQ = (dO·Sᵀ) ⊙ qd + dA·K
		kernels.Sgemm(false, true, m, d, d, dob, ldo, state, d, dqb, ld, false)
		for c := 0; c < m; c++ {
			kernels.Scale(dqb[c*ld:c*ld+d], dec[c+1])
		}
		kernels.Sgemm(false, false, m, d, m, dA, B, kb, ld, dqb, ld, true)
		// dK = (V·dSᵀ) ⊙ kd + dAᵀ·Q
		kernels.Sgemm(false, true, m, d, d, vb, ld, dS, d, dkb, ld, false)
		for c := 0; c < m; c++ {
			kernels.Scale(dkb[c*ld:c*ld+d], dec[m-1-c])
		}
		kernels.Sgemm(true, false, m, d, m, dA, B, qb, ld, dkb, ld, true)
		// dV = (K·dS) ⊙ kd + Pᵀ·dO
		kernels.Sgemm(false, false, m, d, d, kb, ld, dS, d, dvb, ld, false)
		for c := 0; c < m; c++ {
			kernels.Scale(dvb[c*ld:c*ld+d], dec[m-1-c])
		}
		kernels.Sgemm(true, false, m, d, m, P, B, dob, ldo, dvb, ld, true)
		// dS ← exp(-s·m)·dS + (Q ⊙ qd)ᵀ·dO, the gradient of the block's
		// incoming state; the first block's is that of the zero state.
		if b > 0 {
			qdo := ws.qdo[:m*d]
			for c := 0; c < m; c++ {
				row := qdo[c*d : c*d+d]
				copy(row, dob[c*ldo:c*ldo+d])
				kernels.Scale(row, dec[c+1])
			}
			kernels.Scale(dS, dec[m])
			kernels.Sgemm(true, false, d, d, m, qb, ld, qdo, d, dS, d, true)
		}
	}
}
