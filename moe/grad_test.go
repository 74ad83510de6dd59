package moe

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
	"github.com/lightninglm/lightning/kernels"
)

// The MoE gradient tests state the math a second time, token by token in
// float64 (refForward, refBackward), check that statement by central
// differences, and check the grouped float32 Backward against it.

func sigm(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// refExpert holds one expert's weights in float64, row-major like tensor.Mat.
type refExpert struct{ w1, w3, w2 []float64 } // [ffn, dim], [ffn, dim], [dim, ffn]

// refForward computes out [T, dim] = Σ_j w[t,j]·expert_{ids[t,j]}(h[t]) token
// by token and returns the pre-activations a = W1·h, b = W3·h of every slot
// t·topK+j, each [ffn].
func refForward(out, h []float64, T, dim, ffn int, ex []refExpert, ids []int32, w []float64, topK int) (a, b [][]float64) {
	clear(out)
	a, b = make([][]float64, T*topK), make([][]float64, T*topK)
	for t := 0; t < T; t++ {
		x := h[t*dim : (t+1)*dim]
		for j := 0; j < topK; j++ {
			k := t*topK + j
			e := &ex[ids[k]]
			a[k], b[k] = make([]float64, ffn), make([]float64, ffn)
			for f := 0; f < ffn; f++ {
				for i, v := range x {
					a[k][f] += e.w1[f*dim+i] * v
					b[k][f] += e.w3[f*dim+i] * v
				}
			}
			for i := 0; i < dim; i++ {
				var y float64
				for f := 0; f < ffn; f++ {
					y += e.w2[i*ffn+f] * silu(a[k][f]) * b[k][f]
				}
				out[t*dim+i] += w[k] * y
			}
		}
	}
	return a, b
}

// refBackward is the backward of refForward given its pre-activations a, b,
// with dh and dweights overwritten and the expert gradients accumulated.
// With abs set it computes instead, for every output, the sum of the absolute
// values of all the products that make it up (silu'(a) bounded by
// s·(1+|a|), the form the float32 error bound of SiLUMulBackward takes): the
// scale against which float32 rounding errors are measured.
func refBackward(dh, dweights []float64, grads []refExpert, dout, h []float64, T, dim, ffn int, ex []refExpert, ids []int32, w []float64, topK int, a, b [][]float64, abs bool) {
	m := func(v float64) float64 {
		if abs {
			return math.Abs(v)
		}
		return v
	}
	clear(dh)
	for t := 0; t < T; t++ {
		x, d := h[t*dim:(t+1)*dim], dout[t*dim:(t+1)*dim]
		for j := 0; j < topK; j++ {
			k := t*topK + j
			e, gr := &ex[ids[k]], &grads[ids[k]]
			g := make([]float64, ffn) // W2ᵀ·dout
			for f := range g {
				for i := 0; i < dim; i++ {
					g[f] += m(e.w2[i*ffn+f]) * m(d[i])
				}
			}
			var dw float64
			for f := range g {
				s := sigm(a[k][f])
				z := m(a[k][f]*s) * m(b[k][f])
				dw += g[f] * z
				for i := 0; i < dim; i++ {
					gr.w2[i*ffn+f] += m(w[k]) * m(d[i]) * z
				}
				dsilu := s * (1 + a[k][f]*(1-s))
				if abs {
					dsilu = s * (1 + math.Abs(a[k][f]))
				}
				da := m(w[k]) * g[f] * m(b[k][f]) * dsilu
				db := m(w[k]) * g[f] * m(a[k][f]*s)
				for i := 0; i < dim; i++ {
					gr.w1[f*dim+i] += da * m(x[i])
					gr.w3[f*dim+i] += db * m(x[i])
					dh[t*dim+i] += da*m(e.w1[f*dim+i]) + db*m(e.w3[f*dim+i])
				}
			}
			dweights[k] = dw
		}
	}
}

// moeCase is one random problem: float32 inputs and their float64 copies.
type moeCase struct {
	T, dim, ffn, E, topK int
	h, dout              []float32
	ids                  []int32
	w                    []float32
	experts              []Expert
	ref                  []refExpert
}

func newMoECase(t testing.TB, T, dim, ffn, E, topK int, seed uint64) *moeCase {
	r := rand.New(rand.NewPCG(seed, 99))
	rnd := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(scale * r.NormFloat64())
		}
		return v
	}
	c := &moeCase{T: T, dim: dim, ffn: ffn, E: E, topK: topK,
		h: rnd(T*dim, 1), dout: rnd(T*dim, 1), ids: make([]int32, T*topK), w: make([]float32, T*topK)}
	Route(rnd(T*E, 2), T, E, topK, c.ids, c.w)
	for e := 0; e < E; e++ {
		w1, w3, w2 := rnd(ffn*dim, 0.5), rnd(ffn*dim, 0.5), rnd(dim*ffn, 0.5)
		c.experts = append(c.experts, Expert{W1: f32Mat(t, ffn, dim, w1), W3: f32Mat(t, ffn, dim, w3), W2: f32Mat(t, dim, ffn, w2)})
		c.ref = append(c.ref, refExpert{wide(w1), wide(w3), wide(w2)})
	}
	return c
}

func wide(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

func zeroGrads(E, dim, ffn int) []refExpert {
	g := make([]refExpert, E)
	for e := range g {
		g[e] = refExpert{make([]float64, ffn*dim), make([]float64, ffn*dim), make([]float64, dim*ffn)}
	}
	return g
}

var moeShapes = []struct{ T, dim, ffn, E, topK int }{
	{1, 5, 3, 4, 1}, {1, 5, 3, 5, 2}, {7, 5, 3, 4, 2}, {7, 3, 5, 5, 1}, {33, 5, 7, 5, 2}, {33, 7, 3, 4, 1},
}

// TestBackwardFD checks refBackward, the statement Backward is tested
// against, by central differences of L = Σ R ⊙ refForward(…) in every input.
func TestBackwardFD(t *testing.T) {
	for si, s := range moeShapes {
		c := newMoECase(t, s.T, s.dim, s.ffn, s.E, s.topK, uint64(si))
		h, R, w := wide(c.h), wide(c.dout), wide(c.w)
		out := make([]float64, s.T*s.dim)
		loss := func() float64 {
			refForward(out, h, s.T, s.dim, s.ffn, c.ref, c.ids, w, s.topK)
			var l float64
			for i, v := range out {
				l += R[i] * v
			}
			return l
		}
		a, b := refForward(out, h, s.T, s.dim, s.ffn, c.ref, c.ids, w, s.topK)
		dh, dw, grads := make([]float64, len(h)), make([]float64, len(w)), zeroGrads(s.E, s.dim, s.ffn)
		refBackward(dh, dw, grads, R, h, s.T, s.dim, s.ffn, c.ref, c.ids, w, s.topK, a, b, false)
		name := fmt.Sprintf("T%d dim%d ffn%d E%d k%d ", s.T, s.dim, s.ffn, s.E, s.topK)
		for i := range h {
			numtest.CheckFD(t, name+"dh", i, dh[i], numtest.CentralDiff(loss, &h[i]))
		}
		for i := range w {
			numtest.CheckFD(t, name+"dweights", i, dw[i], numtest.CentralDiff(loss, &w[i]))
		}
		for e := range c.ref {
			for i := range c.ref[e].w1 {
				numtest.CheckFD(t, name+fmt.Sprintf("e%d dW1", e), i, grads[e].w1[i], numtest.CentralDiff(loss, &c.ref[e].w1[i]))
				numtest.CheckFD(t, name+fmt.Sprintf("e%d dW3", e), i, grads[e].w3[i], numtest.CentralDiff(loss, &c.ref[e].w3[i]))
			}
			for i := range c.ref[e].w2 {
				numtest.CheckFD(t, name+fmt.Sprintf("e%d dW2", e), i, grads[e].w2[i], numtest.CentralDiff(loss, &c.ref[e].w2[i]))
			}
		}
	}
}

// TestForwardTrainEqualsForward: the training forward must give the
// inference forward's output exactly.
func TestForwardTrainEqualsForward(t *testing.T) {
	shapes := append(moeShapes, struct{ T, dim, ffn, E, topK int }{33, 64, 96, 5, 2})
	for si, s := range shapes {
		c := newMoECase(t, s.T, s.dim, s.ffn, s.E, s.topK, uint64(100+si))
		want, got := make([]float32, s.T*s.dim), make([]float32, s.T*s.dim)
		Forward(want, c.h, s.T, s.dim, c.experts, c.ids, c.w, s.topK, NewScratch(s.T, s.topK, s.dim, s.ffn, s.E))
		ForwardTrain(got, c.h, s.T, s.dim, c.experts, c.ids, c.w, s.topK, NewActs(s.T+3, s.dim, s.ffn, s.E, s.topK, NewWork(s.T+3, s.dim, s.ffn, s.topK)))
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("T%d dim%d: out[%d] = %g, Forward gives %g", s.T, s.dim, i, got[i], want[i])
			}
		}
	}
}

// TestBackward runs the grouped float32 Backward against refBackward on the
// same float32 inputs and the float32 pre-activations ForwardTrain kept.
func TestBackward(t *testing.T) {
	const eps32 = 1.0 / (1 << 24)
	// the last shape is large enough for the packed Sgemm paths
	shapes := append(moeShapes, struct{ T, dim, ffn, E, topK int }{33, 64, 96, 5, 2})
	for si, s := range shapes {
		c := newMoECase(t, s.T, s.dim, s.ffn, s.E, s.topK, uint64(200+si))
		acts := NewActs(s.T, s.dim, s.ffn, s.E, s.topK, NewWork(s.T, s.dim, s.ffn, s.topK))
		out := make([]float32, s.T*s.dim)
		ForwardTrain(out, c.h, s.T, s.dim, c.experts, c.ids, c.w, s.topK, acts)

		// Gradients start from random values: Backward must add to them.
		r := rand.New(rand.NewPCG(uint64(si), 5))
		grads, init := make([]ExpertGrad, s.E), zeroGrads(s.E, s.dim, s.ffn)
		for e := range grads {
			grads[e] = ExpertGrad{make([]float32, s.ffn*s.dim), make([]float32, s.ffn*s.dim), make([]float32, s.dim*s.ffn)}
			for _, p := range [][2]any{{grads[e].W1, init[e].w1}, {grads[e].W3, init[e].w3}, {grads[e].W2, init[e].w2}} {
				g32, g64 := p[0].([]float32), p[1].([]float64)
				for i := range g32 {
					g32[i] = float32(r.NormFloat64())
					g64[i] = float64(g32[i])
				}
			}
		}
		dh, dw := make([]float32, s.T*s.dim), make([]float32, s.T*s.topK)
		for i := range dh { // overwritten, not accumulated
			dh[i] = float32(math.NaN())
		}
		Backward(dh, dw, grads, c.dout, c.h, s.T, s.dim, c.experts, c.ids, c.w, s.topK, acts)

		// The reference takes the float32 pre-activations of each slot.
		a, b := make([][]float64, s.T*s.topK), make([][]float64, s.T*s.topK)
		for i, k := range acts.slot[:s.T*s.topK] {
			a[k] = wide(acts.gate[i*s.ffn : (i+1)*s.ffn])
			b[k] = wide(acts.up[i*s.ffn : (i+1)*s.ffn])
		}
		run := func(abs bool, grads []refExpert) ([]float64, []float64) {
			dh, dw := make([]float64, len(dh)), make([]float64, len(dw))
			refBackward(dh, dw, grads, wide(c.dout), wide(c.h), s.T, s.dim, s.ffn, c.ref, c.ids, wide(c.w), s.topK, a, b, abs)
			return dh, dw
		}
		magGrads := zeroGrads(s.E, s.dim, s.ffn)
		for e := range magGrads { // the start values count in the magnitude of the accumulated sums
			for _, p := range [][2][]float64{{magGrads[e].w1, init[e].w1}, {magGrads[e].w3, init[e].w3}, {magGrads[e].w2, init[e].w2}} {
				for i, v := range p[1] {
					p[0][i] = math.Abs(v)
				}
			}
		}
		wantDh, wantDw := run(false, init)
		magDh, magDw := run(true, magGrads)

		// Each output is made of float32 reductions in sequence: dout·W2
		// (dim terms), the SiLUMul backward (16ε, kernels' bound), then a
		// reduction over ffn (dweights, dh), over the expert's rows
		// (dW1, dW3, dW2: at most T) or two over ffn (dh, plus topK
		// adds). Each reduction of n terms errs by at most (n+1)·ε times
		// the sum of its terms' magnitudes (the abs run), so
		// 2·(dim + 2·ffn + T + 32)·ε·magnitude bounds them all (×2 as
		// in numtest.DotTol), plus one rounding of an accumulated value.
		tol := func(mag, want float64) float64 {
			return 2*float64(s.dim+2*s.ffn+s.T+32)*eps32*mag + eps32*math.Abs(want)
		}
		name := fmt.Sprintf("T%d dim%d ffn%d E%d k%d", s.T, s.dim, s.ffn, s.E, s.topK)
		check := func(what string, got []float32, want, mag []float64) {
			t.Helper()
			for i := range got {
				if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol(mag[i], want[i])) {
					t.Errorf("%s %s[%d] = %g, want %g (tol %g)", name, what, i, got[i], want[i], tol(mag[i], want[i]))
					return
				}
			}
		}
		check("dh", dh, wantDh, magDh)
		check("dweights", dw, wantDw, magDw)
		for e := range grads {
			check(fmt.Sprintf("e%d dW1", e), grads[e].W1, init[e].w1, magGrads[e].w1)
			check(fmt.Sprintf("e%d dW3", e), grads[e].W3, init[e].w3, magGrads[e].w3)
			check(fmt.Sprintf("e%d dW2", e), grads[e].W2, init[e].w2, magGrads[e].w2)
		}
	}
}

// route64 is Route in float64: probabilities [T, E], the topK ids and the
// renormalised weights [T, topK]. With keep set it reuses the given ids (the
// choice passes no gradient, so a finite difference must not re-choose).
func route64(logits []float64, T, E, topK int, ids []int32, keep bool) (p, w []float64) {
	p, w = make([]float64, T*E), make([]float64, T*topK)
	for t := 0; t < T; t++ {
		l, pt := logits[t*E:(t+1)*E], p[t*E:(t+1)*E]
		m := math.Inf(-1)
		for _, v := range l {
			m = math.Max(m, v)
		}
		var z float64
		for e, v := range l {
			pt[e] = math.Exp(v - m)
			z += pt[e]
		}
		for e := range pt {
			pt[e] /= z
		}
		id := ids[t*topK : (t+1)*topK]
		var sum float64
		for j := range id {
			if !keep {
				best := -1
				for e, v := range pt {
					if !taken(id[:j], e) && (best < 0 || v > pt[best]) {
						best = e
					}
				}
				id[j] = int32(best)
			}
			sum += pt[id[j]]
		}
		for j, e := range id {
			w[t*topK+j] = pt[e] / sum
		}
	}
	return p, w
}

var routeShapes = []struct{ T, E, topK int }{{1, 4, 1}, {1, 5, 2}, {7, 4, 2}, {7, 5, 1}, {33, 5, 2}, {33, 4, 1}}

// TestRouteBackwardFD differentiates L = Σ R ⊙ weights through the softmax
// and the renormalisation. Kept and dropped experts are checked apart: a
// kept logit moves its own weight and the others' through the shared sum, a
// dropped one changes every probability but, after renormalisation, no
// weight, so its gradient is exactly zero.
func TestRouteBackwardFD(t *testing.T) {
	for si, s := range routeShapes {
		r := rand.New(rand.NewPCG(uint64(si), 3))
		logits, R := make([]float64, s.T*s.E), make([]float64, s.T*s.topK)
		for i := range logits {
			logits[i] = 2 * r.NormFloat64()
		}
		for i := range R {
			R[i] = r.NormFloat64()
		}
		ids := make([]int32, s.T*s.topK)
		_, w := route64(logits, s.T, s.E, s.topK, ids, false)
		loss := func() float64 {
			_, w := route64(logits, s.T, s.E, s.topK, ids, true)
			var l float64
			for i, v := range w {
				l += R[i] * v
			}
			return l
		}
		dl := make([]float64, len(logits))
		routeBackward(dl, s.T, s.E, s.topK, ids, w, R)
		name := fmt.Sprintf("T%d E%d k%d", s.T, s.E, s.topK)
		var kept, dropped int
		for tok := 0; tok < s.T; tok++ {
			for e := 0; e < s.E; e++ {
				i := tok*s.E + e
				fd := numtest.CentralDiff(loss, &logits[i])
				if taken(ids[tok*s.topK:(tok+1)*s.topK], e) {
					kept++
					numtest.CheckFD(t, name+" kept dlogits", i, dl[i], fd)
				} else {
					dropped++
					if dl[i] != 0 || math.Abs(fd) > numtest.FDTol {
						t.Errorf("%s dropped dlogits[%d] = %g, finite difference %g, want 0", name, i, dl[i], fd)
					}
				}
			}
		}
		if kept != s.topK*s.T || dropped != s.T*(s.E-s.topK) {
			t.Fatalf("%s: %d kept, %d dropped logits", name, kept, dropped)
		}
	}
}

// TestRouteBackward runs the float32 path against the float64 twin on the
// same float32 inputs.
func TestRouteBackward(t *testing.T) {
	const eps32 = 1.0 / (1 << 24)
	for si, s := range routeShapes {
		r := rand.New(rand.NewPCG(uint64(si), 4))
		logits, dw := make([]float32, s.T*s.E), make([]float32, s.T*s.topK)
		for i := range logits {
			logits[i] = float32(2 * r.NormFloat64())
		}
		for i := range dw {
			dw[i] = float32(r.NormFloat64())
		}
		ids, w := make([]int32, s.T*s.topK), make([]float32, s.T*s.topK)
		Route(logits, s.T, s.E, s.topK, ids, w)
		got, want := make([]float32, s.T*s.E), make([]float64, s.T*s.E)
		for i := range got {
			got[i] = float32(math.NaN()) // overwritten, not accumulated
		}
		RouteBackward(got, s.T, s.E, s.topK, ids, w, dw)
		routeBackward(want, s.T, s.E, s.topK, ids, wide(w), wide(dw))
		for i := range got {
			// Both sides compute w·(dw − Σ w·dw) in float64 from the same
			// float32 values; the float32 path rounds the result once.
			if d := math.Abs(float64(got[i]) - want[i]); d > eps32*math.Abs(want[i]) {
				t.Errorf("T%d E%d k%d dlogits[%d] = %g, want %g", s.T, s.E, s.topK, i, got[i], want[i])
			}
		}
	}
}

// TestLoadBalancingLossWorked checks the official loss on a case worked by
// hand: 2 layers × 2 tokens, E = 4, topK = 2, so N = 4 tokens.
//
//	layer 0: t0 p = [.4 .3 .2 .1] picks {0,1};  t1 p = [.5 .1 .15 .25] picks {0,3}
//	layer 1: t0 p = [.1 .6 .2 .1] picks {1,2};  t1 p = [.35 .05 .2 .4] picks {3,0}
//	counts = [3 2 1 2]            f = counts/4 = [.75 .5 .25 .5]
//	Σp     = [1.35 1.05 .75 .85]  P = Σp/4     = [.3375 .2625 .1875 .2125]
//	Σ f·P  = .253125 + .13125 + .046875 + .10625 = .5375
//	loss   = E·Σ f·P = 4 · .5375 = 2.15
//	dprob  = E·f/N = [.75 .5 .25 .5]
func TestLoadBalancingLossWorked(t *testing.T) {
	probs := [][]float32{{.4, .3, .2, .1, .5, .1, .15, .25}, {.1, .6, .2, .1, .35, .05, .2, .4}}
	ids := [][]int32{{0, 1, 0, 3}, {1, 2, 3, 0}}
	dprob := make([]float64, 4)
	loss := LoadBalancingLoss(dprob, probs, ids, 2, 4, 2)
	// The float32 probabilities differ from the decimals by ½ ulp each
	// (≤ 3e-8), so the loss by at most E·Σ f·|δP| ≤ 4·1.75·3e-8.
	if math.Abs(loss-2.15) > 4*1.75*3e-8 {
		t.Errorf("loss %.9f, want 2.15", loss)
	}
	for e, want := range []float64{.75, .5, .25, .5} {
		if dprob[e] != want {
			t.Errorf("dprob[%d] = %g, want %g", e, dprob[e], want)
		}
	}
}

// TestLoadBalancingGradFD differentiates the official loss, as a function of
// every layer's router logits with the top-k choice held (it passes no
// gradient), by central differences.
func TestLoadBalancingGradFD(t *testing.T) {
	const layers = 3
	for si, s := range routeShapes {
		r := rand.New(rand.NewPCG(uint64(si), 6))
		logits := make([][]float64, layers)
		ids := make([][]int32, layers)
		for l := range logits {
			logits[l] = make([]float64, s.T*s.E)
			for i := range logits[l] {
				logits[l][i] = 2 * r.NormFloat64()
			}
			ids[l] = make([]int32, s.T*s.topK)
			route64(logits[l], s.T, s.E, s.topK, ids[l], false)
		}
		dprob := make([]float64, s.E)
		loss := func() float64 {
			probs := make([][]float64, layers)
			for l := range probs {
				probs[l], _ = route64(logits[l], s.T, s.E, s.topK, ids[l], true)
			}
			return loadBalancingLoss(dprob, probs, ids, s.T, s.E, s.topK)
		}
		loss()
		const coef = 0.37 // the gradient is scaled by coef
		name := fmt.Sprintf("T%d E%d k%d", s.T, s.E, s.topK)
		for l := range logits {
			probs, _ := route64(logits[l], s.T, s.E, s.topK, ids[l], true)
			dl := make([]float64, s.T*s.E)
			for i := range dl {
				dl[i] = 1 // added to, not overwritten
			}
			addLoadBalancingGrad(dl, coef, probs, dprob, s.T, s.E)
			for i := range dl {
				numtest.CheckFD(t, fmt.Sprintf("%s layer %d dlogits", name, l), i, (dl[i]-1)/coef, numtest.CentralDiff(loss, &logits[l][i]))
			}
		}
	}
}

// TestLoadBalancing32 runs the float32 entry points against the float64
// twins on the same float32 probabilities.
func TestLoadBalancing32(t *testing.T) {
	const eps32 = 1.0 / (1 << 24)
	const layers, T, E, topK = 2, 33, 5, 2
	r := rand.New(rand.NewPCG(1, 2))
	probs, ids := make([][]float32, layers), make([][]int32, layers)
	w := make([]float32, T*topK)
	for l := range probs {
		probs[l] = make([]float32, T*E)
		for i := range probs[l] {
			probs[l][i] = float32(2 * r.NormFloat64())
		}
		ids[l] = make([]int32, T*topK)
		Route(probs[l], T, E, topK, ids[l], w)
	}
	dprob, dprob64 := make([]float64, E), make([]float64, E)
	probs64 := [][]float64{wide(probs[0]), wide(probs[1])}
	loss := LoadBalancingLoss(dprob, probs, ids, T, E, topK)
	// The same float64 sums of the same values, in the same order.
	if want := loadBalancingLoss(dprob64, probs64, ids, T, E, topK); loss != want {
		t.Errorf("loss %g, float64 twin %g", loss, want)
	}
	got, want := make([]float32, T*E), make([]float64, T*E)
	const coef = float32(0.01)
	AddLoadBalancingGrad(got, coef, probs[0], dprob, T, E)
	addLoadBalancingGrad(want, float64(coef), probs64[0], dprob64, T, E)
	for i := range got {
		// p·(dprob − c) in float64, then rounded to float32 and
		// multiplied by the same coefficient: 2 roundings.
		if d := math.Abs(float64(got[i]) - want[i]); d > 2*eps32*math.Abs(want[i]) {
			t.Errorf("dlogits[%d] = %g, want %g", i, got[i], want[i])
		}
	}
}

// BenchmarkTrainStep times ForwardTrain and Backward of one MoE layer on a
// small training shape (T 256, dim 256, ffn 512, 4 experts, top-2) and on
// m300's (T 512, dim 1024, ffn 1024, 8 experts, top-2).
func BenchmarkTrainStep(b *testing.B) {
	for _, s := range []struct {
		name                 string
		T, dim, ffn, E, topK int
	}{{"small", 256, 256, 512, 4, 2}, {"m300", 512, 1024, 1024, 8, 2}} {
		c := newMoECase(b, s.T, s.dim, s.ffn, s.E, s.topK, 1)
		acts := NewActs(s.T, s.dim, s.ffn, s.E, s.topK, NewWork(s.T, s.dim, s.ffn, s.topK))
		out, dh, dw := make([]float32, s.T*s.dim), make([]float32, s.T*s.dim), make([]float32, s.T*s.topK)
		grads := make([]ExpertGrad, s.E)
		for e := range grads {
			grads[e] = ExpertGrad{make([]float32, s.ffn*s.dim), make([]float32, s.ffn*s.dim), make([]float32, s.dim*s.ffn)}
		}
		b.Run(s.name+"/forward", func(b *testing.B) {
			for b.Loop() {
				ForwardTrain(out, c.h, s.T, s.dim, c.experts, c.ids, c.w, s.topK, acts)
			}
		})
		b.Run(s.name+"/backward", func(b *testing.B) {
			for b.Loop() {
				Backward(dh, dw, grads, c.dout, c.h, s.T, s.dim, c.experts, c.ids, c.w, s.topK, acts)
			}
		})
	}
}

// TestTrainThreads: ForwardTrain and Backward give the same bits whatever
// the thread count (the experts run in parallel, their sums into out and dh
// are made afterwards in expert order).
func TestTrainThreads(t *testing.T) {
	defer kernels.SetThreads(kernels.Threads())
	const T, dim, ffn, E, topK = 70, 64, 96, 5, 2
	c := newMoECase(t, T, dim, ffn, E, topK, 300)
	type result struct{ out, dh, dw, g []float32 }
	run := func(threads int) result {
		kernels.SetThreads(threads)
		acts := NewActs(T, dim, ffn, E, topK, NewWork(T, dim, ffn, topK))
		r := result{make([]float32, T*dim), make([]float32, T*dim), make([]float32, T*topK), make([]float32, E*3*ffn*dim)}
		ForwardTrain(r.out, c.h, T, dim, c.experts, c.ids, c.w, topK, acts)
		grads := make([]ExpertGrad, E)
		for e := range grads {
			g := r.g[e*3*ffn*dim:]
			grads[e] = ExpertGrad{g[:ffn*dim], g[ffn*dim : 2*ffn*dim], g[2*ffn*dim : 3*ffn*dim]}
		}
		Backward(r.dh, r.dw, grads, c.dout, c.h, T, dim, c.experts, c.ids, c.w, topK, acts)
		return r
	}
	want := run(1)
	for _, threads := range []int{2, 3, 8} {
		got := run(threads)
		for _, p := range []struct {
			what      string
			got, want []float32
		}{{"out", got.out, want.out}, {"dh", got.dh, want.dh}, {"dweights", got.dw, want.dw}, {"expert grads", got.g, want.g}} {
			for i := range p.want {
				if math.Float32bits(p.got[i]) != math.Float32bits(p.want[i]) {
					t.Fatalf("%d threads: %s[%d] = %g, one thread gives %g", threads, p.what, i, p.got[i], p.want[i])
				}
			}
		}
	}
}
