package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
)

// The gradient tests differentiate float64 forwards written out here (an
// independent statement of each op) by central differences, and compare the
// float64 twins with them; then they run the float32 fast paths against the
// float64 twins with tolerances derived per op.

func rand64(n int, seed uint64, scale float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	s := make([]float64, n)
	for i := range s {
		s[i] = scale * (2*r.Float64() - 1)
	}
	return s
}

func to32(s []float64) []float32 {
	d := make([]float32, len(s))
	for i, v := range s {
		d[i] = float32(v)
	}
	return d
}

func to64(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

func sigmoid64(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

var gradSizes = []int{1, 7, 33, 300} // 300 crosses a gradChunk boundary

func TestRMSNormBackwardFD(t *testing.T) {
	const eps = 1e-5
	for _, n := range gradSizes[:3] {
		x, w, R := rand64(n, 1, 2), rand64(n, 2, 1.5), rand64(n, 3, 1)
		loss := func() float64 { // Σ R ⊙ w ⊙ x / sqrt(mean(x²) + eps)
			var ss float64
			for _, v := range x {
				ss += v * v
			}
			r := 1 / math.Sqrt(ss/float64(n)+eps)
			var l float64
			for i := range x {
				l += R[i] * w[i] * x[i] * r
			}
			return l
		}
		dx, dw := make([]float64, n), make([]float64, n)
		rmsNormBackwardGeneric(dx, dw, R, x, w, eps)
		for i := range x {
			numtest.CheckFD(t, numtest.Name("n%d dx", n), i, dx[i], numtest.CentralDiff(loss, &x[i]))
			numtest.CheckFD(t, numtest.Name("n%d dw", n), i, dw[i], numtest.CentralDiff(loss, &w[i]))
		}
	}
}

func TestRMSNormBackward(t *testing.T) {
	const eps = 1e-5
	numtest.EachImpl(t, "dot", func(t *testing.T) {
		for _, n := range gradSizes {
			x, w, dy, dw0 := numtest.Rand(n, 4), numtest.Rand(n, 5), numtest.Rand(n, 6), numtest.Rand(n, 7)
			dx, dw := make([]float32, n), append([]float32(nil), dw0...)
			RMSNormBackward(dx, dw, dy, x, w, eps)
			x64, w64, dy64 := to64(x), to64(w), to64(dy)
			wantDx, wantDw := make([]float64, n), to64(dw0)
			rmsNormBackwardGeneric(wantDx, wantDw, dy64, x64, w64, eps)
			var ss, c float64
			for i := range x64 {
				ss += x64[i] * x64[i]
				c += math.Abs(dy64[i] * w64[i] * x64[i])
			}
			r := 1 / math.Sqrt(ss/float64(n)+eps)
			// r comes from a float32 sum of n squares (relative error
			// ≤ n·ε, halved by the square root, plus the rounding of r):
			// δr ≤ (n/2+2)ε, and r³ carries 3δr. Each product adds ε;
			// c sums float32 products in float64 (2ε each). So dx errs by
			// at most (2n+16)ε·(|r·w·dy| + r³·|x|·Σ|dy·w·x|/n), and
			// dw by (n+4)ε·|r·x·dy| plus the rounding of the sum.
			for i := range x {
				tolDx := float64(2*n+16) * numtest.Eps32 * (math.Abs(r*w64[i]*dy64[i]) + r*r*r*math.Abs(x64[i])*c/float64(n))
				if d := math.Abs(float64(dx[i]) - wantDx[i]); d > tolDx {
					t.Errorf("n%d dx[%d] = %g, want %g (tol %g)", n, i, dx[i], wantDx[i], tolDx)
				}
				tolDw := float64(n+4)*numtest.Eps32*math.Abs(r*x64[i]*dy64[i]) + numtest.Eps32*math.Abs(wantDw[i])
				if d := math.Abs(float64(dw[i]) - wantDw[i]); d > tolDw {
					t.Errorf("n%d dw[%d] = %g, want %g (tol %g)", n, i, dw[i], wantDw[i], tolDw)
				}
			}
			// dx may alias dy.
			alias := append([]float32(nil), dy...)
			RMSNormBackward(alias, make([]float32, n), alias, x, w, eps)
			for i := range alias {
				if alias[i] != dx[i] {
					t.Fatalf("n%d aliased dx[%d] = %g, want %g", n, i, alias[i], dx[i])
				}
			}
		}
	})
}

func TestActivationBackwardFD(t *testing.T) {
	for _, n := range gradSizes[:3] {
		x, b, R := rand64(n, 8, 6), rand64(n, 9, 2), rand64(n, 10, 1)
		silu := func() float64 {
			var l float64
			for i, v := range x {
				l += R[i] * v * sigmoid64(v)
			}
			return l
		}
		sig := func() float64 {
			var l float64
			for i, v := range x {
				l += R[i] * sigmoid64(v)
			}
			return l
		}
		siluMul := func() float64 {
			var l float64
			for i, v := range x {
				l += R[i] * v * sigmoid64(v) * b[i]
			}
			return l
		}
		dx, y := make([]float64, n), make([]float64, n)
		siluBackwardGeneric(dx, R, x)
		for i := range x {
			numtest.CheckFD(t, numtest.Name("n%d silu dx", n), i, dx[i], numtest.CentralDiff(silu, &x[i]))
		}
		for i, v := range x {
			y[i] = sigmoid64(v)
		}
		sigmoidBackwardGeneric(dx, R, y)
		for i := range x {
			numtest.CheckFD(t, numtest.Name("n%d sigmoid dx", n), i, dx[i], numtest.CentralDiff(sig, &x[i]))
		}
		da, db := make([]float64, n), make([]float64, n)
		siluMulBackwardGeneric(da, db, R, x, b)
		for i := range x {
			numtest.CheckFD(t, numtest.Name("n%d silumul da", n), i, da[i], numtest.CentralDiff(siluMul, &x[i]))
			numtest.CheckFD(t, numtest.Name("n%d silumul db", n), i, db[i], numtest.CentralDiff(siluMul, &b[i]))
		}
	}
}

// activationTol bounds the float32 error of dy·s·(1 + x·(1−s)) against the
// float64 value: the fast sigmoid is within 4 ulp of the exact one (vec_test:
// 6 ulp from a twin that has 2), so s carries 4ε; 1−s then errs by at most
// 4ε·s + ε·|1−s|, x·(1−s) by |x| times that plus ε, the sum and the two
// products by ε each: in all below 12ε·|dy|·s·(1+|x|); 16 leaves margin.
func activationTol(dy, x float64) float64 {
	return 16 * numtest.Eps32 * math.Abs(dy) * sigmoid64(x) * (1 + math.Abs(x))
}

func TestActivationBackward(t *testing.T) {
	numtest.EachImpl(t, "sigmoid", func(t *testing.T) {
		for _, n := range gradSizes {
			x, b, dy := numtest.Rand(n, 11), numtest.Rand(n, 12), numtest.Rand(n, 13)
			for i := range x {
				x[i] *= 8 // reach the tails of the sigmoid
			}
			x64, b64, dy64 := to64(x), to64(b), to64(dy)

			dx, want := make([]float32, n), make([]float64, n)
			SiLUBackward(dx, dy, x)
			siluBackwardGeneric(want, dy64, x64)
			for i := range dx {
				if d := math.Abs(float64(dx[i]) - want[i]); d > activationTol(dy64[i], x64[i]) {
					t.Errorf("n%d silu dx[%d] = %g, want %g", n, i, dx[i], want[i])
				}
			}
			alias := append([]float32(nil), dy...)
			SiLUBackward(alias, alias, x)
			for i := range alias {
				if alias[i] != dx[i] {
					t.Fatalf("n%d aliased silu dx[%d] = %g, want %g", n, i, alias[i], dx[i])
				}
			}

			da, db := make([]float32, n), make([]float32, n)
			wantA, wantB := make([]float64, n), make([]float64, n)
			SiLUMulBackward(da, db, dy, x, b)
			siluMulBackwardGeneric(wantA, wantB, dy64, x64, b64)
			for i := range da {
				if d := math.Abs(float64(da[i]) - wantA[i]); d > activationTol(dy64[i]*b64[i], x64[i]) {
					t.Errorf("n%d silumul da[%d] = %g, want %g", n, i, da[i], wantA[i])
				}
				// db = dy·a·s: s's 4ε and two products: 6ε; 8ε with margin.
				if d := math.Abs(float64(db[i]) - wantB[i]); d > 8*numtest.Eps32*math.Abs(dy64[i]*x64[i])*sigmoid64(x64[i]) {
					t.Errorf("n%d silumul db[%d] = %g, want %g", n, i, db[i], wantB[i])
				}
			}
			// da may alias dy and db may alias b.
			a2, b2 := append([]float32(nil), dy...), append([]float32(nil), b...)
			SiLUMulBackward(a2, b2, a2, x, b2)
			for i := range a2 {
				if a2[i] != da[i] || b2[i] != db[i] {
					t.Fatalf("n%d aliased silumul [%d] = %g %g, want %g %g", n, i, a2[i], b2[i], da[i], db[i])
				}
			}

			y := make([]float32, n)
			Sigmoid(y, x)
			SigmoidBackward(dx, dy, y)
			y64 := to64(y)
			sigmoidBackwardGeneric(want, dy64, y64)
			for i := range dx {
				// three float32 roundings (1−y is exact for y ≥ ½ and
				// rounds once below): 4ε of the result.
				if d := math.Abs(float64(dx[i]) - want[i]); d > 4*numtest.Eps32*math.Abs(want[i]) {
					t.Errorf("n%d sigmoid dx[%d] = %g, want %g", n, i, dx[i], want[i])
				}
			}
		}
	})
}
