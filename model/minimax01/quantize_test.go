package minimax01

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/tensor"
)

// quantPrompt is a golden prompt long enough to cross several layers'
// worth of state yet quick on the twins.
var quantPrompt = []int32{105, 145, 195, 83, 276, 128, 440, 12, 7, 300, 511, 0, 42}

func promptLogits(t *testing.T, m *Model, ids []int32) []float32 {
	t.Helper()
	out := make([]float32, len(ids)*m.Config.Vocab)
	m.Forward([]model.Seq{{State: m.NewState(), Tokens: ids, Logits: model.LogitsAll}}, out)
	return out
}

func quantizeGolden(t *testing.T, src string, spec QuantSpec) string {
	t.Helper()
	dst := t.TempDir()
	var last int64
	err := QuantizeCheckpoint(src, dst, QuantizeOptions{Spec: spec, Progress: func(done, total int64) {
		if done < last || done > total {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		last = done
	}})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestQuantizeRoundTrip checks that a checkpoint written by
// QuantizeCheckpoint loads into exactly the weights (and so exactly the
// logits) of quantizing the source on the fly with Options.Quant.
func TestQuantizeRoundTrip(t *testing.T) {
	specs := []QuantSpec{
		DefaultQuantSpec(quant.Q8),
		DefaultQuantSpec(quant.Q4G64),
		{Format: quant.Q8B32, LMHead: quant.Invalid, Embed: quant.Q4G32M, ScaleType: quant.BF16},
		{Format: quant.Q4G64M, LMHead: quant.Q4G32, Embed: quant.Q8, ScaleType: quant.F16},
	}
	// tiny-b's out_proj has 96 inputs: int4 falls back to q8b32 there.
	for _, src := range []string{"testdata/golden/tiny-a", "testdata/golden/tiny-a-bf16", "testdata/golden/tiny-b"} {
		for _, spec := range specs {
			t.Run(filepath.Base(src)+"/"+spec.Format.String(), func(t *testing.T) {
				dst := quantizeGolden(t, src, spec)
				fromFile, err := Load(dst, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer fromFile.Close()
				if len(fromFile.Warnings) > 0 {
					t.Errorf("warnings: %v", fromFile.Warnings)
				}
				if got := fromFile.Config.Quant; got == nil || *got != spec {
					t.Fatalf("config records %v, want %v", got, spec)
				}
				onTheFly, err := Load(src, Options{Quant: &spec})
				if err != nil {
					t.Fatal(err)
				}
				defer onTheFly.Close()
				sameMat := func(name string, a, b tensor.Mat) {
					if a.Type != b.Type || a.ScaleType != b.ScaleType || !bytes.Equal(a.Data, b.Data) ||
						!bytes.Equal(a.Scales, b.Scales) || !bytes.Equal(a.Mins, b.Mins) {
						t.Fatalf("%s: loaded %s/%s differs from on-the-fly %s/%s", name, a.Type, a.ScaleType, b.Type, b.ScaleType)
					}
				}
				wa, wb := fromFile.Weights, onTheFly.Weights
				sameMat("embed", wa.Embed, wb.Embed)
				sameMat("lm_head", wa.LMHead, wb.LMHead)
				sameMat("layer 0 qkv", wa.Layers[0].QKV, wb.Layers[0].QKV)
				sameMat("layer 7 o", wa.Layers[7].O, wb.Layers[7].O)
				sameMat("layer 3 expert 1 w2", wa.Layers[3].Experts[1].W2, wb.Layers[3].Experts[1].W2)
				if wa.Layers[0].QKV.Type != spec.Format || (spec.LMHead != quant.Invalid && wa.LMHead.Type != spec.LMHead) ||
					(spec.LMHead == quant.Invalid && wa.LMHead.Type.Quantized()) {
					t.Fatalf("formats: qkv %s, lm_head %s", wa.Layers[0].QKV.Type, wa.LMHead.Type)
				}
				a, b := promptLogits(t, fromFile, quantPrompt), promptLogits(t, onTheFly, quantPrompt)
				for i := range a {
					if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
						t.Fatalf("logit %d: checkpoint %v, on the fly %v", i, a[i], b[i])
					}
				}
				// A quantized checkpoint refuses -quant.
				if _, err := Load(dst, Options{Quant: &spec}); err == nil || !strings.Contains(err.Error(), "already quantized") {
					t.Errorf("Load(quantized, Quant) err = %v", err)
				}
			})
		}
	}
}

// rewrite writes dir/model.safetensors again with edit applied to its
// tensors (edit may change, drop or add tensors).
func rewrite(t *testing.T, dir string, edit func(ts []safetensors.Tensor) []safetensors.Tensor) {
	t.Helper()
	path := filepath.Join(dir, safetensors.SingleFileName)
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, n := range f.Names() {
		tt, _ := f.Tensor(n)
		tt.Data = bytes.Clone(tt.Data)
		ts = append(ts, tt)
	}
	f.Close()
	if err := safetensors.Write(path, edit(ts), nil); err != nil {
		t.Fatal(err)
	}
}

// TestQuantizedCorrupt checks that damaged quantized tensors fail at load
// with an error naming the tensor and what was expected.
func TestQuantizedCorrupt(t *testing.T) {
	src := quantizeGolden(t, "testdata/golden/tiny-a", DefaultQuantSpec(quant.Q4G32M))
	const qkv = "model.layers.0.self_attn.qkv_proj.weight"
	cases := []struct {
		name string
		edit func(ts []safetensors.Tensor) []safetensors.Tensor
		want string
	}{
		{"scale count", func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == qkv+"_scale" { // [192, 2] → [192, 1]
					ts[i].Shape = []int{ts[i].Shape[0], 1}
					ts[i].Data = ts[i].Data[:len(ts[i].Data)/2]
				}
			}
			return ts
		}, qkv + "_scale (in"},
		{"quant shape", func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == qkv { // U8 [192, 32] → [96, 64]
					ts[i].Shape = []int{96, 64}
				}
			}
			return ts
		}, "U8 [96 64], want U8 [192 32] for q4g32m [192, 64]"},
		{"missing min", func(ts []safetensors.Tensor) []safetensors.Tensor {
			var out []safetensors.Tensor
			for _, tt := range ts {
				if tt.Name != "model.layers.2.block_sparse_moe.experts.3.w2.weight_min" {
					out = append(out, tt)
				}
			}
			return out
		}, "experts.3.w2.weight_min"},
		{"scale dtype", func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == "lm_head.weight_scale" { // F32 [512] → F16 [512, 2]
					ts[i].DType = safetensors.F16
					ts[i].Shape = []int{512, 2}
				}
			}
			return ts
		}, "want F32 [512] for q8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, n := range []string{"config.json", safetensors.SingleFileName} {
				b, err := os.ReadFile(filepath.Join(src, n))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, n), b, 0o644)
			}
			rewrite(t, dir, c.edit)
			_, err := Load(dir, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// TestQuantConfig checks quantization_config parsing: the recorded spec
// round-trips and malformed objects are rejected with the field named.
func TestQuantConfig(t *testing.T) {
	base, err := os.ReadFile("testdata/golden/tiny-a/config.json")
	if err != nil {
		t.Fatal(err)
	}
	with := func(q any) []byte {
		var m map[string]any
		json.Unmarshal(base, &m)
		m["quantization_config"] = q
		b, _ := json.Marshal(m)
		return b
	}
	spec := QuantSpec{Format: quant.Q4G64M, LMHead: quant.Invalid, Embed: quant.Q8B32, ScaleType: quant.BF16}
	c, err := ParseConfig(with(spec.configJSON()))
	if err != nil || c.Quant == nil || *c.Quant != spec {
		t.Fatalf("round trip: %v, %v", c, err)
	}
	if c, err := ParseConfig(with(nil)); err != nil || c.Quant != nil {
		t.Fatalf("null quantization_config: %v, %v", c, err)
	}
	for _, bad := range []struct {
		q    any
		want string
	}{
		{map[string]any{"quant_method": "awq", "bits": 4}, "quantization_config"},
		{map[string]any{"quant_method": "lightning", "format": "q5", "lm_head": "none", "embed_tokens": "none", "scale_dtype": "F16"}, `"q5" is not a quantized format`},
		{map[string]any{"quant_method": "lightning", "format": "q8", "lm_head": "BF16", "embed_tokens": "none", "scale_dtype": "F16"}, "lm_head"},
		{map[string]any{"quant_method": "lightning", "format": "q8", "lm_head": "none", "embed_tokens": "none", "scale_dtype": "F32"}, "scale_dtype"},
		{map[string]any{"quant_method": "lightning", "format": "q8", "lm_head": "none", "embed_tokens": "none", "scale_dtype": "F16", "extra": 1}, "extra"},
	} {
		if _, err := ParseConfig(with(bad.q)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: err = %v, want %q", bad.q, err, bad.want)
		}
	}
}
