package minimax01

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/quant"
)

// Preset is a named model shape for random-weight models: benchmarks, demos
// and tests compare engines on exactly these shapes.
type Preset struct {
	Name    string
	Summary string
	config  func() *Config
}

// realConfig is MiniMax-Text-01 / M1 (spec §1.1); presets change only their
// shape and keep every other value.
func realConfig() *Config {
	c := &Config{
		ModelType: "minimax_text_01", Vocab: 200064, Dim: 6144, Layers: 80, Heads: 64, KVHeads: 8,
		HeadDim: 128, RopeDim: 64, RopeTheta: 1e7, FFN: 9216, Experts: 32, TopK: 2, NormEps: 1e-5,
		BlockLen: 256, PostNorm: true, MaxPositions: 10240000,
		InitRange: DefaultInitRange, RouterAuxCoef: DefaultRouterAuxCoef,
	}
	a := float32(3.5565588200778455)
	c.LinearAlpha, c.FullAlpha, c.MLPAlpha = a, a, a
	c.LinearBeta, c.FullBeta, c.MLPBeta = 1, 1, 1
	c.LayerKinds = mix(80)
	return c
}

// mix returns n layer kinds in the 7:1 pattern (softmax at every 8th layer).
func mix(n int) []int {
	k := make([]int, n)
	for i := range k {
		if (i+1)%8 == 0 {
			k[i] = Softmax
		}
	}
	return k
}

func shaped(vocab, dim, layers, heads, kv, hd, rope, experts, ffn int) func() *Config {
	return func() *Config {
		c := realConfig()
		c.Vocab, c.Dim, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.RopeDim = vocab, dim, layers, heads, kv, hd, rope
		c.Experts, c.FFN, c.LayerKinds = experts, ffn, mix(layers)
		return c
	}
}

// Presets lists the built-in shapes.
var Presets = []Preset{
	{"tiny", "the golden tiny-a shape: hidden 64, 8 layers [0]*7+[1], 4 heads × 16, 2 kv heads, rotary 8, 4 experts top-2, ffn 128, vocab 512",
		shaped(512, 64, 8, 4, 2, 16, 8, 4, 128)},
	{"m300", "hidden 1024, 8 layers [0]*7+[1], 8 heads × 128, 8 kv heads, rotary 64, 8 experts top-2, ffn 1024, vocab 32000 (~306M parameters)",
		shaped(32000, 1024, 8, 8, 8, 128, 64, 8, 1024)},
	{"b2", "hidden 2048, 16 layers ([0]*7+[1])*2, 16 heads × 128, 4 kv heads, rotary 64, 8 experts top-2, ffn 2048, vocab 32000 (~2.1B parameters, 0.8B active)",
		shaped(32000, 2048, 16, 16, 4, 128, 64, 8, 2048)},
	{"long", "a narrow model for million-token runs: hidden 256, 8 layers [0]*7+[1], 2 heads × 32, 1 kv head, rotary 16, 4 experts top-2, ffn 256, vocab 1024",
		shaped(1024, 256, 8, 2, 1, 32, 16, 4, 256)},
	{"minimax-text-01", "the real MiniMax-Text-01 / M1 shape (456B parameters; for inspect, far too large to generate here)", realConfig},
}

// PresetConfig returns the configuration of a named preset.
func PresetConfig(name string) (*Config, error) {
	for _, p := range Presets {
		if p.Name == name {
			return p.config(), nil
		}
	}
	names := make([]string, len(Presets))
	for i, p := range Presets {
		names[i] = p.Name
	}
	return nil, fmt.Errorf("minimax01: unknown preset %q (have %v)", name, names)
}

// JSON renders the configuration as an official-spelling config.json.
func (c *Config) JSON(dtype quant.Type) []byte {
	m := map[string]any{
		"architectures":                    []string{"MiniMaxText01ForCausalLM"},
		"model_type":                       c.ModelType,
		"attn_type_list":                   c.LayerKinds,
		"vocab_size":                       c.Vocab,
		"hidden_size":                      c.Dim,
		"num_hidden_layers":                c.Layers,
		"num_attention_heads":              c.Heads,
		"num_key_value_heads":              c.KVHeads,
		"head_dim":                         c.HeadDim,
		"rotary_dim":                       c.RopeDim,
		"rope_theta":                       c.RopeTheta,
		"intermediate_size":                c.FFN,
		"num_local_experts":                c.Experts,
		"num_experts_per_tok":              c.TopK,
		"rms_norm_eps":                     float64(c.NormEps),
		"postnorm":                         c.PostNorm,
		"layernorm_linear_attention_alpha": float64(c.LinearAlpha),
		"layernorm_linear_attention_beta":  float64(c.LinearBeta),
		"layernorm_full_attention_alpha":   float64(c.FullAlpha),
		"layernorm_full_attention_beta":    float64(c.FullBeta),
		"layernorm_mlp_alpha":              float64(c.MLPAlpha),
		"layernorm_mlp_beta":               float64(c.MLPBeta),
		"hidden_act":                       "silu",
		"tie_word_embeddings":              c.TieEmbeddings,
		"shared_intermediate_size":         0,
		"sliding_window":                   nil,
		"initializer_range":                c.InitRange,
		"router_aux_loss_coef":             c.RouterAuxCoef,
		"bos_token_id":                     nil,
		"eos_token_id":                     nil,
		"torch_dtype":                      map[quant.Type]string{quant.F32: "float32", quant.BF16: "bfloat16", quant.F16: "float16"}[dtype],
	}
	if c.BlockLen != 256 {
		m["block_size"] = c.BlockLen
	}
	if c.MaxPositions > 0 { // absent stays absent: no context limit, not a limit of 1
		m["max_position_embeddings"] = c.MaxPositions
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}

// tensorPlan is one tensor of a random checkpoint: its parameter and how
// it is stored.
type tensorPlan struct {
	spec  safetensors.TensorSpec
	param Param
}

// plan lists every tensor of the parameter table in dtype, except the
// router gates, which stay F32 as in the real checkpoint (spec §1.5).
func (c *Config) plan(dtype quant.Type) []tensorPlan {
	var p []tensorPlan
	for _, prm := range ParamTable(c) {
		dt := safetensors.DType(dtype.String())
		if prm.Role == RoleRouter {
			dt = safetensors.F32
		}
		p = append(p, tensorPlan{spec: safetensors.TensorSpec{Name: prm.Name, DType: dt, Shape: prm.Shape}, param: prm})
	}
	return p
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// RandomOptions controls WriteRandom.
type RandomOptions struct {
	DType      quant.Type // F32, BF16 or F16 (the router gate is always F32)
	Seed       uint64
	ShardBytes int64                   // split into shards of about this size; 0 = 2 GiB
	Progress   func(done, total int64) // bytes written so far; may be nil
	// Files are copied into the folder as they are (e.g. a tokenizer's
	// tokenizer.json and tokenizer_config.json).
	Files []string
}

// WriteRandom writes a random-weight checkpoint of configuration c into dir
// in the real Hugging Face layout: config.json and either model.safetensors
// or 0-based shards model-0000i-of-0000n.safetensors with
// model.safetensors.index.json. Values are reproducible from the seed.
func WriteRandom(dir string, c *Config, opt RandomOptions) error {
	if opt.DType != quant.F32 && opt.DType != quant.BF16 && opt.DType != quant.F16 {
		return fmt.Errorf("minimax01: random weights must be F32, BF16 or F16, not %v", opt.DType)
	}
	if opt.ShardBytes <= 0 {
		opt.ShardBytes = defaultShardBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	plan := c.plan(opt.DType)
	sort.SliceStable(plan, func(i, j int) bool { return plan[i].spec.Name < plan[j].spec.Name })
	specs := make([]safetensors.TensorSpec, len(plan))
	for i, t := range plan {
		specs[i] = t.spec
	}
	err := writeTensors(dir, specs, opt.ShardBytes, func(i int) []byte { return randomTensor(plan[i], c, opt.Seed) }, opt.Progress)
	if err != nil {
		return err
	}
	for _, f := range opt.Files {
		if err := copyFile(f, filepath.Join(dir, filepath.Base(f))); err != nil {
			return fmt.Errorf("minimax01: copy %s: %w", f, err)
		}
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), c.JSON(opt.DType), 0o644)
}

// randomTensor draws one tensor's values with InitWeights' rule (so an
// F32 random model holds exactly the slab InitWeights fills) and encodes
// them in the tensor's dtype.
func randomTensor(t tensorPlan, c *Config, seed uint64) []byte {
	vals := make([]float32, t.param.Size)
	initParam(vals, t.param, c.InitRange, seed)
	es := t.spec.DType.Size()
	out := make([]byte, es*len(vals))
	const piece = 1 << 20
	kernels.ParallelFor((len(vals)+piece-1)/piece, 1, func(lo, hi int) {
		for i := lo * piece; i < min(len(vals), hi*piece); i++ {
			switch t.spec.DType {
			case safetensors.BF16:
				binary.LittleEndian.PutUint16(out[2*i:], kernels.RoundBF16(vals[i]))
			case safetensors.F16:
				binary.LittleEndian.PutUint16(out[2*i:], kernels.FloatToHalf(vals[i]))
			default:
				binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(vals[i]))
			}
		}
	})
	return out
}

// writeTensors writes the tensors of specs into dir, in their order, as
// model.safetensors or, above shardBytes, as 0-based shards
// model-0000i-of-0000n.safetensors with model.safetensors.index.json (the
// Hugging Face layout). data(i) returns the bytes of specs[i]; progress,
// if not nil, gets the bytes written so far.
func writeTensors(dir string, specs []safetensors.TensorSpec, shardBytes int64, data func(i int) []byte, progress func(done, total int64)) error {
	var shards [][]int // indices into specs
	var size, total int64
	for i, s := range specs {
		b := int64(numel(s.Shape) * s.DType.Size())
		if len(shards) == 0 || (size > 0 && size+b > shardBytes) {
			shards = append(shards, nil)
			size = 0
		}
		shards[len(shards)-1] = append(shards[len(shards)-1], i)
		size += b
		total += b
	}
	weightMap := map[string]string{}
	var done int64
	for k, sh := range shards {
		name := "model.safetensors"
		if len(shards) > 1 {
			name = fmt.Sprintf("model-%05d-of-%05d.safetensors", k, len(shards))
		}
		part := make([]safetensors.TensorSpec, len(sh))
		for j, i := range sh {
			part[j] = specs[i]
			weightMap[specs[i].Name] = name
		}
		w, err := safetensors.Create(filepath.Join(dir, name), part, map[string]string{"format": "pt"})
		if err != nil {
			return err
		}
		for _, i := range sh {
			b := data(i)
			if err := w.WriteTensor(specs[i].Name, b); err != nil {
				w.Abort()
				return err
			}
			done += int64(len(b))
			if progress != nil {
				progress(done, total)
			}
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	if len(shards) > 1 {
		return safetensors.WriteIndex(dir, weightMap, total)
	}
	return nil
}
