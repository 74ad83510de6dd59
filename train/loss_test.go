package train

import (
	"math"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
)

// fdTol bounds the disagreement of a float64 central difference with step
// fdStep and the analytic gradient for the smooth, O(1)-sized functions
// below: truncation error h²/6 times the third derivative ≈ 2e-13, plus
// rounding of f (a few 1e-16·|f|) divided by 2h ≈ 1e-9; 1e-7 leaves two
// orders of margin.
const (
	fdStep = 1e-6
	fdTol  = 1e-7
)

// lossCase is an odd-shaped LM-head problem with one row that predicts
// nothing (a document's last token).
func lossCase(T, dim, vocab int, seed uint64) (x, w []float32, targets []int32) {
	x, w = numtest.Rand(T*dim, seed), numtest.Rand(vocab*dim, seed+1)
	targets = make([]int32, T)
	for t := range targets {
		targets[t] = int32((t*7 + 3) % vocab)
	}
	targets[T/2] = noTarget
	return x, w, targets
}

// TestLMHeadLossTwinFiniteDiff checks the twin's gradient against central
// differences of its loss in float64.
func TestLMHeadLossTwinFiniteDiff(t *testing.T) {
	const T, dim, vocab = 5, 7, 13
	x32, w32, targets := lossCase(T, dim, vocab, 1)
	x, w := to64(x32), to64(w32)
	const scale = 0.37
	loss := func() float64 {
		l, _, _ := lmHeadLossRef(x, w, targets, T, dim, vocab, 1.0)
		return scale * l
	}
	_, dX, dW := lmHeadLossRef(x, w, targets, T, dim, vocab, scale)
	for name, pair := range map[string][2][]float64{
		"dX": {dX, finiteDiff(loss, x, fdStep)},
		"dW": {dW, finiteDiff(loss, w, fdStep)},
	} {
		for i := range pair[0] {
			if d := math.Abs(pair[0][i] - pair[1][i]); d > fdTol {
				t.Errorf("%s[%d] = %.12g, finite difference %.12g (|Δ| %.3g > %g)", name, i, pair[0][i], pair[1][i], d, fdTol)
			}
		}
	}
}

// TestLMHeadLossMatchesTwin runs the chunked fp32 path (chunks of 1, 3 and
// all rows) against the float64 twin on the same float32 inputs.
func TestLMHeadLossMatchesTwin(t *testing.T) {
	const T, dim, vocab = 11, 37, 301
	x, w, targets := lossCase(T, dim, vocab, 2)
	predictions := 0
	for _, tg := range targets {
		if tg != noTarget {
			predictions++
		}
	}
	scale := float32(1) / float32(predictions)
	wantL, wantDX, wantDW := lmHeadLossRef(to64(x), to64(w), targets, T, dim, vocab, float64(scale))
	// Tolerances from the float32 roundings of the fast path (u = 2⁻²⁴):
	// a logit is a dim-term dot product, off by δz ≤ DotTol(dim, Σ|x||w|);
	// the log-sum-exp moves by at most δz plus the rounding of the shift, the
	// exps (2 ulp) and the float64 sum, so a row's loss is off by
	// ≤ 2δz + 4u·(|lse|+1). A softmax entry is off by ≤ p·(2δz + 4u), so
	// (with Σp = 1, |g| ≤ 2·scale) a gradient entry summed over vocab rows
	// (dX) or T rows (dW) is off by scale·max|w or x|·(terms·(2δz+4u)) plus
	// the summation's own DotTol.
	maxAbs := func(s []float32) float64 {
		m := 0.0
		for _, v := range s {
			m = max(m, math.Abs(float64(v)))
		}
		return m
	}
	mx, mw := maxAbs(x), maxAbs(w)
	dz := numtest.DotTol(dim, float64(dim)*mx*mw)
	rowErr := 2*dz + 4*numtest.Eps32*(math.Log(vocab)+float64(dim)*mx*mw+1)
	tolL := float64(predictions) * rowErr
	tolDX := float64(scale) * mw * ((2*dz + 4*numtest.Eps32) + numtest.DotTol(vocab, 2))
	tolDW := float64(scale) * mx * float64(T) * ((2*dz + 4*numtest.Eps32) + numtest.DotTol(T, 2))
	for _, rows := range []int{1, 3, T} {
		t.Run(numtest.Name("rows%d", rows), func(t *testing.T) {
			dX := make([]float32, T*dim)
			dW := make([]float32, vocab*dim)
			buf := make([]float32, rows*vocab)
			got := lmHeadLoss(dX, dW, x, w, targets, T, dim, vocab, scale, buf)
			if d := math.Abs(got - wantL); d > tolL {
				t.Errorf("loss %.9g, twin %.9g (|Δ| %.3g > %.3g)", got, wantL, d, tolL)
			}
			compare(t, "dX", dX, wantDX, tolDX)
			compare(t, "dW", dW, wantDW, tolDW)
			lossOnly := lmHeadLoss(nil, nil, x, w, targets, T, dim, vocab, scale, buf)
			if lossOnly != got {
				t.Errorf("loss without gradients %.9g, with %.9g", lossOnly, got)
			}
		})
	}
}

// compare reports the elements of got further than tol from want, and the
// worst one.
func compare(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	worst, wi, bad := 0.0, 0, 0
	for i := range want {
		d := math.Abs(float64(got[i]) - want[i])
		if d > worst {
			worst, wi = d, i
		}
		if d > tol {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements off by more than %.3g; worst [%d] %.9g want %.9g (|Δ| %.3g)", name, bad, len(want), tol, wi, got[wi], want[wi], worst)
	}
}
