package minimax01

import (
	"errors"
	"fmt"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/moe"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/tensor"
)

// Weights are the model's parameters as views into the checkpoint (never an
// fp32 copy of the big matrices). Vectors (norm weights, router gates) are
// small and kept as fp32 copies. Names in comments are the official
// safetensors keys (spec §3.1), relative to "model.layers.N." for layers.
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

func (l *loader) mat(name string, rows, cols int) (tensor.Mat, error) {
	if !l.part.Holds(name) {
		return tensor.Mat{}, nil
	}
	if l.quant != nil {
		if q := l.quant.typeFor(name, l.tied, cols); q != quant.Invalid {
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
	if !l.part.Holds(name) {
		return nil, nil
	}
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

// loadWeights maps every tensor the config calls for, validating dtypes and
// shapes, so Forward can never meet a bad shape. It also returns the names of
// checkpoint tensors the model does not use.
//
// With a part, only its tensors are mapped and copied (the files are mapped
// lazily, so the others are never read), and only its tensors count as used.
func loadWeights(c *Config, ck *safetensors.Checkpoint, part *Part) (*Weights, []string, error) {
	l := &loader{ck: ck, used: map[string]bool{}, quant: c.Quant, tied: c.TieEmbeddings, part: part}
	w := &Weights{Layers: make([]LayerWeights, c.Layers)}
	var err error
	if w.Embed, err = l.mat("model.embed_tokens.weight", c.Vocab, c.Dim); err != nil {
		return nil, nil, err
	}
	if w.Norm, err = l.vec("model.norm.weight", c.Dim); err != nil {
		return nil, nil, err
	}
	if c.TieEmbeddings {
		w.LMHead = w.Embed
	} else if w.LMHead, err = l.mat("lm_head.weight", c.Vocab, c.Dim); err != nil {
		return nil, nil, err
	}
	hd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	for i := range w.Layers {
		lw := &w.Layers[i]
		p := fmt.Sprintf("model.layers.%d.", i)
		if lw.InputNorm, err = l.vec(p+"input_layernorm.weight", c.Dim); err != nil {
			return nil, nil, err
		}
		if lw.PostNorm, err = l.vec(p+"post_attention_layernorm.weight", c.Dim); err != nil {
			return nil, nil, err
		}
		if c.LayerKinds[i] == Lightning {
			if lw.QKV, err = l.mat(p+"self_attn.qkv_proj.weight", 3*hd, c.Dim); err != nil {
				return nil, nil, err
			}
			if lw.Gate, err = l.mat(p+"self_attn.output_gate.weight", hd, c.Dim); err != nil {
				return nil, nil, err
			}
			if lw.AttnNorm, err = l.vec(p+"self_attn.norm.weight", hd); err != nil {
				return nil, nil, err
			}
			if lw.Out, err = l.mat(p+"self_attn.out_proj.weight", c.Dim, hd); err != nil {
				return nil, nil, err
			}
		} else {
			if lw.Q, err = l.mat(p+"self_attn.q_proj.weight", hd, c.Dim); err != nil {
				return nil, nil, err
			}
			if lw.K, err = l.mat(p+"self_attn.k_proj.weight", kvd, c.Dim); err != nil {
				return nil, nil, err
			}
			if lw.V, err = l.mat(p+"self_attn.v_proj.weight", kvd, c.Dim); err != nil {
				return nil, nil, err
			}
			if lw.O, err = l.mat(p+"self_attn.o_proj.weight", c.Dim, hd); err != nil {
				return nil, nil, err
			}
		}
		if err := l.loadMoE(c, p, lw); err != nil {
			return nil, nil, err
		}
	}
	return w, l.unused(), nil
}

// loadMoE maps the router and experts, from the official per-expert layout or
// the HF transformers v5 fused layout (spec §3.4): mlp.gate.weight,
// mlp.experts.gate_up_proj [E, 2F, H] (gate rows first) and
// mlp.experts.down_proj [E, H, F].
func (l *loader) loadMoE(c *Config, p string, lw *LayerWeights) error {
	var err error
	lw.Experts = make([]moe.Expert, c.Experts)
	if !l.has(p+"block_sparse_moe.gate.weight") && l.has(p+"mlp.gate.weight") {
		if lw.Router, err = l.vec(p+"mlp.gate.weight", c.Experts, c.Dim); err != nil {
			return err
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
			if l.part != nil && !l.part.holdsExpert(layerOf(p), e) {
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
	if lw.Router, err = l.vec(p+"block_sparse_moe.gate.weight", c.Experts, c.Dim); err != nil {
		return err
	}
	for e := range lw.Experts {
		ep := fmt.Sprintf("%sblock_sparse_moe.experts.%d.", p, e)
		ex := &lw.Experts[e]
		if ex.W1, err = l.mat(ep+"w1.weight", c.FFN, c.Dim); err != nil {
			return err
		}
		if ex.W3, err = l.mat(ep+"w3.weight", c.FFN, c.Dim); err != nil {
			return err
		}
		if ex.W2, err = l.mat(ep+"w2.weight", c.Dim, c.FFN); err != nil {
			return err
		}
	}
	return nil
}

// layerOf returns N of the tensor prefix "model.layers.N.".
func layerOf(prefix string) int {
	var l int
	fmt.Sscanf(prefix, "model.layers.%d.", &l)
	return l
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

// useBF16Dot switches the BF16 attention and expert matrices to the lossy
// bf16-activation kernel (Options.BF16Dot). The embedding and the LM head
// keep the exact path.
func (w *Weights) useBF16Dot() {
	sw := func(m *tensor.Mat) {
		if m.Type == quant.BF16 {
			m.Type = quant.BF16Dot
		}
	}
	for i := range w.Layers {
		lw := &w.Layers[i]
		for _, m := range []*tensor.Mat{&lw.QKV, &lw.Gate, &lw.Out, &lw.Q, &lw.K, &lw.V, &lw.O} {
			sw(m)
		}
		for e := range lw.Experts {
			ex := &lw.Experts[e]
			sw(&ex.W1)
			sw(&ex.W2)
			sw(&ex.W3)
		}
	}
}
