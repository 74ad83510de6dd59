package attention

import (
	"math"

	"github.com/lightninglm/lightning/kernels"
)

// Training forward and backward of the softmax layers' attention (spec §2.4)
// for one document: tokens at positions 0 .. n-1, causal, keys and values as
// plain matrices (no KV cache). The caller splits a packed sequence at its
// document boundaries; every (document, KV head) call is independent, so
// the calls can run in parallel. The scale is 1/sqrt(d), as in the model.
//
// The forward is FlashAttend's tile loop over plain matrices that also keeps
// each row's log-sum-exp. The backward is FlashAttention-2's: per tile it
// recomputes P = exp(S − lse) from the saved log-sum-exp and uses
// D = rowsum(dO ⊙ O) (which equals rowsum(P ⊙ dP)), so dS = P ⊙ (dP − D);
// no [n, n] matrix exists in either direction.

// FlashForward computes causal attention over one document of n tokens for
// the group query heads g·group .. g·group+group-1 that share KV head g, and
// the log-sum-exp of each row's scaled scores, which FlashBackward needs.
//
//	q:   query row t, head h at q[t·ldq + h·d : … + d] (after RoPE)
//	k, v: row s, KV head g at k[s·ldk + g·d : … + d], v[s·ldv + g·d : … + d]
//	o:   row t, head h at o[t·ldo + h·d : … + d] (overwritten)
//	lse: row t, head h at lse[t·ldl + h] = log Σ_{s≤t} exp(q·k_s/sqrt(d)) (overwritten)
//
// Only the group's heads of o and lse are written. The outputs equal
// FlashAttend's for the same tokens in an fp32 KV cache, bit for bit.
func FlashForward(o []float32, ldo int, lse []float32, ldl int, q []float32, ldq int, k []float32, ldk int, v []float32, ldv int, g, group, d, n int, ws *FlashScratch) {
	src := kvSource{k: k, v: v, ldk: ldk, ldv: ldv, n: n}
	scale := float32(1 / math.Sqrt(float64(d)))
	for tile := 0; tile < FlashTiles(n, group); tile++ {
		flashTile(o, ldo, lse, ldl, q, ldq, &src, g, group, d, 0, n, tile, scale, ws)
	}
}

// Backward tile sizes: a query tile stacks the group's heads into about
// gradRows rows (as the forward does), and keys come in tiles of gradK
// (at most flashK, the length of onesRow). 504 rows are whole row panels of
// the GEMM microkernel (14 rows with AVX-512, 6 with AVX2) and stay 504 for
// groups 1, 2, 4 and 8; tiles of 256 to 512 rows and 112 to 256 keys
// measured alike (within the ±8% noise of a shared machine) at MiniMax's
// shape.
const (
	gradRows = 504
	gradK    = 128
)

// gradQueryTile is the number of query tokens per backward tile.
func gradQueryTile(group int) int { return max(gradRows/group, 8) }

// FlashGradScratch holds one worker's buffers for FlashBackward; make one per
// worker with NewFlashGradScratch and reuse it for every call.
type FlashGradScratch struct {
	q, dout, dq []float32 // [rows, d] stacked queries·scale, output gradients, query gradients·sqrt(d)
	qT, doutT   []float32 // [d, rows] q and dout transposed: Sgemm reads them in place as left operands
	lse, dd     []float32 // [rows] log-sum-exp and D = rowsum(dO ⊙ O)
	p, ds       []float32 // [rows, gradK] probabilities; dP, then dS
}

// NewFlashGradScratch sizes the buffers for GQA group size group and head
// dim d.
func NewFlashGradScratch(group, d int) *FlashGradScratch {
	rows := group * gradQueryTile(group)
	return &FlashGradScratch{
		q: make([]float32, rows*d), dout: make([]float32, rows*d), dq: make([]float32, rows*d),
		qT: make([]float32, d*rows), doutT: make([]float32, d*rows),
		lse: make([]float32, rows), dd: make([]float32, rows),
		p: make([]float32, rows*gradK), ds: make([]float32, rows*gradK),
	}
}

// FlashBackward is the backward of FlashForward for the same document and
// KV head g: given dOut = ∂L/∂o it computes ∂L/∂q for the group's heads and
// ∂L/∂k, ∂L/∂v for KV head g (summed over the group's heads). Each gradient
// has the layout and stride of its input, dOut that of o:
//
//	dq:   row t, head h at dq[t·ldq + h·d]  (overwritten for the group's heads)
//	dk:   row s, KV head g at dk[s·ldk + g·d] (overwritten for head g)
//	dv:   row s, KV head g at dv[s·ldv + g·d] (overwritten for head g)
//	dOut: row t, head h at dOut[t·ldo + h·d]
//	q, k, v, o, lse: as passed to and returned by FlashForward
//
// Per query tile and key tile it recomputes S = q·kᵀ/sqrt(d) and
// P = exp(S − lse), then dP = dO·vᵀ, dS = P ⊙ (dP − D) with
// D = rowsum(dO ⊙ O), and accumulates dv += Pᵀ·dO, dk += dSᵀ·q/sqrt(d),
// dq += dS·k/sqrt(d), all with kernels.Sgemm. It does not allocate.
func FlashBackward(dq, dk, dv, dOut []float32, q []float32, ldq int, k []float32, ldk int, v []float32, ldv int, o []float32, ldo int, lse []float32, ldl int, g, group, d, n int, ws *FlashGradScratch) {
	qt := gradQueryTile(group)
	if len(ws.q) < group*qt*d {
		panic("attention: FlashGradScratch made for a smaller group or head dim")
	}
	scale := float32(1 / math.Sqrt(float64(d)))
	for s := 0; s < n; s++ {
		clear(dk[s*ldk+g*d : s*ldk+g*d+d])
		clear(dv[s*ldv+g*d : s*ldv+g*d+d])
	}
	for t0 := 0; t0 < n; t0 += qt {
		nq := min(qt, n-t0)
		rows := group * nq
		// Stack the group's rows: row r = j·nq + i is head g·group+j, token t0+i.
		qs, dos, dqs := ws.q[:rows*d], ws.dout[:rows*d], ws.dq[:rows*d]
		ls, dd := ws.lse[:rows], ws.dd[:rows]
		for j := 0; j < group; j++ {
			h := g*group + j
			for i := 0; i < nq; i++ {
				r, t := j*nq+i, t0+i
				qr, dor := qs[r*d:(r+1)*d], dos[r*d:(r+1)*d]
				copy(qr, q[t*ldq+h*d:])
				kernels.Scale(qr, scale) // the scaled query, as the forward scored it
				copy(dor, dOut[t*ldo+h*d:])
				dd[r] = kernels.Dot(dor, o[t*ldo+h*d:])
				ls[r] = lse[t*ldl+h]
			}
		}
		// The score products read the stacked rows transposed (Sgemm's
		// in-place layout for a left operand; packing it per key tile took
		// a third of the time).
		qsT, dosT := ws.qT[:d*rows], ws.doutT[:d*rows]
		for r := 0; r < rows; r++ {
			for e := 0; e < d; e++ {
				qsT[e*rows+r] = qs[r*d+e]
				dosT[e*rows+r] = dos[r*d+e]
			}
		}
		clear(dqs)
		last := t0 + nq - 1 // the tile's last query token
		for s0 := 0; s0 <= last; s0 += gradK {
			nk := min(gradK, last+1-s0)
			kt, vt := k[s0*ldk+g*d:], v[s0*ldv+g*d:]
			p, ds := ws.p[:rows*gradK], ws.ds[:rows*gradK]
			kernels.Sgemm(true, true, rows, nk, d, qsT, rows, kt, ldk, p, gradK, false) // S = q·kᵀ/sqrt(d)
			for r := 0; r < rows; r++ {
				row := p[r*gradK : r*gradK+nk]
				// The row's token sees the tile's first vis keys; the
				// later ones are masked: P = 0.
				vis := min(max(t0+r%nq-s0+1, 0), nk)
				kernels.Axpy(row[:vis], -ls[r], onesRow)
				kernels.Exp(row[:vis], row[:vis])
				clear(row[vis:])
			}
			kernels.Sgemm(true, true, rows, nk, d, dosT, rows, vt, ldv, ds, gradK, false)         // dP = dO·vᵀ
			kernels.Sgemm(true, false, nk, d, rows, p, gradK, dos, d, dv[s0*ldv+g*d:], ldv, true) // dv += Pᵀ·dO
			for r := 0; r < rows; r++ {
				row := ds[r*gradK : r*gradK+nk]
				kernels.Axpy(row, -dd[r], onesRow) // dP − D
				kernels.Mul(row, p[r*gradK:r*gradK+nk])
			}
			kernels.Sgemm(true, false, nk, d, rows, ds, gradK, qs, d, dk[s0*ldk+g*d:], ldk, true) // dk += dSᵀ·q/sqrt(d)
			kernels.Sgemm(false, false, rows, d, nk, ds, gradK, kt, ldk, dqs, d, true)            // dq·sqrt(d) += dS·k
		}
		for j := 0; j < group; j++ {
			h := g*group + j
			for i := 0; i < nq; i++ {
				r, t := j*nq+i, t0+i
				dst := dq[t*ldq+h*d : t*ldq+h*d+d]
				for e, x := range dqs[r*d : (r+1)*d] {
					dst[e] = x * scale
				}
			}
		}
	}
}
