package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/safetensors"
)

// poisonTensor overwrites the bytes of tensor name in the safetensors file
// path with 0xFF (an F32 or BF16 NaN), as a damaged download would.
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

// TestNonFiniteWeights checks that a checkpoint with NaN weights makes
// generate and logits fail with the layer where the values stop being
// finite, and that inspect -check names the tensor.
func TestNonFiniteWeights(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := runCLI(t, "random-model", "-preset", "tiny", "-dtype", "f32", "-o", dir); code != 0 {
		t.Fatalf("random-model: %s", stderr)
	}
	const bad = "model.layers.2.self_attn.out_proj.weight"
	poisonTensor(t, filepath.Join(dir, "model.safetensors"), bad)
	const where = "layer 2 of 8 (lightning)"

	out, stderr, code := runCLI(t, "generate", "-model", dir, "-ids", "1,2,3", "-n", "4")
	if code != 1 || !strings.Contains(stderr, where) || out != "" {
		t.Errorf("generate: exit %d, stdout %q, stderr %q; want exit 1 naming %q", code, out, stderr, where)
	}
	outFile := filepath.Join(t.TempDir(), "logits.safetensors")
	_, stderr, code = runCLI(t, "logits", "-model", dir, "-ids", "1,2,3", "-o", outFile)
	if code != 1 || !strings.Contains(stderr, where) {
		t.Errorf("logits: exit %d, stderr %q; want exit 1 naming %q", code, stderr, where)
	}
	out, stderr, code = runCLI(t, "inspect", "-model", dir, "-check")
	if code != 1 || !strings.Contains(out+stderr, bad) {
		t.Errorf("inspect -check: exit %d, stdout %q, stderr %q; want exit 1 naming %s", code, out, stderr, bad)
	}
	// The healthy checkpoint passes the check.
	good := t.TempDir()
	if _, stderr, code := runCLI(t, "random-model", "-preset", "tiny", "-dtype", "bf16", "-o", good); code != 0 {
		t.Fatalf("random-model: %s", stderr)
	}
	if out, stderr, code := runCLI(t, "inspect", "-model", good, "-check"); code != 0 || !strings.Contains(out, "all finite") {
		t.Errorf("inspect -check on a healthy model: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}
