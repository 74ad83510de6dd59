package minimax01

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/lightninglm/lightning/format/gguf"
	"github.com/lightninglm/lightning/moe"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/tensor"
)

// GGUF files in llama.cpp's minimax-01 convention (llama.cpp
// src/models/minimax-01.cpp, convert_hf_to_gguf.py MiniMaxText01Model).
//
// Metadata, with PREFIX = "minimax-01.":
//
//	PREFIX.block_count, .embedding_length, .feed_forward_length (expert hidden),
//	.attention.head_count, .attention.head_count_kv, .attention.key_length
//	(head_dim), .rope.dimension_count (rotary_dim), .rope.freq_base,
//	.expert_count, .expert_used_count, .attention.layer_norm_rms_epsilon,
//	.context_length, .residual_scale (one alpha for all three residuals,
//	betas 1), and the layer kinds as .attention.recurrent_layers (true =
//	lightning) or, when absent, .full_attention_interval (default 8: layer i
//	is softmax when (i+1) % interval == 0).
//
// Tensors (GGUF name → official name; shapes row-major):
//
//	token_embd.weight            model.embed_tokens.weight [vocab, dim]
//	output_norm.weight           model.norm.weight [dim]
//	output.weight                lm_head.weight [vocab, dim] (absent when tied)
//	blk.N.attn_norm.weight       input_layernorm.weight [dim]
//	blk.N.ffn_norm.weight        post_attention_layernorm.weight [dim]
//	blk.N.attn_qkv.weight        self_attn.qkv_proj.weight [3·heads·hd, dim] (same head-major [q|k|v] layout)
//	blk.N.attn_gate.weight       self_attn.output_gate.weight [heads·hd, dim]
//	blk.N.attn_norm_2.weight     self_attn.norm.weight [heads·hd]
//	blk.N.attn_output.weight     self_attn.out_proj / o_proj.weight [dim, heads·hd]
//	blk.N.attn_{q,k,v}.weight    self_attn.{q,k,v}_proj.weight
//	blk.N.ffn_gate_inp.weight    block_sparse_moe.gate.weight [experts, dim]
//	blk.N.ffn_gate_exps.weight   experts.E.w1 stacked [experts, ffn, dim]
//	blk.N.ffn_up_exps.weight     experts.E.w3 stacked [experts, ffn, dim]
//	blk.N.ffn_down_exps.weight   experts.E.w2 stacked [experts, dim, ffn]
//
// What the format does not carry, and what Lightning does about it:
//   - One residual scale: the official model has an alpha and a beta per
//     residual site; the released models have equal alphas and betas of 1,
//     which is what the format can say. Lightning reads residual_scale for
//     every alpha and 1 for every beta, and refuses to write a model whose
//     scales differ.
//   - The lightning output norm (attn_norm_2): llama.cpp normalises it with
//     layer_norm_rms_epsilon; the official module uses its default 1e-6.
//     Lightning keeps 1e-6, as it does for safetensors checkpoints.
//   - block_size (the lightning prefill block) is not stored; it does not
//     change the result, and Lightning uses 256.

// GGUFArch is the general.architecture of MiniMax-01 GGUF files.
const GGUFArch = "minimax-01"

const ggufPrefix = GGUFArch + "."

// defaultFullAttentionInterval is llama.cpp's default for minimax-01 when
// a file states neither the recurrent layers nor the interval.
const defaultFullAttentionInterval = 8

// IsGGUF reports whether path names a GGUF file (by its extension).
func IsGGUF(path string) bool { return strings.HasSuffix(strings.ToLower(path), ".gguf") }

// GGUFNotes are the fixed remarks on how Lightning reads a minimax-01 GGUF
// file, for inspect.
var GGUFNotes = []string{
	"residual scales: the file's one residual_scale is used for all three alphas, betas are 1 (the released models' values)",
	"lightning output norm eps: 1e-6 as in the official model (llama.cpp uses layer_norm_rms_epsilon)",
}

// ConfigFromGGUF maps a minimax-01 GGUF file's metadata onto a Config,
// checking it against the tensor directory where the metadata is silent.
func ConfigFromGGUF(f *gguf.File) (*Config, error) {
	m := f.Metadata()
	arch, err := m.String("general.architecture")
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, f.Path(), err)
	}
	if arch != GGUFArch {
		return nil, fmt.Errorf("%w: %s: general.architecture is %q, want %q (MiniMax-Text-01 / M1 as llama.cpp converts them)", ErrConfig, f.Path(), arch, GGUFArch)
	}
	// The training hyper-parameters are not in GGUF: they take the official
	// configuration class's defaults, as for a config.json without them.
	c := &Config{ModelType: "minimax_text_01", PostNorm: true, BlockLen: 256,
		InitRange: DefaultInitRange, RouterAuxCoef: DefaultRouterAuxCoef}
	fail := func(err error) (*Config, error) {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, f.Path(), err)
	}
	num := func(key string, dst *int, minimum int) error {
		v, err := m.Uint(ggufPrefix + key)
		if err != nil {
			return err
		}
		if v < uint64(minimum) || v > 1<<31 {
			return fmt.Errorf("metadata key %s%s: %d, must be at least %d", ggufPrefix, key, v, minimum)
		}
		*dst = int(v)
		return nil
	}
	for _, k := range []struct {
		key string
		dst *int
		min int
	}{
		{"embedding_length", &c.Dim, 1}, {"block_count", &c.Layers, 1},
		{"attention.head_count", &c.Heads, 1}, {"attention.head_count_kv", &c.KVHeads, 1},
		{"rope.dimension_count", &c.RopeDim, 2}, {"expert_count", &c.Experts, 1},
		{"expert_used_count", &c.TopK, 1},
	} {
		if err := num(k.key, k.dst, k.min); err != nil {
			return fail(err)
		}
	}
	if err := num("feed_forward_length", &c.FFN, 1); err != nil {
		if err2 := num("expert_feed_forward_length", &c.FFN, 1); err2 != nil {
			return fail(err)
		}
	}
	if _, ok := m.Get(ggufPrefix + "attention.key_length"); ok {
		if err := num("attention.key_length", &c.HeadDim, 1); err != nil {
			return fail(err)
		}
	} else {
		if c.Dim%c.Heads != 0 {
			return fail(fmt.Errorf("metadata key %sattention.key_length is missing and embedding_length %d is not a multiple of head_count %d", ggufPrefix, c.Dim, c.Heads))
		}
		c.HeadDim = c.Dim / c.Heads
	}
	if c.HeadDim > MaxHeadDim || c.Heads%c.KVHeads != 0 || c.TopK > c.Experts || c.RopeDim%2 != 0 || c.RopeDim > c.HeadDim {
		return fail(fmt.Errorf("inconsistent shape: head_dim %d (max %d), %d heads / %d kv heads, top-%d of %d experts, rope dims %d",
			c.HeadDim, MaxHeadDim, c.Heads, c.KVHeads, c.TopK, c.Experts, c.RopeDim))
	}
	theta, err := m.Float(ggufPrefix + "rope.freq_base")
	if err != nil || !(theta > 1) || math.IsInf(theta, 0) {
		return fail(fmt.Errorf("metadata key %srope.freq_base: %v %v, want a finite number above 1", ggufPrefix, theta, err))
	}
	c.RopeTheta = theta
	eps, err := m.Float(ggufPrefix + "attention.layer_norm_rms_epsilon")
	if err != nil || !(eps > 0 && eps < 1) {
		return fail(fmt.Errorf("metadata key %sattention.layer_norm_rms_epsilon: %v %v, want a number in (0, 1)", ggufPrefix, eps, err))
	}
	c.NormEps = float32(eps)
	alpha, err := m.Float(ggufPrefix + "residual_scale")
	if err != nil || !(alpha >= 0 && alpha < 1e6) {
		return fail(fmt.Errorf("metadata key %sresidual_scale: %v %v, want a finite non-negative number", ggufPrefix, alpha, err))
	}
	c.LinearAlpha, c.FullAlpha, c.MLPAlpha = float32(alpha), float32(alpha), float32(alpha)
	c.LinearBeta, c.FullBeta, c.MLPBeta = 1, 1, 1
	if _, ok := m.Get(ggufPrefix + "context_length"); ok {
		if err := num("context_length", &c.MaxPositions, 1); err != nil {
			return fail(err)
		}
	}

	c.LayerKinds = make([]int, c.Layers)
	if recr, err := m.Ints(ggufPrefix + "attention.recurrent_layers"); err == nil {
		if len(recr) < c.Layers {
			return fail(fmt.Errorf("metadata key %sattention.recurrent_layers has %d entries for %d layers", ggufPrefix, len(recr), c.Layers))
		}
		for i := range c.LayerKinds {
			if recr[i] == 0 {
				c.LayerKinds[i] = Softmax
			}
		}
	} else {
		interval := defaultFullAttentionInterval
		if _, ok := m.Get(ggufPrefix + "full_attention_interval"); ok {
			if err := num("full_attention_interval", &interval, 1); err != nil {
				return fail(err)
			}
		}
		for i := range c.LayerKinds {
			if (i+1)%interval == 0 {
				c.LayerKinds[i] = Softmax
			}
		}
	}

	emb, ok := f.Tensor("token_embd.weight")
	if !ok || len(emb.Shape) != 2 || emb.Shape[1] != c.Dim {
		return fail(fmt.Errorf("tensor token_embd.weight: missing or not [vocab, %d]", c.Dim))
	}
	c.Vocab = emb.Shape[0]
	if v, err := m.Uint(ggufPrefix + "vocab_size"); err == nil && int(v) != c.Vocab {
		return fail(fmt.Errorf("metadata key %svocab_size %d disagrees with token_embd.weight's %d rows", ggufPrefix, v, c.Vocab))
	}
	_, hasOut := f.Tensor("output.weight")
	c.TieEmbeddings = !hasOut
	return c, nil
}

// ggufLoader maps GGUF tensors onto weights, converting quantized types at
// load, and records what it did for inspect.
type ggufLoader struct {
	f     *gguf.File
	used  map[string]bool
	plans map[string]int // "Q8_0 → q8b32 (lossless)" → tensor count
}

func (l *ggufLoader) get(name string, shape ...int) (gguf.Tensor, error) {
	t, ok := l.f.Tensor(name)
	if !ok {
		return t, fmt.Errorf("%w: %s: tensor %s is missing", ErrWeights, l.f.Path(), name)
	}
	l.used[name] = true
	if !sameShape(t.Shape, shape) {
		return t, fmt.Errorf("%w: %s (in %s): shape %v, want %v from the metadata", ErrWeights, name, t.File, t.Shape, shape)
	}
	return t, nil
}

func (l *ggufLoader) vec(name string, shape ...int) ([]float32, error) {
	t, err := l.get(name, shape...)
	if err != nil {
		return nil, err
	}
	q, ok := quant.ByName(t.Type.String())
	if !ok || (q.Quantized() && !q.Info().Inline) {
		return nil, fmt.Errorf("%w: %s (in %s): ggml type %s is not supported", ErrWeights, name, t.File, t.Type)
	}
	v := make([]float32, t.NumElements())
	q.DequantRow(v, t.Data, nil, nil, quant.Invalid)
	return v, nil
}

// mat loads a [rows, cols] matrix, or matrix e of a stacked [E, rows, cols]
// tensor when e ≥ 0.
func (l *ggufLoader) mat(name string, e, experts, rows, cols int) (tensor.Mat, error) {
	var t gguf.Tensor
	var err error
	if e < 0 {
		t, err = l.get(name, rows, cols)
	} else {
		t, err = l.get(name, experts, rows, cols)
	}
	if err != nil {
		return tensor.Mat{}, err
	}
	data := t.Data
	if e >= 0 {
		n := len(data) / experts
		data = data[e*n : (e+1)*n]
	}
	m, how, err := ggufMat(t.Type, rows, cols, data)
	if err != nil {
		return m, fmt.Errorf("%w: %s (in %s): %v", ErrWeights, name, t.File, err)
	}
	if e <= 0 {
		l.plans[fmt.Sprintf("%s → %s", t.Type, how)]++
	}
	return m, nil
}

// GGUFLoadPlan says what a matrix of ggml type typ with cols inputs becomes
// at load (ggufMat), for inspect; every readable type loads without loss.
// F32, F16 and BF16 are used in place. Q8_0, Q4_0 and Q4_1 convert to
// q8b32, q4g32 and q4g32m (F16 scales and mins split from the quants, int4
// nibbles repacked; int4 needs rows of a multiple of 64), whose SIMD int8
// kernels take several rows per call. Q5_0, Q5_1, Q4_K, Q5_K and Q6_K,
// and Q4_0 and Q4_1 rows that are not a multiple of 64, are used in place
// as ggml blocks, whose products have SIMD int8 kernels of their own
// (kernels.MatMulBlock32, kernels.MatMulKQuant). It returns an error naming
// the type when Lightning cannot read it.
func GGUFLoadPlan(typ gguf.Type, cols int) (quant.Type, string, error) {
	switch typ {
	case gguf.Q8_0:
		return quant.Q8B32, "q8b32 (lossless)", nil
	case gguf.Q4_0, gguf.Q4_1:
		if cols%64 == 0 {
			if typ == gguf.Q4_0 {
				return quant.Q4G32, "q4g32 (lossless)", nil
			}
			return quant.Q4G32M, "q4g32m (lossless)", nil
		}
	}
	q, ok := quant.ByName(typ.String())
	switch {
	case ok && !q.Quantized():
		return q, typ.String() + " (as stored)", nil
	case ok && q.Info().Inline:
		return q, typ.String() + " blocks (as stored, lossless; SIMD int8 products)", nil
	}
	return quant.Invalid, "", fmt.Errorf("%w: ggml type %s is not supported (readable: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)", gguf.ErrUnsupported, typ)
}

// ggufMat turns the bytes of one [rows, cols] matrix of ggml type typ into a
// Lightning matrix as GGUFLoadPlan says; how describes it.
func ggufMat(typ gguf.Type, rows, cols int, data []byte) (tensor.Mat, string, error) {
	to, how, err := GGUFLoadPlan(typ, cols)
	if err != nil {
		return tensor.Mat{}, "", err
	}
	stored, _ := quant.ByName(typ.String())
	switch {
	case to == stored && !to.Quantized():
		m, err := tensor.NewMat(rows, cols, to, data)
		return m, how, err
	case to == stored:
		m, err := tensor.NewQMat(rows, cols, to, data, nil, nil, quant.Invalid)
		return m, how, err
	case typ == gguf.Q8_0:
		if m, ok := q8_0ToQ8B32(rows, cols, data); ok {
			return m, how, nil
		}
		m, err := tensor.NewQMat(rows, cols, stored, data, nil, nil, quant.Invalid)
		return m, "Q8_0 blocks (as stored, lossless: a quant of −128 is outside q8b32; SIMD int8 products)", err
	}
	m, err := q4ToLightning(typ, rows, cols, data)
	return m, how, err
}

// q8_0ToQ8B32 splits Q8_0 blocks (F16 d, 32 int8) into q8b32's quants and
// F16 scales. It declines (ok false) when a quant is −128, which q8b32's
// kernels do not accept.
func q8_0ToQ8B32(rows, cols int, data []byte) (tensor.Mat, bool) {
	nb := rows * cols / 32
	q, sc := make([]byte, rows*cols), make([]byte, 2*nb)
	for b := range nb {
		blk := data[34*b : 34*b+34]
		copy(sc[2*b:], blk[:2])
		for j, v := range blk[2:] {
			if v == 0x80 {
				return tensor.Mat{}, false
			}
			q[32*b+j] = v
		}
	}
	m, err := tensor.NewQMat(rows, cols, quant.Q8B32, q, sc, nil, quant.F16)
	return m, err == nil
}

// q4ToLightning repacks Q4_0 (d, 16 bytes: element j in the low nibble of
// byte j, element 16+j in its high nibble) or Q4_1 (d, m, same nibbles)
// into q4g32 / q4g32m: one F16 scale (and min) per 32 elements apart from
// the quants, and nibbles in chunks of 64 (byte 32c+j holds element 64c+j
// low and 64c+32+j high). Both formats compute d·(q−8) or d·q + m.
func q4ToLightning(typ gguf.Type, rows, cols int, data []byte) (tensor.Mat, error) {
	bs, hdr := 18, 2
	if typ == gguf.Q4_1 {
		bs, hdr = 20, 4
	}
	nb := rows * cols / 32
	q, sc := make([]byte, rows*cols/2), make([]byte, 2*nb)
	var mn []byte
	if typ == gguf.Q4_1 {
		mn = make([]byte, 2*nb)
	}
	for b := range nb {
		blk := data[bs*b : bs*b+bs]
		copy(sc[2*b:], blk[:2])
		if mn != nil {
			copy(mn[2*b:], blk[2:4])
		}
		// Block b covers elements 32b…32b+31 of the flat matrix; rows are
		// multiples of 64, so the block is the low (b even) or high (b odd)
		// half of chunk b/2.
		chunk := q[32*(b/2) : 32*(b/2)+32]
		for e := range 32 {
			var v byte
			if e < 16 {
				v = blk[hdr+e] & 15
			} else {
				v = blk[hdr+e-16] >> 4
			}
			if b%2 == 0 {
				chunk[e] = chunk[e]&0xf0 | v
			} else {
				chunk[e] = chunk[e]&0x0f | v<<4
			}
		}
	}
	t := quant.Q4G32
	if typ == gguf.Q4_1 {
		t = quant.Q4G32M
	}
	return tensor.NewQMat(rows, cols, t, q, sc, mn, quant.F16)
}

// loadGGUFWeights maps every tensor the config calls for.
func loadGGUFWeights(c *Config, f *gguf.File) (*Weights, *ggufLoader, error) {
	l := &ggufLoader{f: f, used: map[string]bool{}, plans: map[string]int{}}
	w := &Weights{Layers: make([]LayerWeights, c.Layers)}
	var err error
	if w.Embed, err = l.mat("token_embd.weight", -1, 0, c.Vocab, c.Dim); err != nil {
		return nil, nil, err
	}
	if w.Norm, err = l.vec("output_norm.weight", c.Dim); err != nil {
		return nil, nil, err
	}
	if c.TieEmbeddings {
		w.LMHead = w.Embed
	} else if w.LMHead, err = l.mat("output.weight", -1, 0, c.Vocab, c.Dim); err != nil {
		return nil, nil, err
	}
	hd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	for i := range w.Layers {
		lw := &w.Layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		steps := []func() error{
			func() (err error) { lw.InputNorm, err = l.vec(p+"attn_norm.weight", c.Dim); return },
			func() (err error) { lw.PostNorm, err = l.vec(p+"ffn_norm.weight", c.Dim); return },
		}
		if c.LayerKinds[i] == Lightning {
			steps = append(steps,
				func() (err error) { lw.QKV, err = l.mat(p+"attn_qkv.weight", -1, 0, 3*hd, c.Dim); return },
				func() (err error) { lw.Gate, err = l.mat(p+"attn_gate.weight", -1, 0, hd, c.Dim); return },
				func() (err error) { lw.AttnNorm, err = l.vec(p+"attn_norm_2.weight", hd); return },
				func() (err error) { lw.Out, err = l.mat(p+"attn_output.weight", -1, 0, c.Dim, hd); return })
		} else {
			steps = append(steps,
				func() (err error) { lw.Q, err = l.mat(p+"attn_q.weight", -1, 0, hd, c.Dim); return },
				func() (err error) { lw.K, err = l.mat(p+"attn_k.weight", -1, 0, kvd, c.Dim); return },
				func() (err error) { lw.V, err = l.mat(p+"attn_v.weight", -1, 0, kvd, c.Dim); return },
				func() (err error) { lw.O, err = l.mat(p+"attn_output.weight", -1, 0, c.Dim, hd); return })
		}
		steps = append(steps, func() (err error) { lw.Router, err = l.vec(p+"ffn_gate_inp.weight", c.Experts, c.Dim); return })
		for _, s := range steps {
			if err := s(); err != nil {
				return nil, nil, err
			}
		}
		lw.Experts = make([]moe.Expert, c.Experts)
		for e := range lw.Experts {
			ex := &lw.Experts[e]
			if ex.W1, err = l.mat(p+"ffn_gate_exps.weight", e, c.Experts, c.FFN, c.Dim); err != nil {
				return nil, nil, err
			}
			if ex.W3, err = l.mat(p+"ffn_up_exps.weight", e, c.Experts, c.FFN, c.Dim); err != nil {
				return nil, nil, err
			}
			if ex.W2, err = l.mat(p+"ffn_down_exps.weight", e, c.Experts, c.Dim, c.FFN); err != nil {
				return nil, nil, err
			}
		}
	}
	return w, l, nil
}

// notes describes the load: the fixed mapping remarks, then one line per
// (stored type → Lightning format) with its tensor count.
func (l *ggufLoader) notes() []string {
	out := slices.Clone(GGUFNotes)
	keys := make([]string, 0, len(l.plans))
	for k := range l.plans {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%d matrices %s", l.plans[k], k))
	}
	return out
}

// unused lists tensors of the file the model did not use.
func (l *ggufLoader) unused() []string {
	var out []string
	for _, t := range l.f.Tensors() {
		if !l.used[t.Name] {
			out = append(out, t.Name)
		}
	}
	return out
}

// loadGGUF opens a minimax-01 GGUF file (or the first part of a split one).
func loadGGUF(path string, opt Options) (*Model, error) {
	if opt.Part != nil {
		return nil, fmt.Errorf("minimax01: %s: a GGUF file cannot be loaded in parts yet (serving across processes); convert it with lightning convert -to hf", path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("minimax01: %w", err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("minimax01: %w", err)
	}
	cfg, err := ConfigFromGGUF(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	w, l, err := loadGGUFWeights(cfg, f)
	var qnotes []string
	if err == nil && opt.Quant != nil {
		qnotes, err = quantizeWeights(cfg, w, *opt.Quant)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if opt.BF16Dot {
		w.useBF16Dot(cfg)
	}
	lazyNote := prefaultWeights(cfg, w, opt)
	m := New(cfg, w, opt)
	m.gf = f
	m.Notes = l.notes()
	if u := l.unused(); len(u) > 0 {
		m.Warnings = append(m.Warnings, fmt.Sprintf("%d GGUF tensors are not used by this architecture (first: %s)", len(u), u[0]))
	}
	m.Warnings = append(m.Warnings, qnotes...)
	if lazyNote != "" {
		m.Warnings = append(m.Warnings, lazyNote)
	}
	return m, nil
}
