package minimax01

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/moe"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/tensor"
)

// Weights are the model's parameters. Loaded for inference they are views
// into the checkpoint (never an fp32 copy of the big matrices), with the
// small vectors (norm weights, router gates) as fp32 copies; for training
// (NewF32Weights) every tensor is a view into one fp32 slab. Names in
// comments are the official safetensors keys (spec §3.1), relative to
// "model.layers.N." for layers; ParamTable lists them all.
type Weights struct {
	Embed  tensor.Mat // model.embed_tokens.weight [vocab, dim]
	Norm   []float32  // model.norm.weight [dim]
	LMHead tensor.Mat // lm_head.weight [vocab, dim] (= Embed when tied)
	Layers []LayerWeights
}

// LayerWeights are one decoder layer's parameters; the attention fields of the
// other layer kind are zero.
type LayerWeights struct {
	InputNorm []float32 // input_layernorm.weight [dim]
	PostNorm  []float32 // post_attention_layernorm.weight [dim]

	// Lightning attention (spec §2.5).
	QKV      tensor.Mat // self_attn.qkv_proj.weight [heads·3·headDim, dim], head-major [q|k|v]
	Gate     tensor.Mat // self_attn.output_gate.weight [heads·headDim, dim]
	AttnNorm []float32  // self_attn.norm.weight [heads·headDim]
	Out      tensor.Mat // self_attn.out_proj.weight [dim, heads·headDim]

	// Softmax attention (spec §2.4).
	Q tensor.Mat // self_attn.q_proj.weight [heads·headDim, dim]
	K tensor.Mat // self_attn.k_proj.weight [kvHeads·headDim, dim]
	V tensor.Mat // self_attn.v_proj.weight [kvHeads·headDim, dim]
	O tensor.Mat // self_attn.o_proj.weight [dim, heads·headDim]

	// MoE (spec §2.6).
	Router  []float32    // block_sparse_moe.gate.weight [experts, dim], fp32
	Experts []moe.Expert // block_sparse_moe.experts.E.{w1,w3,w2}.weight
}

// ErrWeights wraps every error about a checkpoint's tensors.
var ErrWeights = errors.New("minimax01: bad checkpoint")

// loader reads tensors by name, checking dtype and shape against the config,
// and remembers which names it used so unknown leftovers can be reported.
type loader struct {
	ck    *safetensors.Checkpoint
	used  map[string]bool
	quant *QuantSpec // the checkpoint's quantization_config, or nil
	tied  bool       // tie_word_embeddings (QuantSpec.typeFor)
	part  *Part      // the tensors to load (nil: all); the others stay zero
}

func dtypeOf(t safetensors.Tensor) (quant.Type, error) {
	switch t.DType {
	case safetensors.F32:
		return quant.F32, nil
	case safetensors.BF16:
		return quant.BF16, nil
	case safetensors.F16:
		return quant.F16, nil
	}
	return quant.Invalid, fmt.Errorf("%w: %s (in %s): dtype %s is not supported; weights must be F32, BF16 or F16", ErrWeights, t.Name, t.File, t.DType)
}

func (l *loader) get(name string, shape ...int) (safetensors.Tensor, quant.Type, error) {
	t, err := l.ck.Tensor(name)
	if err != nil {
		return t, 0, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	l.used[name] = true
	typ, err := dtypeOf(t)
	if err != nil {
		return t, 0, err
	}
	if !sameShape(t.Shape, shape) {
		return t, 0, fmt.Errorf("%w: %s (in %s): shape %v, want %v from config.json", ErrWeights, name, t.File, t.Shape, shape)
	}
	return t, typ, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (l *loader) mat(p Param) (tensor.Mat, error) {
	name, rows, cols := p.Name, p.Shape[0], p.Shape[1]
	if l.quant != nil {
		if q := l.quant.typeFor(p.Role, l.tied, cols); q != quant.Invalid {
			return l.qmat(name, rows, cols, q) // quantize.go
		}
	}
	t, typ, err := l.get(name, rows, cols)
	if err != nil {
		return tensor.Mat{}, err
	}
	m, err := tensor.NewMat(rows, cols, typ, t.Data)
	if err != nil {
		return m, fmt.Errorf("%w: %s: %v", ErrWeights, name, err)
	}
	return m, nil
}

func (l *loader) vec(name string, shape ...int) ([]float32, error) {
	t, typ, err := l.get(name, shape...)
	if err != nil {
		return nil, err
	}
	out := make([]float32, t.NumElements())
	typ.Info().Dequant(out, t.Data)
	return out, nil
}

// has reports whether the checkpoint holds name.
func (l *loader) has(name string) bool {
	_, err := l.ck.Tensor(name)
	return err == nil
}

// loadWeights maps every tensor of the parameter table, validating dtypes
// and shapes, so Forward can never meet a bad shape. A layer whose experts
// are in the HF fused layout (spec §3.4) takes its router and experts from
// there instead. It also returns the names of checkpoint tensors the model
// does not use.
//
// With a part, only the table entries it holds (Part.HoldsParam) are mapped
// and copied (the files are mapped lazily, so the others are never read) and
// the others stay empty; only its tensors count as used.
func loadWeights(c *Config, ck *safetensors.Checkpoint, part *Part) (*Weights, []string, error) {
	l := &loader{ck: ck, used: map[string]bool{}, quant: c.Quant, tied: c.TieEmbeddings, part: part}
	w := newWeightsShell(c)
	fused := make([]bool, c.Layers)
	for i := range fused {
		pre := fmt.Sprintf("model.layers.%d.", i)
		fused[i] = !l.has(pre+"block_sparse_moe.gate.weight") && l.has(pre+"mlp.gate.weight")
	}
	for _, p := range ParamTable(c) {
		if (p.Role == RoleRouter || p.Expert >= 0) && fused[p.Layer] {
			// The router entry stands for the layer's fused tensors, whose
			// experts the part may hold even when it holds no router.
			if p.Role == RoleRouter {
				if err := l.loadFusedMoE(c, p.Layer, &w.Layers[p.Layer]); err != nil {
					return nil, nil, err
				}
			}
			continue
		}
		if !part.HoldsParam(p) {
			continue
		}
		var err error
		if m, v := w.Bind(p); m != nil {
			*m, err = l.mat(p)
		} else {
			*v, err = l.vec(p.Name, p.Shape...)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if c.TieEmbeddings {
		w.LMHead = w.Embed
	}
	return w, l.unused(), nil
}

// loadFusedMoE maps one layer's router and experts from the HF transformers
// v5 fused layout (spec §3.4): mlp.gate.weight, mlp.experts.gate_up_proj
// [E, 2F, H] (gate rows first) and mlp.experts.down_proj [E, H, F]. With a
// part, only the router and experts it holds are taken.
func (l *loader) loadFusedMoE(c *Config, layer int, lw *LayerWeights) error {
	p := fmt.Sprintf("model.layers.%d.", layer)
	var err error
	if l.part.holdsRouter(layer) {
		if lw.Router, err = l.vec(p+"mlp.gate.weight", c.Experts, c.Dim); err != nil {
			return err
		}
	}
	if !l.part.holdsExpertsOf(layer) {
		return nil
	}
	gu, gtyp, err := l.get(p+"mlp.experts.gate_up_proj", c.Experts, 2*c.FFN, c.Dim)
	if err != nil {
		return err
	}
	dn, dtyp, err := l.get(p+"mlp.experts.down_proj", c.Experts, c.Dim, c.FFN)
	if err != nil {
		return err
	}
	guBytes, dnBytes := len(gu.Data)/c.Experts, len(dn.Data)/c.Experts
	for e := range lw.Experts {
		if !l.part.holdsExpert(layer, e) {
			continue
		}
		g := gu.Data[e*guBytes : (e+1)*guBytes]
		ex := &lw.Experts[e]
		if ex.W1, err = tensor.NewMat(c.FFN, c.Dim, gtyp, g[:guBytes/2]); err != nil {
			return err
		}
		if ex.W3, err = tensor.NewMat(c.FFN, c.Dim, gtyp, g[guBytes/2:]); err != nil {
			return err
		}
		if ex.W2, err = tensor.NewMat(c.Dim, c.FFN, dtyp, dn.Data[e*dnBytes:(e+1)*dnBytes]); err != nil {
			return err
		}
	}
	return nil
}

// unused lists checkpoint tensors the model did not use (reported as a
// warning by callers: an unexpected tensor usually means a different model).
func (l *loader) unused() []string {
	var out []string
	for _, n := range l.ck.Names() {
		if !l.used[n] && l.part.Holds(n) {
			out = append(out, n)
		}
	}
	return out
}

// useBF16Dot switches the BF16 attention and expert matrices (Role.Linear)
// to the lossy bf16-activation kernel (Options.BF16Dot). The embedding and
// the LM head keep the exact path.
func (w *Weights) useBF16Dot(c *Config) {
	for _, p := range ParamTable(c) {
		if m, _ := w.Bind(p); p.Role.Linear() && m.Type == quant.BF16 {
			m.Type = quant.BF16Dot
		}
	}
}

// prefault brings every page of the weight matrices into memory on the
// kernel pool's threads (safetensors.Prefault: from the page cache, or the
// disk), so the first request does not fault them in one at a time.
func (w *Weights) prefault(c *Config) {
	const piece = 8 << 20 // bytes per work item
	var pieces [][]byte
	seen := map[*byte]bool{} // a tied LM head is the embedding
	for _, p := range ParamTable(c) {
		m, _ := w.Bind(p)
		if m == nil {
			continue
		}
		for _, b := range [][]byte{m.Data, m.Scales, m.Mins} {
			if len(b) == 0 || seen[&b[0]] {
				continue
			}
			seen[&b[0]] = true
			for ; len(b) > 0; b = b[min(piece, len(b)):] {
				pieces = append(pieces, b[:min(piece, len(b))])
			}
		}
	}
	kernels.ParallelFor(len(pieces), 1, func(lo, hi int) {
		for _, b := range pieces[lo:hi] {
			safetensors.Prefault(b)
		}
	})
}

// availableMemory is MemAvailable of /proc/meminfo in bytes (free memory
// plus what the page cache can give back, the model file's cached pages
// included), or 0 where it cannot be read.
func availableMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(rest, "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
