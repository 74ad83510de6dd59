package minimax01

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/gguf"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/tensor"
)

// exportGolden loads the golden model dir and writes it as GGUF of type typ.
func exportGolden(t *testing.T, dir string, typ gguf.Type) string {
	t.Helper()
	m, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	path := filepath.Join(t.TempDir(), "model-"+typ.String()+".gguf")
	if err := WriteGGUF(path, m.Config, m.Weights, GGUFExportOptions{Type: typ}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGGUFGoldenF32 converts the golden tiny-a model to GGUF F32 and checks
// the GGUF model against the official logits with the golden tolerance
// (2e-4, golden_test.go), and its config against the safetensors one.
func TestGGUFGoldenF32(t *testing.T) {
	const dir = "testdata/golden/tiny-a"
	path := exportGolden(t, dir, gguf.F32)
	g := openGolden(t, dir, Options{})
	gm, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gm.Close()
	a, b := *g.m.Config, *gm.Config
	a.ModelType, b.ModelType = "", ""
	if !reflect.DeepEqual(a, b) {
		t.Errorf("config from GGUF differs:\n got %+v\nwant %+v", b, a)
	}
	checked := 0
	for _, c := range g.man.Cases {
		if c.Kind != "prefill" || c.Tensor == nil {
			continue
		}
		want := g.prefillLogits(t, c.Prompt)
		got := run(gm, g.man.Prompts[c.Prompt], []int{len(g.man.Prompts[c.Prompt])}, 0)
		if d := maxAbsDiff(got, want); d > logitTol {
			t.Errorf("%s: max |Δlogit| %.3g > %g", c.Name, d, logitTol)
		} else {
			t.Logf("%s: max |Δlogit| %.3g", c.Name, d)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no prefill case checked")
	}
	if len(gm.Notes) == 0 || !strings.Contains(strings.Join(gm.Notes, "\n"), "F32 → F32 (as stored)") {
		t.Errorf("notes %q do not describe the load", gm.Notes)
	}
}

// TestGGUFGoldenQ8_0 converts tiny-a to GGUF Q8_0 and checks that it loads
// into exactly the weights Lightning's own q8b32 quantization gives (every
// matrix q8b32 with F16 scales), so its logits equal those of the q8b32
// model bit for bit, and logs both models' error against the official fp32
// logits.
func TestGGUFGoldenQ8_0(t *testing.T) {
	const dir = "testdata/golden/tiny-a"
	path := exportGolden(t, dir, gguf.Q8_0)
	g := openGolden(t, dir, Options{})
	spec := QuantSpec{Format: quant.Q8B32, LMHead: quant.Q8B32, Embed: quant.Q8B32, ScaleType: quant.F16}
	qm, err := Load(dir, Options{Quant: &spec})
	if err != nil {
		t.Fatal(err)
	}
	defer qm.Close()
	gm, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gm.Close()
	if !strings.Contains(strings.Join(gm.Notes, "\n"), "Q8_0 → q8b32 (lossless)") {
		t.Errorf("notes %q: Q8_0 not loaded as q8b32", gm.Notes)
	}
	for _, c := range g.man.Cases {
		if c.Kind != "prefill" || c.Tensor == nil {
			continue
		}
		ids := g.man.Prompts[c.Prompt]
		want := g.prefillLogits(t, c.Prompt)
		got := run(gm, ids, []int{len(ids)}, 0)
		ref := run(qm, ids, []int{len(ids)}, 0)
		if d := maxAbsDiff(got, ref); d != 0 {
			t.Errorf("%s: GGUF Q8_0 and Lightning q8b32 logits differ by %.3g", c.Name, d)
		}
		t.Logf("%s: max |Δlogit| vs official fp32: GGUF Q8_0 %.3g, Lightning q8b32 %.3g", c.Name, maxAbsDiff(got, want), maxAbsDiff(ref, want))
	}
}

// TestGGUFTypesAtLoad checks that each ggml type loads without loss: the
// converted (q8b32, q4g32, q4g32m) or in-place matrices dequantize to
// exactly the values of the stored blocks (quant's ggml formats, checked
// against llama.cpp's reference in quant).
func TestGGUFTypesAtLoad(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const rows, cols = 3, 256
	random := func(typ gguf.Type) []byte {
		rb, _ := typ.RowBytes(cols)
		b := make([]byte, rows*rb)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		info, _ := typ.Info()
		// Finite F16 scales: rewrite each block's half-precision fields.
		for blk := 0; blk < len(b)/info.BlockBytes; blk++ {
			o := blk * info.BlockBytes
			var fields []int
			switch typ {
			case gguf.Q8_0, gguf.Q4_0, gguf.Q5_0:
				fields = []int{0}
			case gguf.Q4_1, gguf.Q5_1, gguf.Q4_K, gguf.Q5_K:
				fields = []int{0, 2}
			case gguf.Q6_K:
				fields = []int{208}
			}
			for _, f := range fields {
				binary.LittleEndian.PutUint16(b[o+f:], 0x2000|uint16(r.IntN(0x1000))|uint16(r.IntN(2))<<15)
			}
			if typ == gguf.Q8_0 {
				for j := 2; j < 34; j++ {
					if b[o+j] == 0x80 {
						b[o+j] = 0x81
					}
				}
			}
		}
		return b
	}
	cases := []struct {
		typ gguf.Type
		as  quant.Type
	}{
		{gguf.Q8_0, quant.Q8B32}, {gguf.Q4_0, quant.Q4G32}, {gguf.Q4_1, quant.Q4G32M},
		{gguf.Q5_0, quant.GQ5_0}, {gguf.Q5_1, quant.GQ5_1}, {gguf.Q4_K, quant.GQ4_K},
		{gguf.Q5_K, quant.GQ5_K}, {gguf.Q6_K, quant.GQ6_K},
	}
	for _, c := range cases {
		t.Run(c.typ.String(), func(t *testing.T) {
			data := random(c.typ)
			m, how, err := ggufMat(c.typ, rows, cols, data)
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != c.as {
				t.Fatalf("loaded as %s (%s), want %s", m.Type, how, c.as)
			}
			ref, _ := quant.ByName(c.typ.String()) // the ggml blocks as stored
			rb, _ := c.typ.RowBytes(cols)
			want, got := make([]float32, cols), make([]float32, cols)
			for i := range rows {
				ref.DequantRow(want, data[i*rb:(i+1)*rb], nil, nil, quant.Invalid)
				tensor.Row(got, m, i)
				for j := range want {
					if got[j] != want[j] {
						t.Fatalf("row %d element %d: %v, want %v", i, j, got[j], want[j])
					}
				}
			}
		})
	}
	// The shapes q8b32 and q4g32(m) cannot hold stay blocks, exactly: a
	// Q8_0 quant of −128, and Q4_0 and Q4_1 rows that are not a multiple
	// of 64.
	for _, c := range []struct {
		typ  gguf.Type
		cols int
		as   quant.Type
	}{{gguf.Q8_0, cols, quant.GQ8_0}, {gguf.Q4_0, 96, quant.GQ4_0}, {gguf.Q4_1, 96, quant.GQ4_1}} {
		data := random(c.typ)
		rb, _ := c.typ.RowBytes(c.cols)
		data = data[:rows*rb]
		if c.typ == gguf.Q8_0 {
			data[5] = 0x80
		}
		m, how, err := ggufMat(c.typ, rows, c.cols, data)
		if err != nil || m.Type != c.as {
			t.Fatalf("%s [%d, %d]: %s (%s), %v; want %s", c.typ, rows, c.cols, m.Type, how, err, c.as)
		}
		ref, _ := quant.ByName(c.typ.String())
		want, got := make([]float32, c.cols), make([]float32, c.cols)
		for i := range rows {
			ref.DequantRow(want, data[i*rb:(i+1)*rb], nil, nil, quant.Invalid)
			tensor.Row(got, m, i)
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("%s row %d element %d: %v, want %v", c.typ, i, j, got[j], want[j])
				}
			}
		}
	}
	if _, _, err := ggufMat(gguf.IQ2_XXS, 1, 256, make([]byte, 66)); err == nil || !strings.Contains(err.Error(), "IQ2_XXS") {
		t.Errorf("IQ2_XXS: %v", err)
	}
}

// TestGGUFConfigErrors checks that a file of another architecture, or with
// a missing key, fails naming it.
func TestGGUFConfigErrors(t *testing.T) {
	path := exportGolden(t, "testdata/golden/tiny-a", gguf.F32)
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	meta := f.Metadata().Clone()
	var infos []gguf.TensorInfo
	var datas [][]byte
	for _, tt := range f.Tensors() {
		infos = append(infos, gguf.TensorInfo{Name: tt.Name, Type: tt.Type, Shape: tt.Shape})
		datas = append(datas, tt.Data)
	}
	write := func(m *gguf.Metadata) string {
		p := filepath.Join(t.TempDir(), "x.gguf")
		w, err := gguf.Create(p, m, infos)
		if err != nil {
			t.Fatal(err)
		}
		for i, in := range infos {
			if err := w.WriteTensor(in.Name, datas[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m1 := meta.Clone()
	m1.Set("general.architecture", "llama")
	m2 := gguf.NewMetadata()
	for _, k := range meta.Keys() {
		if k != ggufPrefix+"expert_count" {
			v, _ := meta.Get(k)
			m2.Set(k, v)
		}
	}
	paths := []struct{ path, want string }{{write(m1), `"llama", want "minimax-01"`}, {write(m2), "minimax-01.expert_count: missing"}}
	f.Close()
	for _, c := range paths {
		if _, err := Load(c.path, Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q", err, c.want)
		}
	}
}

// TestGGUFToHF goes from tiny-a to GGUF F32 and back to a Hugging Face
// folder; every step is exact in F32, so the final logits equal the
// original model's bit for bit.
func TestGGUFToHF(t *testing.T) {
	const dir = "testdata/golden/tiny-a"
	path := exportGolden(t, dir, gguf.F32)
	gm, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gm.Close()
	out := filepath.Join(t.TempDir(), "hf")
	if err := WriteHF(out, gm.Config, gm.Weights, quant.F32, nil); err != nil {
		t.Fatal(err)
	}
	hm, err := Load(out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hm.Close()
	om, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer om.Close()
	ids := []int32{1, 5, 9, 200, 3, 77, 4}
	if d := maxAbsDiff(run(hm, ids, []int{len(ids)}, 0), run(om, ids, []int{len(ids)}, 0)); d != 0 {
		t.Errorf("round-tripped model's logits differ by %.3g", d)
	}
	if len(hm.Warnings) != 0 {
		t.Errorf("warnings: %v", hm.Warnings)
	}
}

// TestGGUFQ5 writes a small model as Q5_0 and as Q5_1 (experts of 160
// hidden units, so w2's rows are an odd number of blocks), checks that the
// files load as blocks, and that the in-place blocks (int8 activations per
// 32, kernels.MatMulBlock32) compute nearly what the same blocks widened to
// F32 compute: the activations' rounding (≤ amax/254 each) must add well
// under a quarter of the error the 5-bit weights themselves make against
// the unquantized model. 24 tokens in one prefill take the multi-token
// kernels.
func TestGGUFQ5(t *testing.T) {
	c := shaped(512, 256, 8, 2, 1, 128, 64, 2, 160)()
	c.TopK = 1
	dir := filepath.Join(t.TempDir(), "m")
	if err := WriteRandom(dir, c, RandomOptions{DType: quant.F32, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	om, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer om.Close()
	r := rand.New(rand.NewPCG(3, 4))
	ids := make([]int32, 24)
	for i := range ids {
		ids[i] = int32(r.IntN(c.Vocab))
	}
	ref := run(om, ids, []int{len(ids)}, 0)
	for _, c := range []struct {
		typ gguf.Type
		as  quant.Type
	}{{gguf.Q5_0, quant.GQ5_0}, {gguf.Q5_1, quant.GQ5_1}} {
		t.Run(c.typ.String(), func(t *testing.T) {
			q5 := filepath.Join(t.TempDir(), "m-q5.gguf")
			var warns []string
			if err := WriteGGUF(q5, om.Config, om.Weights, GGUFExportOptions{Type: c.typ, Warn: func(s string) { warns = append(warns, s) }}); err != nil {
				t.Fatal(err)
			}
			if len(warns) != 0 {
				t.Errorf("fallbacks with rows of multiples of 32: %v", warns)
			}
			bm, err := Load(q5, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer bm.Close()
			if bm.Weights.Layers[0].QKV.Type != c.as || bm.Weights.Layers[0].Experts[1].W2.Type != c.as || bm.Weights.LMHead.Type != c.as {
				t.Fatalf("loaded as %s/%s/%s, want %s blocks", bm.Weights.Layers[0].QKV.Type, bm.Weights.Layers[0].Experts[1].W2.Type, bm.Weights.LMHead.Type, c.typ)
			}
			f32 := filepath.Join(t.TempDir(), "m-widened.gguf")
			if err := WriteGGUF(f32, bm.Config, bm.Weights, GGUFExportOptions{Type: gguf.F32}); err != nil {
				t.Fatal(err)
			}
			fm, err := Load(f32, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer fm.Close()
			a, b := run(bm, ids, []int{len(ids)}, 0), run(fm, ids, []int{len(ids)}, 0)
			d, wq := maxAbsDiff(a, b), maxAbsDiff(b, ref)
			t.Logf("max |Δlogit|: blocks vs widened to F32 %.3g; widened vs the F32 model %.3g (max |logit| %.3g)", d, wq, maxAbs(ref))
			if !(d <= wq/4) {
				t.Errorf("%s blocks vs the same blocks widened to F32: max |Δlogit| %.3g > a quarter of the weights' own error %.3g", c.typ, d, wq)
			}
		})
	}
}

// TestGGUFQ4_K writes a small model whose matrices all have rows of 256
// inputs as Q4_K, checks that it loads as Q4_K blocks, and that the
// in-place blocks (int8 activations per 256, kernels.MatMulKQuant) compute
// nearly what the same blocks widened to F32 compute: the activations'
// rounding (≤ amax/254 each) must add well under a quarter of the error
// the 4.5-bit weights themselves make against the unquantized model.
func TestGGUFQ4_K(t *testing.T) {
	c := shaped(512, 256, 8, 2, 1, 128, 64, 2, 256)()
	c.TopK = 1
	dir := filepath.Join(t.TempDir(), "m")
	if err := WriteRandom(dir, c, RandomOptions{DType: quant.F32, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	om, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer om.Close()
	q4 := filepath.Join(t.TempDir(), "m-q4_k.gguf")
	var warns []string
	if err := WriteGGUF(q4, om.Config, om.Weights, GGUFExportOptions{Type: gguf.Q4_K, Warn: func(s string) { warns = append(warns, s) }}); err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("fallbacks with rows of 256: %v", warns)
	}
	bm, err := Load(q4, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bm.Close()
	if bm.Weights.Layers[0].QKV.Type != quant.GQ4_K || bm.Weights.Layers[0].Experts[1].W2.Type != quant.GQ4_K {
		t.Fatalf("loaded as %s/%s, want Q4_K blocks", bm.Weights.Layers[0].QKV.Type, bm.Weights.Layers[0].Experts[1].W2.Type)
	}
	f32 := filepath.Join(t.TempDir(), "m-widened.gguf")
	if err := WriteGGUF(f32, bm.Config, bm.Weights, GGUFExportOptions{Type: gguf.F32}); err != nil {
		t.Fatal(err)
	}
	fm, err := Load(f32, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	ids := []int32{3, 17, 99, 256, 5, 511, 42, 7, 300, 1}
	a, b := run(bm, ids, []int{len(ids)}, 0), run(fm, ids, []int{len(ids)}, 0)
	ref := run(om, ids, []int{len(ids)}, 0)
	if d, wq := maxAbsDiff(a, b), maxAbsDiff(b, ref); !(d <= wq/4) {
		t.Errorf("Q4_K blocks vs the same blocks widened to F32: max |Δlogit| %.3g > a quarter of the weights' own error %.3g", d, wq)
	}
	spec := QuantSpec{Format: quant.Q4G64, LMHead: quant.Q4G64, Embed: quant.Q4G64, ScaleType: quant.F16}
	lm, err := Load(dir, Options{Quant: &spec})
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	t.Logf("max |Δlogit| vs the F32 model: Q4_K blocks %.3g, Q4_K widened to F32 %.3g, Lightning q4g64 %.3g (max |logit| %.3g)",
		maxAbsDiff(a, ref), maxAbsDiff(b, ref), maxAbsDiff(run(lm, ids, []int{len(ids)}, 0), ref), maxAbs(ref))
}

// TestGGUFMixes writes a 16-layer model (softmax layers 7 and 15) as
// Q4_K_M and Q5_K_M and checks every matrix's type against llama-quantize's
// rules, written out here by hand for 16 layers: the output matrix Q6_K;
// attn_qkv Q5_K (Q4_K_M) or Q6_K (Q5_K_M); Q6_K for ffn_down_exps in
// layers 0, 1, 4, 7, 10, 13, 14, 15 (the first and last eighth, every third
// between) and for both attn_v (indices 0 and 1 of 16); the base type for
// the rest; norms and routers F32. The Q4_K_M file then loads and runs.
func TestGGUFMixes(t *testing.T) {
	c := shaped(512, 256, 16, 2, 1, 128, 64, 2, 256)()
	dir := filepath.Join(t.TempDir(), "m")
	if err := WriteRandom(dir, c, RandomOptions{DType: quant.F32, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Config.LayerKinds[7] != Softmax || m.Config.LayerKinds[15] != Softmax || m.Config.LayerKinds[6] != Lightning || m.Config.TieEmbeddings {
		t.Fatalf("unexpected test model: kinds %v, tied %v", m.Config.LayerKinds, m.Config.TieEmbeddings)
	}
	moreBits := map[int]bool{0: true, 1: true, 4: true, 7: true, 10: true, 13: true, 14: true, 15: true}
	for _, mix := range []struct {
		base, qkv gguf.Type
		fileType  uint32
	}{{gguf.Q4_K, gguf.Q5_K, 15}, {gguf.Q5_K, gguf.Q6_K, 17}} {
		p := filepath.Join(t.TempDir(), "mix.gguf")
		if err := WriteGGUF(p, m.Config, m.Weights, GGUFExportOptions{Type: mix.base, Mixed: true}); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := f.Metadata().Get("general.file_type"); v != mix.fileType {
			t.Errorf("%s mix: general.file_type %v, want %d", mix.base, v, mix.fileType)
		}
		for _, tt := range f.Tensors() {
			want := mix.base
			var layer int
			fmt.Sscanf(tt.Name, "blk.%d.", &layer)
			switch {
			case len(tt.Shape) < 2 || strings.Contains(tt.Name, "ffn_gate_inp"):
				want = gguf.F32
			case tt.Name == "output.weight":
				want = gguf.Q6_K
			case strings.HasSuffix(tt.Name, "attn_qkv.weight"):
				want = mix.qkv
			case strings.HasSuffix(tt.Name, "attn_v.weight"):
				want = gguf.Q6_K
			case strings.HasSuffix(tt.Name, "ffn_down_exps.weight") && moreBits[layer]:
				want = gguf.Q6_K
			}
			if tt.Type != want {
				t.Errorf("%s mix: %s is %s, want %s", mix.base, tt.Name, tt.Type, want)
			}
		}
		f.Close()
		if mix.base != gguf.Q4_K {
			continue
		}
		qm, err := Load(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if qm.Weights.Layers[0].QKV.Type != quant.GQ5_K || qm.Weights.Layers[0].Experts[0].W2.Type != quant.GQ6_K || qm.Weights.Layers[2].Experts[0].W2.Type != quant.GQ4_K {
			t.Errorf("Q4_K_M loaded as %s, %s, %s", qm.Weights.Layers[0].QKV.Type, qm.Weights.Layers[0].Experts[0].W2.Type, qm.Weights.Layers[2].Experts[0].W2.Type)
		}
		ids := []int32{3, 17, 99, 256, 5}
		a, b := run(qm, ids, []int{len(ids)}, 0), run(m, ids, []int{len(ids)}, 0)
		t.Logf("Q4_K_M vs F32: max |Δlogit| %.3g (max |logit| %.3g)", maxAbsDiff(a, b), maxAbs(b))
		qm.Close()
	}
}
