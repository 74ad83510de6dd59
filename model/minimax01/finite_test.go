package minimax01

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/quant"
)

// poisonTensor overwrites the bytes of tensor name in the safetensors file
// path with 0xFF (an F32 NaN), as a damaged download would.
func poisonTensor(t *testing.T, path, name string) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	found := false
	for _, n := range f.Names() {
		x, _ := f.Tensor(n)
		x.Data = bytes.Clone(x.Data)
		if n == name {
			found = true
			for i := range x.Data {
				x.Data[i] = 0xFF
			}
		}
		ts = append(ts, x)
	}
	meta := f.Metadata()
	f.Close()
	if !found {
		t.Fatalf("%s has no tensor %s", path, name)
	}
	if err := safetensors.Write(path, ts, meta); err != nil {
		t.Fatal(err)
	}
}

// TestLocateNonFinite poisons one lightning layer's output projection and
// checks that the logits are not finite and that the model names that layer
// (not an earlier one, not the head) as the first non-finite output.
func TestLocateNonFinite(t *testing.T) {
	dir := writeTiny(t, RandomOptions{DType: quant.F32, Seed: 3})
	poisonTensor(t, filepath.Join(dir, "model.safetensors"), "model.layers.2.self_attn.out_proj.weight")
	m, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	seq := model.Seq{State: m.NewState(), Tokens: []int32{1, 2, 3}, Logits: model.LogitsLast}
	logits := make([]float32, m.Config.Vocab)
	m.Forward([]model.Seq{seq}, logits)
	if model.AllFinite(logits) {
		t.Fatal("logits of a model with NaN weights are all finite")
	}
	err = model.NonFiniteError(m, seq)
	if !errors.Is(err, model.ErrNonFinite) {
		t.Fatalf("error %v does not wrap ErrNonFinite", err)
	}
	if want := "layer 2 of 8 (lightning), at attn_out"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}

	// A healthy model: nothing to locate.
	healthy, err := Load(writeTiny(t, RandomOptions{DType: quant.F32, Seed: 3}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.Close()
	seq.State = healthy.NewState()
	if where := healthy.LocateNonFinite(seq); where != "" {
		t.Errorf("healthy model: LocateNonFinite = %q", where)
	}
}
