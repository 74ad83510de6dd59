package attention

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
)

// lightningRecurrence is the definition of lightning attention (spec §2.5.3),
// token by token, and the oracle of the block algorithm and its backward:
// S_t = λ·S_{t-1} + k_tᵀv_t, o_t = q_t·S_t with λ = exp(-slope), S_{-1} = s0
// (zero when s0 is nil). q, k, v, o are [n, d]; states is [n, d, d] with
// S_t, key dim first.
func lightningRecurrence[F float32 | float64](q, k, v []F, n, d int, s0 []F, slope F) (o, states []F) {
	lambda := F(math.Exp(-float64(slope)))
	dd := d * d
	o = make([]F, n*d)
	states = make([]F, n*dd)
	prev := make([]F, dd)
	copy(prev, s0)
	for t := 0; t < n; t++ {
		s := states[t*dd : (t+1)*dd]
		for i := 0; i < d; i++ {
			for j := 0; j < d; j++ {
				s[i*d+j] = lambda*prev[i*d+j] + k[t*d+i]*v[t*d+j]
			}
		}
		for j := 0; j < d; j++ {
			var acc F
			for i := 0; i < d; i++ {
				acc += q[t*d+i] * s[i*d+j]
			}
			o[t*d+j] = acc
		}
		prev = s
	}
	return o, states
}

// lightningRecurrenceBackward is the backward of lightningRecurrence from a
// zero state, token by token from the last: with G_t = ∂L/∂S_t (through o_t
// and through S_{t+1}),
//
//	G_t   = q_tᵀ·do_t + λ·G_{t+1}
//	dq_t  = do_t·S_tᵀ
//	dk_t  = v_t·G_tᵀ   (dk_t[i] = Σ_j G_t[i,j]·v_t[j])
//	dv_t  = k_t·G_t
//
// All of q, k, v, do and the results are [n, d].
func lightningRecurrenceBackward[F float32 | float64](do, q, k, v []F, n, d int, slope F) (dq, dk, dv []F) {
	lambda := F(math.Exp(-float64(slope)))
	_, states := lightningRecurrence(q, k, v, n, d, nil, slope)
	dq, dk, dv = make([]F, n*d), make([]F, n*d), make([]F, n*d)
	g := make([]F, d*d)
	for t := n - 1; t >= 0; t-- {
		s := states[t*d*d : (t+1)*d*d]
		for i := 0; i < d; i++ {
			for j := 0; j < d; j++ {
				g[i*d+j] = lambda*g[i*d+j] + q[t*d+i]*do[t*d+j]
			}
		}
		for i := 0; i < d; i++ {
			var aq, ak, av F
			for j := 0; j < d; j++ {
				aq += do[t*d+j] * s[i*d+j]
				ak += g[i*d+j] * v[t*d+j]
				av += k[t*d+j] * g[j*d+i]
			}
			dq[t*d+i], dk[t*d+i], dv[t*d+i] = aq, ak, av
		}
	}
	return dq, dk, dv
}

// lightningLoss is L = Σ do ⊙ o of the recurrence, whose gradient is the
// backward of do.
func lightningLoss(do, q, k, v []float64, n, d int, slope float64) float64 {
	o, _ := lightningRecurrence(q, k, v, n, d, nil, slope)
	var l float64
	for i := range o {
		l += do[i] * o[i]
	}
	return l
}

func absAll(xs ...[]float64) [][]float64 {
	out := make([][]float64, len(xs))
	for i, x := range xs {
		out[i] = make([]float64, len(x))
		for j, e := range x {
			out[i][j] = math.Abs(e)
		}
	}
	return out
}

// TestLightningRecurrenceGradFiniteDiff checks the token-by-token backward
// against central differences of the loss L = Σ do ⊙ o in float64, at a
// spread of coordinates (first and last token, block edges 255/256, random
// ones) of q, k and v. Every term of o_t = Σ_τ λ^{t-τ}(q_t·k_τ)v_τ is of
// degree one in each coordinate of q, of k and of v, so L is affine along one
// coordinate and the central difference has no truncation error: what is left
// is rounding, at most a few evaluations' worth of n·d·ε64·L_abs/h, where
// L_abs is L with every input replaced by its absolute value (the sum of
// |terms|). We allow 8·(n+d)·ε64·L_abs/h.
func TestLightningRecurrenceGradFiniteDiff(t *testing.T) {
	const d, h = 4, 0.5
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 2, 255, 256, 257, 700} {
		for _, slope := range []float64{0.917, 0.3, 0.004} {
			_, q := randVec(r, n*d, 1)
			_, k := randVec(r, n*d, 1)
			_, v := randVec(r, n*d, 1)
			_, do := randVec(r, n*d, 1)
			dq, dk, dv := lightningRecurrenceBackward(do, q, k, v, n, d, slope)
			a := absAll(do, q, k, v)
			lAbs := lightningLoss(a[0], a[1], a[2], a[3], n, d, slope)
			tol := 8 * float64(n+d) * 0x1p-53 * lAbs / h
			tokens := []int{0, n - 1, n / 2, r.IntN(n), r.IntN(n)}
			for _, tok := range []int{255, 256} {
				if tok < n {
					tokens = append(tokens, tok)
				}
			}
			for _, in := range []struct {
				name string
				x    []float64
				grad []float64
			}{{"q", q, dq}, {"k", k, dk}, {"v", v, dv}} {
				for _, tok := range tokens {
					for i := 0; i < d; i++ {
						p := tok*d + i
						x0 := in.x[p]
						in.x[p] = x0 + h
						lp := lightningLoss(do, q, k, v, n, d, slope)
						in.x[p] = x0 - h
						lm := lightningLoss(do, q, k, v, n, d, slope)
						in.x[p] = x0
						if fd := (lp - lm) / (2 * h); math.Abs(fd-in.grad[p]) > tol {
							t.Errorf("n %d slope %v: d%s[%d][%d] = %.15g, finite difference %.15g (tol %.3g)", n, slope, in.name, tok, i, in.grad[p], fd, tol)
						}
					}
				}
			}
		}
	}
}

// lightningCase holds one head's inputs in the model's layout: q, k, v
// interleaved in rows of ld = 3·d+pad floats, do in rows of ldo floats, plus
// their float64 copies packed as [n, d].
type lightningCase struct {
	ld, ldo       int
	qkv, do       []float32
	q, k, v, do64 []float64
	q32, k32, v32 []float32 // views of qkv at the q, k, v offsets
}

func newLightningCase(r *rand.Rand, n, d int) *lightningCase {
	c := &lightningCase{ld: 3*d + 2, ldo: d + 3}
	c.qkv = make([]float32, n*c.ld)
	c.do = make([]float32, n*c.ldo)
	c.q, c.k, c.v, c.do64 = make([]float64, n*d), make([]float64, n*d), make([]float64, n*d), make([]float64, n*d)
	for t := 0; t < n; t++ {
		for i := 0; i < d; i++ {
			for part, dst := range [][]float64{c.q, c.k, c.v} {
				x := float32(r.Float64()*2 - 1)
				c.qkv[t*c.ld+part*d+i] = x
				dst[t*d+i] = float64(x)
			}
			x := float32(r.Float64()*2 - 1)
			c.do[t*c.ldo+i] = x
			c.do64[t*d+i] = float64(x)
		}
	}
	c.q32, c.k32, c.v32 = c.qkv, c.qkv[d:], c.qkv[2*d:]
	return c
}

// TestLightningForwardKeep checks that the training forward's outputs are
// bitwise those of LightningPrefill from a zero state (the same operations
// in the same order), and that kept[b] is the recurrence's state before
// token b·B. The states are sums of at most n products k·v·λ^j, each factor
// rounded once in fp32 and summed in chains of at most n + B additions, so
// |kept − S| ≤ (n + B + 8)·ε32·S_abs, S_abs being the state of |k|, |v|.
func TestLightningForwardKeep(t *testing.T) {
	const d = 8
	r := rand.New(rand.NewPCG(7, 8))
	for _, block := range []int{1, 3, 16, 256} {
		for _, n := range []int{1, 2, 255, 256, 257, 700} {
			for _, slope := range []float32{0.917, 0.004} {
				c := newLightningCase(r, n, d)
				ws := NewLightningScratch(block, d)
				want := make([]float32, n*c.ldo)
				LightningPrefill(want, c.ldo, c.q32, c.k32, c.v32, c.ld, n, d, make([]float32, d*d), slope, block, ws)
				got := make([]float32, n*c.ldo)
				kept := make([]float32, LightningKeptLen(n, d, block))
				for i := range kept {
					kept[i] = float32(math.NaN())
				}
				LightningForwardKeep(got, c.ldo, c.q32, c.k32, c.v32, c.ld, n, d, kept, slope, block, ws)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("block %d n %d slope %v: o[%d] = %v, LightningPrefill %v", block, n, slope, i, got[i], want[i])
					}
				}
				_, states := lightningRecurrence(c.q, c.k, c.v, n, d, nil, float64(slope))
				a := absAll(c.q, c.k, c.v)
				_, absStates := lightningRecurrence(a[0], a[1], a[2], n, d, nil, float64(slope))
				tol := float64(n+block+8) * numtest.Eps32
				for b := 0; b*block < n; b++ {
					for i := 0; i < d*d; i++ {
						var s, sAbs float64 // state before token b·B: zero for b = 0
						if b > 0 {
							s, sAbs = states[(b*block-1)*d*d+i], absStates[(b*block-1)*d*d+i]
						}
						if g := float64(kept[b*d*d+i]); math.Abs(g-s) > tol*sAbs {
							t.Fatalf("block %d n %d slope %v: kept[%d][%d] = %v, recurrence %v (tol %.3g)", block, n, slope, b, i, g, s, tol*sAbs)
						}
					}
				}
			}
		}
	}
}

// TestLightningBackward checks the fast fp32 backward against the float64
// token-by-token backward at the same (fp32-rounded) inputs, for lengths
// around block edges, block lengths 1, 3, 16 and 256, several decay rates,
// strided interleaved buffers, and every Sgemm path of the machine.
//
// Tolerance, per element: each gradient is a sum of products of inputs and
// decays, ∂ = Σ terms. The fp32 path rounds each of the ≤ 6 factors of a term
// once and adds the terms in chains no longer than n (the carried state
// gradient, added to once per block) plus 2d + 2B (the two products of the
// block algorithm), so |got − ∂| ≤ (n + 2d + 2·min(n,B) + 8)·ε32·∂_abs, where
// ∂_abs is the gradient of the recurrence at |q|, |k|, |v|, |do| (every
// coefficient is positive, so that is the sum of |terms|). The float64
// oracle's own error is 2⁻²⁹ times smaller.
func TestLightningBackward(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	numtest.EachImpl(t, "sgemm", func(t *testing.T) {
		for _, block := range []int{1, 3, 16, 256} {
			for _, n := range []int{1, 2, 255, 256, 257, 700} {
				for _, slope := range []float32{0.917, 0.3, 0.004} {
					worst := checkLightningBackward(t, r, n, 8, block, slope)
					if n == 700 && slope == 0.004 {
						t.Logf("d 8 block %d n %d slope %v: worst error %.3g of the tolerance", block, n, slope, worst)
					}
				}
			}
		}
		// d = 32 fills whole Sgemm panels (32 columns on AVX-512, 16 on AVX2)
		// in the d-wide products too.
		for _, block := range []int{16, 256} {
			for _, n := range []int{257, 700} {
				worst := checkLightningBackward(t, r, n, 32, block, 0.3)
				t.Logf("d 32 block %d n %d slope 0.3: worst error %.3g of the tolerance", block, n, worst)
			}
		}
	})
}

// checkLightningBackward runs the training forward and the backward on one
// random case and compares the gradients with the recurrence's (tolerance in
// TestLightningBackward), checking that the padding between the interleaved
// gradient rows is left alone. It returns the largest error as a fraction of
// its tolerance.
func checkLightningBackward(t *testing.T, r *rand.Rand, n, d, block int, slope float32) float64 {
	t.Helper()
	name := fmt.Sprintf("d %d block %d n %d slope %v", d, block, n, slope)
	c := newLightningCase(r, n, d)
	kept := make([]float32, LightningKeptLen(n, d, block))
	o := make([]float32, n*c.ldo)
	LightningForwardKeep(o, c.ldo, c.q32, c.k32, c.v32, c.ld, n, d, kept, slope, block, NewLightningScratch(block, d))
	grads := make([]float32, n*c.ld)
	const sentinel = -1234.5
	for i := range grads {
		grads[i] = sentinel
	}
	dq, dk, dv := grads, grads[d:], grads[2*d:]
	LightningBackward(dq, dk, dv, c.ld, c.do, c.ldo, c.q32, c.k32, c.v32, n, d, kept, slope, block, NewLightningGradScratch(block, d))
	wq, wk, wv := lightningRecurrenceBackward(c.do64, c.q, c.k, c.v, n, d, float64(slope))
	a := absAll(c.do64, c.q, c.k, c.v)
	aq, ak, av := lightningRecurrenceBackward(a[0], a[1], a[2], a[3], n, d, float64(slope))
	tol := float64(n+2*d+2*min(n, block)+8) * numtest.Eps32
	worst := 0.0
	for part, g := range []struct {
		name      string
		want, abs []float64
	}{{"dq", wq, aq}, {"dk", wk, ak}, {"dv", wv, av}} {
		for tok := 0; tok < n; tok++ {
			for i := 0; i < d; i++ {
				got := float64(grads[tok*c.ld+part*d+i])
				want, abs := g.want[tok*d+i], g.abs[tok*d+i]
				err := math.Abs(got - want)
				if err > tol*abs {
					t.Fatalf("%s: %s[%d][%d] = %v, recurrence %v (tol %.3g)", name, g.name, tok, i, got, want, tol*abs)
				}
				if abs > 0 {
					worst = max(worst, err/(tol*abs))
				}
			}
		}
	}
	for tok := 0; tok < n; tok++ {
		for _, x := range grads[tok*c.ld+3*d : (tok+1)*c.ld] {
			if x != sentinel {
				t.Fatalf("%s: padding of row %d written", name, tok)
			}
		}
	}
	return worst
}
