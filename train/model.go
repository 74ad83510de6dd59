package train

import (
	"fmt"
	"time"

	"github.com/lightninglm/lightning/attention"
	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/moe"
)

// Glossary (as in model/minimax01): T = tokens of the packed batch, dim =
// hidden size, hd = heads·headDim, kvd = kvHeads·headDim, d = headDim,
// E = experts, l = layer; a document is a run [start, end) of the batch's
// rows.

// Batch is one packed sequence: several documents back to back. At each
// document start the lightning state restarts from zero, softmax attention
// does not look back across it, RoPE positions restart at 0, and the
// previous token's prediction (which would cross it) gets no loss.
type Batch struct {
	Tokens    []int32
	DocStarts []int // first row of each document, ascending; the first is 0
}

// Loss is the objective of one batch and its parts.
type Loss struct {
	CE          float64 // mean cross-entropy over Predictions
	Aux         float64 // the router's load-balancing loss over all layers and tokens
	Total       float64 // CE + RouterAuxCoef·Aux, what the gradient is of
	Predictions int     // next-token predictions inside documents
}

// Model is a MiniMax-01 model being trained: fp32 parameters and gradients
// in slabs laid out by minimax01.ParamTable, and the activations a forward
// keeps for the backward, sized once for batches of up to maxT tokens.
type Model struct {
	Config  *minimax01.Config
	Weights *minimax01.Weights // views into Params
	Params  []float32          // parameters, ParamTable layout
	Grads   []float32          // gradients, same layout; ForwardBackward adds into it
	// Timings accumulates the wall time of ForwardBackward's parts: the
	// layers forward, the LM head with the cross-entropy (forward and
	// backward fused, chunk by chunk) and the layers backward. The caller
	// reads and resets it.
	Timings struct{ Forward, Head, Backward time.Duration }

	p      modelParams // Params as float32 views by role
	g      modelParams // Grads likewise
	slopes [][]float32 // [layers] → [heads] lightning decay rates (nil for softmax layers)
	rope   *attention.RoPE
	cos    []float32 // [maxT, ropeDim/2] RoPE tables for positions 0..maxT-1
	sin    []float32
	maxT   int
	acts   *activations
	grad   *gradBuffers
	pools  workerPools
}

// modelParams are the parameter (or gradient) tensors as fp32 views into a
// slab; the attention fields of the other layer kind are nil.
type modelParams struct {
	embed  []float32 // [vocab, dim]
	lmHead []float32 // [vocab, dim]; the embedding's slice when tied
	norm   []float32 // [dim]
	layers []layerParams
}

type layerParams struct {
	inputNorm, postNorm []float32 // [dim]
	qkv                 []float32 // [3·hd, dim], head-major [q|k|v]
	gate                []float32 // [hd, dim]
	attnNorm            []float32 // [hd]
	out                 []float32 // [dim, hd]
	q                   []float32 // [hd, dim]
	k, v                []float32 // [kvd, dim]
	o                   []float32 // [dim, hd]
	router              []float32 // [E, dim]
	experts             []moe.ExpertGrad
}

// bindParams cuts a slab into the tensors of the parameter table.
func bindParams(c *minimax01.Config, slab []float32) modelParams {
	mp := modelParams{layers: make([]layerParams, c.Layers)}
	for l := range mp.layers {
		mp.layers[l].experts = make([]moe.ExpertGrad, c.Experts)
	}
	for _, p := range minimax01.ParamTable(c) {
		s := slab[p.Offset : p.Offset+p.Size : p.Offset+p.Size]
		var lp *layerParams
		if p.Layer >= 0 {
			lp = &mp.layers[p.Layer]
		}
		switch p.Role {
		case minimax01.RoleEmbed:
			mp.embed = s
		case minimax01.RoleLMHead:
			mp.lmHead = s
		case minimax01.RoleFinalNorm:
			mp.norm = s
		case minimax01.RoleInputNorm:
			lp.inputNorm = s
		case minimax01.RolePostNorm:
			lp.postNorm = s
		case minimax01.RoleQKV:
			lp.qkv = s
		case minimax01.RoleGate:
			lp.gate = s
		case minimax01.RoleAttnNorm:
			lp.attnNorm = s
		case minimax01.RoleOut:
			lp.out = s
		case minimax01.RoleQ:
			lp.q = s
		case minimax01.RoleK:
			lp.k = s
		case minimax01.RoleV:
			lp.v = s
		case minimax01.RoleO:
			lp.o = s
		case minimax01.RoleRouter:
			lp.router = s
		case minimax01.RoleW1:
			lp.experts[p.Expert].W1 = s
		case minimax01.RoleW3:
			lp.experts[p.Expert].W3 = s
		case minimax01.RoleW2:
			lp.experts[p.Expert].W2 = s
		default:
			panic(fmt.Sprintf("train: parameter %s has role %v, which the training model does not know", p.Name, p.Role))
		}
	}
	if c.TieEmbeddings {
		mp.lmHead = mp.embed
	}
	return mp
}

// activations is what the forward keeps for the backward (llm.c's
// ActivationTensors), per layer, for up to maxT rows.
type activations struct {
	layers []layerActs
	xOut   []float32 // [maxT, dim] residual stream after the last layer
	xn     []float32 // [maxT, dim] final norm of it, the LM head's input
}

// layerActs are one layer's kept activations. Lightning layers use qkvPre …
// y and kept; softmax layers q … lse.
type layerActs struct {
	x  []float32 // [maxT, dim] residual stream entering the layer
	h1 []float32 // [maxT, dim] input_layernorm(x)

	qkvPre []float32 // [maxT, 3·hd] qkv_proj(h1)
	qkv    []float32 // [maxT, 3·hd] silu(qkvPre): per head q|k|v
	kept   []float32 // per (document, head) block-start states, grown per batch
	core   []float32 // [maxT, hd] lightning attention output
	normed []float32 // [maxT, hd] RMSNorm(core) with eps 1e-6
	gate   []float32 // [maxT, hd] sigmoid(output_gate(h1))
	y      []float32 // [maxT, hd] normed ⊙ gate, out_proj's input

	q   []float32 // [maxT, hd] q_proj(h1) after RoPE
	k   []float32 // [maxT, kvd] k_proj(h1) after RoPE
	v   []float32 // [maxT, kvd]
	o   []float32 // [maxT, hd] attention output, o_proj's input
	lse []float32 // [maxT, heads] log-sum-exp of each row's scores

	x1    []float32 // [maxT, dim] stream after the attention residual
	h2    []float32 // [maxT, dim] post_attention_layernorm(x1)
	probs []float32 // [maxT, E] router softmax
	ids   []int32   // [maxT, topK] chosen experts
	wts   []float32 // [maxT, topK] their renormalised weights
	moe   *moe.Acts
}

// gradBuffers are the backward's work buffers, shared by all layers.
type gradBuffers struct {
	dx      []float32 // [maxT, dim] ∂L/∂ residual stream
	dRes    []float32 // [maxT, dim] residual path of a sub-layer
	dBranch []float32 // [maxT, dim] ∂L/∂ sub-layer output
	dh      []float32 // [maxT, dim] ∂L/∂ normalised input of a sub-layer
	dNorm   []float32 // [maxT, dim] RMSNorm backward output
	dqkv    []float32 // [maxT, 3·hd] lightning: ∂L/∂qkv, then ∂L/∂qkvPre; softmax: dq
	dk, dv  []float32 // [maxT, kvd]
	dy      []float32 // [maxT, hd]
	dcore   []float32 // [maxT, hd]
	dgate   []float32 // [maxT, hd]
	dlogits []float32 // [maxT, E] router logits
	dwts    []float32 // [maxT, topK]
	dprob   []float64 // [E] ∂Aux/∂p
	lossBuf []float32 // [lossChunkRows, vocab] logits of one chunk
	targets []int32   // [maxT]
}

// workerPools hold one scratch per worker thread for the per-(document,
// head) attention work.
type workerPools struct {
	lin     chan *attention.LightningScratch
	linGrad chan *attention.LightningGradScratch
	flash   chan *attention.FlashScratch
	fGrad   chan *attention.FlashGradScratch
}

// NewModel wraps fp32 weights w whose tensors are views into params (as
// minimax01.NewF32Weights or LoadF32 return them) for training on batches of
// up to maxT tokens, with a zeroed gradient slab.
func NewModel(c *minimax01.Config, w *minimax01.Weights, params []float32, maxT int) *Model {
	if n := minimax01.SlabSize(minimax01.ParamTable(c)); len(params) != n {
		panic(fmt.Sprintf("train: parameter slab holds %d floats, the table of this config %d", len(params), n))
	}
	if maxT < 1 {
		panic("train: maxT must be at least 1")
	}
	m := &Model{Config: c, Weights: w, Params: params, Grads: make([]float32, len(params)), maxT: maxT}
	m.p, m.g = bindParams(c, m.Params), bindParams(c, m.Grads)
	if e := w.Embed.F32(); len(e) == 0 || &e[0] != &m.p.embed[0] {
		panic("train: the weights are not views into the parameter slab")
	}
	base := attention.ALiBiSlopes(c.Heads)
	m.slopes = make([][]float32, c.Layers)
	for l, kind := range c.LayerKinds {
		if kind == minimax01.Lightning {
			m.slopes[l] = attention.LayerSlopes(base, l, c.Layers)
		}
	}
	m.rope = attention.NewRoPE(c.RopeDim, c.RopeTheta)
	half := c.RopeDim / 2
	m.cos, m.sin = make([]float32, maxT*half), make([]float32, maxT*half)
	for pos := 0; pos < maxT; pos++ {
		m.rope.Angles(m.cos[pos*half:(pos+1)*half], m.sin[pos*half:(pos+1)*half], pos)
	}
	m.acts = newActivations(c, maxT)
	m.grad = newGradBuffers(c, maxT)
	n := kernels.Threads()
	group := c.Heads / c.KVHeads
	m.pools = workerPools{
		lin: make(chan *attention.LightningScratch, n), linGrad: make(chan *attention.LightningGradScratch, n),
		flash: make(chan *attention.FlashScratch, n), fGrad: make(chan *attention.FlashGradScratch, n),
	}
	for i := 0; i < n; i++ {
		m.pools.lin <- attention.NewLightningScratch(c.BlockLen, c.HeadDim)
		m.pools.linGrad <- attention.NewLightningGradScratch(c.BlockLen, c.HeadDim)
		m.pools.flash <- attention.NewFlashScratch(group, c.HeadDim)
		m.pools.fGrad <- attention.NewFlashGradScratch(group, c.HeadDim)
	}
	return m
}

func newActivations(c *minimax01.Config, T int) *activations {
	hd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	f := func(n int) []float32 { return make([]float32, n) }
	a := &activations{layers: make([]layerActs, c.Layers), xOut: f(T * c.Dim), xn: f(T * c.Dim)}
	work := moe.NewWork(T, c.Dim, c.FFN, c.TopK) // the layers run one after another
	for l := range a.layers {
		la := &a.layers[l]
		la.x, la.h1, la.x1, la.h2 = f(T*c.Dim), f(T*c.Dim), f(T*c.Dim), f(T*c.Dim)
		if c.LayerKinds[l] == minimax01.Lightning {
			la.qkvPre, la.qkv = f(T*3*hd), f(T*3*hd)
			la.core, la.normed, la.gate, la.y = f(T*hd), f(T*hd), f(T*hd), f(T*hd)
		} else {
			la.q, la.k, la.v, la.o, la.lse = f(T*hd), f(T*kvd), f(T*kvd), f(T*hd), f(T*c.Heads)
		}
		la.probs, la.ids, la.wts = f(T*c.Experts), make([]int32, T*c.TopK), f(T*c.TopK)
		la.moe = moe.NewActs(T, c.Dim, c.FFN, c.Experts, c.TopK, work)
	}
	return a
}

func newGradBuffers(c *minimax01.Config, T int) *gradBuffers {
	hd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	f := func(n int) []float32 { return make([]float32, n) }
	return &gradBuffers{
		dx: f(T * c.Dim), dRes: f(T * c.Dim), dBranch: f(T * c.Dim), dh: f(T * c.Dim), dNorm: f(T * c.Dim),
		dqkv: f(T * 3 * hd), dk: f(T * kvd), dv: f(T * kvd),
		dy: f(T * hd), dcore: f(T * hd), dgate: f(T * hd),
		dlogits: f(T * c.Experts), dwts: f(T * c.TopK), dprob: make([]float64, c.Experts),
		lossBuf: f(lossChunkRows(T, c.Vocab) * c.Vocab), targets: make([]int32, T),
	}
}

// ZeroGrads clears the gradient slab (in parallel: at m300's 300M
// parameters one thread clearing 1.2 GB takes a noticeable part of a step).
func (m *Model) ZeroGrads() {
	const chunk = 1 << 16
	n := len(m.Grads)
	kernels.ParallelFor((n+chunk-1)/chunk, 1, func(lo, hi int) {
		clear(m.Grads[lo*chunk : min(hi*chunk, n)])
	})
}

// Evaluate returns the loss of b without touching the gradients.
func (m *Model) Evaluate(b Batch) Loss {
	docs := m.check(b)
	aux := m.forward(b, docs)
	T, c := len(b.Tokens), m.Config
	ce := lmHeadLoss(nil, nil, m.acts.xn[:T*c.Dim], m.p.lmHead, m.grad.targets[:T], T, c.Dim, c.Vocab, 0, m.grad.lossBuf)
	return m.loss(ce, aux, docs)
}

// ForwardBackward runs b forward and backward and adds weight·∇(CE +
// RouterAuxCoef·Aux) into Grads (so accumulating several batches with
// weights summing to 1 averages their gradients). It returns b's loss.
func (m *Model) ForwardBackward(b Batch, weight float32) Loss {
	t0 := time.Now()
	docs := m.check(b)
	aux := m.forward(b, docs)
	T, c := len(b.Tokens), m.Config
	t1 := time.Now()
	pred := predictions(docs)
	var scale float32
	if pred > 0 {
		scale = weight / float32(pred)
	}
	dxn := m.grad.dh[:T*c.Dim]
	ce := lmHeadLoss(dxn, m.g.lmHead, m.acts.xn[:T*c.Dim], m.p.lmHead, m.grad.targets[:T], T, c.Dim, c.Vocab, scale, m.grad.lossBuf)
	t2 := time.Now()
	m.backward(b, docs, weight)
	m.Timings.Forward += t1.Sub(t0)
	m.Timings.Head += t2.Sub(t1)
	m.Timings.Backward += time.Since(t2)
	return m.loss(ce, aux, docs)
}

func (m *Model) loss(ceSum, aux float64, docs []doc) Loss {
	l := Loss{Aux: aux, Predictions: predictions(docs)}
	if l.Predictions > 0 {
		l.CE = ceSum / float64(l.Predictions)
	}
	l.Total = l.CE + m.Config.RouterAuxCoef*l.Aux
	return l
}

// doc is one document of a batch: rows [start, start+n).
type doc struct{ start, n int }

func predictions(docs []doc) int {
	p := 0
	for _, d := range docs {
		p += d.n - 1
	}
	return p
}

// check validates b (a malformed batch is a caller's bug: it panics with
// what is wrong), fills the targets and returns the documents.
func (m *Model) check(b Batch) []doc {
	T := len(b.Tokens)
	if T == 0 || T > m.maxT {
		panic(fmt.Sprintf("train: batch of %d tokens, the model takes 1 to %d", T, m.maxT))
	}
	if len(b.DocStarts) == 0 || b.DocStarts[0] != 0 {
		panic("train: Batch.DocStarts must start with 0")
	}
	for _, id := range b.Tokens {
		if id < 0 || int(id) >= m.Config.Vocab {
			panic(fmt.Sprintf("train: token id %d out of range [0, %d)", id, m.Config.Vocab))
		}
	}
	docs := make([]doc, len(b.DocStarts))
	for i, s := range b.DocStarts {
		end := T
		if i+1 < len(b.DocStarts) {
			end = b.DocStarts[i+1]
		}
		if end <= s {
			panic(fmt.Sprintf("train: Batch.DocStarts %v is not strictly ascending within %d tokens", b.DocStarts, T))
		}
		docs[i] = doc{s, end - s}
	}
	tg := m.grad.targets[:T]
	for _, d := range docs {
		copy(tg[d.start:d.start+d.n-1], b.Tokens[d.start+1:d.start+d.n])
		tg[d.start+d.n-1] = noTarget
	}
	return docs
}

// forward runs every layer over the batch, keeping the activations, and
// leaves the final-norm rows in acts.xn. It returns the auxiliary loss and
// leaves its gradient with respect to the router probabilities in
// grad.dprob.
func (m *Model) forward(b Batch, docs []doc) float64 {
	c, a := m.Config, m.acts
	T, dim := len(b.Tokens), c.Dim
	x := a.layers[0].x[:T*dim]
	embeddingForward(x, m.p.embed, b.Tokens, dim)
	for l := range a.layers {
		la, lp := &a.layers[l], &m.p.layers[l]
		next := a.xOut[:T*dim]
		if l+1 < len(a.layers) {
			next = a.layers[l+1].x[:T*dim]
		}
		h1, x1, h2 := la.h1[:T*dim], la.x1[:T*dim], la.h2[:T*dim]
		branch := m.grad.dBranch[:T*dim] // free until the backward
		// Attention sub-layer (spec §2.3).
		rmsNormRows(h1, la.x[:T*dim], lp.inputNorm, dim, c.NormEps)
		alpha, beta := c.LinearAlpha, c.LinearBeta
		if c.LayerKinds[l] == minimax01.Lightning {
			m.lightningForward(branch, la, lp, l, T, docs)
		} else {
			alpha, beta = c.FullAlpha, c.FullBeta
			m.softmaxForward(branch, la, lp, T, docs)
		}
		residualForward(x1, m.resIn(la.x[:T*dim], h1), branch, alpha, beta)
		// MoE sub-layer (spec §2.6), router in fp32.
		rmsNormRows(h2, x1, lp.postNorm, dim, c.NormEps)
		probs, ids, wts := la.probs[:T*c.Experts], la.ids[:T*c.TopK], la.wts[:T*c.TopK]
		linearForward(probs, h2, lp.router, T, dim, c.Experts)
		moe.Route(probs, T, c.Experts, c.TopK, ids, wts)
		moe.ForwardTrain(branch, h2, T, dim, m.Weights.Layers[l].Experts, ids, wts, c.TopK, la.moe)
		residualForward(next, m.resIn(x1, h2), branch, c.MLPAlpha, c.MLPBeta)
	}
	rmsNormRows(a.xn[:T*dim], a.xOut[:T*dim], m.p.norm, dim, c.NormEps)
	probs, ids := make([][]float32, c.Layers), make([][]int32, c.Layers)
	for l := range probs {
		probs[l], ids[l] = a.layers[l].probs[:T*c.Experts], a.layers[l].ids[:T*c.TopK]
	}
	return moe.LoadBalancingLoss(m.grad.dprob, probs, ids, T, c.Experts, c.TopK)
}

// resIn is the residual input of a sub-layer (spec §2.3): the normalised
// input h when postnorm, else the incoming stream x.
func (m *Model) resIn(x, h []float32) []float32 {
	if m.Config.PostNorm {
		return h
	}
	return x
}

// backward walks the layers in reverse from ∂L/∂xn in grad.dh, adding
// weight·∇ into Grads.
func (m *Model) backward(b Batch, docs []doc, weight float32) {
	c, a, gb := m.Config, m.acts, m.grad
	T, dim := len(b.Tokens), c.Dim
	dx := gb.dx[:T*dim]
	rmsNormRowsBackward(dx, m.g.norm, gb.dh[:T*dim], a.xOut[:T*dim], m.p.norm, dim, c.NormEps)
	auxWeight := float32(c.RouterAuxCoef) * weight
	for l := len(a.layers) - 1; l >= 0; l-- {
		la, lp, lg := &a.layers[l], &m.p.layers[l], &m.g.layers[l]
		dRes, dBranch, dh, dNorm := gb.dRes[:T*dim], gb.dBranch[:T*dim], gb.dh[:T*dim], gb.dNorm[:T*dim]
		x1, h2 := la.x1[:T*dim], la.h2[:T*dim]
		// MoE sub-layer: next = res·α + moe(h2)·β.
		residualBackward(dRes, dBranch, dx, c.MLPAlpha, c.MLPBeta)
		ids, wts, probs := la.ids[:T*c.TopK], la.wts[:T*c.TopK], la.probs[:T*c.Experts]
		dwts, dlogits := gb.dwts[:T*c.TopK], gb.dlogits[:T*c.Experts]
		moe.Backward(dh, dwts, lg.experts, dBranch, h2, T, dim, m.Weights.Layers[l].Experts, ids, wts, c.TopK, la.moe)
		moe.RouteBackward(dlogits, T, c.Experts, c.TopK, ids, wts, dwts)
		moe.AddLoadBalancingGrad(dlogits, auxWeight, probs, gb.dprob, T, c.Experts)
		linearBackward(dh, lg.router, dlogits, h2, lp.router, T, dim, c.Experts, true)
		if c.PostNorm {
			kernels.Axpy(dh, 1, dRes)
		}
		rmsNormRowsBackward(dNorm, lg.postNorm, dh, x1, lp.postNorm, dim, c.NormEps)
		if !c.PostNorm {
			kernels.Axpy(dNorm, 1, dRes)
		}
		dx1 := dNorm
		// Attention sub-layer: x1 = res·α + attn(h1)·β.
		alpha, beta := c.LinearAlpha, c.LinearBeta
		if c.LayerKinds[l] == minimax01.Softmax {
			alpha, beta = c.FullAlpha, c.FullBeta
		}
		residualBackward(dRes, dBranch, dx1, alpha, beta)
		if c.LayerKinds[l] == minimax01.Lightning {
			m.lightningBackward(dh, dBranch, la, lp, lg, l, T, docs)
		} else {
			m.softmaxBackward(dh, dBranch, la, lp, lg, T, docs)
		}
		if c.PostNorm {
			kernels.Axpy(dh, 1, dRes)
		}
		rmsNormRowsBackward(dx, lg.inputNorm, dh, la.x[:T*dim], lp.inputNorm, dim, c.NormEps)
		if !c.PostNorm {
			kernels.Axpy(dx, 1, dRes)
		}
	}
	embeddingBackward(m.g.embed, dx, b.Tokens, dim)
}

// lightningEps is the output RMSNorm eps of lightning layers: the module
// default 1e-6, not rms_norm_eps (spec §2.2).
const lightningEps = 1e-6

// lightningForward runs the lightning sub-layer (spec §2.5) on la.h1 into
// out [T, dim]: qkv = silu(qkv_proj(h1)); per (document, head) lightning
// attention from a zero state; RMSNorm; ⊙ sigmoid(output_gate(h1));
// out_proj.
func (m *Model) lightningForward(out []float32, la *layerActs, lp *layerParams, l, T int, docs []doc) {
	c := m.Config
	dim, hd, d := c.Dim, c.Heads*c.HeadDim, c.HeadDim
	h1 := la.h1[:T*dim]
	qkvPre, qkv := la.qkvPre[:T*3*hd], la.qkv[:T*3*hd]
	linearForward(qkvPre, h1, lp.qkv, T, dim, 3*hd)
	kernels.SiLU(qkv, qkvPre)
	offs := m.keptOffsets(la, docs)
	kernels.ParallelFor(len(docs)*c.Heads, 1, func(lo, hi int) {
		ws := <-m.pools.lin
		defer func() { m.pools.lin <- ws }()
		for i := lo; i < hi; i++ {
			dc, h := docs[i/c.Heads], i%c.Heads
			base := dc.start*3*hd + h*3*d
			kept := la.kept[offs[i/c.Heads]+h*attention.LightningKeptLen(dc.n, d, c.BlockLen):]
			attention.LightningForwardKeep(la.core[dc.start*hd+h*d:], hd, qkv[base:], qkv[base+d:], qkv[base+2*d:], 3*hd,
				dc.n, d, kept, m.slopes[l][h], c.BlockLen, ws)
		}
	})
	gate := la.gate[:T*hd]
	linearForward(gate, h1, lp.gate, T, dim, hd)
	kernels.Sigmoid(gate, gate)
	normed, y := la.normed[:T*hd], la.y[:T*hd]
	rmsNormRows(normed, la.core[:T*hd], lp.attnNorm, hd, lightningEps)
	copy(y, normed)
	kernels.Mul(y, gate)
	linearForward(out, y, lp.out, T, hd, dim)
}

// keptOffsets sizes la.kept for the batch's documents and returns where each
// document's kept states start (its heads follow one another).
func (m *Model) keptOffsets(la *layerActs, docs []doc) []int {
	c := m.Config
	offs := make([]int, len(docs))
	n := 0
	for i, dc := range docs {
		offs[i] = n
		n += c.Heads * attention.LightningKeptLen(dc.n, c.HeadDim, c.BlockLen)
	}
	if len(la.kept) < n {
		la.kept = make([]float32, n)
	}
	return offs
}

// lightningBackward writes into dh1 the gradient of the lightning sub-layer's
// input from dOut, and the sub-layer's weight gradients into lg.
func (m *Model) lightningBackward(dh1, dOut []float32, la *layerActs, lp, lg *layerParams, l, T int, docs []doc) {
	c, gb := m.Config, m.grad
	dim, hd, d := c.Dim, c.Heads*c.HeadDim, c.HeadDim
	h1 := la.h1[:T*dim]
	dy, dcore, dgate := gb.dy[:T*hd], gb.dcore[:T*hd], gb.dgate[:T*hd]
	linearBackward(dy, lg.out, dOut, la.y[:T*hd], lp.out, T, hd, dim, false)
	// y = normed ⊙ gate
	normed, gate := la.normed[:T*hd], la.gate[:T*hd]
	for i, g := range dy {
		dgate[i] = g * normed[i]
		dy[i] = g * gate[i]
	}
	kernels.SigmoidBackward(dgate, dgate, gate)
	linearBackward(dh1, lg.gate, dgate, h1, lp.gate, T, dim, hd, false)
	rmsNormRowsBackward(dcore, lg.attnNorm, dy, la.core[:T*hd], lp.attnNorm, hd, lightningEps)
	dqkv := gb.dqkv[:T*3*hd]
	qkv := la.qkv[:T*3*hd]
	offs := m.keptOffsets(la, docs)
	kernels.ParallelFor(len(docs)*c.Heads, 1, func(lo, hi int) {
		ws := <-m.pools.linGrad
		defer func() { m.pools.linGrad <- ws }()
		for i := lo; i < hi; i++ {
			dc, h := docs[i/c.Heads], i%c.Heads
			base := dc.start*3*hd + h*3*d
			kept := la.kept[offs[i/c.Heads]+h*attention.LightningKeptLen(dc.n, d, c.BlockLen):]
			attention.LightningBackward(dqkv[base:], dqkv[base+d:], dqkv[base+2*d:], 3*hd, dcore[dc.start*hd+h*d:], hd,
				qkv[base:], qkv[base+d:], qkv[base+2*d:], dc.n, d, kept, m.slopes[l][h], c.BlockLen, ws)
		}
	})
	kernels.SiLUBackward(dqkv, dqkv, la.qkvPre[:T*3*hd])
	linearBackward(dh1, lg.qkv, dqkv, h1, lp.qkv, T, dim, 3*hd, true)
}

// softmaxForward runs the softmax sub-layer (spec §2.4) on la.h1 into out
// [T, dim]: q, k, v projections, partial NeoX RoPE with positions from 0 in
// every document, causal GQA attention within each document, o_proj.
func (m *Model) softmaxForward(out []float32, la *layerActs, lp *layerParams, T int, docs []doc) {
	c := m.Config
	dim, hd, kvd, d := c.Dim, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.HeadDim
	group := c.Heads / c.KVHeads
	h1 := la.h1[:T*dim]
	q, k, v, o, lse := la.q[:T*hd], la.k[:T*kvd], la.v[:T*kvd], la.o[:T*hd], la.lse[:T*c.Heads]
	linearForward(q, h1, lp.q, T, dim, hd)
	linearForward(k, h1, lp.k, T, dim, kvd)
	linearForward(v, h1, lp.v, T, dim, kvd)
	m.rotate(q, k, docs, false)
	kernels.ParallelFor(len(docs)*c.KVHeads, 1, func(lo, hi int) {
		ws := <-m.pools.flash
		defer func() { m.pools.flash <- ws }()
		for i := lo; i < hi; i++ {
			dc, g := docs[i/c.KVHeads], i%c.KVHeads
			r := dc.start
			attention.FlashForward(o[r*hd:], hd, lse[r*c.Heads:], c.Heads, q[r*hd:], hd, k[r*kvd:], kvd, v[r*kvd:], kvd,
				g, group, d, dc.n, ws)
		}
	})
	linearForward(out, o, lp.o, T, hd, dim)
}

// rotate applies RoPE (or, back, its transpose) to the q [T, hd] and
// k [T, kvd] rows, each document's positions counted from 0.
func (m *Model) rotate(q, k []float32, docs []doc, back bool) {
	c := m.Config
	hd, kvd, half := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.RopeDim/2
	rot := m.rope.Rotate
	if back {
		rot = m.rope.RotateBack
	}
	for _, dc := range docs {
		for i := 0; i < dc.n; i++ {
			r := dc.start + i
			cos, sin := m.cos[i*half:(i+1)*half], m.sin[i*half:(i+1)*half]
			rot(q[r*hd:(r+1)*hd], c.Heads, c.HeadDim, cos, sin)
			rot(k[r*kvd:(r+1)*kvd], c.KVHeads, c.HeadDim, cos, sin)
		}
	}
}

// softmaxBackward writes into dh1 the gradient of the softmax sub-layer's
// input from dOut, and the sub-layer's weight gradients into lg.
func (m *Model) softmaxBackward(dh1, dOut []float32, la *layerActs, lp, lg *layerParams, T int, docs []doc) {
	c, gb := m.Config, m.grad
	dim, hd, kvd, d := c.Dim, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.HeadDim
	group := c.Heads / c.KVHeads
	h1 := la.h1[:T*dim]
	q, k, v, o, lse := la.q[:T*hd], la.k[:T*kvd], la.v[:T*kvd], la.o[:T*hd], la.lse[:T*c.Heads]
	do := gb.dy[:T*hd]
	linearBackward(do, lg.o, dOut, o, lp.o, T, hd, dim, false)
	dq, dk, dv := gb.dqkv[:T*hd], gb.dk[:T*kvd], gb.dv[:T*kvd]
	kernels.ParallelFor(len(docs)*c.KVHeads, 1, func(lo, hi int) {
		ws := <-m.pools.fGrad
		defer func() { m.pools.fGrad <- ws }()
		for i := lo; i < hi; i++ {
			dc, g := docs[i/c.KVHeads], i%c.KVHeads
			r := dc.start
			attention.FlashBackward(dq[r*hd:], dk[r*kvd:], dv[r*kvd:], do[r*hd:], q[r*hd:], hd, k[r*kvd:], kvd, v[r*kvd:], kvd,
				o[r*hd:], hd, lse[r*c.Heads:], c.Heads, g, group, d, dc.n, ws)
		}
	})
	m.rotate(dq, dk, docs, true)
	linearBackward(dh1, lg.q, dq, h1, lp.q, T, dim, hd, false)
	linearBackward(dh1, lg.k, dk, h1, lp.k, T, dim, kvd, true)
	linearBackward(dh1, lg.v, dv, h1, lp.v, T, dim, kvd, true)
}

// rmsNormRows normalises each n-wide row of x into dst.
func rmsNormRows(dst, x, w []float32, n int, eps float32) {
	for r := 0; r*n < len(x); r++ {
		kernels.RMSNorm(dst[r*n:(r+1)*n], x[r*n:(r+1)*n], w, eps)
	}
}

// rmsNormRowsBackward is rmsNormRows' backward: dx overwritten, dw
// accumulated (rows in order).
func rmsNormRowsBackward(dx, dw, dy, x, w []float32, n int, eps float32) {
	for r := 0; r*n < len(x); r++ {
		kernels.RMSNormBackward(dx[r*n:(r+1)*n], dw, dy[r*n:(r+1)*n], x[r*n:(r+1)*n], w, eps)
	}
}
