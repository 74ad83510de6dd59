package minimax01

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Layer kinds of attn_type_list (spec §1.3).
const (
	Lightning = 0 // linear attention with per-head decay and a fixed state
	Softmax   = 1 // GQA softmax attention with partial RoPE and a KV cache
)

// Config is a validated MiniMax-01 configuration. Every number comes from
// config.json; the only defaults are the official configuration class's
// documented ones (head_dim = hidden/heads, rotary_dim = head_dim, block 256),
// applied when the field is absent (spec §1.2).
type Config struct {
	ModelType  string
	Vocab      int // vocab_size
	Dim        int // hidden_size
	Layers     int // num_hidden_layers
	Heads      int // num_attention_heads (both layer kinds)
	KVHeads    int // num_key_value_heads (softmax layers)
	HeadDim    int // head_dim
	RopeDim    int // rotary_dim: leading dims of each head that RoPE rotates
	RopeTheta  float64
	FFN        int // intermediate_size (expert hidden)
	Experts    int // num_local_experts
	TopK       int // num_experts_per_tok
	NormEps    float32
	BlockLen   int   // lightning prefill block (official code hard-codes 256)
	LayerKinds []int // attn_type_list: Lightning or Softmax per layer
	PostNorm   bool  // residual branch is the normalised input (spec §2.3)
	// DeepNorm residual scales (spec §2.3): x = res·Alpha + branch·Beta.
	LinearAlpha, LinearBeta float32
	FullAlpha, FullBeta     float32
	MLPAlpha, MLPBeta       float32
	TieEmbeddings           bool
	MaxPositions            int // max_position_embeddings (informational)
	// Training fields; both default to the official configuration class's
	// values when absent.
	InitRange     float64    // initializer_range: std of the normal init of matrices (0.02)
	RouterAuxCoef float64    // router_aux_loss_coef: weight of the load-balancing loss (0.001)
	Quant         *QuantSpec // quantization_config (quantize.go); nil for a float checkpoint
}

// rawConfig mirrors config.json with pointers so absent fields are visible.
// Both the official spellings and the Hugging Face port's are listed (spec §1.4).
type rawConfig struct {
	ModelType      *string  `json:"model_type"`
	VocabSize      *int     `json:"vocab_size"`
	HiddenSize     *int     `json:"hidden_size"`
	NumLayers      *int     `json:"num_hidden_layers"`
	NumHeads       *int     `json:"num_attention_heads"`
	NumKVHeads     *int     `json:"num_key_value_heads"`
	HeadDim        *int     `json:"head_dim"`
	RotaryDim      *int     `json:"rotary_dim"`
	RopeTheta      *float64 `json:"rope_theta"`
	RopeParameters *struct {
		RopeTheta           *float64 `json:"rope_theta"`
		PartialRotaryFactor *float64 `json:"partial_rotary_factor"`
		RopeType            *string  `json:"rope_type"`
	} `json:"rope_parameters"`
	PartialRotaryFactor *float64 `json:"partial_rotary_factor"`
	Intermediate        *int     `json:"intermediate_size"`
	NumLocalExperts     *int     `json:"num_local_experts"`
	NumExperts          *int     `json:"num_experts"`
	ExpertsPerTok       *int     `json:"num_experts_per_tok"`
	RMSNormEps          *float64 `json:"rms_norm_eps"`
	BlockSize           *int     `json:"block_size"`
	AttnTypeList        []int    `json:"attn_type_list"`
	LayerTypes          []string `json:"layer_types"`
	PostNorm            *bool    `json:"postnorm"`
	HiddenAct           *string  `json:"hidden_act"`
	SharedIntermediate  *int     `json:"shared_intermediate_size"`
	SlidingWindow       any      `json:"sliding_window"`
	TieWordEmbeddings   *bool    `json:"tie_word_embeddings"`
	MaxPositions        *int     `json:"max_position_embeddings"`
	RopeScaling         any      `json:"rope_scaling"`
	Quantization        any      `json:"quantization_config"`
	InitializerRange    *float64 `json:"initializer_range"`
	RouterAuxLossCoef   *float64 `json:"router_aux_loss_coef"`

	LinAlpha  *float64 `json:"layernorm_linear_attention_alpha"`
	LinBeta   *float64 `json:"layernorm_linear_attention_beta"`
	FullAlpha *float64 `json:"layernorm_full_attention_alpha"`
	FullBeta  *float64 `json:"layernorm_full_attention_beta"`
	MLPAlpha  *float64 `json:"layernorm_mlp_alpha"`
	MLPBeta   *float64 `json:"layernorm_mlp_beta"`

	HFLinAlpha  *float64 `json:"linear_attn_alpha_factor"`
	HFLinBeta   *float64 `json:"linear_attn_beta_factor"`
	HFFullAlpha *float64 `json:"full_attn_alpha_factor"`
	HFFullBeta  *float64 `json:"full_attn_beta_factor"`
	HFMLPAlpha  *float64 `json:"mlp_alpha_factor"`
	HFMLPBeta   *float64 `json:"mlp_beta_factor"`
}

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("minimax01: invalid config")

// modelTypes are the model_type values of the MiniMax-01 family (spec §1.2, §1.4).
var modelTypes = map[string]bool{
	"MiniMaxText01": true, "minimax_text_01": true, "minimax_m1": true,
	"minimax": true, "minimax_vl_01_text": true,
}

// LoadConfig reads and validates dir/config.json (or the file itself when
// path names a file).
func LoadConfig(path string) (*Config, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("minimax01: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses and validates config.json contents.
func ParseConfig(data []byte) (*Config, error) {
	var r rawConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object of config fields: %v", ErrConfig, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrConfig)
	}
	return r.resolve()
}

func bad(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
}

func needInt(p *int, field string, minimum int) (int, error) {
	if p == nil {
		return 0, bad(field, "missing")
	}
	if *p < minimum {
		return 0, bad(field, "%d, must be at least %d", *p, minimum)
	}
	return *p, nil
}

// pickFloat returns the official field, or the HF-port spelling, requiring
// exactly one meaning when both are present.
func pickFloat(official *float64, officialName string, hf *float64, hfName string) (float32, error) {
	var v *float64
	name := officialName
	switch {
	case official != nil && hf != nil && *official != *hf:
		return 0, bad(officialName, "%v disagrees with %s %v", *official, hfName, *hf)
	case official != nil:
		v = official
	case hf != nil:
		v, name = hf, hfName
	default:
		return 0, bad(officialName, "missing (also accepted as %s)", hfName)
	}
	if math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 || *v > 1e6 {
		return 0, bad(name, "%v is not a finite non-negative scale", *v)
	}
	return float32(*v), nil
}

func (r *rawConfig) resolve() (*Config, error) {
	c := &Config{}
	var err error
	if r.ModelType == nil {
		return nil, bad("model_type", "missing")
	}
	if !modelTypes[*r.ModelType] {
		return nil, bad("model_type", "%q is not a MiniMax-01 family model (want one of MiniMaxText01, minimax_text_01, minimax_m1, minimax)", *r.ModelType)
	}
	c.ModelType = *r.ModelType
	if c.Vocab, err = needInt(r.VocabSize, "vocab_size", 1); err != nil {
		return nil, err
	}
	if c.Dim, err = needInt(r.HiddenSize, "hidden_size", 1); err != nil {
		return nil, err
	}
	if c.Layers, err = needInt(r.NumLayers, "num_hidden_layers", 1); err != nil {
		return nil, err
	}
	if c.Heads, err = needInt(r.NumHeads, "num_attention_heads", 1); err != nil {
		return nil, err
	}
	if c.KVHeads, err = needInt(r.NumKVHeads, "num_key_value_heads", 1); err != nil {
		return nil, err
	}
	if c.Heads%c.KVHeads != 0 {
		return nil, bad("num_key_value_heads", "%d does not divide num_attention_heads %d", c.KVHeads, c.Heads)
	}
	if r.HeadDim != nil {
		if c.HeadDim, err = needInt(r.HeadDim, "head_dim", 1); err != nil {
			return nil, err
		}
	} else {
		if c.Dim%c.Heads != 0 {
			return nil, bad("head_dim", "missing, and hidden_size %d is not a multiple of num_attention_heads %d", c.Dim, c.Heads)
		}
		c.HeadDim = c.Dim / c.Heads
	}
	if c.HeadDim > MaxHeadDim {
		return nil, bad("head_dim", "%d exceeds the supported maximum %d", c.HeadDim, MaxHeadDim)
	}

	// RoPE: rotary_dim (official) or partial_rotary_factor (HF); theta.
	factor := r.PartialRotaryFactor
	theta := r.RopeTheta
	if p := r.RopeParameters; p != nil {
		if p.RopeType != nil && *p.RopeType != "default" {
			return nil, bad("rope_parameters.rope_type", "%q is not supported (only default RoPE)", *p.RopeType)
		}
		if p.PartialRotaryFactor != nil {
			factor = p.PartialRotaryFactor
		}
		if theta == nil {
			theta = p.RopeTheta
		}
	}
	switch {
	case r.RotaryDim != nil:
		c.RopeDim = *r.RotaryDim
	case factor != nil:
		f := *factor * float64(c.HeadDim)
		if f != math.Trunc(f) {
			return nil, bad("partial_rotary_factor", "%v × head_dim %d is not a whole number of dims", *factor, c.HeadDim)
		}
		c.RopeDim = int(f)
	default:
		c.RopeDim = c.HeadDim
	}
	if c.RopeDim < 2 || c.RopeDim%2 != 0 || c.RopeDim > c.HeadDim {
		return nil, bad("rotary_dim", "%d must be even, at least 2 and at most head_dim %d", c.RopeDim, c.HeadDim)
	}
	if theta == nil {
		return nil, bad("rope_theta", "missing (MiniMax-Text-01 and M1 use 10000000)")
	}
	if !(*theta > 1) || math.IsInf(*theta, 0) {
		return nil, bad("rope_theta", "%v must be a finite number above 1", *theta)
	}
	c.RopeTheta = *theta
	if r.RopeScaling != nil {
		return nil, bad("rope_scaling", "is set; RoPE scaling is not part of MiniMax-01 and not supported")
	}

	if c.FFN, err = needInt(r.Intermediate, "intermediate_size", 1); err != nil {
		return nil, err
	}
	switch {
	case r.NumLocalExperts != nil && r.NumExperts != nil && *r.NumLocalExperts != *r.NumExperts:
		return nil, bad("num_local_experts", "%d disagrees with num_experts %d", *r.NumLocalExperts, *r.NumExperts)
	case r.NumLocalExperts != nil:
		c.Experts, err = needInt(r.NumLocalExperts, "num_local_experts", 1)
	default:
		c.Experts, err = needInt(r.NumExperts, "num_local_experts", 1)
	}
	if err != nil {
		return nil, err
	}
	if c.TopK, err = needInt(r.ExpertsPerTok, "num_experts_per_tok", 1); err != nil {
		return nil, err
	}
	if c.TopK > c.Experts {
		return nil, bad("num_experts_per_tok", "%d exceeds num_local_experts %d", c.TopK, c.Experts)
	}
	if r.RMSNormEps == nil {
		return nil, bad("rms_norm_eps", "missing")
	}
	if !(*r.RMSNormEps > 0 && *r.RMSNormEps < 1) {
		return nil, bad("rms_norm_eps", "%v must be in (0, 1)", *r.RMSNormEps)
	}
	c.NormEps = float32(*r.RMSNormEps)
	c.BlockLen = 256
	if r.BlockSize != nil {
		if c.BlockLen, err = needInt(r.BlockSize, "block_size", 1); err != nil {
			return nil, err
		}
		if c.BlockLen > 4096 {
			return nil, bad("block_size", "%d is larger than the supported 4096", c.BlockLen)
		}
	}

	// Layer kinds: attn_type_list (official) or layer_types (HF port).
	hfStyle := false
	switch {
	case r.AttnTypeList != nil && r.LayerTypes != nil:
		return nil, bad("attn_type_list", "both attn_type_list and layer_types are given; keep one")
	case r.AttnTypeList != nil:
		c.LayerKinds = append([]int(nil), r.AttnTypeList...)
		for i, k := range c.LayerKinds {
			if k != Lightning && k != Softmax {
				return nil, bad("attn_type_list", "entry %d is %d; want 0 (lightning) or 1 (softmax)", i, k)
			}
		}
	case r.LayerTypes != nil:
		hfStyle = true
		c.LayerKinds = make([]int, len(r.LayerTypes))
		for i, s := range r.LayerTypes {
			switch s {
			case "linear_attention":
				c.LayerKinds[i] = Lightning
			case "full_attention":
				c.LayerKinds[i] = Softmax
			default:
				return nil, bad("layer_types", "entry %d is %q; want \"linear_attention\" or \"full_attention\"", i, s)
			}
		}
	default:
		return nil, bad("attn_type_list", "missing (also accepted as layer_types); it decides which layers are lightning and which softmax")
	}
	if len(c.LayerKinds) != c.Layers {
		return nil, bad("attn_type_list", "has %d entries for num_hidden_layers %d", len(c.LayerKinds), c.Layers)
	}

	switch {
	case r.PostNorm != nil:
		c.PostNorm = *r.PostNorm
	case hfStyle || r.HFMLPAlpha != nil:
		c.PostNorm = true // the HF port hard-codes post-norm residuals (spec §1.4)
	default:
		return nil, bad("postnorm", "missing: the official configuration must say whether the residual is the normalised input (MiniMax-Text-01 and M1: true)")
	}
	if c.LinearAlpha, err = pickFloat(r.LinAlpha, "layernorm_linear_attention_alpha", r.HFLinAlpha, "linear_attn_alpha_factor"); err != nil {
		return nil, err
	}
	if c.LinearBeta, err = pickFloat(r.LinBeta, "layernorm_linear_attention_beta", r.HFLinBeta, "linear_attn_beta_factor"); err != nil {
		return nil, err
	}
	if c.FullAlpha, err = pickFloat(r.FullAlpha, "layernorm_full_attention_alpha", r.HFFullAlpha, "full_attn_alpha_factor"); err != nil {
		return nil, err
	}
	if c.FullBeta, err = pickFloat(r.FullBeta, "layernorm_full_attention_beta", r.HFFullBeta, "full_attn_beta_factor"); err != nil {
		return nil, err
	}
	if c.MLPAlpha, err = pickFloat(r.MLPAlpha, "layernorm_mlp_alpha", r.HFMLPAlpha, "mlp_alpha_factor"); err != nil {
		return nil, err
	}
	if c.MLPBeta, err = pickFloat(r.MLPBeta, "layernorm_mlp_beta", r.HFMLPBeta, "mlp_beta_factor"); err != nil {
		return nil, err
	}

	if r.HiddenAct != nil && *r.HiddenAct != "silu" {
		return nil, bad("hidden_act", "%q is not supported; MiniMax-01 uses silu", *r.HiddenAct)
	}
	if r.SharedIntermediate != nil && *r.SharedIntermediate != 0 {
		return nil, bad("shared_intermediate_size", "%d: shared experts are not part of the released models and not supported", *r.SharedIntermediate)
	}
	if r.SlidingWindow != nil {
		return nil, bad("sliding_window", "%v: sliding-window attention is not supported (MiniMax-01 uses null)", r.SlidingWindow)
	}
	if c.Quant, err = parseQuantConfig(r.Quantization); err != nil {
		return nil, err
	}
	if r.TieWordEmbeddings != nil {
		c.TieEmbeddings = *r.TieWordEmbeddings
	}
	if r.MaxPositions != nil {
		if c.MaxPositions, err = needInt(r.MaxPositions, "max_position_embeddings", 1); err != nil {
			return nil, err
		}
	}
	if c.InitRange, err = optScale(r.InitializerRange, "initializer_range", DefaultInitRange); err != nil {
		return nil, err
	}
	if c.RouterAuxCoef, err = optScale(r.RouterAuxLossCoef, "router_aux_loss_coef", DefaultRouterAuxCoef); err != nil {
		return nil, err
	}
	if err := c.checkScale(); err != nil {
		return nil, err
	}
	return c, nil
}

// MaxParams bounds the parameters a configuration may describe (over 2,000
// times MiniMax-Text-01's 4.6e11), so that every parameter, byte and state
// count derived from it (Params, Memory, tensor sizes) fits in an int64.
const MaxParams = 1e15

// checkScale rejects sizes whose counts would overflow: it bounds the
// parameter count, computed in float64 (which cannot overflow here), by
// MaxParams.
func (c *Config) checkScale() error {
	d, hd, kvd := float64(c.Dim), float64(c.Heads)*float64(c.HeadDim), float64(c.KVHeads)*float64(c.HeadDim)
	layer := max(4*d*hd+d*hd+hd, 2*d*hd+2*d*kvd) + float64(c.Experts)*(3*d*float64(c.FFN)+d) + 2*d
	total := 2*float64(c.Vocab)*d + float64(c.Layers)*layer + d
	if total > MaxParams {
		return fmt.Errorf("%w: sizes too large: hidden_size %d, %d layers, %d experts × intermediate_size %d, vocab_size %d describe about %.2g parameters, more than the %.0g Lightning accepts (is a field wrong?)",
			ErrConfig, c.Dim, c.Layers, c.Experts, c.FFN, c.Vocab, total, MaxParams)
	}
	return nil
}

// Defaults of the official configuration class (MiniMaxText01Config, and
// the Mixtral-derived HF MiniMaxConfig) for the training fields.
const (
	DefaultInitRange     = 0.02
	DefaultRouterAuxCoef = 0.001
)

// optScale returns *p, or def when the field is absent, requiring a finite
// non-negative number.
func optScale(p *float64, field string, def float64) (float64, error) {
	if p == nil {
		return def, nil
	}
	if math.IsNaN(*p) || math.IsInf(*p, 0) || *p < 0 {
		return 0, bad(field, "%v is not a finite non-negative number", *p)
	}
	return *p, nil
}

// MaxHeadDim is the largest head_dim the attention kernels accept (per-head
// buffers live on the stack).
const MaxHeadDim = 256

// Count returns how many layers are of kind.
func (c *Config) Count(kind int) int {
	n := 0
	for _, k := range c.LayerKinds {
		if k == kind {
			n++
		}
	}
	return n
}

// Params counts parameters from the parameter table: total, and active per
// token (routed experts only, excluding the embedding and the LM head, as
// the MiniMax model card counts).
func (c *Config) Params() (total, active int64) {
	var experts int64
	for _, p := range ParamTable(c) {
		n := int64(p.Size)
		total += n
		switch {
		case p.Role == RoleEmbed || p.Role == RoleLMHead:
		case p.Expert >= 0:
			experts += n
		default:
			active += n
		}
	}
	active += experts * int64(c.TopK) / int64(c.Experts)
	return total, active
}
