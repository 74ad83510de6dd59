package minimax01

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/lightninglm/lightning/quant"
)

// TestLoadBytes loads a q8 checkpoint from its bytes in memory and checks
// that it gives Load's logits bit for bit and that no matrix was copied:
// every weight view points into the given bytes.
func TestLoadBytes(t *testing.T) {
	c, err := PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	src, dir := filepath.Join(t.TempDir(), "f32"), filepath.Join(t.TempDir(), "q8")
	if err := WriteRandom(src, c, RandomOptions{DType: quant.F32, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	if err := QuantizeCheckpoint(src, dir, QuantizeOptions{Spec: DefaultQuantSpec(quant.Q8)}); err != nil {
		t.Fatal(err)
	}
	cfgJSON, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	weights, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	fromDisk, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fromDisk.Close()
	m, err := LoadBytes("in-memory", cfgJSON, weights, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	toks := []int32{3, 1, 4, 1, 5, 9, 2, 6}
	if want, got := run(fromDisk, toks, []int{8}, 0), run(m, toks, []int{8}, 0); !sameBits(got, want) {
		t.Error("LoadBytes logits differ from Load's")
	}

	lo := uintptr(unsafe.Pointer(&weights[0]))
	hi := lo + uintptr(len(weights))
	inside := func(b []byte) bool {
		p := uintptr(unsafe.Pointer(&b[0]))
		return p >= lo && p+uintptr(len(b)) <= hi
	}
	for _, p := range ParamTable(c) {
		mat, _ := m.Weights.Bind(p)
		if mat == nil || mat.Rows == 0 {
			continue
		}
		if !inside(mat.Data) || (mat.Scales != nil && !inside(mat.Scales)) {
			t.Errorf("%s (%s): a copy, not a view into the given bytes", p.Name, mat.Type)
		}
	}

	if _, err := LoadBytes("in-memory", []byte(`{"model_type": "minimax_text_01"}`), weights, Options{}); err == nil {
		t.Error("LoadBytes accepted an incomplete config.json")
	}
	if _, err := LoadBytes("in-memory", cfgJSON, weights[:len(weights)/2], Options{}); err == nil {
		t.Error("LoadBytes accepted truncated weights")
	}
}
