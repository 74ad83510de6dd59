package minimax01

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/safetensors"
)

// sameBits reports whether a and b hold the same float32 bit patterns.
func sameBits(a, b []float32) bool {
	return len(a) == len(b) && slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestSaveCheckpointRoundTrip saves an initialised slab, reads it back with
// LoadF32 (bit for bit, and the same config), and loads the folder with the
// ordinary Load, which must give exactly the logits of the slab-backed model
// (both run the same F32 kernels on the same values).
func TestSaveCheckpointRoundTrip(t *testing.T) {
	for _, tied := range []bool{false, true} {
		t.Run(fmt.Sprintf("tied=%v", tied), func(t *testing.T) {
			c, err := PresetConfig("tiny")
			if err != nil {
				t.Fatal(err)
			}
			c.TieEmbeddings = tied
			c.RouterAuxCoef = 0.01 // not the default, so the round trip shows it
			if tied {
				c.MaxPositions = 0 // absent from config.json: must stay absent
				c.BlockLen = 64
			}
			w, slab := NewF32Weights(c)
			InitWeights(c, slab, 3)
			dir := filepath.Join(t.TempDir(), "ckpt")
			if err := SaveCheckpoint(dir, c, slab); err != nil {
				t.Fatal(err)
			}
			c2, w2, slab2, err := LoadF32(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprintf("%+v", *c2), fmt.Sprintf("%+v", *c); got != want {
				t.Errorf("config read back\n%s\nwant\n%s", got, want)
			}
			if !sameBits(slab2, slab) {
				t.Error("LoadF32 slab differs from the saved one")
			}
			toks := []int32{1, 2, 3, 4, 5, 6, 7}
			want := run(New(c, w, Options{}), toks, []int{7}, 0)
			m, err := Load(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if len(m.Warnings) != 0 {
				t.Errorf("Load warns: %v", m.Warnings)
			}
			if got := run(m, toks, []int{7}, 0); !sameBits(got, want) {
				t.Errorf("Load of the saved folder: logits differ by %g", maxAbsDiff(got, want))
			}
			if got := run(New(c2, w2, Options{}), toks, []int{7}, 0); !sameBits(got, want) {
				t.Errorf("LoadF32 model: logits differ by %g", maxAbsDiff(got, want))
			}
		})
	}
}

// TestSaveCheckpointReplaces overwrites a checkpoint and checks that the new
// weights are in place and that no temporary folder is left behind.
func TestSaveCheckpointReplaces(t *testing.T) {
	c, _ := PresetConfig("tiny")
	_, slab := NewF32Weights(c)
	parent := t.TempDir()
	dir := filepath.Join(parent, "ckpt")
	for seed := uint64(1); seed <= 2; seed++ {
		InitWeights(c, slab, seed)
		if err := SaveCheckpoint(dir, c, slab); err != nil {
			t.Fatal(err)
		}
	}
	_, _, got, err := LoadF32(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(got, slab) {
		t.Error("the second save did not replace the first")
	}
	ents, _ := os.ReadDir(parent)
	if len(ents) != 1 {
		t.Errorf("parent holds %d entries, want only ckpt", len(ents))
	}
	if err := SaveCheckpoint(filepath.Join(parent, "short"), c, slab[1:]); err == nil {
		t.Error("a slab of the wrong length was saved")
	}
	if _, err := os.Stat(filepath.Join(parent, "short")); !os.IsNotExist(err) {
		t.Errorf("a failed save left a folder: %v", err)
	}
}

// TestLoadF32BF16 reads the golden bf16 model and checks every value
// against the file's bits widened independently (bf16 is the top half of
// an fp32), and the router gate, stored F32, copied as is.
func TestLoadF32BF16(t *testing.T) {
	dir := filepath.Join("testdata", "golden", "tiny-a-bf16")
	c, _, slab, err := LoadF32(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range ParamTable(c) {
		x, _ := f.Tensor(p.Name)
		var want []float32
		switch x.DType {
		case safetensors.BF16:
			for _, u := range x.U16() {
				want = append(want, math.Float32frombits(uint32(u)<<16))
			}
		case safetensors.F32:
			want = x.F32()
		default:
			t.Fatalf("%s: golden dtype %s", p.Name, x.DType)
		}
		if !sameBits(slab[p.Offset:p.Offset+p.Size], want) {
			t.Errorf("%s (%s): values differ from the file", p.Name, x.DType)
		}
	}
}

// TestSlabRoundTrip saves and loads an optimizer-moment-like slab, and
// checks that files of another configuration are refused, naming the
// tensor, without touching the destination.
func TestSlabRoundTrip(t *testing.T) {
	c, _ := PresetConfig("tiny")
	ps := ParamTable(c)
	slab := make([]float32, SlabSize(ps))
	for i := range slab {
		slab[i] = float32(i%977) * 1e-3 // every value distinct within a tensor row
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := SaveSlab(path, c, slab); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, len(slab))
	if err := LoadSlab(path, c, got); err != nil {
		t.Fatal(err)
	}
	if !sameBits(got, slab) {
		t.Error("LoadSlab differs from SaveSlab's slab")
	}

	narrow, _ := PresetConfig("tiny")
	narrow.FFN = 64
	tied, _ := PresetConfig("tiny")
	tied.TieEmbeddings = true
	for _, tc := range []struct {
		name   string
		c      *Config
		tensor string
	}{
		{"other shape", narrow, "model.layers.0.block_sparse_moe.experts.0.w1.weight"},
		{"extra tensor", tied, "lm_head.weight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]float32, SlabSize(ParamTable(tc.c)))
			err := LoadSlab(path, tc.c, dst)
			if err == nil || !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), tc.tensor) {
				t.Errorf("error %v, want ErrWeights naming %s", err, tc.tensor)
			}
			if slices.ContainsFunc(dst, func(x float32) bool { return x != 0 }) {
				t.Error("a refused file was partly copied")
			}
		})
	}
	if err := LoadSlab(path, c, got[1:]); err == nil || !strings.Contains(err.Error(), "slab holds") {
		t.Errorf("short slab: error %v", err)
	}
}

// TestFusedExpertLayout rewrites the golden tiny-a model in the HF v5 fused
// expert layout (spec §3.4) and checks that Load gives exactly the same
// logits and LoadF32 exactly the same slab as from the official layout.
func TestFusedExpertLayout(t *testing.T) {
	src := filepath.Join("testdata", "golden", "tiny-a")
	c, err := LoadConfig(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	get := func(name string) []byte {
		x, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("golden lacks %s", name)
		}
		return x.Data
	}
	var ts []safetensors.Tensor
	for _, n := range f.Names() {
		if !strings.Contains(n, ".block_sparse_moe.") {
			x, _ := f.Tensor(n)
			ts = append(ts, x)
		}
	}
	for l := range c.Layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		var gu, dn []byte
		for e := range c.Experts {
			ep := fmt.Sprintf("%sblock_sparse_moe.experts.%d.", p, e)
			gu = append(append(gu, get(ep+"w1.weight")...), get(ep+"w3.weight")...)
			dn = append(dn, get(ep+"w2.weight")...)
		}
		ts = append(ts,
			safetensors.Tensor{Name: p + "mlp.gate.weight", DType: safetensors.F32, Shape: []int{c.Experts, c.Dim}, Data: get(p + "block_sparse_moe.gate.weight")},
			safetensors.Tensor{Name: p + "mlp.experts.gate_up_proj", DType: safetensors.F32, Shape: []int{c.Experts, 2 * c.FFN, c.Dim}, Data: gu},
			safetensors.Tensor{Name: p + "mlp.experts.down_proj", DType: safetensors.F32, Shape: []int{c.Experts, c.Dim, c.FFN}, Data: dn})
	}
	dir := t.TempDir()
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(src, "config.json"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	toks := []int32{5, 4, 3, 2, 1, 9}
	var logits [2][]float32
	var slabs [2][]float32
	for i, d := range []string{src, dir} {
		m, err := Load(d, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Warnings) != 0 {
			t.Errorf("%s: warnings %v", d, m.Warnings)
		}
		logits[i] = run(m, toks, []int{len(toks)}, 0)
		m.Close()
		if _, _, slabs[i], err = LoadF32(d); err != nil {
			t.Fatal(err)
		}
	}
	if !sameBits(logits[0], logits[1]) {
		t.Errorf("fused layout: logits differ by %g", maxAbsDiff(logits[0], logits[1]))
	}
	if !sameBits(slabs[0], slabs[1]) {
		t.Error("fused layout: LoadF32 slabs differ")
	}

	// A part (a dist worker's slice) takes the same tensors from either
	// layout: its layers' attention side and router and its experts, and
	// nothing else.
	part := &Part{First: 2, Last: 4, Attention: true, ExpertLo: 1, ExpertHi: 3}
	var ms [2]*Model
	for i, d := range []string{src, dir} {
		if ms[i], err = Load(d, Options{Part: part}); err != nil {
			t.Fatal(err)
		}
		defer ms[i].Close()
		if len(ms[i].Warnings) != 0 {
			t.Errorf("%s with a part: warnings %v", d, ms[i].Warnings)
		}
	}
	for _, p := range ParamTable(c) {
		var got [2][]byte
		for i, m := range ms {
			if mat, v := m.Weights.Bind(p); mat != nil {
				got[i] = mat.Data
			} else {
				got[i] = f32Bytes(*v)
			}
		}
		if held := part.HoldsParam(p); held != (len(got[0]) > 0) || held != (len(got[1]) > 0) {
			t.Errorf("%s: held %v, loaded %d and %d bytes (official, fused)", p.Name, held, len(got[0]), len(got[1]))
		} else if !bytes.Equal(got[0], got[1]) {
			t.Errorf("%s: the fused layout's part differs", p.Name)
		}
	}
}
