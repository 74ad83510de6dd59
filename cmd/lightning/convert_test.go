package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestConvertGGUF converts a model with a tokenizer and chat template to a
// single GGUF file and checks that run and chat work from that file alone
// and give the same greedy text as the folder, that inspect describes it,
// and that -to hf brings it back.
func TestConvertGGUF(t *testing.T) {
	dir := qwenModel(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "m.gguf")
	if _, stderr, code := runCLI(t, "convert", "-model", dir, "-to", "gguf", "-type", "f32", "-o", file); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, stderr)
	}
	// "Hello there" splits the same under Qwen3's regex and GPT-2's, which
	// the GGUF tokenizer section implies.
	want, stderr, code := runCLI(t, "run", "-model", dir, "-temperature", "0", "-n", "8", "Hello there")
	if code != 0 {
		t.Fatalf("run folder: %s", stderr)
	}
	got, stderr, code := runCLI(t, "run", "-model", file, "-temperature", "0", "-n", "8", "Hello there")
	if code != 0 || got != want {
		t.Errorf("run on GGUF: exit %d, %q, want %q (%s)", code, got, want, stderr)
	}
	wantChat, _, _ := runCLIStdin(t, "Hi!\n", "chat", "-model", dir, "-temperature", "0", "-n", "6")
	gotChat, stderr, code := runCLIStdin(t, "Hi!\n", "chat", "-model", file, "-temperature", "0", "-n", "6")
	if code != 0 || gotChat != wantChat {
		t.Errorf("chat on GGUF: exit %d, %q, want %q (%s)", code, gotChat, wantChat, stderr)
	}
	out, stderr, code := runCLI(t, "inspect", "-model", file)
	if code != 0 || !strings.Contains(out, "F32 matrices → F32 (as stored)") || !strings.Contains(out, "lightning output norm eps") {
		t.Errorf("inspect: exit %d\n%s%s", code, out, stderr)
	}
	back := filepath.Join(tmp, "hf")
	if _, stderr, code := runCLI(t, "convert", "-model", file, "-to", "hf", "-type", "f32", "-o", back); code != 0 {
		t.Fatalf("convert -to hf: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "convert", "-model", dir, "-to", "gguf", "-type", "q2_k", "-o", file); code != 2 || !strings.Contains(stderr, "q2_k") {
		t.Errorf("unsupported -type: exit %d %q", code, stderr)
	}
}
