package kernels

import (
	"math"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
)

// adamwInputs returns parameters, gradients and moments of n elements whose
// gradients span zero, tiny (g² underflows fp32 but not float64) and large
// magnitudes, and whose v are non-negative.
func adamwInputs(n int, seed uint64) (p, g, m, v []float32) {
	p, g, m, v = numtest.Rand(n, seed), numtest.Rand(n, seed+1), numtest.Rand(n, seed+2), numtest.Rand(n, seed+3)
	for i := range g {
		switch i % 5 {
		case 1:
			g[i] = 0
		case 2:
			g[i] *= 1e-21
		case 3:
			g[i] *= 1e3
		}
		m[i] *= 0.1
		v[i] = v[i] * v[i] * 0.01
	}
	return
}

var adamwTestStep = AdamWStep{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, Step: 3e-4 / (1 - 0.9*0.9*0.9),
	RBC2: 1 / math.Sqrt(1-0.95*0.95*0.95), Decay: 1 - 3e-4*0.1}

// TestAdamW: every path gives the twin's results bit for bit (the vector
// kernel performs the twin's float64 operations, unfused), on every tail
// length and unaligned slices, without writing past the end.
func TestAdamW(t *testing.T) {
	for _, n := range []int{1, 3, 7, 8, 9, 15, 16, 17, 31, 100, 1003} {
		p, g, m, v := adamwInputs(n, uint64(n))
		wp, wm, wv := append([]float32(nil), p...), append([]float32(nil), m...), append([]float32(nil), v...)
		adamwGeneric(wp, g, wm, wv, adamwTestStep)
		t.Run(numtest.Name("n%d", n), func(t *testing.T) {
			numtest.EachImpl(t, "adamw", func(t *testing.T) {
				gp, checkP := numtest.Guarded(t, n, 9)
				gm, checkM := numtest.Guarded(t, n, 9)
				gv, checkV := numtest.Guarded(t, n, 9)
				copy(gp, p)
				copy(gm, m)
				copy(gv, v)
				AdamW(gp, numtest.Offset(g, 1), gm, gv, adamwTestStep)
				checkP()
				checkM()
				checkV()
				for i := range n {
					for _, c := range []struct {
						what      string
						got, want float32
					}{{"p", gp[i], wp[i]}, {"m", gm[i], wm[i]}, {"v", gv[i], wv[i]}} {
						if math.Float32bits(c.got) != math.Float32bits(c.want) {
							t.Fatalf("n %d: %s[%d] = %g, the twin gives %g", n, c.what, i, c.got, c.want)
						}
					}
				}
			})
		})
	}
}

// TestAdamWFirstStep checks the twin against Adam's closed form at t = 1
// from zero moments without decay: m = (1−β1)·g, v = (1−β2)·g², so the bias
// corrections cancel and p ← p − lr·g/(|g| + eps). The twin's float64 error
// is ~1e-16 relative, far below the final fp32 rounding of p (½ ulp), so
// the result must be the closed form rounded, within 1 ulp.
func TestAdamWFirstStep(t *testing.T) {
	const lr, b1, b2, eps = 1e-3, 0.9, 0.95, 1e-8
	s := AdamWStep{Beta1: b1, Beta2: b2, Eps: eps, Step: lr / (1 - b1), RBC2: 1 / math.Sqrt(1-b2), Decay: 1}
	p, g, _, _ := adamwInputs(1000, 7)
	m, v := make([]float32, len(p)), make([]float32, len(p))
	want := make([]float32, len(p))
	for i := range p {
		gi := float64(g[i])
		want[i] = float32(float64(p[i]) - lr*gi/(math.Abs(gi)+eps))
	}
	adamwGeneric(p, g, m, v, s)
	for i := range p {
		if u := numtest.ULP(p[i], want[i]); u > 1 {
			t.Fatalf("p[%d] = %g after the first step with g = %g, want %g (%d ulp)", i, p[i], g[i], want[i], u)
		}
	}
}

func BenchmarkAdamW(b *testing.B) {
	const n = 1 << 20
	p, g, m, v := adamwInputs(n, 1)
	b.SetBytes(n * 4 * 7) // read p, g, m, v; write p, m, v
	for b.Loop() {
		AdamW(p, g, m, v, adamwTestStep)
	}
}

func BenchmarkAdamWGeneric(b *testing.B) {
	const n = 1 << 20
	p, g, m, v := adamwInputs(n, 1)
	b.SetBytes(n * 4 * 7)
	for b.Loop() {
		adamwGeneric(p, g, m, v, adamwTestStep)
	}
}
