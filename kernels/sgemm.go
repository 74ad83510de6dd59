package kernels

// Sgemm computes C = op(A)·op(B) (or C += when accumulate) for row-major
// strided matrices: op(A) is [m, k] (A is [k, m] when transA), op(B) is
// [k, n] (B is [n, k] when transB), C is [m, n]; lda, ldb, ldc are row
// strides. It runs on the calling goroutine (attention calls it per head from
// inside ParallelFor), does not allocate, and equals sgemmGeneric up to
// summation order.
func Sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 || m*n*k < sgemmSmall {
		sgemmGeneric(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
		return
	}
	sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
}

// sgemmSmall is the m·n·k below which the twin is faster than packing.
const sgemmSmall = 2048

// sgemmGeneric is the reference:
//
//	C[i][j] (+)= Σ_p op(A)[i][p] · op(B)[p][j]
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
