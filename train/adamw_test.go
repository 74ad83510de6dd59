package train

import (
	"math"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
	"github.com/lightninglm/lightning/model/minimax01"
)

// TestAdamWSteps runs three steps on a random slab and compares with AdamW
// as the torch documentation writes it, in float64 throughout: decay,
// moments, bias-corrected m̂ = m/(1−β1ᵗ) and v̂ = v/(1−β2ᵗ), then
// p −= lr·m̂/(sqrt(v̂)+eps). Step stores p, m and v as float32 after each
// step, so each value is off by the rounding of its stored state carried
// through three steps: a few ulp of |p| plus, through m/sqrt(v) ≈ ±1, a
// few ulp of lr; 8·u·(|p| + lr) bounds both.
func TestAdamWSteps(t *testing.T) {
	c := tinyConfig(t, 4, 2, true, false)
	table := minimax01.ParamTable(c)
	n := minimax01.SlabSize(table)
	o := NewAdamW(c)
	o.WeightDecay = 0.1
	params := numtest.Rand(n, 21)
	ref := to64(params)
	m, v := make([]float64, n), make([]float64, n)
	lrs := []float64{1e-3, 5e-4, 2e-3}
	for step, lr := range lrs {
		grads := numtest.Rand(n, uint64(22+step))
		for i := 0; i < n; i += 97 {
			grads[i] *= 1e-7 // near-zero gradients, where eps matters
		}
		o.Step(params, grads, lr)
		tt := float64(step + 1)
		for _, p := range table {
			wd := 0.0
			if p.Decay {
				wd = o.WeightDecay
			}
			for i := p.Offset; i < p.Offset+p.Size; i++ {
				g := float64(grads[i])
				ref[i] -= lr * wd * ref[i]
				m[i] = o.Beta1*m[i] + (1-o.Beta1)*g
				v[i] = o.Beta2*v[i] + (1-o.Beta2)*g*g
				mh, vh := m[i]/(1-math.Pow(o.Beta1, tt)), v[i]/(1-math.Pow(o.Beta2, tt))
				ref[i] -= lr * mh / (math.Sqrt(vh) + o.Eps)
			}
		}
	}
	if o.T != len(lrs) {
		t.Errorf("T = %d after %d steps", o.T, len(lrs))
	}
	for _, p := range table {
		for i := p.Offset; i < p.Offset+p.Size; i++ {
			tol := 8 * numtest.Eps32 * (math.Abs(ref[i]) + 2e-3)
			if d := math.Abs(float64(params[i]) - ref[i]); d > tol {
				t.Fatalf("%s (decay %v) [%d]: %v, reference %v (|Δ| %.3g > %.3g)", p.Name, p.Decay, i-p.Offset, params[i], ref[i], d, tol)
			}
		}
	}
}
