package minimax01

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/lightninglm/lightning/format/gguf"
	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/tensor"
)

// GGUFExportOptions controls WriteGGUF.
type GGUFExportOptions struct {
	// Type is the ggml type of the matrices: F32, F16, BF16, Q8_0, Q5_0,
	// Q5_1, Q4_K, Q5_K or Q6_K (quant.EncodeQ4_K and friends; a matrix
	// whose rows are not a multiple of the type's block falls back to Q8_0,
	// or F16 when not a multiple of 32). Norm weights and the router gates are always written as F32
	// (llama.cpp's converter and llama-quantize do the same).
	Type gguf.Type
	// Mixed, with Type Q4_K or Q5_K, writes llama.cpp's Q4_K_M or Q5_K_M
	// mix instead of one type (ggufMixType).
	Mixed bool
	// Warn receives a note about matrices written in a fallback type; may
	// be nil.
	Warn func(msg string)
	// Meta holds extra metadata to write (the tokenizer section); may be nil.
	Meta *gguf.Metadata
	// Progress receives output bytes written so far; may be nil.
	Progress func(done, total int64)
}

// ggufFileType is general.file_type (llama_ftype) for each matrix type
// (Q4_K and Q5_K alone are llama.cpp's Q4_K_S and Q5_K_S numbers).
var ggufFileType = map[gguf.Type]uint32{gguf.F32: 0, gguf.F16: 1, gguf.Q8_0: 7, gguf.Q5_0: 8, gguf.Q5_1: 9, gguf.Q4_K: 14, gguf.Q5_K: 16, gguf.Q6_K: 18, gguf.BF16: 32}

// ggufMixedFileType is general.file_type of the mixes: Q4_K_M, Q5_K_M.
var ggufMixedFileType = map[gguf.Type]uint32{gguf.Q4_K: 15, gguf.Q5_K: 17}

// ggufMixType is the type llama.cpp's Q4_K_M and Q5_K_M mixes (base
// Q4_K or Q5_K) give the matrix name, as llama-quantize chooses it for an
// architecture other than Falcon with other than 8 experts: Q6_K for the
// output matrix (the embedding when it is tied); Q5_K (Q4_K_M) or Q6_K
// (Q5_K_M) for the lightning layers' fused attn_qkv; Q6_K for an attn_v and
// an ffn_down(_exps) where useMoreBits holds (vIndex: the attn_v tensor's
// index among the file's attn_v tensors; layer: the block number; both
// counted against layers, as llama.cpp counts attn_v and attn_qkv tensors
// together); base otherwise. Routers and norms are not matrices here.
func ggufMixType(base gguf.Type, name string, tiedEmbed bool, vIndex, layer, layers int) gguf.Type {
	switch {
	case name == "output.weight" || (tiedEmbed && name == "token_embd.weight"):
		return gguf.Q6_K
	case strings.HasSuffix(name, ".attn_qkv.weight"):
		if base == gguf.Q4_K {
			return gguf.Q5_K
		}
		return gguf.Q6_K
	case strings.HasSuffix(name, ".attn_v.weight") && useMoreBits(vIndex, layers):
		return gguf.Q6_K
	case strings.HasSuffix(name, ".ffn_down_exps.weight") && useMoreBits(layer, layers):
		return gguf.Q6_K
	}
	return base
}

// useMoreBits is llama-quantize's choice of the layers that get more bits
// in the _M mixes: the first and last eighth, and every third in between.
func useMoreBits(i, n int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }

// matType is the type a matrix with cols inputs is written in when typ is
// asked for: typ, or the fallback whose blocks fit the rows.
func matType(typ gguf.Type, cols int) gguf.Type {
	for _, t := range []gguf.Type{typ, gguf.Q8_0} {
		if _, err := t.RowBytes(cols); err == nil {
			return t
		}
	}
	return gguf.F16
}

// ggufOut is one tensor to write: its declaration and how to produce its
// rows, matrix by matrix (one matrix, or the experts of a stacked tensor).
type ggufOut struct {
	info gguf.TensorInfo
	want gguf.Type    // the type asked for (info.Type unless the rows do not fit it)
	mats []tensor.Mat // nil for a vector
	vec  []float32
}

// WriteGGUF writes the model c, w as a minimax-01 GGUF file at dst, in
// llama.cpp's names and metadata (gguf.go), streaming one matrix at a time:
// memory holds one converted matrix, never the model. Q8_0 blocks are made
// with Lightning's q8b32 rounding (scale = amax/127 rounded to F16 first,
// quants rounded to nearest even against it), so a Q8_0 file loads back into
// exactly the q8b32 weights `lightning quantize` would give. It fails for a
// model the format cannot describe (unequal residual scales, betas other
// than 1, pre-norm residuals).
func WriteGGUF(dst string, c *Config, w *Weights, opt GGUFExportOptions) error {
	if _, ok := ggufFileType[opt.Type]; !ok {
		return fmt.Errorf("minimax01: GGUF export type %s: want F32, F16, BF16, Q8_0, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K", opt.Type)
	}
	if _, ok := ggufMixedFileType[opt.Type]; opt.Mixed && !ok {
		return fmt.Errorf("minimax01: GGUF export: a mix is made from Q4_K or Q5_K, not %s", opt.Type)
	}
	if c.LinearAlpha != c.FullAlpha || c.FullAlpha != c.MLPAlpha || c.LinearBeta != 1 || c.FullBeta != 1 || c.MLPBeta != 1 || !c.PostNorm {
		return fmt.Errorf("minimax01: %s: llama.cpp's minimax-01 format has one residual scale, betas of 1 and post-norm residuals; this model has alphas %g/%g/%g, betas %g/%g/%g, postnorm %v",
			dst, c.LinearAlpha, c.FullAlpha, c.MLPAlpha, c.LinearBeta, c.FullBeta, c.MLPBeta, c.PostNorm)
	}
	meta := ggufMetadata(c, opt)
	outs := ggufTensors(c, w, opt.Type, opt.Mixed)
	infos := make([]gguf.TensorInfo, len(outs))
	var total int64
	fallbacks := map[string]int{}
	for i, o := range outs {
		infos[i] = o.info
		if o.info.Type != o.want && o.mats != nil {
			fallbacks[fmt.Sprintf("%s (rows of %d)", o.info.Type, o.info.Shape[len(o.info.Shape)-1])]++
		}
		for _, m := range o.mats {
			rb, err := o.info.Type.RowBytes(m.Cols)
			if err != nil {
				return fmt.Errorf("minimax01: %s: tensor %s: %v", dst, o.info.Name, err)
			}
			total += int64(m.Rows * rb)
		}
		total += int64(4 * len(o.vec))
	}
	if opt.Warn != nil {
		for k, n := range fallbacks {
			opt.Warn(fmt.Sprintf("%d tensors written as %s: their rows do not fit %s blocks", n, k, opt.Type))
		}
	}
	gw, err := gguf.Create(dst, meta, infos)
	if err != nil {
		return fmt.Errorf("minimax01: %w", err)
	}
	defer gw.Abort()
	var done int64
	for _, o := range outs {
		if o.mats == nil {
			if err := gw.WriteTensor(o.info.Name, f32Bytes(o.vec)); err != nil {
				return fmt.Errorf("minimax01: %w", err)
			}
			done += int64(4 * len(o.vec))
			if opt.Progress != nil {
				opt.Progress(done, total)
			}
		}
		for _, m := range o.mats {
			b, err := encodeMat(m, o.info.Type)
			if err != nil {
				return fmt.Errorf("minimax01: %s: tensor %s: %w", dst, o.info.Name, err)
			}
			if err := gw.WriteTensor(o.info.Name, b); err != nil {
				return fmt.Errorf("minimax01: %w", err)
			}
			done += int64(len(b))
			if opt.Progress != nil {
				opt.Progress(done, total)
			}
		}
	}
	if err := gw.Close(); err != nil {
		return fmt.Errorf("minimax01: %w", err)
	}
	return nil
}

// ggufMetadata is the minimax-01 key-value section for c, plus opt.Meta.
func ggufMetadata(c *Config, opt GGUFExportOptions) *gguf.Metadata {
	m := gguf.NewMetadata()
	m.Set("general.architecture", GGUFArch)
	ft := ggufFileType[opt.Type]
	if opt.Mixed {
		ft = ggufMixedFileType[opt.Type]
	}
	m.Set("general.file_type", ft)
	if opt.Type != gguf.F32 && opt.Type != gguf.F16 && opt.Type != gguf.BF16 {
		m.Set("general.quantization_version", uint32(2))
	}
	u := func(k string, v int) { m.Set(ggufPrefix+k, uint32(v)) }
	ctx := c.MaxPositions
	if ctx == 0 {
		ctx = 8192
	}
	u("context_length", ctx)
	u("embedding_length", c.Dim)
	u("block_count", c.Layers)
	u("feed_forward_length", c.FFN)
	u("attention.head_count", c.Heads)
	u("attention.head_count_kv", c.KVHeads)
	u("attention.key_length", c.HeadDim)
	u("attention.value_length", c.HeadDim)
	u("rope.dimension_count", c.RopeDim)
	m.Set(ggufPrefix+"rope.freq_base", float32(c.RopeTheta))
	u("expert_count", c.Experts)
	u("expert_used_count", c.TopK)
	m.Set(ggufPrefix+"attention.layer_norm_rms_epsilon", c.NormEps)
	m.Set(ggufPrefix+"residual_scale", c.MLPAlpha)
	// The layer kinds: an interval when they follow one (as the released
	// models do, and as llama.cpp assumes by default), else the full list.
	if iv, ok := fullAttentionInterval(c.LayerKinds); ok {
		u("full_attention_interval", iv)
	} else {
		recr := make([]bool, c.Layers)
		for i, k := range c.LayerKinds {
			recr[i] = k == Lightning
		}
		m.Set(ggufPrefix+"attention.recurrent_layers", gguf.Array{Elem: gguf.TypeBool, Values: recr})
	}
	if opt.Meta != nil {
		for _, k := range opt.Meta.Keys() {
			v, _ := opt.Meta.Get(k)
			m.Set(k, v)
		}
	}
	return m
}

// fullAttentionInterval returns n when layer i is softmax exactly when
// (i+1) % n == 0.
func fullAttentionInterval(kinds []int) (int, bool) {
	for n := 1; n <= len(kinds)+1; n++ {
		ok := true
		for i, k := range kinds {
			if (k == Softmax) != ((i+1)%n == 0) {
				ok = false
				break
			}
		}
		if ok {
			return n, true
		}
	}
	return 0, false
}

// ggufTensors lists the file's tensors in llama.cpp's order, matrices in
// typ (or the mix made from it, ggufMixType).
func ggufTensors(c *Config, w *Weights, typ gguf.Type, mixed bool) []ggufOut {
	vIndex, layer := 0, 0
	typeOf := func(name string) gguf.Type {
		if !mixed {
			return typ
		}
		return ggufMixType(typ, name, c.TieEmbeddings, vIndex, layer, c.Layers)
	}
	mat := func(name string, m tensor.Mat) ggufOut {
		t := typeOf(name)
		return ggufOut{info: gguf.TensorInfo{Name: name, Type: matType(t, m.Cols), Shape: []int{m.Rows, m.Cols}}, want: t, mats: []tensor.Mat{m}}
	}
	vec := func(name string, v []float32, shape ...int) ggufOut {
		return ggufOut{info: gguf.TensorInfo{Name: name, Type: gguf.F32, Shape: shape}, vec: v}
	}
	outs := []ggufOut{mat("token_embd.weight", w.Embed), vec("output_norm.weight", w.Norm, c.Dim)}
	if !c.TieEmbeddings {
		outs = append(outs, mat("output.weight", w.LMHead))
	}
	hd := c.Heads * c.HeadDim
	for i, lw := range w.Layers {
		layer = i
		p := fmt.Sprintf("blk.%d.", i)
		outs = append(outs, vec(p+"attn_norm.weight", lw.InputNorm, c.Dim))
		if c.LayerKinds[i] == Lightning {
			outs = append(outs, mat(p+"attn_qkv.weight", lw.QKV), mat(p+"attn_gate.weight", lw.Gate),
				vec(p+"attn_norm_2.weight", lw.AttnNorm, hd), mat(p+"attn_output.weight", lw.Out))
		} else {
			outs = append(outs, mat(p+"attn_q.weight", lw.Q), mat(p+"attn_k.weight", lw.K),
				mat(p+"attn_v.weight", lw.V), mat(p+"attn_output.weight", lw.O))
			vIndex++
		}
		outs = append(outs, vec(p+"ffn_norm.weight", lw.PostNorm, c.Dim), vec(p+"ffn_gate_inp.weight", lw.Router, c.Experts, c.Dim))
		stack := func(name string, rows, cols int, pick func(e int) tensor.Mat) ggufOut {
			t := typeOf(p + name)
			o := ggufOut{info: gguf.TensorInfo{Name: p + name, Type: matType(t, cols), Shape: []int{c.Experts, rows, cols}}, want: t}
			for e := range c.Experts {
				o.mats = append(o.mats, pick(e))
			}
			return o
		}
		outs = append(outs,
			stack("ffn_gate_exps.weight", c.FFN, c.Dim, func(e int) tensor.Mat { return lw.Experts[e].W1 }),
			stack("ffn_up_exps.weight", c.FFN, c.Dim, func(e int) tensor.Mat { return lw.Experts[e].W3 }),
			stack("ffn_down_exps.weight", c.Dim, c.FFN, func(e int) tensor.Mat { return lw.Experts[e].W2 }))
	}
	return outs
}

// encodeMat converts every row of m (any Lightning format, widened to fp32
// first) to the ggml type typ, rows in parallel on the kernels' pool.
func encodeMat(m tensor.Mat, typ gguf.Type) ([]byte, error) {
	rb, err := typ.RowBytes(m.Cols)
	if err != nil {
		return nil, err
	}
	out := make([]byte, m.Rows*rb)
	var mu sync.Mutex
	var firstErr error
	kernels.ParallelFor(m.Rows, 1, func(lo, hi int) {
		row := make([]float32, m.Cols)
		var q, sc []byte
		if typ == gguf.Q8_0 {
			q, sc = make([]byte, m.Cols), make([]byte, m.Cols/32*2)
		}
		for r := lo; r < hi; r++ {
			tensor.Row(row, m, r)
			o := out[r*rb : (r+1)*rb]
			switch typ {
			case gguf.F32:
				copy(o, f32Bytes(row))
			case gguf.F16:
				for i, v := range row {
					binary.LittleEndian.PutUint16(o[2*i:], kernels.FloatToHalf(v))
				}
			case gguf.BF16:
				for i, v := range row {
					binary.LittleEndian.PutUint16(o[2*i:], kernels.RoundBF16(v))
				}
			case gguf.Q8_0:
				if err := quant.Q8B32.QuantizeRow(q, sc, nil, quant.F16, row); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("row %d: %w", r, err)
					}
					mu.Unlock()
					return
				}
				for b := range m.Cols / 32 {
					copy(o[34*b:], sc[2*b:2*b+2])
					copy(o[34*b+2:34*b+34], q[32*b:32*b+32])
				}
			case gguf.Q5_0:
				quant.EncodeQ5_0(o, row)
			case gguf.Q5_1:
				quant.EncodeQ5_1(o, row)
			case gguf.Q4_K:
				quant.EncodeQ4_K(o, row)
			case gguf.Q5_K:
				quant.EncodeQ5_K(o, row)
			case gguf.Q6_K:
				quant.EncodeQ6_K(o, row)
			}
		}
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// WriteHF writes the model c, w as a Hugging Face checkpoint folder dir:
// config.json in the official spelling and model.safetensors with the
// official tensor names, every matrix widened to fp32 and stored as dtype
// (F32, BF16 or F16), norms and router gates as F32. It streams one matrix
// at a time. This is the way back from a GGUF file (WriteGGUF's inverse up
// to the types' rounding). progress may be nil.
func WriteHF(dir string, c *Config, w *Weights, dtype quant.Type, progress func(done, total int64)) error {
	typ := map[quant.Type]gguf.Type{quant.F32: gguf.F32, quant.BF16: gguf.BF16, quant.F16: gguf.F16}[dtype]
	if dtype != quant.F32 && dtype != quant.BF16 && dtype != quant.F16 {
		return fmt.Errorf("minimax01: Hugging Face export dtype %s: want F32, BF16 or F16", dtype)
	}
	type out struct {
		spec safetensors.TensorSpec
		mat  *tensor.Mat
		vec  []float32
	}
	var outs []out
	mat := func(name string, m *tensor.Mat) {
		outs = append(outs, out{spec: safetensors.TensorSpec{Name: name, DType: safetensors.DType(dtype.String()), Shape: []int{m.Rows, m.Cols}}, mat: m})
	}
	vec := func(name string, v []float32, shape ...int) {
		outs = append(outs, out{spec: safetensors.TensorSpec{Name: name, DType: safetensors.F32, Shape: shape}, vec: v})
	}
	mat(embedName, &w.Embed)
	vec("model.norm.weight", w.Norm, c.Dim)
	if !c.TieEmbeddings {
		mat(lmHeadName, &w.LMHead)
	}
	hd := c.Heads * c.HeadDim
	for i := range w.Layers {
		lw := &w.Layers[i]
		p := fmt.Sprintf("model.layers.%d.", i)
		vec(p+"input_layernorm.weight", lw.InputNorm, c.Dim)
		vec(p+"post_attention_layernorm.weight", lw.PostNorm, c.Dim)
		if c.LayerKinds[i] == Lightning {
			mat(p+"self_attn.qkv_proj.weight", &lw.QKV)
			mat(p+"self_attn.output_gate.weight", &lw.Gate)
			vec(p+"self_attn.norm.weight", lw.AttnNorm, hd)
			mat(p+"self_attn.out_proj.weight", &lw.Out)
		} else {
			mat(p+"self_attn.q_proj.weight", &lw.Q)
			mat(p+"self_attn.k_proj.weight", &lw.K)
			mat(p+"self_attn.v_proj.weight", &lw.V)
			mat(p+"self_attn.o_proj.weight", &lw.O)
		}
		vec(p+"block_sparse_moe.gate.weight", lw.Router, c.Experts, c.Dim)
		for e := range lw.Experts {
			ex := &lw.Experts[e]
			ep := fmt.Sprintf("%sblock_sparse_moe.experts.%d.", p, e)
			mat(ep+"w1.weight", &ex.W1)
			mat(ep+"w3.weight", &ex.W3)
			mat(ep+"w2.weight", &ex.W2)
		}
	}
	specs := make([]safetensors.TensorSpec, len(outs))
	var total int64
	for i, o := range outs {
		specs[i] = o.spec
		if o.mat != nil {
			total += int64(o.mat.Rows * o.mat.Cols * dtype.Info().BlockBytes)
		} else {
			total += int64(4 * len(o.vec))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("minimax01: %w", err)
	}
	sw, err := safetensors.Create(filepath.Join(dir, safetensors.SingleFileName), specs, map[string]string{"format": "pt"})
	if err != nil {
		return fmt.Errorf("minimax01: %w", err)
	}
	defer sw.Abort()
	var done int64
	for _, o := range outs {
		var b []byte
		if o.mat != nil {
			if b, err = encodeMat(*o.mat, typ); err != nil {
				return fmt.Errorf("minimax01: %s: %w", o.spec.Name, err)
			}
		} else {
			b = f32Bytes(o.vec)
		}
		if err := sw.WriteTensor(o.spec.Name, b); err != nil {
			return fmt.Errorf("minimax01: %w", err)
		}
		done += int64(len(b))
		if progress != nil {
			progress(done, total)
		}
	}
	if err := sw.Close(); err != nil {
		return fmt.Errorf("minimax01: %w", err)
	}
	cfg := *c
	cfg.Quant = nil
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg.JSON(dtype), 0o644); err != nil {
		return fmt.Errorf("minimax01: %w", err)
	}
	return nil
}
