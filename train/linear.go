package train

import "github.com/lightninglm/lightning/kernels"

// Linear layers, embeddings and the DeepNorm residual: each forward with its
// backward beside it, in llm.c argument order (forward(out, in, weights…),
// backward(dIn, dWeights…, dOut, in, weights…)). Matrices are row-major and
// stored as nn.Linear keeps them: W [nOut, nIn].

// gemmMinWork is the m·n·k below which gemm runs on one thread: splitting a
// product this small costs more in wake-ups than it saves.
const gemmMinWork = 1 << 16

// gemm is kernels.Sgemm split across the worker pool along the larger of the
// two output dimensions (rows of C, or columns in multiples of 16 so SIMD
// tiles stay whole). Each element of C is summed by one Sgemm call, so the
// result depends only on the thread count.
func gemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	if m <= 0 || n <= 0 {
		return
	}
	if m*n*k < gemmMinWork || kernels.Threads() == 1 {
		kernels.Sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
		return
	}
	if m >= n {
		kernels.ParallelFor(m, 1, func(i0, i1 int) {
			ao := i0 * lda // rows of op(A) = rows of A
			if transA {
				ao = i0 // rows of op(A) = columns of A
			}
			kernels.Sgemm(transA, transB, i1-i0, n, k, a[ao:], lda, b, ldb, c[i0*ldc:], ldc, accumulate)
		})
		return
	}
	kernels.ParallelFor(n, 16, func(j0, j1 int) {
		bo := j0 // columns of op(B) = columns of B
		if transB {
			bo = j0 * ldb // columns of op(B) = rows of B
		}
		kernels.Sgemm(transA, transB, m, j1-j0, k, a, lda, b[bo:], ldb, c[j0:], ldc, accumulate)
	})
}

// linearForward computes out = in·Wᵀ (nn.Linear without bias) with the
// inference matmul (kernels.MatMulF32, which packs W once per panel and
// splits the work across the pool itself).
//
//	out: [T, nOut] (overwritten)
//	in:  [T, nIn]
//	w:   [nOut, nIn]
func linearForward(out, in, w []float32, T, nIn, nOut int) {
	kernels.MatMulF32(out, in, w, T, nIn, nOut)
}

// linearBackward is linearForward's backward: dIn = dOut·W (added to dIn
// when accumulate, else overwriting it; skipped when dIn is nil) and
// dW += dOutᵀ·in.
//
//	dIn:  [T, nIn]
//	dW:   [nOut, nIn]
//	dOut: [T, nOut]
func linearBackward(dIn, dW, dOut, in, w []float32, T, nIn, nOut int, accumulate bool) {
	if dIn != nil {
		gemm(false, false, T, nIn, nOut, dOut, nOut, w, nIn, dIn, nIn, accumulate)
	}
	gemm(true, false, nOut, nIn, T, dOut, nOut, in, nIn, dW, nIn, true)
}

// embeddingForward copies row tokens[t] of the table into out row t.
//
//	out:   [T, dim]
//	table: [vocab, dim]
func embeddingForward(out, table []float32, tokens []int32, dim int) {
	for t, id := range tokens {
		copy(out[t*dim:(t+1)*dim], table[int(id)*dim:(int(id)+1)*dim])
	}
}

// embeddingBackward adds each dOut row into the gradient row of its token,
// in token order (a repeated token's rows are summed in sequence order).
//
//	dTable: [vocab, dim]
//	dOut:   [T, dim]
func embeddingBackward(dTable, dOut []float32, tokens []int32, dim int) {
	for t, id := range tokens {
		kernels.Axpy(dTable[int(id)*dim:(int(id)+1)*dim], 1, dOut[t*dim:(t+1)*dim])
	}
}

// residualForward is the DeepNorm residual of every sub-layer (spec §2.3):
// out = res·alpha + branch·beta, where the caller passes as res the
// normalised input when postnorm, else the incoming stream.
func residualForward(out, res, branch []float32, alpha, beta float32) {
	branch, out = branch[:len(res)], out[:len(res)]
	for i, r := range res {
		out[i] = r*alpha + branch[i]*beta
	}
}

// residualBackward writes alpha·dOut into dRes and beta·dOut into dBranch
// (both overwritten: the caller adds dRes where the residual came from).
func residualBackward(dRes, dBranch, dOut []float32, alpha, beta float32) {
	dRes, dBranch = dRes[:len(dOut)], dBranch[:len(dOut)]
	for i, g := range dOut {
		dRes[i] = alpha * g
		dBranch[i] = beta * g
	}
}
