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
	"time"
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
	// Profile, if set, accumulates the wall time of every step by op class
	// and layer kind (SetProfile changes it later).
	Profile *trace.Profile
	// LazyWeights leaves the mapped weights to be read from the file (or
	// mapped from the page cache) page by page when the first requests
	// touch them, instead of by Load, on every thread, at once: a faster
	// load and a slower first request.
	LazyWeights bool
	// Part, if set, loads only that slice of the model (serving across
	// processes, package dist); such a model is driven through Embed,
	// RunLayers, ExpertsForward and Head, not Forward.
	Part *Part
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
	qspec  *QuantSpec // how the weights were quantized (QuantSpec); nil for float weights
	tracer trace.Tracer
	prof   *trace.Profile // nil: off
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
	return loadCheckpoint(cfg, ck, opt)
}

// LoadBytes loads a model held in memory (for example embedded in the
// binary): config.json's contents and one safetensors file. The weights are
// views into weights, as Load's are into the mapped files, so weights must
// not change while the model is used; name stands for the folder in errors.
func LoadBytes(name string, configJSON, weights []byte, opt Options) (*Model, error) {
	cfg, err := ParseConfig(configJSON)
	if err != nil {
		return nil, fmt.Errorf("%s: config.json: %w", name, err)
	}
	ck, err := safetensors.CheckpointFromBytes(name, weights)
	if err != nil {
		return nil, fmt.Errorf("minimax01: %w", err)
	}
	return loadCheckpoint(cfg, ck, opt)
}

// loadCheckpoint builds the model of cfg from the opened checkpoint ck,
// which it owns from then on (closed on error, else by Model.Close).
func loadCheckpoint(cfg *Config, ck *safetensors.Checkpoint, opt Options) (*Model, error) {
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
			err = fmt.Errorf("minimax01: %s is already quantized (%s); drop -quant", ck.Dir(), cfg.Quant)
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
	lazyNote := prefaultWeights(cfg, w, opt)
	m := New(cfg, w, opt)
	m.ck = ck
	if len(unused) > 0 {
		m.Warnings = append(m.Warnings, fmt.Sprintf("%d checkpoint tensors are not used by this architecture (first: %s)", len(unused), unused[0]))
	}
	m.Warnings = append(m.Warnings, notes...)
	if lazyNote != "" {
		m.Warnings = append(m.Warnings, lazyNote)
	}
	return m, nil
}

// prefaultWeights prefaults w at load unless opt.LazyWeights or the
// weights exceed the memory the OS reports available; it returns the
// warning for the latter case ("" otherwise).
func prefaultWeights(cfg *Config, w *Weights, opt Options) string {
	if opt.LazyWeights {
		return ""
	}
	size, avail := w.Bytes(cfg).Total, availableMemory()
	if avail <= 0 || size > avail {
		return fmt.Sprintf("weights (%d MiB) not prefaulted at load: the OS reports %d MiB of memory available", size>>20, avail>>20)
	}
	w.prefault(cfg)
	return ""
}

// New builds a model from a config and weights already in memory.
func New(cfg *Config, w *Weights, opt Options) *Model {
	m := &Model{Config: cfg, Weights: w, maxT: opt.MaxBatchTokens, tracer: opt.Tracer, kvType: opt.KVType, qspec: opt.Quant}
	if m.qspec == nil {
		m.qspec = cfg.Quant
	}
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
	m.SetProfile(opt.Profile)
	return m
}

// QuantSpec returns how the weights were quantized: Options.Quant when at
// load, the checkpoint's quantization_config when stored quantized, nil for
// float weights. Processes that serve parts of one model must agree on it
// (package dist checks).
func (m *Model) QuantSpec() *QuantSpec { return m.qspec }

// SetProfile makes later steps accumulate their op-by-op wall time into p
// (nil turns profiling off). It turns the kernel pool's wait timing on
// while p is set, so p's pool waits are those of this model's steps only
// when no other model runs at the same time.
func (m *Model) SetProfile(p *trace.Profile) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p != nil {
		if p.Waited == nil {
			p.Waited = kernels.PoolWaited
		}
		if p.Dispatched == nil {
			p.Dispatched = kernels.PoolDispatches
		}
		p.Layers = [trace.NumKinds]int{trace.KindLightning: m.Config.Count(Lightning), trace.KindSoftmax: m.Config.Count(Softmax)}
	}
	kernels.TimePoolWaits(p != nil)
	m.prof = p
	s := m.s
	s.moe.Profile = p
	for range cap(s.linFree) {
		ws := <-s.linFree
		ws.Profile = p
		s.linFree <- ws
	}
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
		len(s.router) + len(s.wts) + len(s.final) + len(s.ids) + len(s.rowPos) + len(s.ropeTab) + len(s.rowToks) +
		len(s.o2) + len(s.lse) + len(s.lse2)
	b := int64(n)*4 + s.moe.Bytes()
	b += int64(cap(s.flash))*int64(unsafe.Sizeof(flashItem{})) + int64(cap(s.spans))*int64(unsafe.Sizeof(span{}))
	return b + s.threadBytes
}

// TakeProfile returns the steps accumulated so far in the profile given to
// SetProfile (zero without one) and clears them; it is safe while other
// goroutines call Forward.
func (m *Model) TakeProfile() (phases [trace.NumPhases]trace.Steps) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.prof != nil {
		phases = m.prof.Phases
		m.prof.Reset()
	}
	return phases
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
	p := m.prof
	if p != nil {
		p.Begin(stepPhase(s.spans, T))
	}
	x := s.x[:T*dim]
	for _, sp := range s.spans {
		for i, id := range sp.tokens {
			r := sp.start + i
			tensor.Row(x[r*dim:(r+1)*dim], w.Embed, int(id))
		}
	}
	m.trace("embed", -1, x)
	act := 4 * float64(T*dim) // bytes of one [T, dim] activation
	p.Lap(trace.OpEmbed, 0, float64(T*w.Embed.Bytes()/max(w.Embed.Rows, 1))+act)
	m.layers(s, 0, len(w.Layers), T, nil)
	p.Kind(trace.KindModel)
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
	p.Lap(trace.OpNorm, 0, 8*float64(R*dim))
	if R > 0 {
		m.trace("final_norm", -1, s.final[:R*dim])
		m.matmul(trace.OpLMHead, logits[:R*c.Vocab], s.final[:R*dim], R, w.LMHead)
		m.trace("logits", -1, logits[:R*c.Vocab])
	}
	p.End(T)
	return R
}

// stepPhase says whether a step is a decode step (one new token per
// sequence) or a prefill step, for profiles.
func stepPhase(spans []span, T int) trace.Phase {
	if T == len(spans) {
		return trace.Decode
	}
	return trace.Prefill
}

// matmul is tensor.MatMul charged to op in the profile (dst[T, w.Rows] =
// x[T, w.Cols] · wᵀ): 2·T·Rows·Cols flops; the weights and both
// activations are the bytes.
func (m *Model) matmul(op trace.Op, dst, x []float32, T int, w tensor.Mat) {
	tensor.MatMul(dst, x, T, w)
	if p := m.prof; p != nil {
		flops, bytes := work(T, w)
		p.Lap(op, flops, bytes)
	}
}

// work is the flops and bytes of dst[T, w.Rows] = x[T, w.Cols] · wᵀ, as
// matmul charges them.
func work(T int, w tensor.Mat) (flops, bytes float64) {
	return 2 * float64(T) * float64(w.Rows*w.Cols), float64(w.Bytes() + 4*T*(w.Rows+w.Cols))
}

// SetSoloDispatch makes later steps give every matrix product its own
// kernel-pool dispatch and split every lightning decode over the pool, as
// before products that share an input were grouped (issue 17): only for
// A/B benchmarks of the grouping (bench -ab-dispatch); the results are
// bitwise the same either way.
func (m *Model) SetSoloDispatch(solo bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s.solo = solo
	m.s.moe.Group = m.s.grp()
}

// SetExpertColumnSplit makes later steps cut every expert product between
// the threads by output columns, as before the prefill's experts ran in
// one dispatch split by tokens (moe.Scratch.ColumnSplit): only for A/B
// benchmarks (bench -ab-prefill); the results are bitwise the same either
// way.
func (m *Model) SetExpertColumnSplit(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s.moe.ColumnSplit = on
}

// grp is the group the step's independent products share (nil with
// SetSoloDispatch: one dispatch each).
func (s *scratch) grp() *kernels.Group {
	if s.solo {
		return nil
	}
	return &s.group
}

// layers runs decoder layers [first, last) on the T rows of s.x in place
// (s.spans says whose rows they are); peers computes the experts this
// process does not hold (nil: it holds them all). Each layer's last
// residual is fused with the next layer's input norm (residualNorm), so
// only the first layer's input norm runs on its own.
func (m *Model) layers(s *scratch, first, last, T int, peers ExpertPeers) {
	if first >= last {
		return
	}
	c, w, p := m.Config, m.Weights, m.prof
	dim := c.Dim
	for _, sp := range s.spans { // the positions RoPE reads
		for i := range sp.tokens {
			s.rowPos[sp.start+i] = int32(sp.pos + i)
		}
	}
	p.Kind(m.layerKind(first))
	rmsNormRows(s.h[:T*dim], s.x[:T*dim], w.Layers[first].InputNorm, dim, c.NormEps)
	m.trace("input_norm", first, s.h[:T*dim])
	p.Lap(trace.OpNorm, 0, 8*float64(T*dim))
	for l := first; l < last; l++ {
		var nextNorm []float32
		if l+1 < last {
			nextNorm = w.Layers[l+1].InputNorm
		}
		m.layer(s, l, T, peers, nextNorm)
	}
}

// layer runs decoder layer l on the T rows of s.x in place, s.h holding
// their input norm; peers computes the experts this process does not hold
// (nil: it holds them all). With nextNorm (the next layer's input-norm
// weights) it leaves that norm of its output in s.h.
func (m *Model) layer(s *scratch, l, T int, peers ExpertPeers, nextNorm []float32) {
	c, lw, p := m.Config, &m.Weights.Layers[l], m.prof
	dim := c.Dim
	x, h, a := s.x[:T*dim], s.h[:T*dim], s.a[:T*dim]
	act := 4 * float64(T*dim) // bytes of one [T, dim] activation
	// Attention sub-layer (spec §2.3); h holds its normalised input.
	alpha, beta := c.LinearAlpha, c.LinearBeta
	if c.LayerKinds[l] == Lightning {
		m.lightning(s, l, T)
	} else {
		alpha, beta = c.FullAlpha, c.FullBeta
		m.softmax(s, l, T)
	}
	m.trace("attn_out", l, a)
	s.residualNorm(T, alpha, beta, lw.PostNorm)
	m.trace("attn_residual", l, x)
	m.trace("post_attn_norm", l, h)
	p.Lap(trace.OpResidual, 0, 5*act)
	// MoE sub-layer (spec §2.6).
	router := s.router[:T*c.Experts]
	kernels.MatMulF32(router, h, lw.Router, T, dim, c.Experts)
	m.trace("router_logits", l, router)
	p.Lap(trace.OpRouter, 2*float64(T*dim*c.Experts), 4*float64(dim*c.Experts+T*(dim+c.Experts)))
	ids, wts := s.ids[:T*c.TopK], s.wts[:T*c.TopK]
	moe.Route(router, T, c.Experts, c.TopK, ids, wts)
	p.Lap(trace.OpRoute, 0, 4*float64(T*(c.Experts+2*c.TopK)))
	if peers != nil {
		peers.Send(l, h, T, ids, wts)
	}
	moe.Forward(a, h, T, dim, lw.Experts, ids, wts, c.TopK, s.moe) // laps inside
	if peers != nil {
		peers.Recv(a)
		p.Lap(trace.OpOther, 0, 0) // waiting for the remote experts
	}
	m.trace("moe_out", l, a)
	if nextNorm != nil { // the residual, and the next layer's input norm
		s.residualNorm(T, c.MLPAlpha, c.MLPBeta, nextNorm)
		m.trace("out", l, x)
		p.Lap(trace.OpResidual, 0, 5*act)
		p.Kind(m.layerKind(l + 1))
		m.trace("input_norm", l+1, h)
	} else {
		s.residualNorm(T, c.MLPAlpha, c.MLPBeta, nil)
		m.trace("out", l, x)
		p.Lap(trace.OpResidual, 0, 3*act)
	}
}

func (m *Model) trace(name string, l int, v []float32) {
	if m.tracer != nil {
		m.tracer.Trace(name, l, v)
	}
}

// layerKind is layer l's kind in profiles.
func (m *Model) layerKind(l int) trace.Kind {
	if m.Config.LayerKinds[l] == Lightning {
		return trace.KindLightning
	}
	return trace.KindSoftmax
}

// parallelMinRows is the number of rows from which the row-wise passes
// (residualNorm, RoPE) split their rows over the pool (a row of the real
// model takes about a microsecond, a pool dispatch a few).
const parallelMinRows = 64

// residualNorm applies the residual to the first T rows of the stream,
// x = res·alpha + a·beta (see residual), then, when normW is not nil,
// normalises each new row into h: h = RMSNorm(x)·normW. Each row is done
// in one pass while it is in cache; the rows are split over the pool when
// there are many. Every row's arithmetic is the one of residual followed by
// rmsNormRows, so the results are bitwise the same.
func (s *scratch) residualNorm(T int, alpha, beta float32, normW []float32) {
	s.rn = residualNormArgs{alpha: alpha, beta: beta, normW: normW}
	if T < parallelMinRows {
		s.residualNormRows(0, T)
		return
	}
	kernels.ParallelFor(T, 1, s.rnFn)
}

// residualNormArgs are the arguments of the current residualNorm.
type residualNormArgs struct {
	alpha, beta float32
	normW       []float32 // nil: no norm
}

// residualNormRows runs rows [lo, hi) of residualNorm.
func (s *scratch) residualNormRows(lo, hi int) {
	c := s.m.Config
	dim, a := c.Dim, &s.rn
	for r := lo; r < hi; r++ {
		x, h := s.x[r*dim:(r+1)*dim], s.h[r*dim:(r+1)*dim]
		residual(x, h, s.a[r*dim:(r+1)*dim], a.alpha, a.beta, c.PostNorm)
		if a.normW != nil {
			kernels.RMSNorm(h, x, a.normW, c.NormEps)
		}
	}
}

// ewOp is an elementwise kernel that elementwise can split over the pool.
type ewOp uint8

const (
	ewSiLU    ewOp = iota // dst = SiLU(x)
	ewSigmoid             // dst = sigmoid(x)
	ewMul                 // dst *= x
)

// elementwiseMin is the length from which elementwise splits its work over
// the pool.
const elementwiseMin = 1 << 16

// elementwise applies op to dst and x, on the calling thread for short
// vectors and over the pool, in pieces of whole 64-element blocks, for long
// ones. Each element's result does not depend on the split (the kernels
// are elementwise, lane by lane), so it is bitwise the kernel's.
func (s *scratch) elementwise(op ewOp, dst, x []float32) {
	s.ew = ewArgs{op: op, dst: dst, x: x}
	if len(dst) < elementwiseMin {
		s.elementwiseRange(0, len(dst))
		return
	}
	kernels.ParallelFor(len(dst), 64, s.ewFn)
}

// ewArgs are the arguments of the elementwise call being run.
type ewArgs struct {
	op     ewOp
	dst, x []float32
}

// elementwiseRange runs elements [lo, hi) of the current elementwise call.
func (s *scratch) elementwiseRange(lo, hi int) {
	a := &s.ew
	dst, x := a.dst[lo:hi], a.x[lo:hi]
	switch a.op {
	case ewSiLU:
		kernels.SiLU(dst, x)
	case ewSigmoid:
		kernels.Sigmoid(dst, x)
	case ewMul:
		kernels.Mul(dst, x)
	}
}

// normRows normalises each width-wide row of x in place (x = RMSNorm(x)·w),
// its rows split over the pool from parallelMinRows rows.
func (s *scratch) normRows(x, w []float32, width int, eps float32) {
	s.nr = normRowsArgs{x: x, w: w, width: width, eps: eps}
	if rows := len(x) / width; rows < parallelMinRows {
		s.normRowsRange(0, rows)
	} else {
		kernels.ParallelFor(rows, 1, s.nrFn)
	}
}

// normRowsArgs are the arguments of the normRows call being run.
type normRowsArgs struct {
	x, w  []float32
	width int
	eps   float32
}

// normRowsRange runs rows [lo, hi) of the current normRows call.
func (s *scratch) normRowsRange(lo, hi int) {
	a := &s.nr
	rows := a.x[lo*a.width : hi*a.width]
	rmsNormRows(rows, rows, a.w, a.width, a.eps)
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
	p := m.prof
	// The q|k|v and gate projections share their input: one dispatch.
	qkv, gate := s.qkv[:T*3*hd], s.gate[:T*hd]
	g := s.grp()
	tensor.MatMulGroup(g, qkv, s.h[:T*c.Dim], T, lw.QKV)
	tensor.MatMulGroup(g, gate, s.h[:T*c.Dim], T, lw.Gate)
	g.Run()
	if p != nil {
		f0, b0 := work(T, lw.QKV)
		f1, b1 := work(T, lw.Gate)
		p.LapShared([]trace.Op{trace.OpQKV, trace.OpGate}, []float64{f0, f1}, []float64{b0, b1})
	}
	m.trace("qkv_proj", l, qkv)
	m.trace("output_gate", l, gate)
	s.elementwise(ewSiLU, qkv, qkv) // SiLU on all of q, k and v (spec §2.5.1)
	s.elementwise(ewSigmoid, gate, gate)
	p.Lap(trace.OpAct, 0, 8*float64(T*4*hd))
	s.layer = l
	// A decode step's recurrence reads and writes each head's d×d state
	// once; below kernels.SerialBytes of them a dispatch costs more than
	// it saves.
	if heads := len(s.spans) * c.Heads; !s.solo && T == len(s.spans) && 8*heads*c.HeadDim*c.HeadDim < kernels.SerialBytes() {
		s.lightningHeads(0, heads)
	} else {
		kernels.ParallelFor(heads, 1, s.linFn)
	}
	if p != nil {
		flops, bytes := m.lightningWork(s.spans)
		p.LapSplit([2]trace.Op{trace.OpLinInter, trace.OpLinIntra}, flops, bytes)
	}
	if s.ring != nil {
		m.lightningRing(s, l, T) // lasp.go
	}
	o := s.o[:T*hd]
	m.trace("lin_attn_core", l, o)
	s.normRows(o, lw.AttnNorm, hd, lightningEps)
	m.trace("lin_attn_normed", l, o)
	p.Lap(trace.OpNorm, 0, 8*float64(T*hd))
	s.elementwise(ewMul, o, gate)
	p.Lap(trace.OpAct, 0, 12*float64(T*hd))
	m.matmul(trace.OpOut, s.a[:T*c.Dim], o, T, lw.Out)
	if m.tracer != nil && len(s.spans) == 1 {
		m.trace("cache_kv", l, s.spans[0].st.lin[l])
	}
}

// lightningWork counts the flops and bytes of one lightning layer's core
// over the spans, as the block algorithm (or the decode recurrence) performs
// them: [0] the inter-block part with the state update — Q·S and Kᵀ·V,
// 4·m·d² per block of m rows, the state read and written — and [1] the
// intra-block part — the full m×m Q·Kᵀ and its product with V, 4·m²·d, with
// q, k, v read and o written.
func (m *Model) lightningWork(spans []span) (flops, bytes [2]float64) {
	c := m.Config
	d, B, H := float64(c.HeadDim), c.BlockLen, float64(c.Heads)
	for _, sp := range spans {
		n := len(sp.tokens)
		bytes[0] += H * 8 * d * d
		bytes[1] += H * 16 * float64(n) * d
		if n == 1 {
			flops[0] += H * 4 * d * d
			continue
		}
		for r0 := 0; r0 < n; r0 += B {
			mb := float64(min(B, n-r0))
			flops[0] += H * 4 * mb * d * d
			flops[1] += H * 4 * mb * mb * d
		}
	}
	return flops, bytes
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
			if p := m.prof; p != nil {
				t0 := time.Now()
				attention.LightningStep(o, q, k, v, st, d, slope)
				p.AddSplit(0, time.Since(t0))
				continue
			}
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
	p := m.prof
	q, k, v := s.qkv[:T*hd], s.kbuf[:T*kvd], s.vbuf[:T*kvd]
	g := s.grp() // the three projections share their input: one dispatch
	tensor.MatMulGroup(g, q, h, T, lw.Q)
	tensor.MatMulGroup(g, k, h, T, lw.K)
	tensor.MatMulGroup(g, v, h, T, lw.V)
	g.Run()
	if p != nil {
		fq, bq := work(T, lw.Q)
		fk, bk := work(T, lw.K)
		fv, bv := work(T, lw.V)
		p.LapShared([]trace.Op{trace.OpQ, trace.OpK, trace.OpV}, []float64{fq, fk, fv}, []float64{bq, bk, bv})
	}
	m.trace("q_proj", l, q)
	m.trace("k_proj", l, k)
	m.trace("v_proj", l, v)
	if T < parallelMinRows {
		s.ropeRows(0, T)
	} else {
		kernels.ParallelFor(T, 1, s.ropeFn)
	}
	if s.ring != nil && s.ring.Prev() {
		m.softmaxRing(s, l, T) // lasp.go
		m.trace("softmax_attn_core", l, s.o[:T*hd])
		m.matmul(trace.OpO, s.a[:T*c.Dim], s.o[:T*hd], T, lw.O)
		return
	}
	for _, sp := range s.spans {
		sp.st.kv[l].Append(k[sp.start*kvd:], v[sp.start*kvd:], kvd, len(sp.tokens))
	}
	kvBytes := float64(m.kvType.BytesPerToken(c.KVHeads, c.HeadDim)) // one token's K and V
	p.Lap(trace.OpRoPE, 0, 4*float64(T*(hd+kvd))*2+float64(T)*kvBytes)
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
	if p != nil {
		// 4·hd flops per head and visible key (q·k and p·v); every span's
		// cache is read once per query tile and KV head group.
		var flops, bytes float64
		for _, sp := range s.spans {
			n, end := float64(len(sp.tokens)), float64(sp.pos+len(sp.tokens))
			keys := (end*(end+1) - float64(sp.pos)*float64(sp.pos+1)) / 2
			flops += 4 * float64(hd) * keys
			tiles := float64(attention.FlashTiles(len(sp.tokens), c.Heads/c.KVHeads))
			bytes += tiles*end*kvBytes + 8*n*float64(hd)
		}
		p.Lap(trace.OpSoftmax, flops, bytes)
	}
	if s.ring != nil && s.ring.Next() {
		m.sendCache(s, l) // lasp.go
	}
	o := s.o[:T*hd]
	m.trace("softmax_attn_core", l, o)
	m.matmul(trace.OpO, s.a[:T*c.Dim], o, T, lw.O)
}

// ropeRows rotates the queries (s.qkv) and keys (s.kbuf) of rows [lo, hi)
// of the current softmax layer by their positions (spec §2.4.1), with each
// row's angles in its own row of s.ropeTab.
func (s *scratch) ropeRows(lo, hi int) {
	m := s.m
	c := m.Config
	hd, kvd, half := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.RopeDim/2
	for r := lo; r < hi; r++ {
		cos, sin := s.ropeTab[r*c.RopeDim:r*c.RopeDim+half], s.ropeTab[r*c.RopeDim+half:(r+1)*c.RopeDim]
		m.rope.Angles(cos, sin, int(s.rowPos[r]))
		m.rope.Rotate(s.qkv[r*hd:(r+1)*hd], c.Heads, c.HeadDim, cos, sin)
		m.rope.Rotate(s.kbuf[r*kvd:(r+1)*kvd], c.KVHeads, c.HeadDim, cos, sin)
	}
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
	rowPos    []int32     // [maxT] each row's position in its sequence
	ropeTab   []float32   // [maxT, ropeDim] each row's RoPE cos | sin
	flash     []flashItem // softmax-attention work items of the current layer
	rowToks   []int32     // [maxT] placeholder token ids of RunLayers spans (only their count is read)
	moe       *moe.Scratch
	group     kernels.Group                    // products of the step that share one dispatch (grp)
	solo      bool                             // SetSoloDispatch: no grouping
	linFree   chan *attention.LightningScratch // one per worker thread
	flashFree chan *attention.FlashScratch     // one per worker thread

	threadBytes int64 // memory of the buffers in linFree and flashFree

	// Sequence-parallel prefill (lasp.go): the ring of the chunk being run
	// (nil otherwise), partial attention results and the current block.
	ring     ChunkRing
	o2       []float32 // [maxT, heads·hd] attention of the queries to one earlier block
	lse      []float32 // [maxT, heads] log-sum-exp of the rows of o
	lse2     []float32 // [maxT, heads] of o2
	block    ringBlock
	blockFn  func(lo, hi int) // s.attendBlock, bound once
	prefixFn func(lo, hi int) // s.prefixHeads, bound once

	spans  []span
	layer  int              // layer being run by the ParallelFor bodies
	rn     residualNormArgs // arguments of the residualNorm being run
	ew     ewArgs           // arguments of the elementwise call being run
	nr     normRowsArgs     // arguments of the normRows call being run
	linFn  func(lo, hi int) // s.lightningHeads, bound once so ParallelFor does not allocate
	smFn   func(lo, hi int) // s.softmaxHeads, likewise
	rnFn   func(lo, hi int) // s.residualNormRows, likewise
	ropeFn func(lo, hi int) // s.ropeRows, likewise
	ewFn   func(lo, hi int) // s.elementwiseRange, likewise
	nrFn   func(lo, hi int) // s.normRowsRange, likewise
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
		final: make([]float32, T*c.Dim), rowPos: make([]int32, T), ropeTab: make([]float32, T*c.RopeDim),
		flash: make([]flashItem, 0, 2*T*c.KVHeads+c.KVHeads),
		moe:   moe.NewScratch(T, c.TopK, c.Dim, c.FFN, c.Experts),
		spans: make([]span, 0, T), rowToks: make([]int32, T),
	}
	s.linFn, s.smFn, s.rnFn, s.ropeFn = s.lightningHeads, s.softmaxHeads, s.residualNormRows, s.ropeRows
	s.ewFn, s.nrFn = s.elementwiseRange, s.normRowsRange
	s.o2, s.lse, s.lse2 = make([]float32, T*hd), make([]float32, T*c.Heads), make([]float32, T*c.Heads)
	s.blockFn, s.prefixFn = s.attendBlock, s.prefixHeads
	// Fault the buffers' pages in now, on every thread, rather than in the
	// first request (fresh memory from the OS is mapped on first write).
	bufs := [][]float32{s.x, s.h, s.a, s.qkv, s.gate, s.o, s.kbuf, s.vbuf, s.router, s.wts, s.final, s.ropeTab}
	kernels.ParallelFor(len(bufs), 1, func(lo, hi int) {
		for _, b := range bufs[lo:hi] {
			touchPages(b)
		}
	})
	s.moe.Touch()
	s.moe.Group = s.grp()
	kernels.SerialBytes() // measure the dispatch cost now, not in the first step
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

// touchPages writes a zero to every 4 KiB page of b, so that the OS maps
// its pages now.
func touchPages(b []float32) {
	for i := 0; i < len(b); i += 1024 {
		b[i] = 0
	}
}
