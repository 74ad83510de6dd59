package train

import (
	"math"

	"github.com/lightninglm/lightning/kernels"
)

// lossChunkFloats bounds the logits buffer of the LM head's cross-entropy: it
// runs over chunks of rows whose logits fill at most this many floats (32
// MiB; 41 rows of MiniMax-Text-01's 200064-entry vocabulary, 262 of m300's
// 32000, enough rows for the matmul's GEMM path rather than its skinny one),
// so [T, vocab] logits never exist at once.
const lossChunkFloats = 1 << 23

// lossChunkRows is how many rows one chunk of lmHeadLoss holds.
func lossChunkRows(T, vocab int) int { return max(1, min(T, lossChunkFloats/vocab)) }

// noTarget marks a row that predicts nothing: the last token of a document,
// whose next token belongs to the next document (or does not exist).
const noTarget = -1

// lmHeadLoss is the LM head and its cross-entropy, forward and backward
// fused, over chunks of rows (lossChunkRows) so the logits of only one chunk
// exist at a time. Logits are fp32 like the official logits.float(); each
// row's log-sum-exp and the sum of the losses are float64. The rows of a
// chunk run across the kernel pool; their losses are summed in row order,
// so the result does not depend on the thread count.
//
//	dX:      [T, dim] overwritten with scale·∂L/∂x; nil computes the loss only
//	dW:      [vocab, dim] gets scale·∂L/∂w added (unused when dX is nil)
//	x:       [T, dim] final-norm output
//	w:       [vocab, dim] LM head
//	targets: [T] the token each row predicts, or noTarget
//	buf:     [rows, vocab] logits of one chunk of rows (lossChunkRows(T, vocab)
//	         in the model; any rows ≥ 1 give the same result)
//
// It returns L = Σ over rows with a target of logsumexp(logits) −
// logits[target]; the caller divides by the number of predictions (and
// passes scale = weight/predictions for the gradient of the mean).
func lmHeadLoss(dX, dW, x, w []float32, targets []int32, T, dim, vocab int, scale float32, buf []float32) float64 {
	rows := min(T, len(buf)/vocab)
	if rows < 1 {
		panic("train: lmHeadLoss buffer holds less than one row of logits")
	}
	var sum float64
	rowLoss := make([]float64, rows) // each row's loss, summed in row order below
	for r0 := 0; r0 < T; r0 += rows {
		n := min(rows, T-r0)
		logits := buf[:n*vocab]
		xr := x[r0*dim : (r0+n)*dim]
		linearForward(logits, xr, w, n, dim, vocab)
		kernels.ParallelFor(n, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				rowLoss[i] = crossEntropyRow(logits[i*vocab:(i+1)*vocab], targets[r0+i], scale, dX != nil)
			}
		})
		for i := 0; i < n; i++ {
			if targets[r0+i] != noTarget {
				sum += rowLoss[i]
			}
		}
		if dX != nil {
			linearBackward(dX[r0*dim:(r0+n)*dim], dW, logits, xr, w, n, dim, vocab, false)
		}
	}
	return sum
}

// crossEntropyRow returns logsumexp(row) − row[tgt] (0 when tgt is
// noTarget) and, when grad, leaves scale·(softmax(row) − onehot(tgt)) in
// row (zeros when tgt is noTarget).
func crossEntropyRow(row []float32, tgt int32, scale float32, grad bool) float64 {
	if tgt == noTarget {
		clear(row) // no gradient from this row
		return 0
	}
	mx := row[kernels.Argmax(row)]
	zt := row[tgt]
	for j := range row {
		row[j] -= mx
	}
	kernels.Exp(row, row)
	var s float64
	for _, e := range row {
		s += float64(e)
	}
	if grad {
		kernels.Scale(row, float32(float64(scale)/s))
		row[tgt] -= scale
	}
	return math.Log(s) - float64(zt-mx)
}
