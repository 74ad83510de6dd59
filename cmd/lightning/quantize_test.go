package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuantizeCommand quantizes a golden model, checks the folder, then
// checks that logits of the written checkpoint equal those of -quant at
// load (byte for byte) and that eval and perplexity run on it.
func TestQuantizeCommand(t *testing.T) {
	src := filepath.Join(goldenDir, "tiny-a")
	dst := filepath.Join(t.TempDir(), "q")
	if _, errs, code := runCLI(t, "quantize", "-model", src, "-format", "q4g64", "-o", dst); code != 0 {
		t.Fatalf("quantize: %s", errs)
	}
	for _, f := range []string{"config.json", "model.safetensors", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(dst, f)); err != nil {
			t.Errorf("%s missing from the quantized folder: %v", f, err)
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(dst, "config.json"))
	if !strings.Contains(string(cfg), `"format": "q4g64"`) {
		t.Errorf("config.json lacks the quantization_config:\n%s", cfg)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	ids := "105,145,195,83,276,128,440,12,7"
	if _, errs, code := runCLI(t, "logits", "-model", dst, "-ids", ids, "-o", a); code != 0 {
		t.Fatal(errs)
	}
	if _, errs, code := runCLI(t, "logits", "-model", src, "-quant", "q4g64", "-ids", ids, "-o", b); code != 0 {
		t.Fatal(errs)
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Error("logits of the quantized checkpoint differ from -quant q4g64 at load")
	}
	out, errs, code := runCLI(t, "eval", "-model", src, "-quant", "q8,q4g64", "-max-prompts", "3")
	if code != 0 || !strings.Contains(out, "top-1 agree") || !strings.Contains(out, "q4g64") {
		t.Fatalf("eval: code %d\n%s\n%s", code, out, errs)
	}
	idFile := filepath.Join(dir, "ids.txt")
	if err := os.WriteFile(idFile, []byte("105 145 195 83\n276,128,440,12,7,300\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-model", dst}, {"-model", src, "-quant", "q4g64"}, {"-model", src}} {
		out, errs, code := runCLI(t, append([]string{"perplexity", "-ids", idFile, "-ctx", "4"}, args...)...)
		if code != 0 || !strings.Contains(out, "perplexity") {
			t.Fatalf("perplexity %v: code %d\n%s\n%s", args, code, out, errs)
		}
	}
	// Bad flags are usage errors.
	for _, args := range [][]string{
		{"quantize", "-model", src, "-format", "q5", "-o", filepath.Join(dir, "x")},
		{"quantize", "-model", src, "-format", "q8", "-o", filepath.Join(dir, "y"), "-scale-dtype", "F8"},
		{"logits", "-model", src, "-quant", "bf16", "-ids", "1", "-o", a},
		{"quantize", "-model", src, "-format", "q8", "-o", dst},
	} {
		if _, _, code := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
