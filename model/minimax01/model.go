// Package minimax01 is the MiniMax-01 architecture (MiniMax-Text-01,
// MiniMax-M1): config, weights, state and an eager forward pass that follows
// the official modeling code ("spec" below is the project's contract,
// spec/minimax01.md of the shared folder).
//
// Glossary: dim = hidden size, heads/kvHeads = query/KV heads, hd = headDim,
// ropeDim = rotary dims per head, E = experts, topK = experts per token,
// T = tokens in one internal step (all sequences packed), l = layer index,
// pos = absolute position in a sequence.
package minimax01

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/lightninglm/lightning/attention"
	"github.com/lightninglm/lightning/format/gguf"
	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/internal/trace"
	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/moe"
	"github.com/lightninglm/lightning/tensor"
)

// Options tune a loaded model; the zero value is fine.
type Options struct {
	// MaxBatchTokens is the number of tokens one internal step processes, which
	// sizes the scratch memory. Longer inputs run in several steps. 0 = 512.
	MaxBatchTokens int
	// Tracer, if set, receives every named intermediate (golden README §7
	// debug names). Only meaningful with one sequence per Forward.
	Tracer trace.Tracer
	// KVType is the element type of the softmax layers' KV caches: exact
	// fp32 (the default), or bf16/int8 to halve/quarter long-context memory.
	KVType attention.KVType
	// Quant, if set, quantizes the weight matrices at load (on the fly) as
	// `lightning quantize` would; the checkpoint must be a float one.
	Quant *QuantSpec
	// BF16Dot multiplies BF16 attention and expert matrices with the opt-in
	// lossy kernel that also rounds activations to bfloat16 (VDPBF16PS); the
	// router and the LM head keep the exact fp32-activation path.
	BF16Dot bool
	// Part, if set, loads only that slice of the model (serving across
	// processes, package dist); such a model is driven through Embed,
	// RunLayers, ExpertsForward and Head, not Forward.
	Part *Part
	// GGUFBlocks keeps a GGUF file's Q5_0, Q5_1, Q4_K, Q5_K and Q6_K
	// matrices as their ggml blocks (lossless, 4.5–6.6 bits per weight)
	// instead of widening them to BF16 at load; their products then run in
	// fp32 Go code, many times slower than the SIMD kernels (gguf.go).
	GGUFBlocks bool
}

// Model is a loaded MiniMax-01 model. Forward calls are serialised.
type Model struct {
	Config   *Config
	Weights  *Weights
	Warnings []string // non-fatal findings at load, e.g. unused tensors
	Notes    []string // how the weights were read, for inspect (GGUF: the mapping and each type's conversion)

	slopes [][]float32 // [layers] → [heads] lightning decay rates (nil for softmax layers)
	rope   *attention.RoPE
	maxT   int
	kvType attention.KVType
	tracer trace.Tracer
	ck     *safetensors.Checkpoint
	gf     *gguf.File // the mapped GGUF file, when loaded from one

	mu sync.Mutex
	s  *scratch
}

// Load opens a checkpoint folder (config.json + safetensors, single or
// sharded) and maps its weights without copying them, or a minimax-01 GGUF
// file (gguf.go), whose quantized types are converted at load.
func Load(dir string, opt Options) (*Model, error) {
	if IsGGUF(dir) {
		return loadGGUF(dir, opt)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, fmt.Errorf("minimax01: %w", err)
	}
	if opt.Part != nil {
		if err := opt.Part.Validate(cfg); err != nil {
			ck.Close()
			return nil, err
		}
	}
	w, unused, err := loadWeights(cfg, ck, opt.Part)
	var notes []string
	if err == nil && opt.Quant != nil {
		if cfg.Quant != nil {
			err = fmt.Errorf("minimax01: %s is already quantized (%s); drop -quant", dir, cfg.Quant)
		} else {
			notes, err = quantizeWeights(cfg, w, *opt.Quant) // quantize.go
		}
	}
	if err != nil {
		ck.Close()
		return nil, err
	}
	if opt.BF16Dot {
		w.useBF16Dot(cfg)
	}
	m := New(cfg, w, opt)
	m.ck = ck
	if len(unused) > 0 {
		m.Warnings = append(m.Warnings, fmt.Sprintf("%d checkpoint tensors are not used by this architecture (first: %s)", len(unused), unused[0]))
	}
	m.Warnings = append(m.Warnings, notes...)
	return m, nil
}

// New builds a model from a config and weights already in memory.
func New(cfg *Config, w *Weights, opt Options) *Model {
	m := &Model{Config: cfg, Weights: w, maxT: opt.MaxBatchTokens, tracer: opt.Tracer, kvType: opt.KVType}
	if m.maxT <= 0 {
		m.maxT = 512
	}
	base := attention.ALiBiSlopes(cfg.Heads)
	m.slopes = make([][]float32, cfg.Layers)
	for l, k := range cfg.LayerKinds {
		if k == Lightning {
			m.slopes[l] = attention.LayerSlopes(base, l, cfg.Layers)
		}
	}
	m.rope = attention.NewRoPE(cfg.RopeDim, cfg.RopeTheta)
	m.s = newScratch(m)
	return m
}

// Close releases the checkpoint's memory maps. The model must not be used
// afterwards.
func (m *Model) Close() error {
	if m.gf != nil {
		return m.gf.Close()
	}
	if m.ck != nil {
		return m.ck.Close()
	}
	return nil
}

// ScratchBytes is the memory of the per-step work buffers, sized once from
// the config and MaxBatchTokens (style.md G7): the step's activations, the
// MoE buffers, each worker thread's lightning and flash-attention buffers,
// and the work lists.
func (m *Model) ScratchBytes() int64 {
	s := m.s
	n := len(s.x) + len(s.h) + len(s.a) + len(s.qkv) + len(s.gate) + len(s.o) + len(s.kbuf) + len(s.vbuf) +
		len(s.router) + len(s.wts) + len(s.final) + len(s.ids) + len(s.cos) + len(s.sin) + len(s.rowToks)
	b := int64(n)*4 + s.moe.Bytes()
	b += int64(cap(s.flash))*int64(unsafe.Sizeof(flashItem{})) + int64(cap(s.spans))*int64(unsafe.Sizeof(span{}))
	return b + s.threadBytes
}

// Slopes returns lightning layer l's per-head decay rates (nil for softmax).
func (m *Model) Slopes(l int) []float32 { return m.slopes[l] }

// Info describes the model to the engine.
func (m *Model) Info() model.Info {
	c := m.Config
	_, active := c.Params()
	mem := c.Memory()
	return model.Info{
		VocabSize:    c.Vocab,
		ContextLen:   c.MaxPositions,
		StateBytes:   mem.StateBytes,
		BytesPerTok:  int64(c.Count(Softmax)) * m.kvType.BytesPerToken(c.KVHeads, c.HeadDim),
		WeightBytes:  m.Weights.Bytes(c).Total,
		ActiveParams: active,
	}
}

// MemoryFigures are the per-sequence memory needs of a configuration (spec §4.2).
type MemoryFigures struct {
	StateBytes      int64 // fp32 lightning states, fixed per sequence
	KVBytesPerToken int64 // fp32 KV cache of the softmax layers, per token
}

// Memory returns the per-sequence memory needs with Lightning's fp32 caches.
func (c *Config) Memory() MemoryFigures {
	return MemoryFigures{
		StateBytes:      int64(c.Count(Lightning)) * int64(c.Heads*c.HeadDim*c.HeadDim) * 4,
		KVBytesPerToken: int64(c.Count(Softmax)) * 2 * int64(c.KVHeads*c.HeadDim) * 4,
	}
}

// span is one sequence's rows in an internal step.
type span struct {
	st     *State
	tokens []int32
	start  int  // first row in the step
	pos    int  // absolute position of the first row
	logits bool // emit logits for every row (else only lastRow when set)
	last   bool // emit logits for the final row
}

// Forward implements model.Model. Sequences are packed into steps of at most
// MaxBatchTokens rows; a long sequence spans several steps.
func (m *Model) Forward(seqs []model.Seq, logits []float32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forward(seqs, logits)
}

// forward is Forward with m.mu held.
func (m *Model) forward(seqs []model.Seq, logits []float32) {
	need := model.LogitRows(seqs) * m.Config.Vocab
	if len(logits) < need {
		panic(fmt.Sprintf("minimax01: logits buffer holds %d floats, need %d", len(logits), need))
	}
	s := m.s
	s.spans = s.spans[:0]
	used, out := 0, 0
	flush := func() {
		if used > 0 {
			out += m.step(s, used, logits[out*m.Config.Vocab:])
			s.spans = s.spans[:0]
			used = 0
		}
	}
	for i := range seqs {
		sq := &seqs[i]
		st, ok := sq.State.(*State)
		if !ok || st.m != m {
			panic("minimax01: Forward got a state that was not made by this model")
		}
		for _, id := range sq.Tokens {
			if id < 0 || int(id) >= m.Config.Vocab {
				panic(fmt.Sprintf("minimax01: token id %d out of range [0, %d)", id, m.Config.Vocab))
			}
		}
		toks := sq.Tokens
		for len(toks) > 0 {
			if used == m.maxT {
				flush()
			}
			n := min(len(toks), m.maxT-used)
			sp := span{st: st, tokens: toks[:n], start: used, pos: st.n, logits: sq.Logits == model.LogitsAll}
			sp.last = sq.Logits == model.LogitsLast && n == len(toks)
			st.n += n // positions of later chunks of this sequence follow on
			s.spans = append(s.spans, sp)
			used += n
			toks = toks[n:]
		}
	}
	flush()
}

// step runs one packed step of T rows through every layer and writes its
// logits rows; it returns how many rows it wrote.
func (m *Model) step(s *scratch, T int, logits []float32) int {
	c, w := m.Config, m.Weights
	dim := c.Dim
	x := s.x[:T*dim]
	for _, sp := range s.spans {
		for i, id := range sp.tokens {
			r := sp.start + i
			tensor.Row(x[r*dim:(r+1)*dim], w.Embed, int(id))
		}
	}
	m.trace("embed", -1, x)
	for l := range w.Layers {
		m.layer(s, l, T, nil)
	}
	// Final norm on the rows that need logits, then the LM head in fp32 (spec §2.7).
	R := 0
	for _, sp := range s.spans {
		for i := range sp.tokens {
			if sp.logits || (sp.last && i == len(sp.tokens)-1) {
				r := sp.start + i
				kernels.RMSNorm(s.final[R*dim:(R+1)*dim], x[r*dim:(r+1)*dim], w.Norm, c.NormEps)
				R++
			}
		}
	}
	if R > 0 {
		m.trace("final_norm", -1, s.final[:R*dim])
		tensor.MatMul(logits[:R*c.Vocab], s.final[:R*dim], R, w.LMHead)
		m.trace("logits", -1, logits[:R*c.Vocab])
	}
	return R
}

// layer runs decoder layer l on the T rows of s.x in place; peers computes
// the experts this process does not hold (nil: it holds them all).
func (m *Model) layer(s *scratch, l, T int, peers ExpertPeers) {
	c, lw := m.Config, &m.Weights.Layers[l]
	dim := c.Dim
	x, h, a := s.x[:T*dim], s.h[:T*dim], s.a[:T*dim]
	// Attention sub-layer (spec §2.3).
	rmsNormRows(h, x, lw.InputNorm, dim, c.NormEps)
	m.trace("input_norm", l, h)
	alpha, beta := c.LinearAlpha, c.LinearBeta
	if c.LayerKinds[l] == Lightning {
		m.lightning(s, l, T)
	} else {
		alpha, beta = c.FullAlpha, c.FullBeta
		m.softmax(s, l, T)
	}
	m.trace("attn_out", l, a)
	residual(x, h, a, alpha, beta, c.PostNorm)
	m.trace("attn_residual", l, x)
	// MoE sub-layer (spec §2.6).
	rmsNormRows(h, x, lw.PostNorm, dim, c.NormEps)
	m.trace("post_attn_norm", l, h)
	router := s.router[:T*c.Experts]
	kernels.MatMulF32(router, h, lw.Router, T, dim, c.Experts)
	m.trace("router_logits", l, router)
	ids, wts := s.ids[:T*c.TopK], s.wts[:T*c.TopK]
	moe.Route(router, T, c.Experts, c.TopK, ids, wts)
	if peers != nil {
		peers.Send(l, h, T, ids, wts)
	}
	moe.Forward(a, h, T, dim, lw.Experts, ids, wts, c.TopK, s.moe)
	if peers != nil {
		peers.Recv(a)
	}
	m.trace("moe_out", l, a)
	residual(x, h, a, c.MLPAlpha, c.MLPBeta, c.PostNorm)
	m.trace("out", l, x)
}

func (m *Model) trace(name string, l int, v []float32) {
	if m.tracer != nil {
		m.tracer.Trace(name, l, v)
	}
}

// rmsNormRows normalises each dim-wide row of x into dst.
func rmsNormRows(dst, x, w []float32, dim int, eps float32) {
	for r := 0; r*dim < len(x); r++ {
		kernels.RMSNorm(dst[r*dim:(r+1)*dim], x[r*dim:(r+1)*dim], w, eps)
	}
}

// residual applies the DeepNorm-style residual (spec §2.3):
// x = res·alpha + branch·beta, where res is the normalised input h when
// postNorm, else the raw stream x.
func residual(x, h, branch []float32, alpha, beta float32, postNorm bool) {
	res := x
	if postNorm {
		res = h
	}
	for i := range x {
		x[i] = res[i]*alpha + branch[i]*beta
	}
}

// lightningEps is the output RMSNorm eps of lightning layers: the module
// default 1e-6, not rms_norm_eps (spec §2.2; vLLM and llama.cpp differ).
const lightningEps = 1e-6

// lightning runs lightning attention (spec §2.5) on s.h rows into s.a.
func (m *Model) lightning(s *scratch, l, T int) {
	c, lw := m.Config, &m.Weights.Layers[l]
	hd := c.Heads * c.HeadDim
	qkv := s.qkv[:T*3*hd]
	tensor.MatMul(qkv, s.h[:T*c.Dim], T, lw.QKV)
	m.trace("qkv_proj", l, qkv)
	kernels.SiLU(qkv, qkv) // SiLU on all of q, k and v (spec §2.5.1)
	gate := s.gate[:T*hd]
	tensor.MatMul(gate, s.h[:T*c.Dim], T, lw.Gate)
	m.trace("output_gate", l, gate)
	kernels.Sigmoid(gate, gate)
	s.layer = l
	kernels.ParallelFor(len(s.spans)*c.Heads, 1, s.linFn)
	o := s.o[:T*hd]
	m.trace("lin_attn_core", l, o)
	rmsNormRows(o, o, lw.AttnNorm, hd, lightningEps)
	m.trace("lin_attn_normed", l, o)
	kernels.Mul(o, gate)
	tensor.MatMul(s.a[:T*c.Dim], o, T, lw.Out)
	if m.tracer != nil && len(s.spans) == 1 {
		m.trace("cache_kv", l, s.spans[0].st.lin[l])
	}
}

// lightningHeads runs heads [lo, hi) of the flattened (span, head) pairs of
// the current layer. It is a method value bound once, so ParallelFor calls do
// not allocate.
func (s *scratch) lightningHeads(lo, hi int) {
	m := s.m
	c := m.Config
	hd, d := c.Heads*c.HeadDim, c.HeadDim
	ld := 3 * hd
	ws := <-s.linFree
	defer func() { s.linFree <- ws }()
	for i := lo; i < hi; i++ {
		sp := &s.spans[i/c.Heads]
		h := i % c.Heads
		n := len(sp.tokens)
		base := sp.start*ld + h*3*d
		q, k, v := s.qkv[base:], s.qkv[base+d:], s.qkv[base+2*d:]
		o := s.o[sp.start*hd+h*d:]
		st := sp.st.lin[s.layer][h*d*d : (h+1)*d*d]
		slope := m.slopes[s.layer][h]
		if n == 1 {
			attention.LightningStep(o, q, k, v, st, d, slope)
		} else {
			attention.LightningPrefill(o, hd, q, k, v, ld, n, d, st, slope, c.BlockLen, ws)
		}
	}
}

// softmax runs softmax attention (spec §2.4) on s.h rows into s.a.
func (m *Model) softmax(s *scratch, l, T int) {
	c, lw := m.Config, &m.Weights.Layers[l]
	hd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	h := s.h[:T*c.Dim]
	q, k, v := s.qkv[:T*hd], s.kbuf[:T*kvd], s.vbuf[:T*kvd]
	tensor.MatMul(q, h, T, lw.Q)
	tensor.MatMul(k, h, T, lw.K)
	tensor.MatMul(v, h, T, lw.V)
	m.trace("q_proj", l, q)
	m.trace("k_proj", l, k)
	m.trace("v_proj", l, v)
	half := c.RopeDim / 2
	for _, sp := range s.spans {
		for i := range sp.tokens {
			r := sp.start + i
			cos, sin := s.cos[:half], s.sin[:half]
			m.rope.Angles(cos, sin, sp.pos+i)
			m.rope.Rotate(q[r*hd:(r+1)*hd], c.Heads, c.HeadDim, cos, sin)
			m.rope.Rotate(k[r*kvd:(r+1)*kvd], c.KVHeads, c.HeadDim, cos, sin)
		}
		sp.st.kv[l].Append(k[sp.start*kvd:], v[sp.start*kvd:], kvd, len(sp.tokens))
	}
	// Work items: (span, KV head, query tile) for the flash kernel.
	s.flash = s.flash[:0]
	for si, sp := range s.spans {
		for g := 0; g < c.KVHeads; g++ {
			for tile := 0; tile < attention.FlashTiles(len(sp.tokens), c.Heads/c.KVHeads); tile++ {
				s.flash = append(s.flash, flashItem{span: int32(si), g: int32(g), tile: int32(tile)})
			}
		}
	}
	s.layer = l
	kernels.ParallelFor(len(s.flash), 1, s.smFn)
	o := s.o[:T*hd]
	m.trace("softmax_attn_core", l, o)
	tensor.MatMul(s.a[:T*c.Dim], o, T, lw.O)
}

// softmaxHeads runs flash-attention work items [lo, hi) of the current
// layer.
func (s *scratch) softmaxHeads(lo, hi int) {
	c := s.m.Config
	hd, d := c.Heads*c.HeadDim, c.HeadDim
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(d)))
	ws := <-s.flashFree
	defer func() { s.flashFree <- ws }()
	for _, it := range s.flash[lo:hi] {
		sp := &s.spans[it.span]
		r := sp.start
		attention.FlashAttend(s.o[r*hd:], hd, s.qkv[r*hd:], hd, &sp.st.kv[s.layer], int(it.g), group, d, sp.pos, len(sp.tokens), int(it.tile), scale, ws)
	}
}

// flashItem is one softmax-attention work item: a span's query tile for one
// KV head.
type flashItem struct{ span, g, tile int32 }

// scratch holds every intermediate of one step, sized once (style.md G7).
type scratch struct {
	m         *Model
	x         []float32   // [maxT, dim] residual stream
	h         []float32   // [maxT, dim] normalised input of the current sub-layer
	a         []float32   // [maxT, dim] sub-layer output
	qkv       []float32   // [maxT, 3·heads·hd] lightning q|k|v per head; softmax q uses the first heads·hd
	gate      []float32   // [maxT, heads·hd] lightning output gate
	o         []float32   // [maxT, heads·hd] attention output
	kbuf      []float32   // [maxT, kvHeads·hd]
	vbuf      []float32   // [maxT, kvHeads·hd]
	router    []float32   // [maxT, E]
	ids       []int32     // [maxT, topK]
	wts       []float32   // [maxT, topK]
	final     []float32   // [maxT, dim] final-norm rows that get logits
	cos       []float32   // [ropeDim/2]
	sin       []float32   // [ropeDim/2]
	flash     []flashItem // softmax-attention work items of the current layer
	rowToks   []int32     // [maxT] placeholder token ids of RunLayers spans (only their count is read)
	moe       *moe.Scratch
	linFree   chan *attention.LightningScratch // one per worker thread
	flashFree chan *attention.FlashScratch     // one per worker thread

	threadBytes int64 // memory of the buffers in linFree and flashFree

	spans []span
	layer int              // layer being run by the ParallelFor bodies
	linFn func(lo, hi int) // s.lightningHeads, bound once so ParallelFor does not allocate
	smFn  func(lo, hi int) // s.softmaxHeads, likewise
}

func newScratch(m *Model) *scratch {
	c, T := m.Config, m.maxT
	hd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	s := &scratch{
		m: m,
		x: make([]float32, T*c.Dim), h: make([]float32, T*c.Dim), a: make([]float32, T*c.Dim),
		qkv: make([]float32, T*3*hd), gate: make([]float32, T*hd), o: make([]float32, T*hd),
		kbuf: make([]float32, T*kvd), vbuf: make([]float32, T*kvd),
		router: make([]float32, T*c.Experts), ids: make([]int32, T*c.TopK), wts: make([]float32, T*c.TopK),
		final: make([]float32, T*c.Dim), cos: make([]float32, c.RopeDim/2), sin: make([]float32, c.RopeDim/2),
		flash: make([]flashItem, 0, 2*T*c.KVHeads+c.KVHeads),
		moe:   moe.NewScratch(T, c.Dim, c.FFN, c.Experts),
		spans: make([]span, 0, T), rowToks: make([]int32, T),
	}
	s.linFn, s.smFn = s.lightningHeads, s.softmaxHeads
	n := kernels.Threads()
	s.linFree = make(chan *attention.LightningScratch, n)
	s.flashFree = make(chan *attention.FlashScratch, n)
	for i := 0; i < n; i++ {
		lin, fl := attention.NewLightningScratch(c.BlockLen, c.HeadDim), attention.NewFlashScratch(c.Heads/c.KVHeads, c.HeadDim)
		s.threadBytes += lin.Bytes() + fl.Bytes()
		s.linFree <- lin
		s.flashFree <- fl
	}
	return s
}
