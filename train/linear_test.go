package train

import (
	"math"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
)

// TestLinearTwinFiniteDiff checks linearRef's backward against central
// differences of L = Σ out ⊙ R in float64 (so dOut = R).
func TestLinearTwinFiniteDiff(t *testing.T) {
	const T, nIn, nOut = 3, 5, 4
	in, w, r := to64(numtest.Rand(T*nIn, 3)), to64(numtest.Rand(nOut*nIn, 4)), to64(numtest.Rand(T*nOut, 5))
	loss := func() float64 {
		out, _, _ := linearRef(in, w, r, T, nIn, nOut)
		var s float64
		for i, v := range out {
			s += v * r[i]
		}
		return s
	}
	_, dIn, dW := linearRef(in, w, r, T, nIn, nOut)
	for name, pair := range map[string][2][]float64{
		"dIn": {dIn, finiteDiff(loss, in, fdStep)},
		"dW":  {dW, finiteDiff(loss, w, fdStep)},
	} {
		for i := range pair[0] {
			if d := math.Abs(pair[0][i] - pair[1][i]); d > fdTol {
				t.Errorf("%s[%d] = %.12g, finite difference %.12g", name, i, pair[0][i], pair[1][i])
			}
		}
	}
}

// TestLinearMatchesTwin runs the pooled fp32 forward and backward on shapes
// large enough to split across threads (either along rows or columns) and on
// odd small ones, against the float64 twin. Inputs lie in [-1, 1), so a
// k-term product sum is off by at most DotTol(k, k).
func TestLinearMatchesTwin(t *testing.T) {
	for _, s := range []struct{ T, nIn, nOut int }{{1, 7, 5}, {3, 5, 301}, {129, 67, 33}, {9, 64, 1000}, {700, 48, 40}} {
		t.Run(numtest.Name("T%d_%dx%d", s.T, s.nIn, s.nOut), func(t *testing.T) {
			in, w, dOut := numtest.Rand(s.T*s.nIn, 6), numtest.Rand(s.nOut*s.nIn, 7), numtest.Rand(s.T*s.nOut, 8)
			wantOut, wantDIn, wantDW := linearRef(to64(in), to64(w), to64(dOut), s.T, s.nIn, s.nOut)
			out := make([]float32, s.T*s.nOut)
			linearForward(out, in, w, s.T, s.nIn, s.nOut)
			compare(t, "out", out, wantOut, numtest.DotTol(s.nIn, float64(s.nIn)))
			dIn := make([]float32, s.T*s.nIn)
			dW := make([]float32, s.nOut*s.nIn)
			for i := range dIn {
				dIn[i] = 1 // overwritten, not accumulated
			}
			linearBackward(dIn, dW, dOut, in, w, s.T, s.nIn, s.nOut, false)
			compare(t, "dIn", dIn, wantDIn, numtest.DotTol(s.nOut, float64(s.nOut)))
			compare(t, "dW", dW, wantDW, numtest.DotTol(s.T, float64(s.T)))
			// Accumulating: dIn += dOut·W, dW += dOutᵀ·in once more.
			linearBackward(dIn, dW, dOut, in, w, s.T, s.nIn, s.nOut, true)
			for i := range wantDIn {
				wantDIn[i] *= 2
			}
			for i := range wantDW {
				wantDW[i] *= 2
			}
			compare(t, "dIn accumulated", dIn, wantDIn, 2*numtest.DotTol(s.nOut, float64(s.nOut)))
			compare(t, "dW accumulated", dW, wantDW, 2*numtest.DotTol(s.T, float64(s.T)))
		})
	}
}

// TestResidualAndEmbeddingBackward checks the residual and embedding
// backward against central differences of L = Σ out ⊙ R. Both are linear,
// so the float64 differences are exact up to rounding.
func TestResidualAndEmbeddingBackward(t *testing.T) {
	const n = 6
	const alpha, beta = 3.5565588, 0.75
	res, branch, r := numtest.Rand(n, 9), numtest.Rand(n, 10), numtest.Rand(n, 11)
	dRes, dBranch := make([]float32, n), make([]float32, n)
	for i := range dRes {
		dRes[i], dBranch[i] = 2, 2 // overwritten
	}
	residualBackward(dRes, dBranch, r, alpha, beta)
	out := make([]float32, n)
	residualForward(out, res, branch, alpha, beta)
	for i := range out {
		want := float64(res[i])*alpha + float64(branch[i])*beta
		if d := math.Abs(float64(out[i]) - want); d > 2*numtest.Eps32*math.Abs(want)+numtest.Eps32*(alpha+beta) {
			t.Errorf("out[%d] = %v, want %v", i, out[i], want)
		}
		wantRes := float64(alpha * r[i])
		if d := math.Abs(float64(dRes[i]) - wantRes); d > 2*numtest.Eps32*math.Abs(wantRes) {
			t.Errorf("dRes[%d] = %v, want %v", i, dRes[i], wantRes)
		}
		if d := math.Abs(float64(dBranch[i]) - float64(beta*r[i])); d > numtest.Eps32*math.Abs(float64(beta*r[i])) {
			t.Errorf("dBranch[%d] = %v, want %v", i, dBranch[i], beta*r[i])
		}
	}

	const vocab, dim = 5, 3
	tokens := []int32{4, 1, 4, 0}
	table, dOut := numtest.Rand(vocab*dim, 12), numtest.Rand(len(tokens)*dim, 13)
	emb := make([]float32, len(tokens)*dim)
	embeddingForward(emb, table, tokens, dim)
	dTable := make([]float32, vocab*dim)
	embeddingBackward(dTable, dOut, tokens, dim)
	t64, r64 := to64(table), to64(dOut)
	loss := func() float64 {
		var s float64
		for i, id := range tokens {
			for j := 0; j < dim; j++ {
				s += t64[int(id)*dim+j] * r64[i*dim+j]
			}
		}
		return s
	}
	compare(t, "dTable", dTable, finiteDiff(loss, t64, fdStep), fdTol)
	for i, id := range tokens {
		for j := 0; j < dim; j++ {
			if emb[i*dim+j] != table[int(id)*dim+j] {
				t.Fatalf("embedding row %d differs from table row %d", i, id)
			}
		}
	}
}
