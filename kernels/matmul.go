package kernels

import "math"

// MatMulF32 computes dst[T, out] = x[T, in] · w[out, in]ᵀ with float32
// weights, split across the worker pool by output columns.
func MatMulF32(dst, x, w []float32, T, in, out int) {
	checkMatMul(len(dst), len(x), len(w), T, in, out)
	ParallelFor(out, 16, func(lo, hi int) { matMulF32Generic(dst, x, w, T, in, out, lo, hi) })
}

// MatMulBF16 computes dst[T, out] = x[T, in] · w[out, in]ᵀ with bfloat16
// weights widened to float32 on the fly; products are accumulated in float32.
func MatMulBF16(dst, x []float32, w []uint16, T, in, out int) {
	checkMatMul(len(dst), len(x), len(w), T, in, out)
	ParallelFor(out, 16, func(lo, hi int) { matMulHalfGeneric(dst, x, w, T, in, out, lo, hi, bf16Row) })
}

// MatMulF16 computes dst[T, out] = x[T, in] · w[out, in]ᵀ with IEEE binary16
// weights widened to float32 on the fly.
func MatMulF16(dst, x []float32, w []uint16, T, in, out int) {
	checkMatMul(len(dst), len(x), len(w), T, in, out)
	ParallelFor(out, 16, func(lo, hi int) { matMulHalfGeneric(dst, x, w, T, in, out, lo, hi, F16ToF32) })
}

func checkMatMul(nd, nx, nw, T, in, out int) {
	if T < 0 || in < 0 || out < 0 {
		panic("kernels: negative matmul size")
	}
	if nd < T*out || nx < T*in || nw < out*in {
		panic("kernels: matmul slice too short")
	}
}

// matMulF32Generic computes columns [lo, hi) of dst = x · wᵀ.
func matMulF32Generic(dst, x, w []float32, T, in, out, lo, hi int) {
	for o := lo; o < hi; o++ {
		row := w[o*in : (o+1)*in]
		for t := 0; t < T; t++ {
			dst[t*out+o] = dotGeneric(x[t*in:(t+1)*in], row)
		}
	}
}

func bf16Row(dst []float32, src []uint16) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] = math.Float32frombits(uint32(v) << 16)
	}
}

// matMulHalfGeneric computes columns [lo, hi) of dst = x · wᵀ for 16-bit
// weights, widening each weight row in pieces of 512 with widen.
func matMulHalfGeneric(dst, x []float32, w []uint16, T, in, out, lo, hi int, widen func([]float32, []uint16)) {
	const piece = 512
	var buf [piece]float32
	for o := lo; o < hi; o++ {
		for t := 0; t < T; t++ {
			dst[t*out+o] = 0
		}
		for k0 := 0; k0 < in; k0 += piece {
			k1 := min(k0+piece, in)
			b := buf[:k1-k0]
			widen(b, w[o*in+k0:o*in+k1])
			for t := 0; t < T; t++ {
				dst[t*out+o] += dotGeneric(x[t*in+k0:t*in+k1], b)
			}
		}
	}
}

// Sgemm computes C = op(A)·op(B) (or C += when accumulate) for row-major
// strided matrices: op(A) is [m, k] (A is [k, m] when transA), op(B) is
// [k, n] (B is [n, k] when transB), C is [m, n]; lda, ldb, ldc are row
// strides. It runs on the calling goroutine: attention calls it per head from
// inside ParallelFor.
func Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	sgemmGeneric(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
}

func sgemmGeneric(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	for i := 0; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		if !accumulate {
			clear(crow)
		}
		for p := 0; p < k; p++ {
			var av float32
			if transA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			if transB {
				for j := range crow {
					crow[j] += av * b[j*ldb+p]
				}
			} else {
				brow := b[p*ldb : p*ldb+n]
				for j := range crow {
					crow[j] += av * brow[j]
				}
			}
		}
	}
}
