package attention

import (
	"math"

	"github.com/lightninglm/lightning/kernels"
)

// Flash-style causal softmax attention for a run of query tokens of one
// sequence. The query heads that share a KV head are stacked into one matrix
// so each key/value tile is read once per group and multiplied as a GEMM
// (kernels.Sgemm); an online softmax per query row keeps only running
// maxima and sums, so no [n, n] score matrix exists (spec §2.4; the same
// function as SoftmaxAttend, which stays as the simple reference).

// Tile sizes: a query tile holds flashRows/group tokens, so with the GQA
// group's heads stacked every tile is a GEMM of about flashRows rows (each
// key/value tile is packed once per that many rows; 512 measured ~10% faster
// than 256 on m300's shape); keys come in tiles of
// flashK.
const (
	flashRows = 512
	flashK    = 256
)

// onesRow is flashK ones: sums and shifts of score rows run as Dot/Axpy.
var onesRow = func() []float32 {
	o := make([]float32, flashK)
	for i := range o {
		o[i] = 1
	}
	return o
}()

// directRows is the largest tile (decode: one token times the GQA group)
// that skips the GEMM and streams keys and values with dot products and
// axpys: packing a tile for so few rows costs more than it saves.
const directRows = 8

// queryTile is the number of query tokens per tile for GQA group size group.
func queryTile(group int) int { return max(flashRows/group, 8) }

// FlashScratch holds one worker's buffers for FlashAttend.
type FlashScratch struct {
	q    []float32 // [rows, d] stacked queries, rows = group·queryTile(group)
	s    []float32 // [rows, flashK] scores, then probabilities
	o    []float32 // [rows, d] unnormalised outputs
	m, l []float32 // [rows] running max and sum per row
	k, v []float32 // [flashK, d] dequantised key and value tiles (non-fp32 caches)
}

// NewFlashScratch sizes the buffers for GQA group size group and head dim d.
func NewFlashScratch(group, d int) *FlashScratch {
	rows := group * queryTile(group)
	return &FlashScratch{
		q: make([]float32, rows*d), s: make([]float32, rows*flashK), o: make([]float32, rows*d),
		m: make([]float32, rows), l: make([]float32, rows),
		k: make([]float32, flashK*d), v: make([]float32, flashK*d),
	}
}

// Bytes is the memory the buffers hold.
func (ws *FlashScratch) Bytes() int64 {
	return int64(len(ws.q)+len(ws.s)+len(ws.o)+len(ws.m)+len(ws.l)+len(ws.k)+len(ws.v)) * 4
}

// FlashTiles returns how many independent work items FlashAttend splits n
// query tokens of one KV head (GQA group size group) into.
func FlashTiles(n, group int) int { return (n + queryTile(group) - 1) / queryTile(group) }

// FlashAttend computes tile `tile` (of FlashTiles(n)) of causal attention for
// n consecutive query tokens at positions pos0.. of one sequence, for the
// group query heads g·group .. g·group+group-1 that share KV head g.
//
//	q: query row t, head h at q[t·ldq + h·d : … + d] (after RoPE)
//	o: output row t, head h at o[t·ldo + h·d : … + d] (overwritten)
//	c: the sequence's KV cache, already holding keys 0 .. pos0+n-1
//
// Query token t attends keys 0 .. pos0+t with weights softmax(q·k·scale).
func FlashAttend(o []float32, ldo int, q []float32, ldq int, c *KVCache, g, group, d, pos0, n, tile int, scale float32, ws *FlashScratch) {
	src := kvSource{cache: c, n: pos0 + n}
	flashTile(o, ldo, nil, 0, q, ldq, &src, g, group, d, pos0, n, tile, scale, ws)
}

// kvSource hands out tiles of one KV head's keys and values: from a KV
// cache (dequantised into scratch when it is not fp32), or read in place
// from plain matrices (training).
type kvSource struct {
	cache    *KVCache
	k, v     []float32 // without a cache: row s, KV head g at k[s·ldk + g·d]
	ldk, ldv int
	n        int // keys 0 .. n-1 exist; later ones are never read
}

// keys returns keys s0 .. s0+n-1 of KV head g as a matrix with row stride ld.
func (src *kvSource) keys(buf []float32, s0, n, g, d int) (tile []float32, ld int) {
	if src.cache != nil {
		return src.cache.Keys(buf, s0, n, g)
	}
	return src.k[s0*src.ldk+g*d:], src.ldk
}

// values is keys for the values.
func (src *kvSource) values(buf []float32, s0, n, g, d int) (tile []float32, ld int) {
	if src.cache != nil {
		return src.cache.Values(buf, s0, n, g)
	}
	return src.v[s0*src.ldv+g*d:], src.ldv
}

// flashTile is FlashAttend on any key/value source; with lse non-nil it also
// stores each row's log-sum-exp of the scaled scores at lse[t·ldl + h].
func flashTile(o []float32, ldo int, lse []float32, ldl int, q []float32, ldq int, src *kvSource, g, group, d, pos0, n, tile int, scale float32, ws *FlashScratch) {
	qt := queryTile(group)
	t0 := tile * qt
	nq := min(qt, n-t0)
	rows := group * nq
	// Stack the group's queries: row r = j·nq + i is head g·group+j, token t0+i.
	qs := ws.q[:rows*d]
	for j := 0; j < group; j++ {
		h := g*group + j
		for i := 0; i < nq; i++ {
			row := qs[(j*nq+i)*d : (j*nq+i+1)*d]
			copy(row, q[(t0+i)*ldq+h*d:])
			kernels.Scale(row, scale) // fold the softmax scale into the queries
		}
	}
	acc, m, l := ws.o[:rows*d], ws.m[:rows], ws.l[:rows]
	clear(acc)
	for r := range m {
		m[r] = float32(math.Inf(-1))
		l[r] = 0
	}
	last := min(pos0+t0+nq-1, src.n-1) // the last key a query of the tile sees
	for s0 := 0; s0 <= last; s0 += flashK {
		nk := min(flashK, last+1-s0)
		sc := ws.s[:rows*flashK]
		kt, kld := src.keys(ws.k, s0, nk, g, d)
		if rows <= directRows { // decode: a few query rows stream the keys once
			for r := 0; r < rows; r++ {
				q := qs[r*d : (r+1)*d]
				out := sc[r*flashK : r*flashK+nk]
				for k := range out {
					out[k] = kernels.Dot(q, kt[k*kld:k*kld+d])
				}
			}
		} else {
			kernels.Sgemm(false, true, rows, nk, d, qs, d, kt, kld, sc, flashK, false)
		}
		ones := onesRow[:nk]
		for r := 0; r < rows; r++ {
			row := sc[r*flashK : r*flashK+nk]
			// Keys s0+k with k > limit are in this row's future: mask them
			// (only the tile that crosses the diagonal has any).
			if limit := pos0 + t0 + r%nq - s0; limit < nk-1 {
				for k := max(limit+1, 0); k < nk; k++ {
					row[k] = float32(math.Inf(-1))
				}
			}
			mx := row[kernels.Argmax(row)]
			if mx == float32(math.Inf(-1)) {
				clear(row)
				continue
			}
			if mx > m[r] {
				corr := float32(math.Exp(float64(m[r] - mx)))
				kernels.Scale(acc[r*d:(r+1)*d], corr)
				l[r] *= corr
				m[r] = mx
			}
			kernels.Axpy(row, -m[r], ones) // row -= running max
			kernels.Exp(row, row)
			l[r] += kernels.Dot(row, ones)
		}
		vt, vld := src.values(ws.v, s0, nk, g, d)
		if rows <= directRows {
			for k := 0; k < nk; k++ {
				v := vt[k*vld : k*vld+d]
				for r := 0; r < rows; r++ {
					kernels.Axpy(acc[r*d:(r+1)*d], sc[r*flashK+k], v)
				}
			}
		} else {
			kernels.Sgemm(false, false, rows, d, nk, sc, flashK, vt, vld, acc, d, true)
		}
	}
	for j := 0; j < group; j++ {
		h := g*group + j
		for i := 0; i < nq; i++ {
			r := j*nq + i
			dst := o[(t0+i)*ldo+h*d : (t0+i)*ldo+h*d+d]
			inv := 1 / l[r]
			for e, v := range acc[r*d : (r+1)*d] {
				dst[e] = v * inv
			}
			if lse != nil {
				lse[(t0+i)*ldl+h] = m[r] + float32(math.Log(float64(l[r])))
			}
		}
	}
}
