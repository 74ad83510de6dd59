package minimax01

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/quant"
)

// m1Config is MiniMax-M1's config.json verbatim (spec §1.1).
const m1Config = `{
  "architectures": ["MiniMaxM1ForCausalLM"], "attention_dropout": 0.0,
  "attn_type_list": [0,0,0,0,0,0,0,1, 0,0,0,0,0,0,0,1, 0,0,0,0,0,0,0,1, 0,0,0,0,0,0,0,1, 0,0,0,0,0,0,0,1,
                     0,0,0,0,0,0,0,1, 0,0,0,0,0,0,0,1, 0,0,0,0,0,0,0,1, 0,0,0,0,0,0,0,1, 0,0,0,0,0,0,0,1],
  "auto_map": {"AutoConfig": "configuration_minimax_m1.MiniMaxM1Config", "AutoModelForCausalLM": "modeling_minimax_m1.MiniMaxM1ForCausalLM"},
  "bos_token_id": null, "eos_token_id": null, "head_dim": 128, "hidden_act": "silu", "hidden_size": 6144,
  "initializer_range": 0.02, "intermediate_size": 9216,
  "layernorm_full_attention_alpha": 3.5565588200778455, "layernorm_full_attention_beta": 1.0,
  "layernorm_linear_attention_alpha": 3.5565588200778455, "layernorm_linear_attention_beta": 1.0,
  "layernorm_mlp_alpha": 3.5565588200778455, "layernorm_mlp_beta": 1.0,
  "max_position_embeddings": 10240000, "model_type": "minimax_m1", "num_attention_heads": 64,
  "num_experts_per_tok": 2, "num_hidden_layers": 80, "num_key_value_heads": 8, "num_local_experts": 32,
  "output_router_logits": false, "postnorm": true, "rms_norm_eps": 1e-05, "rope_theta": 10000000,
  "rotary_dim": 64, "router_aux_loss_coef": 0.001, "router_jitter_noise": 0.0, "shared_intermediate_size": 0,
  "shared_moe_mode": "sigmoid", "sliding_window": null, "tie_word_embeddings": false,
  "transformers_version": "4.45.2", "use_cache": true, "vocab_size": 200064
}`

// TestRealConfigSizes checks the derived sizes of spec §1.5 and §4.2.
func TestRealConfigSizes(t *testing.T) {
	c, err := ParseConfig([]byte(m1Config))
	if err != nil {
		t.Fatal(err)
	}
	total, active := c.Params()
	if total != 456_089_655_296 || active != 45_944_920_064 {
		t.Errorf("params total %d active %d, want 456089655296 and 45944920064 (spec §1.5)", total, active)
	}
	mem := c.Memory()
	// spec §4.2: 73,400,320 state elements (293.6 MB fp32); 20,480 KV elements per token.
	if mem.StateBytes != 73_400_320*4 || mem.KVBytesPerToken != 20_480*4 {
		t.Errorf("memory %+v, want state %d B and %d B/token (fp32)", mem, 73_400_320*4, 20_480*4)
	}
	if c.Count(Softmax) != 10 || c.LayerKinds[7] != Softmax || c.LayerKinds[8] != Lightning {
		t.Errorf("layer plan wrong: %v", c.LayerKinds)
	}
}

// hfConfig is the same model in the HF transformers port's spelling (spec §1.4).
func hfConfig(t *testing.T) string {
	s := m1Config
	s = strings.Replace(s, `"model_type": "minimax_m1"`, `"model_type": "minimax"`, 1)
	types := make([]string, 80)
	for i := range types {
		types[i] = `"linear_attention"`
		if (i+1)%8 == 0 {
			types[i] = `"full_attention"`
		}
	}
	i := strings.Index(s, `"attn_type_list"`)
	j := strings.Index(s, `"auto_map"`)
	s = s[:i] + `"layer_types": [` + strings.Join(types, ",") + `], ` + s[j:]
	for _, r := range [][2]string{
		{"layernorm_full_attention_alpha", "full_attn_alpha_factor"}, {"layernorm_full_attention_beta", "full_attn_beta_factor"},
		{"layernorm_linear_attention_alpha", "linear_attn_alpha_factor"}, {"layernorm_linear_attention_beta", "linear_attn_beta_factor"},
		{"layernorm_mlp_alpha", "mlp_alpha_factor"}, {"layernorm_mlp_beta", "mlp_beta_factor"},
		{`"postnorm": true, `, ""}, {`"rotary_dim": 64,`, `"partial_rotary_factor": 0.5, "block_size": 256,`},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("config template lacks %q", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	return s
}

func TestConfigSpellings(t *testing.T) {
	a, err := ParseConfig([]byte(m1Config))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseConfig([]byte(hfConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	b.ModelType = a.ModelType
	if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) {
		t.Errorf("official and HF spellings differ:\n%+v\n%+v", a, b)
	}
}

// TestConfigErrors checks that each bad value is rejected naming its field.
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ from, to, field string }{
		{`"model_type": "minimax_m1"`, `"model_type": "llama"`, "model_type"},
		{`"hidden_size": 6144`, `"hidden_size": 0`, "hidden_size"},
		{`"num_key_value_heads": 8`, `"num_key_value_heads": 7`, "num_key_value_heads"},
		{`"rotary_dim": 64`, `"rotary_dim": 63`, "rotary_dim"},
		{`"rotary_dim": 64`, `"rotary_dim": 256`, "rotary_dim"},
		{`"num_experts_per_tok": 2`, `"num_experts_per_tok": 33`, "num_experts_per_tok"},
		{`"rms_norm_eps": 1e-05`, `"rms_norm_eps": -1`, "rms_norm_eps"},
		{`"rope_theta": 10000000`, `"rope_theta": "big"`, "config"},
		{`"postnorm": true`, `"postnorm": "yes"`, "config"},
		{`"postnorm": true, `, ``, "postnorm"},
		{`"attn_type_list": [0,0,0,0,0,0,0,1, `, `"attn_type_list": [0,0,0,0,0,0,0,2, `, "attn_type_list"},
		{`0,0,0,0,0,0,0,1],`, `0,0,0,0,0,0,0],`, "attn_type_list"},
		{`"hidden_act": "silu"`, `"hidden_act": "gelu"`, "hidden_act"},
		{`"shared_intermediate_size": 0`, `"shared_intermediate_size": 128`, "shared_intermediate_size"},
		{`"sliding_window": null`, `"sliding_window": 4096`, "sliding_window"},
		{`"layernorm_mlp_alpha": 3.5565588200778455`, `"layernorm_mlp_alpha": -1`, "layernorm_mlp_alpha"},
		{`"layernorm_mlp_beta": 1.0,`, ``, "layernorm_mlp_beta"},
		{`"vocab_size": 200064`, `"vocab_size": 200064} {`, "trailing"},
	} {
		if !strings.Contains(m1Config, c.from) {
			t.Fatalf("template lacks %q", c.from)
		}
		_, err := ParseConfig([]byte(strings.Replace(m1Config, c.from, c.to, 1)))
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s → %s: error %v, want ErrConfig naming %q", c.from, c.to, err, c.field)
		}
	}
}

// TestConstants compares slopes and RoPE tables with the reference's
// constants.safetensors: slopes bit-exact (same fp32 arithmetic), RoPE
// inverse frequencies bit-exact, cos/sin within 2 ulp of fp32 at |x| ≤ 1
// (torch's fp32 cos/sin vs Go's correctly rounded float64 ones).
func TestConstants(t *testing.T) {
	for _, dir := range goldenDirs(t) {
		path := filepath.Join(dir, "constants.safetensors")
		if _, err := os.Stat(path); err != nil {
			continue
		}
		f, err := safetensors.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c, err := LoadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		m := New(c, &Weights{Layers: make([]LayerWeights, c.Layers)}, Options{MaxBatchTokens: 1})
		for l := 0; l < c.Layers; l++ {
			want, ok := f.Tensor(fmt.Sprintf("slope.L%d", l))
			if c.LayerKinds[l] != Lightning {
				continue
			}
			if !ok {
				t.Fatalf("%s: no slope.L%d", dir, l)
			}
			for h, v := range want.F32() {
				if got := m.Slopes(l)[h]; got != v {
					t.Errorf("%s layer %d head %d: slope %v, want %v", dir, l, h, got, v)
				}
			}
		}
		inv, _ := f.Tensor("rope.inv_freq")
		for i, v := range inv.F32() {
			if m.rope.InvFreq[i] != v {
				t.Errorf("%s: inv_freq[%d] = %v, want %v", dir, i, m.rope.InvFreq[i], v)
			}
		}
		cosT, _ := f.Tensor("rope.cos")
		sinT, _ := f.Tensor("rope.sin")
		half := c.RopeDim / 2
		cos, sin := make([]float32, half), make([]float32, half)
		for p := 0; p < cosT.Shape[0]; p++ {
			m.rope.Angles(cos, sin, p)
			for i := 0; i < half; i++ {
				for _, pair := range [][2]float32{{cos[i], cosT.F32()[p*c.RopeDim+i]}, {sin[i], sinT.F32()[p*c.RopeDim+i]}} {
					if math.Abs(float64(pair[0]-pair[1])) > 2.4e-7 {
						t.Fatalf("%s: position %d freq %d: %v, want %v", dir, p, i, pair[0], pair[1])
					}
				}
			}
		}
	}
}

// TestRaggedBatch packs golden prompts of three sequences into shared
// forwards — prefill chunks of different lengths next to single decode
// tokens — and checks every sequence gets the logits it gets alone. Batching
// moves lightning block boundaries (a block restarts at each chunk) and lets
// matmul kernels pick another blocking for another row count, so only the
// summation order changes: the reference's own cache path differs from its
// prefill by up to 2.6e-5 on tiny-b (golden README §8), so 5e-5 absolute.
func TestRaggedBatch(t *testing.T) {
	g := openGolden(t, "testdata/golden/tiny-b", Options{MaxBatchTokens: 200})
	m := g.m
	V := m.Config.Vocab
	prompts := [][]int32{g.man.Prompts["p700"], g.man.Prompts["p255"], g.man.Prompts["p7"]}
	// Each sequence's chunk schedule, one chunk per batched step.
	schedules := [][]int{{300, 1, 1, 100, 1, 297}, {1, 1, 120, 1, 1, 1, 130}, {3, 1, 1, 1, 1}}
	solo := make([][]float32, len(prompts))
	for i, p := range prompts {
		solo[i] = run(m, p, []int{len(p)}, 0)
	}
	states := make([]model.State, len(prompts))
	fed := make([]int, len(prompts))
	got := make([][]float32, len(prompts))
	for i := range states {
		states[i] = m.NewState()
	}
	for step := 0; ; step++ {
		var seqs []model.Seq
		var owner []int
		for i, sch := range schedules {
			if step < len(sch) {
				seqs = append(seqs, model.Seq{State: states[i], Tokens: prompts[i][fed[i] : fed[i]+sch[step]], Logits: model.LogitsAll})
				owner = append(owner, i)
				fed[i] += sch[step]
			}
		}
		if len(seqs) == 0 {
			break
		}
		buf := make([]float32, model.LogitRows(seqs)*V)
		m.Forward(seqs, buf)
		off := 0
		for j, s := range seqs {
			n := len(s.Tokens) * V
			got[owner[j]] = append(got[owner[j]], buf[off:off+n]...)
			off += n
		}
	}
	for i := range prompts {
		if fed[i] != len(prompts[i]) {
			t.Fatalf("schedule %d feeds %d of %d tokens", i, fed[i], len(prompts[i]))
		}
		if e := maxAbsDiff(got[i], solo[i]); e > 5e-5 {
			t.Errorf("sequence %d: batched vs alone max |Δlogit| = %.3g", i, e)
		}
	}
}

// TestDecodeDoesNotAllocate checks style.md G7: a decode step with a state
// whose KV cache has room allocates nothing.
func TestDecodeDoesNotAllocate(t *testing.T) {
	g := openGolden(t, "testdata/golden/tiny-a", Options{})
	m := g.m
	st := m.NewStateCap(64)
	logits := make([]float32, m.Config.Vocab)
	seq := []model.Seq{{State: st, Tokens: []int32{1, 2, 3}, Logits: model.LogitsLast}}
	m.Forward(seq, logits)
	tok := []int32{5}
	allocs := testing.AllocsPerRun(20, func() {
		m.Forward([]model.Seq{{State: st, Tokens: tok, Logits: model.LogitsLast}}, logits)
	})
	if allocs != 0 {
		t.Errorf("decode step allocates %.1f times", allocs)
	}
}

// writeTiny writes a random tiny-preset checkpoint and returns its folder.
func writeTiny(t *testing.T, opt RandomOptions) string {
	t.Helper()
	c, err := PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteRandom(dir, c, opt); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRandomModelShardedMatchesSingle writes the same random model as one
// file and as shards with an index; both load and give identical logits.
func TestRandomModelShardedMatchesSingle(t *testing.T) {
	single := writeTiny(t, RandomOptions{DType: quant.BF16, Seed: 7})
	sharded := writeTiny(t, RandomOptions{DType: quant.BF16, Seed: 7, ShardBytes: 200_000})
	if _, err := os.Stat(filepath.Join(sharded, "model.safetensors.index.json")); err != nil {
		t.Fatalf("sharded model has no index: %v", err)
	}
	var out [2][]float32
	for i, dir := range []string{single, sharded} {
		m, err := Load(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = run(m, []int32{1, 2, 3, 4, 5}, []int{5}, 0)
		m.Close()
	}
	if maxAbsDiff(out[0], out[1]) != 0 {
		t.Error("sharded and single-file models differ")
	}
}

// TestLoadErrors checks the errors a user sees for broken checkpoints.
func TestLoadErrors(t *testing.T) {
	t.Run("missing shard", func(t *testing.T) {
		dir := writeTiny(t, RandomOptions{DType: quant.F32, Seed: 1, ShardBytes: 400_000})
		shards, _ := filepath.Glob(filepath.Join(dir, "model-*.safetensors"))
		if len(shards) < 2 {
			t.Fatalf("want several shards, have %v", shards)
		}
		os.Remove(shards[1])
		_, err := Load(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), filepath.Base(shards[1])) {
			t.Errorf("error %v does not name the missing shard %s", err, filepath.Base(shards[1]))
		}
	})
	t.Run("truncated file", func(t *testing.T) {
		dir := writeTiny(t, RandomOptions{DType: quant.F32, Seed: 1})
		p := filepath.Join(dir, "model.safetensors")
		fi, _ := os.Stat(p)
		if err := os.Truncate(p, fi.Size()-1000); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir, Options{})
		if err == nil || !errors.Is(err, safetensors.ErrFormat) {
			t.Errorf("error %v, want ErrFormat", err)
		}
	})
	// Rewrite one tensor with another dtype or shape.
	rewrite := func(t *testing.T, name string, edit func(*safetensors.Tensor)) error {
		dir := writeTiny(t, RandomOptions{DType: quant.F32, Seed: 1})
		p := filepath.Join(dir, "model.safetensors")
		f, err := safetensors.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var ts []safetensors.Tensor
		for _, n := range f.Names() {
			x, _ := f.Tensor(n)
			x.Data = append([]byte(nil), x.Data...)
			if n == name {
				edit(&x)
			}
			ts = append(ts, x)
		}
		f.Close()
		if err := safetensors.Write(p, ts, nil); err != nil {
			t.Fatal(err)
		}
		_, err = Load(dir, Options{})
		return err
	}
	t.Run("wrong dtype", func(t *testing.T) {
		err := rewrite(t, "model.layers.0.self_attn.qkv_proj.weight", func(x *safetensors.Tensor) { x.DType = safetensors.I32 })
		if err == nil || !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "qkv_proj") || !strings.Contains(err.Error(), "I32") {
			t.Errorf("error %v, want ErrWeights naming qkv_proj and I32", err)
		}
	})
	t.Run("shape mismatch", func(t *testing.T) {
		err := rewrite(t, "model.layers.3.block_sparse_moe.experts.1.w2.weight", func(x *safetensors.Tensor) { x.Shape = []int{x.Shape[1], x.Shape[0]} })
		if err == nil || !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "experts.1.w2") {
			t.Errorf("error %v, want ErrWeights naming the tensor", err)
		}
	})
	t.Run("missing tensor", func(t *testing.T) {
		dir := writeTiny(t, RandomOptions{DType: quant.F32, Seed: 1})
		p := filepath.Join(dir, "model.safetensors")
		f, _ := safetensors.Open(p)
		var ts []safetensors.Tensor
		for _, n := range f.Names() {
			if n != "lm_head.weight" {
				x, _ := f.Tensor(n)
				x.Data = append([]byte(nil), x.Data...)
				ts = append(ts, x)
			}
		}
		f.Close()
		safetensors.Write(p, ts, nil)
		_, err := Load(dir, Options{})
		if err == nil || !errors.Is(err, safetensors.ErrNotFound) || !strings.Contains(err.Error(), "lm_head") {
			t.Errorf("error %v, want ErrNotFound naming lm_head", err)
		}
	})
	t.Run("unknown config value", func(t *testing.T) {
		dir := writeTiny(t, RandomOptions{DType: quant.F32, Seed: 1})
		p := filepath.Join(dir, "config.json")
		b, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.Replace(string(b), `"hidden_act": "silu"`, `"hidden_act": "relu2"`, 1)), 0o644)
		_, err := Load(dir, Options{})
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "hidden_act") {
			t.Errorf("error %v, want ErrConfig naming hidden_act", err)
		}
	})
}
