package kernels

import (
	"math"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
)

var vecSizes = []int{0, 1, 7, 15, 16, 17, 31, 63, 64, 65, 100, 1000, 4099}

// expInputs sweeps the whole float32 range of exp (past both ends) and the
// special values.
func expInputs() []float32 {
	var xs []float32
	for x := -110.0; x <= 95; x += 0.01371 {
		xs = append(xs, float32(x))
	}
	inf := float32(math.Inf(1))
	return append(xs, 0, float32(math.Copysign(0, -1)), inf, -inf, float32(math.NaN()),
		88.72, 88.7228, -87.33, -103.9, -103.28, 1e-8, -1e-8)
}

func TestExp(t *testing.T) {
	xs := expInputs()
	want := make([]float32, len(xs))
	expGeneric(want, xs)
	numtest.EachImpl(t, "exp", func(t *testing.T) {
		got, check := numtest.Guarded(t, len(xs), 17)
		Exp(got, numtest.Offset(xs, 1))
		check()
		var worst int64
		for i := range xs {
			// Twin: float64 exp rounded (≤ ½ ulp). Fast: Cephes
			// polynomial ≈ 1 ulp plus the rounding of r and of 1+r+…:
			// together at most 2 ulp from the twin.
			if u := numtest.ULP(got[i], want[i]); u > worst {
				worst = u
				if u > 2 {
					t.Errorf("exp(%g) = %g, want %g (%d ulp)", xs[i], got[i], want[i], u)
				}
			}
		}
		t.Logf("max error %d ulp over %d inputs", worst, len(xs))
	})
}

func TestActivations(t *testing.T) {
	xs := expInputs()
	up := numtest.Rand(len(xs), 7)
	cases := []struct {
		kernel string
		fast   func(dst, x []float32)
		twin   func(dst, x []float32)
	}{
		{"sigmoid", Sigmoid, sigmoidGeneric},
		{"silu", SiLU, siluGeneric},
		{"silumul", func(d, x []float32) { SiLUMul(d, x, up) }, func(d, x []float32) { siluMulGeneric(d, x, up) }},
	}
	for _, c := range cases {
		want := make([]float32, len(xs))
		c.twin(want, xs)
		numtest.EachImpl(t, c.kernel, func(t *testing.T) {
			got, check := numtest.Guarded(t, len(xs), 17)
			c.fast(got, numtest.Offset(xs, 3))
			check()
			for i := range xs {
				// exp ≤ 2 ulp (TestExp); 1+e passes at most that
				// relative error on (e/(1+e) ≤ 1) plus ½ ulp; the
				// division and the product with up add ½ ulp each;
				// the twin has its own ≈2 ulp: 6 ulp in all.
				if u := numtest.ULP(got[i], want[i]); u > 6 && math.Abs(float64(got[i]-want[i])) > 1e-44 {
					t.Errorf("%s(%g) = %g, want %g (%d ulp)", c.kernel, xs[i], got[i], want[i], u)
					break
				}
			}
		})
	}
}

func TestVecKernels(t *testing.T) {
	eps := numtest.Eps32
	numtest.EachImpl(t, "dot", func(t *testing.T) {
		for _, n := range vecSizes {
			a, b := numtest.Offset(numtest.Rand(n, 1), 1), numtest.Offset(numtest.Rand(n+3, 2), 2)
			var want, abs float64
			for i := range n {
				want += float64(a[i]) * float64(b[i])
				abs += math.Abs(float64(a[i]) * float64(b[i]))
			}
			if got := Dot(a, b); math.Abs(float64(got)-want) > numtest.DotTol(n, abs) {
				t.Errorf("n=%d: Dot = %g, want %g ± %g", n, got, want, numtest.DotTol(n, abs))
			}
		}
	})
	numtest.EachImpl(t, "axpy", func(t *testing.T) {
		for _, n := range vecSizes {
			x, d0 := numtest.Rand(n, 3), numtest.Rand(n, 4)
			d, check := numtest.Guarded(t, n, 9)
			copy(d, d0)
			Axpy(d, 0.75, numtest.Offset(x, 1))
			check()
			for i := range n {
				// one fused multiply-add vs. a product and a sum:
				// they differ by at most the product's rounding
				// (ε·|a·x|) plus ½ ulp of the result each.
				want := float64(d0[i]) + 0.75*float64(x[i])
				if math.Abs(float64(d[i])-want) > eps*(math.Abs(want)+0.75*math.Abs(float64(x[i])))*2 {
					t.Fatalf("n=%d: Axpy[%d] = %g, want %g", n, i, d[i], want)
				}
			}
		}
	})
	numtest.EachImpl(t, "scale", func(t *testing.T) {
		for _, n := range vecSizes {
			x := numtest.Rand(n, 5)
			d, check := numtest.Guarded(t, n, 9)
			copy(d, x)
			Scale(d, -1.5)
			check()
			for i := range n {
				if d[i] != x[i]*-1.5 { // one rounding either way: exact match
					t.Fatalf("n=%d: Scale[%d] = %g, want %g", n, i, d[i], x[i]*-1.5)
				}
			}
		}
	})
	numtest.EachImpl(t, "mul", func(t *testing.T) {
		for _, n := range vecSizes {
			x, y := numtest.Rand(n, 6), numtest.Rand(n, 7)
			d, check := numtest.Guarded(t, n, 9)
			copy(d, x)
			Mul(d, numtest.Offset(y, 1))
			check()
			for i := range n {
				if d[i] != x[i]*y[i] {
					t.Fatalf("n=%d: Mul[%d] = %g, want %g", n, i, d[i], x[i]*y[i])
				}
			}
		}
	})
	numtest.EachImpl(t, "rmsnorm", func(t *testing.T) {
		for _, n := range vecSizes[1:] {
			x, w := numtest.Rand(n, 8), numtest.Rand(n, 9)
			want := make([]float32, n)
			rmsNormGeneric(want, x, w, 1e-5)
			d, check := numtest.Guarded(t, n, 9)
			RMSNorm(d, numtest.Offset(x, 1), w, 1e-5)
			check()
			// Σx² of positive terms in 64 float32 lanes: relative
			// error ≤ (n/64 + 6)·ε; the square root halves it; the
			// two final products add 1 ulp; ×2 for the twin's own.
			rel := 2 * ((float64(n)/64+6)/2 + 2) * eps
			for i := range n {
				if math.Abs(float64(d[i]-want[i])) > rel*math.Abs(float64(want[i])) {
					t.Fatalf("n=%d: RMSNorm[%d] = %g, want %g", n, i, d[i], want[i])
				}
			}
		}
	})
	numtest.EachImpl(t, "softmax", func(t *testing.T) {
		for _, n := range vecSizes[1:] {
			x := numtest.Rand(n, 10)
			for i := range x {
				x[i] *= 20
			}
			want := append([]float32(nil), x...)
			softmaxGeneric(want)
			got := numtest.Offset(x, 1)
			Softmax(got)
			// exp ≤ 2 ulp; the float32 sum in 16 lanes has relative
			// error ≤ (n/16 + 4)·ε; the final scale 1 ulp; ×2 for
			// the twin's own rounding.
			rel := 2 * (float64(n)/16 + 8) * eps
			for i := range n {
				if math.Abs(float64(got[i]-want[i])) > rel*float64(want[i])+1e-44 {
					t.Fatalf("n=%d: Softmax[%d] = %g, want %g", n, i, got[i], want[i])
				}
			}
		}
	})
}

func BenchmarkVec(b *testing.B) {
	const n = 9216 // one token's expert hidden width
	x, y, d := numtest.Rand(n, 1), numtest.Rand(n, 2), make([]float32, n)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"Exp", func() { Exp(d, x) }},
		{"SiLUMul", func() { SiLUMul(d, x, y) }},
		{"Softmax", func() { copy(d, x); Softmax(d) }},
		{"RMSNorm", func() { RMSNorm(d, x, y, 1e-5) }},
		{"Dot", func() { Dot(x, y) }},
		{"Argmax", func() { Argmax(x) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				c.f()
			}
		})
	}
}

// TestArgmax compares Argmax with its twin exactly on random values, ties on
// a coarse grid, ±0, ±Inf and NaNs anywhere (x[0] included), at every length
// up to 200 and a few large ones, from unaligned starts.
func TestArgmax(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	numtest.EachImpl(t, "argmax", func(t *testing.T) {
		sizes := []int{1000, 4099, 200064}
		for n := 1; n <= 200; n++ {
			sizes = append(sizes, n)
		}
		for si, n := range sizes {
			base := numtest.Rand(n, uint64(si))
			variants := map[string]func(x []float32){
				"random": func([]float32) {},
				"ties": func(x []float32) {
					for i := range x {
						x[i] = float32(math.Round(float64(x[i]) * 2))
					}
				},
				"zeros": func(x []float32) {
					for i := range x {
						x[i] = float32(math.Copysign(0, float64(x[i])))
					}
				},
				"-inf": func(x []float32) {
					for i := range x {
						x[i] = -inf
					}
				},
				"+inf last": func(x []float32) { x[n-1] = inf },
				"nan": func(x []float32) {
					for i := si % 3; i < n; i += 5 {
						x[i] = nan
					}
				},
				"all nan": func(x []float32) {
					for i := range x {
						x[i] = nan
					}
				},
			}
			for name, f := range variants {
				x := numtest.Offset(base, 1+si%3)
				f(x)
				if got, want := Argmax(x), argmaxGeneric(x); got != want {
					t.Fatalf("%s n=%d: Argmax = %d (%g), want %d (%g)", name, n, got, x[got], want, x[want])
				}
			}
		}
	})
}
