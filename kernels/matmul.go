package kernels

import (
	"math"
	"sync"
)

// MatMulF32 computes dst[T, out] = x[T, in] · w[out, in]ᵀ with float32
// weights. It equals matMulF32Generic up to summation order; it does not
// allocate and may be called from several goroutines at once.
func MatMulF32(dst, x, w []float32, T, in, out int) {
	(*Group)(nil).MatMulF32(dst, x, w, T, in, out)
}

// MatMulF32 adds MatMulF32's product to the group.
func (g *Group) MatMulF32(dst, x, w []float32, T, in, out int) {
	checkMatMul(len(dst), len(x), len(w), T, in, out)
	j := getMMJob(dst, x, T, in, out)
	j.kind, j.wf = wF32, w
	g.runMM(j)
}

// MatMulBF16 computes dst[T, out] = x[T, in] · w[out, in]ᵀ with bfloat16
// weights. Activations stay float32 and every weight is widened exactly, so
// each product is the exact fp32 product; only the summation order differs
// from matMulHalfGeneric.
func MatMulBF16(dst, x []float32, w []uint16, T, in, out int) {
	(*Group)(nil).MatMulBF16(dst, x, w, T, in, out)
}

// MatMulBF16 adds MatMulBF16's product to the group.
func (g *Group) MatMulBF16(dst, x []float32, w []uint16, T, in, out int) {
	checkMatMul(len(dst), len(x), len(w), T, in, out)
	j := getMMJob(dst, x, T, in, out)
	j.kind, j.wh = wBF16, w
	g.runMM(j)
}

// MatMulBF16Dot computes dst[T, out] ≈ x[T, in] · w[out, in]ᵀ with bfloat16
// weights like MatMulBF16, but it is lossy: for prefill it rounds the
// activations to bfloat16 and multiplies with VDPBF16PS (two products per
// lane, fp32 accumulation, denormal inputs and outputs flushed to zero).
// That pays only on CPUs whose VDPBF16PS peak exceeds the fp32 FMA peak; on
// the Xeons we measured it is half, and MatMulBF16 is faster. Where that
// instruction is missing, for T the skinny kernels take (decode, where the
// weights' memory traffic dominates) and for odd in, it computes exactly
// what MatMulBF16 does, and so does its twin (matMulHalfGeneric).
func MatMulBF16Dot(dst, x []float32, w []uint16, T, in, out int) {
	(*Group)(nil).MatMulBF16Dot(dst, x, w, T, in, out)
}

// MatMulBF16Dot adds MatMulBF16Dot's product to the group.
func (g *Group) MatMulBF16Dot(dst, x []float32, w []uint16, T, in, out int) {
	checkMatMul(len(dst), len(x), len(w), T, in, out)
	j := getMMJob(dst, x, T, in, out)
	j.kind, j.wh = wBF16Dot, w
	g.runMM(j)
}

// MatMulF16 computes dst[T, out] = x[T, in] · w[out, in]ᵀ with IEEE binary16
// weights widened exactly to float32.
func MatMulF16(dst, x []float32, w []uint16, T, in, out int) {
	(*Group)(nil).MatMulF16(dst, x, w, T, in, out)
}

// MatMulF16 adds MatMulF16's product to the group.
func (g *Group) MatMulF16(dst, x []float32, w []uint16, T, in, out int) {
	checkMatMul(len(dst), len(x), len(w), T, in, out)
	j := getMMJob(dst, x, T, in, out)
	j.kind, j.wh = wF16, w
	g.runMM(j)
}

func checkMatMul(nd, nx, nw, T, in, out int) {
	if T < 0 || in < 0 || out < 0 {
		panic("kernels: negative matmul size")
	}
	if nd < T*out || nx < T*in || nw < out*in {
		panic("kernels: matmul slice too short")
	}
}

// wtype is the element type of a weight matrix.
type wtype uint8

const (
	wF32     wtype = iota
	wBF16          // bfloat16, widened exactly
	wF16           // IEEE binary16, widened exactly
	wBF16Dot       // bfloat16 weights × bf16-rounded activations (lossy)
)

// mmJob carries one matrix product through the worker pool. Jobs are
// pooled and their range functions are bound once, so a product allocates
// nothing once the pool is warm.
type mmJob struct {
	dst, x     []float32 // [T, out], [T, in]
	wf         []float32 // [out, in] for wF32
	wh         []uint16  // [out, in] for the 16-bit kinds
	kind       wtype
	T, in, out int

	a     []float32 // packed activations for the fast paths (layout is theirs)
	xb    []uint16  // activations rounded to bf16 (wBF16Dot)
	ah    []uint16  // [terms][T rounded up to 32, in] the activations' bf16 terms, packed (AMX)
	terms int       // 3: the exact split, 1: rounded (AMX)

	genericRange func(lo, hi int) // columns [lo, hi) by the twins
	arch                          // per-architecture range functions
}

var mmJobs = sync.Pool{New: func() any {
	j := new(mmJob)
	j.genericRange = j.runGeneric
	j.arch.bind(j)
	return j
}}

func getMMJob(dst, x []float32, T, in, out int) *mmJob {
	j := mmJobs.Get().(*mmJob)
	j.dst, j.x, j.T, j.in, j.out = dst, x, T, in, out
	return j
}

// runMM runs j's product, or queues its output stage in g (matMul); a job
// that is not queued goes back to the pool now.
func (g *Group) runMM(j *mmJob) {
	if !matMul(j, g) {
		putMMJob(j)
	}
}

// release returns a job whose output stage a Group ran.
func (j *mmJob) release() { putMMJob(j) }

// esz is the size of one weight element in bytes.
func (j *mmJob) esz() int {
	if j.kind == wF32 {
		return 4
	}
	return 2
}

func putMMJob(j *mmJob) {
	j.dst, j.x, j.wf, j.wh = nil, nil, nil, nil
	mmJobs.Put(j)
}

// grow returns s resized to n elements, reallocating only when its
// capacity is short (scratch buffers kept in pooled jobs).
func grow[E any](s []E, n int) []E {
	if cap(s) < n {
		return make([]E, n)
	}
	return s[:n]
}

// serialWork is the number of multiply-adds below which a product runs on
// the calling goroutine: waking a worker costs a few microseconds.
const serialWork = 1 << 16

// matMulGeneric runs the twins, split across the pool by output columns
// (or queued in g); it reports whether it was queued.
func matMulGeneric(j *mmJob, g *Group) bool {
	return g.add(groupItem{n: j.out, align: 16, rowWork: j.T * j.in, rowBytes: j.in * j.esz(), run: j.genericRange, job: j})
}

func (j *mmJob) runGeneric(lo, hi int) {
	switch j.kind {
	case wF32:
		matMulF32Generic(j.dst, j.x, j.wf, j.T, j.in, j.out, lo, hi)
	case wBF16:
		matMulHalfGeneric(j.dst, j.x, j.wh, j.T, j.in, j.out, lo, hi, false)
	case wF16:
		matMulHalfGeneric(j.dst, j.x, j.wh, j.T, j.in, j.out, lo, hi, true)
	case wBF16Dot:
		matMulHalfGeneric(j.dst, j.x, j.wh, j.T, j.in, j.out, lo, hi, false)
	}
}

// matMulF32Generic computes columns [lo, hi) of dst = x · wᵀ:
//
//	dst[t*out+o] = Σ_k x[t*in+k] · w[o*in+k]
func matMulF32Generic(dst, x, w []float32, T, in, out, lo, hi int) {
	for o := lo; o < hi; o++ {
		row := w[o*in : (o+1)*in]
		for t := 0; t < T; t++ {
			dst[t*out+o] = dotGeneric(x[t*in:(t+1)*in], row)
		}
	}
}

func f16Row(dst []float32, src []uint16) {
	src = src[:len(dst)]
	for i, h := range src {
		dst[i] = HalfToFloat(h)
	}
}

func bf16Row(dst []float32, src []uint16) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] = math.Float32frombits(uint32(v) << 16)
	}
}

// matMulHalfGeneric computes columns [lo, hi) of dst = x · wᵀ for bf16
// weights (or IEEE binary16 when f16), widening each weight row exactly in
// pieces of 512.
func matMulHalfGeneric(dst, x []float32, w []uint16, T, in, out, lo, hi int, f16 bool) {
	const piece = 512
	var buf [piece]float32
	for o := lo; o < hi; o++ {
		for t := 0; t < T; t++ {
			dst[t*out+o] = 0
		}
		for k0 := 0; k0 < in; k0 += piece {
			k1 := min(k0+piece, in)
			b := buf[:k1-k0]
			if f16 {
				f16Row(b, w[o*in+k0:o*in+k1])
			} else {
				bf16Row(b, w[o*in+k0:o*in+k1])
			}
			for t := 0; t < T; t++ {
				dst[t*out+o] += dotGeneric(x[t*in+k0:t*in+k1], b)
			}
		}
	}
}

// SplitMinRows is the fewest rows each piece must have when the rows of a
// product of float weights (elemBytes 4: MatMulF32; 2: MatMulBF16,
// MatMulF16, MatMulBF16Dot) with in columns are cut into pieces computed
// as separate products: pieces of at least that many rows take the same
// kernels as the whole product and give bitwise its rows. (moe splits an
// expert's tokens between threads this way.)
func SplitMinRows(elemBytes, in int) int { return splitMinRows(elemBytes, in) }

// maxRowsPerPage bounds rowsPerPage.
const maxRowsPerPage = 4

// rowsPerPage returns how many weight rows of rowBytes one 4 KiB page holds
// when a row is shorter than a page and divides it, up to maxRowsPerPage,
// else 1 (shorter rows are small products, read side by side). The L2 streamer
// of Intel cores follows one ascending stream per page: reading two rows of
// one page side by side (m300's bf16 rows are 2 KiB) leaves one of them to
// demand misses. Measured on 2 cores of a Xeon, 256 MiB of 1024-wide bf16
// rows, 10 rows per call: 23.2 GB/s side by side, 28.6 with the rows a page
// apart and the next group prefetched (26.8 without the prefetch).
func rowsPerPage(rowBytes int) int {
	if rowBytes >= 4096 || 4096%rowBytes != 0 || 4096/rowBytes > maxRowsPerPage {
		return 1
	}
	return 4096 / rowBytes
}

// orderPageApart puts rows [g, g+R·p) of dst[T, out] in row order after
// kernel calls that met rows a page apart (rowsPerPage) wrote them call by
// call: call q's R rows g+q, g+q+p, … beside each other at g+q·R.
func orderPageApart(dst []float32, T, out, g, R, p int) {
	var row [maxRowsPerPage * 10]float32 // R ≤ 10
	for t := range T {
		d := dst[t*out+g : t*out+g+R*p]
		copy(row[:], d)
		for q := range p {
			for r := range R {
				d[r*p+q] = row[q*R+r]
			}
		}
	}
}
