package moe

import (
	"sync/atomic"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/tensor"
)

// Training: a forward that keeps its activations, the backward of the experts
// and of the router, and the official auxiliary load-balancing loss.

// ExpertGrad holds the gradients of one expert, in the [rows, cols] layout of
// its fp32 weights (views into the gradient slab).
type ExpertGrad struct {
	W1 []float32 // [ffn, dim]
	W3 []float32 // [ffn, dim]
	W2 []float32 // [dim, ffn]
}

// Acts holds what Backward needs from ForwardTrain (the gate and up
// pre-activations of every routed row, grouped by expert), sized once for up
// to maxT tokens, and the Work buffers it runs in.
type Acts struct {
	slot  []int32   // [maxT·topK] the routing slot t·topK+j of each routed row, grouped by expert in ascending id
	start []int     // [E+1] expert e owns rows start[e] ≤ i < start[e+1]
	order []int     // [E] the experts with rows, most rows first (ties by id): the order workers take them in
	gate  []float32 // [maxT·topK, ffn] x·W1ᵀ of each routed row
	up    []float32 // [maxT·topK, ffn] x·W3ᵀ
	work  *Work
}

// Work holds the per-routed-row buffers of ForwardTrain and Backward. Every
// expert uses the rows it owns, so the experts of a layer run in parallel
// without sharing a buffer; layers run one after another, so the Acts of
// all layers of a model can share one Work.
type Work struct {
	x   []float32 // [maxT·topK, dim] gathered inputs
	d   []float32 // [maxT·topK, dim] outputs (forward); gathered dout, then dx (backward)
	hid []float32 // [maxT·topK, ffn] silu(gate) ⊙ up
	g   []float32 // [maxT·topK, ffn] backward: dout·W2, then the gate gradient
}

// NewWork sizes the buffers for maxT tokens routed to topK experts each.
func NewWork(maxT, dim, ffn, topK int) *Work {
	rows := maxT * topK
	return &Work{
		x: make([]float32, rows*dim), d: make([]float32, rows*dim),
		hid: make([]float32, rows*ffn), g: make([]float32, rows*ffn),
	}
}

// Bytes is the memory the buffers hold.
func (w *Work) Bytes() int64 { return int64(len(w.x)+len(w.d)+len(w.hid)+len(w.g)) * 4 }

// NewActs sizes the activations for maxT tokens routed to topK of the given
// number of experts; w (from NewWork with the same maxT, dim, ffn and topK)
// may be shared with the Acts of other layers.
func NewActs(maxT, dim, ffn, experts, topK int, w *Work) *Acts {
	rows := maxT * topK
	if len(w.x) < rows*dim || len(w.hid) < rows*ffn {
		panic("moe: NewActs given a Work smaller than its shape")
	}
	return &Acts{
		slot: make([]int32, rows), start: make([]int, experts+1), order: make([]int, 0, experts),
		gate: make([]float32, rows*ffn), up: make([]float32, rows*ffn), work: w,
	}
}

// Bytes is the memory the activations hold, without their Work.
func (a *Acts) Bytes() int64 {
	f := len(a.slot) + len(a.gate) + len(a.up)
	return int64(f)*4 + int64(len(a.start)+cap(a.order))*8
}

// group fills a.slot and a.start: the routed rows of every expert in
// ascending expert id, each expert's rows in ascending token order (the
// order Forward visits them); and a.order.
func (a *Acts) group(T, E, topK int, ids []int32) {
	clear(a.start)
	for _, e := range ids[:T*topK] {
		a.start[e+1]++
	}
	for e := 0; e < E; e++ {
		a.start[e+1] += a.start[e]
	}
	next := a.start[:E]
	for k, e := range ids[:T*topK] {
		a.slot[next[e]] = int32(k)
		next[e]++
	}
	for e := E; e > 0; e-- { // next advanced each start to the following one
		a.start[e] = a.start[e-1]
	}
	a.start[0] = 0
	a.order = a.order[:0]
	for e := 0; e < E; e++ {
		if a.start[e+1] > a.start[e] {
			a.order = append(a.order, e)
		}
	}
	rows := func(e int) int { return a.start[e+1] - a.start[e] }
	for i := 1; i < len(a.order); i++ { // insertion sort: E is small
		for j := i; j > 0 && rows(a.order[j]) > rows(a.order[j-1]); j-- {
			a.order[j], a.order[j-1] = a.order[j-1], a.order[j]
		}
	}
}

// eachExpert calls fn for every expert with rows, spread over the kernel
// pool: each worker takes the next expert of a.order (most rows first) until
// none is left. fn must touch only what belongs to its expert.
func (a *Acts) eachExpert(fn func(e int)) {
	var next atomic.Int32
	kernels.ParallelFor(min(kernels.Threads(), len(a.order)), 1, func(int, int) {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(a.order) {
				return
			}
			fn(a.order[i])
		}
	})
}

// gather copies the rows of src [T, dim] named by slots (token = slot/topK)
// into dst [len(slots), dim].
func gather(dst, src []float32, dim, topK int, slots []int32) {
	for i, k := range slots {
		t := int(k) / topK
		copy(dst[i*dim:(i+1)*dim], src[t*dim:(t+1)*dim])
	}
}

// ForwardTrain computes the same out [T, dim] as Forward, bit for bit, and
// keeps the gate and up pre-activations of every routed row in acts for
// Backward. out is overwritten. The experts run one after another in
// ascending id, each product split across the kernel pool by tensor.MatMul
// as in Forward (running whole experts on separate workers measured no
// faster), and their outputs are added into out in Forward's order.
func ForwardTrain(out, h []float32, T, dim int, experts []Expert, ids []int32, weights []float32, topK int, acts *Acts) {
	clear(out[:T*dim])
	acts.group(T, len(experts), topK, ids)
	w := acts.work
	for e := range experts {
		lo, hi := acts.start[e], acts.start[e+1]
		n := hi - lo
		if n == 0 {
			continue
		}
		ex := &experts[e]
		ffn := ex.W1.Rows
		x, d, hid := w.x[lo*dim:hi*dim], w.d[lo*dim:hi*dim], w.hid[lo*ffn:hi*ffn]
		gate, up := acts.gate[lo*ffn:hi*ffn], acts.up[lo*ffn:hi*ffn]
		gather(x, h, dim, topK, acts.slot[lo:hi])
		tensor.MatMul(gate, x, n, ex.W1)
		tensor.MatMul(up, x, n, ex.W3)
		kernels.SiLUMul(hid, gate, up)
		tensor.MatMul(d, hid, n, ex.W2)
	}
	for i, k := range acts.slot[:T*topK] {
		t := int(k) / topK
		kernels.Axpy(out[t*dim:(t+1)*dim], weights[k], w.d[i*dim:(i+1)*dim])
	}
}

// Backward is the backward of ForwardTrain, called with the same arguments
// and the acts it filled. For the rows x routed to expert e with weight w,
// y = w·W2·(silu(W1·x) ⊙ W3·x), so with g = W2ᵀ·dout and z = silu(W1·x) ⊙ W3·x:
//
//	dweight = g·z          dW2 += w·dout ⊗ z
//	(da, db) = SiLUMulBackward(w·g, W1·x, W3·x)
//	dW1 += da ⊗ x          dW3 += db ⊗ x          dx = W1ᵀ·da + W3ᵀ·db
//
//	dh:       [T, dim] overwritten
//	dweights: [T, topK] overwritten: d loss / d renormalised weight
//	grads:    [E] accumulated (experts with no rows are not touched)
//	dout:     [T, dim] d loss / d out
//
// The experts must be F32 matrices. They run in parallel on the kernel pool,
// each expert's products on one worker (kernels.Sgemm), and the rows' dx
// are added into dh afterwards in ascending expert id, so the result does
// not depend on the thread count. The rows are grouped again from ids,
// exactly as ForwardTrain grouped them, so acts only has to carry the
// pre-activations.
func Backward(dh, dweights []float32, grads []ExpertGrad, dout, h []float32, T, dim int, experts []Expert, ids []int32, weights []float32, topK int, acts *Acts) {
	clear(dh[:T*dim])
	acts.group(T, len(experts), topK, ids)
	wk := acts.work
	acts.eachExpert(func(e int) {
		lo, hi := acts.start[e], acts.start[e+1]
		n := hi - lo
		ex, gr := &experts[e], &grads[e]
		ffn := ex.W1.Rows
		w1, w3, w2 := ex.W1.F32(), ex.W3.F32(), ex.W2.F32()
		slots := acts.slot[lo:hi]
		a, b := acts.gate[lo*ffn:hi*ffn], acts.up[lo*ffn:hi*ffn]
		x, d, z, g := wk.x[lo*dim:hi*dim], wk.d[lo*dim:hi*dim], wk.hid[lo*ffn:hi*ffn], wk.g[lo*ffn:hi*ffn]

		gather(x, h, dim, topK, slots)
		gather(d, dout, dim, topK, slots)
		kernels.SiLUMul(z, a, b)
		// g [n, ffn] = d [n, dim] · W2 [dim, ffn]
		kernels.Sgemm(false, false, n, ffn, dim, d, dim, w2, ffn, g, ffn, false)
		for i, k := range slots {
			w := weights[k]
			dweights[k] = kernels.Dot(g[i*ffn:(i+1)*ffn], z[i*ffn:(i+1)*ffn])
			kernels.Scale(d[i*dim:(i+1)*dim], w)
			kernels.Scale(g[i*ffn:(i+1)*ffn], w)
		}
		// dW2 [dim, ffn] += (w·d)ᵀ [dim, n] · z [n, ffn]
		kernels.Sgemm(true, false, dim, ffn, n, d, dim, z, ffn, gr.W2, ffn, true)
		// da into g, db into z (z is no longer needed).
		kernels.SiLUMulBackward(g, z, g, a, b)
		// dW1 [ffn, dim] += daᵀ [ffn, n] · x [n, dim]; likewise dW3 with db.
		kernels.Sgemm(true, false, ffn, dim, n, g, ffn, x, dim, gr.W1, dim, true)
		kernels.Sgemm(true, false, ffn, dim, n, z, ffn, x, dim, gr.W3, dim, true)
		// dx [n, dim] = da · W1 + db · W3, into d.
		kernels.Sgemm(false, false, n, dim, ffn, g, ffn, w1, dim, d, dim, false)
		kernels.Sgemm(false, false, n, dim, ffn, z, ffn, w3, dim, d, dim, true)
	})
	for i, k := range acts.slot[:T*topK] {
		t := int(k) / topK
		kernels.Axpy(dh[t*dim:(t+1)*dim], 1, wk.d[i*dim:(i+1)*dim])
	}
}

// RouteBackward is the backward of Route through the renormalisation and the
// softmax; the top-k choice passes no gradient. A kept weight is
// w_j = p_j / Σ_kept p = exp(l_j) / Σ_kept exp(l), which does not depend on
// the dropped logits, so
//
//	dlogits[t, ids[t,m]] = w_m · (dweights_m − Σ_j w_j·dweights_j)
//	dlogits[t, e]        = 0 for every expert e not in ids[t]
//
// dlogits [T, E] is overwritten; ids, weights and dweights are [T, topK] (the
// auxiliary loss, which sees every probability, adds its own gradient with
// AddLoadBalancingGrad).
func RouteBackward(dlogits []float32, T, E, topK int, ids []int32, weights, dweights []float32) {
	routeBackward(dlogits, T, E, topK, ids, weights, dweights)
}

func routeBackward[F float32 | float64](dlogits []F, T, E, topK int, ids []int32, weights, dweights []F) {
	clear(dlogits[:T*E])
	for t := 0; t < T; t++ {
		w, dw := weights[t*topK:(t+1)*topK], dweights[t*topK:(t+1)*topK]
		var c float64
		for j := range w {
			c += float64(w[j]) * float64(dw[j])
		}
		for j, e := range ids[t*topK : (t+1)*topK] {
			dlogits[t*E+int(e)] = F(float64(w[j]) * (float64(dw[j]) - c))
		}
	}
}

// LoadBalancingLoss returns the official auxiliary loss (transformers'
// load_balancing_loss_func, which MiniMax-01's code copies) over the router
// probabilities of every layer: with N = layers·T tokens,
//
//	loss = E · Σ_e f_e · P_e,  f_e = #{tokens whose top-k holds e} / N,
//	                           P_e = Σ_tokens p[·, e] / N
//
// f passes no gradient, so ∂loss/∂p[n, e] = E·f_e/N for every token n of
// every layer; dprob [E] is overwritten with it (AddLoadBalancingGrad takes
// it through each layer's softmax).
//
//	probs: per layer, [T, E] softmax probabilities (what Route leaves in logits)
//	ids:   per layer, [T, topK] the chosen experts (the official code's own
//	       top-k of the same probabilities)
func LoadBalancingLoss(dprob []float64, probs [][]float32, ids [][]int32, T, E, topK int) float64 {
	return loadBalancingLoss(dprob, probs, ids, T, E, topK)
}

func loadBalancingLoss[F float32 | float64](dprob []float64, probs [][]F, ids [][]int32, T, E, topK int) float64 {
	dprob = dprob[:E]
	clear(dprob)
	count := dprob // token counts first, then scaled in place
	psum := make([]float64, E)
	for l := range probs {
		for _, e := range ids[l][:T*topK] {
			count[e]++
		}
		for t := 0; t < T; t++ {
			for e, p := range probs[l][t*E : (t+1)*E] {
				psum[e] += float64(p)
			}
		}
	}
	n := float64(len(probs) * T)
	var loss float64
	for e := range dprob {
		f := count[e] / n
		loss += f * psum[e] / n
		dprob[e] = float64(E) * f / n
	}
	return float64(E) * loss
}

// AddLoadBalancingGrad adds coef · ∂loss/∂logits of one layer into dlogits
// [T, E]: the softmax backward of the constant dprob from LoadBalancingLoss,
//
//	dlogits[t, i] += coef · p_i · (dprob_i − Σ_e p_e·dprob_e)
//
// with probs [T, E] that layer's router probabilities.
func AddLoadBalancingGrad(dlogits []float32, coef float32, probs []float32, dprob []float64, T, E int) {
	addLoadBalancingGrad(dlogits, coef, probs, dprob, T, E)
}

func addLoadBalancingGrad[F float32 | float64](dlogits []F, coef F, probs []F, dprob []float64, T, E int) {
	dprob = dprob[:E]
	for t := 0; t < T; t++ {
		p, dl := probs[t*E:(t+1)*E], dlogits[t*E:(t+1)*E]
		var c float64
		for e, v := range p {
			c += float64(v) * dprob[e]
		}
		for e, v := range p {
			dl[e] += coef * F(float64(v)*(dprob[e]-c))
		}
	}
}
