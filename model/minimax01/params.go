package minimax01

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/moe"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/tensor"
)

// The parameter table (style.md G15): every parameter of a configuration,
// once, in a fixed order, with its checkpoint name, shape and role. Loading,
// random init, saving, gradients and optimizer state all walk it, and an
// fp32 slab laid out by it (Param.Offset, Param.Size) holds weights,
// gradients or AdamW moments alike, as llm.c's ParameterTensors does.

// Role says what a parameter is; each role has one field in Weights.
type Role int

// Roles, in table order within their scope.
const (
	RoleEmbed     Role = iota // model.embed_tokens.weight [vocab, dim]
	RoleLMHead                // lm_head.weight [vocab, dim]; absent when tied
	RoleFinalNorm             // model.norm.weight [dim]
	RoleInputNorm             // input_layernorm.weight [dim]
	RolePostNorm              // post_attention_layernorm.weight [dim]
	RoleQKV                   // lightning self_attn.qkv_proj.weight [heads·3·hd, dim]
	RoleGate                  // lightning self_attn.output_gate.weight [heads·hd, dim]
	RoleAttnNorm              // lightning self_attn.norm.weight [heads·hd]
	RoleOut                   // lightning self_attn.out_proj.weight [dim, heads·hd]
	RoleQ                     // softmax self_attn.q_proj.weight [heads·hd, dim]
	RoleK                     // softmax self_attn.k_proj.weight [kvHeads·hd, dim]
	RoleV                     // softmax self_attn.v_proj.weight [kvHeads·hd, dim]
	RoleO                     // softmax self_attn.o_proj.weight [dim, heads·hd]
	RoleRouter                // block_sparse_moe.gate.weight [E, dim], always fp32
	RoleW1                    // expert w1.weight [ffn, dim], gate projection
	RoleW3                    // expert w3.weight [ffn, dim], up projection
	RoleW2                    // expert w2.weight [dim, ffn], down projection
)

var roleNames = [...]string{"embed", "lm_head", "final_norm", "input_norm", "post_norm", "qkv", "gate",
	"attn_norm", "out", "q", "k", "v", "o", "router", "w1", "w3", "w2"}

// String names the role for messages.
func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleNames[r]
}

// Norm reports whether the role is an RMSNorm weight (a vector initialised
// to ones).
func (r Role) Norm() bool {
	return r == RoleFinalNorm || r == RoleInputNorm || r == RolePostNorm || r == RoleAttnNorm
}

// Linear reports whether the role is an attention projection or an expert
// matrix: the matrices QuantSpec.Format quantizes.
func (r Role) Linear() bool {
	switch r {
	case RoleQKV, RoleGate, RoleOut, RoleQ, RoleK, RoleV, RoleO, RoleW1, RoleW3, RoleW2:
		return true
	}
	return false
}

// Param is one parameter tensor.
type Param struct {
	Name   string // official safetensors name (spec §3.1)
	Shape  []int  // from the config; [rows, cols] for matrices as nn.Linear stores them
	Role   Role
	Layer  int  // decoder layer, or -1 for the embedding, LM head and final norm
	Expert int  // expert index for RoleW1/W3/W2, else -1
	Decay  bool // weight decay applies: tensors of 2 or more dims (not the norm vectors)
	Offset int  // first element in a slab laid out by ParamTable
	Size   int  // elements: the product of Shape
}

// ParamTable lists every parameter of c once: the embedding, the LM head
// (unless tied: then the embedding is the head and has no entry of its
// own), the final norm, then per layer the two norms, the attention
// weights of the layer's kind, the router and the experts' w1, w3, w2.
// Offsets lay the parameters out back to back in that order.
func ParamTable(c *Config) []Param {
	hd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	var ps []Param
	off := 0
	add := func(name string, role Role, layer, expert int, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		ps = append(ps, Param{Name: name, Shape: shape, Role: role, Layer: layer, Expert: expert,
			Decay: len(shape) >= 2, Offset: off, Size: n})
		off += n
	}
	add(embedName, RoleEmbed, -1, -1, c.Vocab, c.Dim)
	if !c.TieEmbeddings {
		add(lmHeadName, RoleLMHead, -1, -1, c.Vocab, c.Dim)
	}
	add("model.norm.weight", RoleFinalNorm, -1, -1, c.Dim)
	for l, kind := range c.LayerKinds {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"input_layernorm.weight", RoleInputNorm, l, -1, c.Dim)
		add(p+"post_attention_layernorm.weight", RolePostNorm, l, -1, c.Dim)
		if kind == Lightning {
			add(p+"self_attn.qkv_proj.weight", RoleQKV, l, -1, 3*hd, c.Dim)
			add(p+"self_attn.output_gate.weight", RoleGate, l, -1, hd, c.Dim)
			add(p+"self_attn.norm.weight", RoleAttnNorm, l, -1, hd)
			add(p+"self_attn.out_proj.weight", RoleOut, l, -1, c.Dim, hd)
		} else {
			add(p+"self_attn.q_proj.weight", RoleQ, l, -1, hd, c.Dim)
			add(p+"self_attn.k_proj.weight", RoleK, l, -1, kvd, c.Dim)
			add(p+"self_attn.v_proj.weight", RoleV, l, -1, kvd, c.Dim)
			add(p+"self_attn.o_proj.weight", RoleO, l, -1, c.Dim, hd)
		}
		add(p+"block_sparse_moe.gate.weight", RoleRouter, l, -1, c.Experts, c.Dim)
		for e := 0; e < c.Experts; e++ {
			ep := fmt.Sprintf("%sblock_sparse_moe.experts.%d.", p, e)
			add(ep+"w1.weight", RoleW1, l, e, c.FFN, c.Dim)
			add(ep+"w3.weight", RoleW3, l, e, c.FFN, c.Dim)
			add(ep+"w2.weight", RoleW2, l, e, c.Dim, c.FFN)
		}
	}
	return ps
}

// SlabSize is the number of float32s of a slab laid out by ParamTable(c).
func SlabSize(ps []Param) int {
	if len(ps) == 0 {
		return 0
	}
	last := ps[len(ps)-1]
	return last.Offset + last.Size
}

// newWeightsShell returns Weights with the per-layer and per-expert slices
// allocated and every tensor empty, ready for Bind.
func newWeightsShell(c *Config) *Weights {
	w := &Weights{Layers: make([]LayerWeights, c.Layers)}
	for i := range w.Layers {
		w.Layers[i].Experts = make([]moe.Expert, c.Experts)
	}
	return w
}

// Bind returns where parameter p lives in w: a matrix (m) or a vector (v),
// exactly one of them non-nil. The router gate is a vector: the model keeps
// it as fp32 values [E, dim]. w must have the layers and experts of the
// configuration p came from.
func (w *Weights) Bind(p Param) (m *tensor.Mat, v *[]float32) {
	var lw *LayerWeights
	if p.Layer >= 0 {
		lw = &w.Layers[p.Layer]
	}
	switch p.Role {
	case RoleEmbed:
		return &w.Embed, nil
	case RoleLMHead:
		return &w.LMHead, nil
	case RoleFinalNorm:
		return nil, &w.Norm
	case RoleInputNorm:
		return nil, &lw.InputNorm
	case RolePostNorm:
		return nil, &lw.PostNorm
	case RoleQKV:
		return &lw.QKV, nil
	case RoleGate:
		return &lw.Gate, nil
	case RoleAttnNorm:
		return nil, &lw.AttnNorm
	case RoleOut:
		return &lw.Out, nil
	case RoleQ:
		return &lw.Q, nil
	case RoleK:
		return &lw.K, nil
	case RoleV:
		return &lw.V, nil
	case RoleO:
		return &lw.O, nil
	case RoleRouter:
		return nil, &lw.Router
	case RoleW1:
		return &lw.Experts[p.Expert].W1, nil
	case RoleW3:
		return &lw.Experts[p.Expert].W3, nil
	case RoleW2:
		return &lw.Experts[p.Expert].W2, nil
	}
	panic("minimax01: Bind: unknown parameter role")
}

// NewF32Weights returns fp32 weights whose matrices and vectors are
// writable views into one slab laid out by ParamTable(c) (a tied LM head is
// the embedding's view). Writing to the slab changes the weights, so a
// model built with New on them follows every optimizer step.
func NewF32Weights(c *Config) (*Weights, []float32) {
	ps := ParamTable(c)
	slab := make([]float32, SlabSize(ps))
	w := newWeightsShell(c)
	for _, p := range ps {
		view := slab[p.Offset : p.Offset+p.Size : p.Offset+p.Size]
		m, v := w.Bind(p)
		if m != nil {
			*m = tensor.Mat{Rows: p.Shape[0], Cols: p.Shape[1], Type: quant.F32, Data: f32Bytes(view)}
		} else {
			*v = view
		}
	}
	if c.TieEmbeddings {
		w.LMHead = w.Embed
	}
	return w, slab
}

// InitWeights fills a slab laid out by ParamTable(c) with a fresh model:
// the official _init_weights (every nn.Linear and the embedding drawn from
// N(0, initializer_range²)) and RMSNorm weights at one, as the modules are
// constructed. It is the init of `lightning random-model` too. Values are
// reproducible: each tensor is drawn in pieces whose generators are seeded
// from (seed, tensor name, piece), so a tensor's values do not depend on
// the rest of the table or on the thread count.
func InitWeights(c *Config, slab []float32, seed uint64) {
	ps := ParamTable(c)
	if len(slab) != SlabSize(ps) {
		panic("minimax01: InitWeights: slab length is not the parameter table's size")
	}
	for _, p := range ps {
		initParam(slab[p.Offset:p.Offset+p.Size], p, c.InitRange, seed)
	}
}

// initParam draws parameter p into dst (len p.Size): ones for a norm, else
// N(0, std²).
func initParam(dst []float32, p Param, std float64, seed uint64) {
	if p.Role.Norm() {
		for i := range dst {
			dst[i] = 1
		}
		return
	}
	h := fnv.New64a()
	h.Write([]byte(p.Name))
	key := h.Sum64()
	const piece = 1 << 20
	kernels.ParallelFor((len(dst)+piece-1)/piece, 1, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			r := rand.New(rand.NewPCG(seed, key+uint64(k)))
			for i := k * piece; i < min(len(dst), (k+1)*piece); i++ {
				dst[i] = float32(std * r.NormFloat64())
			}
		}
	})
}

// WeightBytes are the memory of a model's weights as loaded: matrices in
// their stored or quantized format (scales included; ggml blocks at their
// block size), vectors as fp32.
type WeightBytes struct {
	Total int64 // every parameter once (a tied head is the embedding)
	// PerToken is what one decoded token reads: one embedding row, the LM
	// head, every attention matrix, norm weight and router gate, and TopK of
	// each layer's experts at their average size. Norms count: they are
	// read on every token like the rest.
	PerToken int64
	// PerTokenByType splits PerToken by the format the bytes are read in
	// (vectors count as F32). The experts' share is rounded down per type,
	// so the values may add up to a few bytes less than PerToken.
	PerTokenByType map[quant.Type]int64
}

// Bytes measures w, whose shapes are c's, by walking the parameter table.
func (w *Weights) Bytes(c *Config) WeightBytes {
	b := WeightBytes{PerTokenByType: map[quant.Type]int64{}}
	var experts int64
	expertsByType := map[quant.Type]int64{}
	for _, p := range ParamTable(c) {
		var n int64
		typ := quant.F32
		if m, v := w.Bind(p); m != nil {
			n, typ = int64(m.Bytes()), m.Type
		} else {
			n = int64(len(*v)) * 4
		}
		b.Total += n
		var read int64 // bytes of p one token reads, experts aside
		switch {
		case p.Role == RoleEmbed:
			read = n / int64(c.Vocab) // the token's row
			if c.TieEmbeddings {
				read += n // and all of it as the LM head
			}
		case p.Expert >= 0:
			experts += n
			expertsByType[typ] += n
		default:
			read = n
		}
		b.PerToken += read
		if read > 0 {
			b.PerTokenByType[typ] += read
		}
	}
	b.PerToken += experts * int64(c.TopK) / int64(c.Experts)
	for typ, n := range expertsByType {
		b.PerTokenByType[typ] += n * int64(c.TopK) / int64(c.Experts)
	}
	return b
}

// DecodeBytes is what one decode step of a sequence at context ctx moves
// through memory: the weights one token reads, in the format they are
// stored in (WeightBytes.PerToken), the softmax layers' KV cache of ctx
// tokens, read, and the lightning layers' fp32 states, read and written.
// Over the read bandwidth it is the floor of a decode step's time.
func (m *Model) DecodeBytes(ctx int) int64 {
	c := m.Config
	kv := int64(c.Count(Softmax)) * m.kvType.BytesPerToken(c.KVHeads, c.HeadDim)
	return m.Weights.Bytes(c).PerToken + kv*int64(ctx) + 2*c.Memory().StateBytes
}
