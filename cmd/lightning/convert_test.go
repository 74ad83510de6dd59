package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/gguf"
	"github.com/lightninglm/lightning/tokenizer"
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
	// tokenize -tokenizer takes the .gguf file (scripts/llamacpp-check.mjs
	// relies on it) and encodes as the folder does (texts in NFC: Qwen3's
	// normalizer has no GGUF form).
	lines := `{"text": "<|im_start|>user\nHow many r's in 12345 strawberries?<|im_end|>\n"}` + "\n" +
		`{"text": "  tabs\t\tand\r\nCRLF   \n\n", "add_special_tokens": true}` + "\n" + `{"text": "你好，世界！🌍 naïve café"}` + "\n"
	wantIDs, stderr, code := runCLIStdin(t, lines, "tokenize", "-tokenizer", dir, "-jsonl")
	if code != 0 {
		t.Fatalf("tokenize folder: %s", stderr)
	}
	if gotIDs, stderr, code := runCLIStdin(t, lines, "tokenize", "-tokenizer", file, "-jsonl"); code != 0 || gotIDs != wantIDs {
		t.Errorf("tokenize -tokenizer FILE.gguf: exit %d %s\n got %s\nwant %s", code, stderr, gotIDs, wantIDs)
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

// TestConvertHFTokenizer takes a model folder to GGUF and back to a Hugging
// Face folder, and checks that the folder's reconstructed tokenizer.json and
// tokenizer_config.json encode varied text (special tokens, digits, CJK,
// emoji, white space runs) and the chat template's rendering to the
// original's ids, and that the folder runs and chats on its own as the
// original does. A folder converted to hf gets copies of its tokenizer files.
func TestConvertHFTokenizer(t *testing.T) {
	dir := qwenModel(t)
	tmp := t.TempDir()
	file, back := filepath.Join(tmp, "m.gguf"), filepath.Join(tmp, "hf")
	if _, stderr, code := runCLI(t, "convert", "-model", dir, "-to", "gguf", "-type", "f32", "-o", file); code != 0 {
		t.Fatalf("convert -to gguf: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "convert", "-model", file, "-to", "hf", "-type", "f32", "-o", back); code != 0 || !strings.Contains(stderr, "tokenizer.json, tokenizer_config.json") {
		t.Fatalf("convert -to hf: exit %d: %s", code, stderr)
	}
	orig, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tokenizer.Load(back)
	if err != nil {
		t.Fatal(err)
	}
	// Texts in NFC: the Qwen3 tokenizer's NFC normalizer has no GGUF form.
	texts := []string{
		"<|im_start|>user\nHow many r's are in 12345 strawberries?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
		"  leading spaces,\ttabs\t\tand\r\nCRLF line ends   \n\n\n",
		"你好，世界！こんにちは 🌍🚀 naïve café ÀÉÎ",
		"func main() { x := 3.14159; fmt.Println(x*2) } // don't WON'T I'll",
		"<|endoftext|><|im_end|><|im_start|>",
	}
	for _, s := range texts {
		if a, b := orig.Encode(s, true), got.Encode(s, true); !slices.Equal(a, b) {
			t.Errorf("%q:\n original %v\n     back %v", s, a, b)
		}
	}
	if a, b := orig.SpecialTokenIDs(), got.SpecialTokenIDs(); !slices.Equal(a, b) {
		t.Errorf("special tokens %v, back %v", a, b)
	}
	if a, ok := orig.EOS(); ok {
		if b, ok := got.EOS(); !ok || a != b {
			t.Errorf("EOS %d, back %d (%v)", a, b, ok)
		}
	}
	conv := `{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi! 2+2=?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3×3?"}], "add_generation_prompt": true}`
	wantText, stderr, code := runCLIStdin(t, conv, "template", "-config", filepath.Join(dir, "tokenizer_config.json"))
	if code != 0 {
		t.Fatalf("template: %s", stderr)
	}
	gotText, stderr, code := runCLIStdin(t, conv, "template", "-config", filepath.Join(back, "tokenizer_config.json"))
	if code != 0 || gotText != wantText {
		t.Errorf("chat template: exit %d %s\n got %q\nwant %q", code, stderr, gotText, wantText)
	}
	if a, b := orig.Encode(wantText, false), got.Encode(gotText, false); !slices.Equal(a, b) {
		t.Errorf("rendered conversation: ids %v, back %v", a, b)
	}

	want, stderr, code := runCLI(t, "run", "-model", dir, "-temperature", "0", "-n", "8", "Hello there")
	if code != 0 {
		t.Fatalf("run folder: %s", stderr)
	}
	if out, stderr, code := runCLI(t, "run", "-model", back, "-temperature", "0", "-n", "8", "Hello there"); code != 0 || out != want {
		t.Errorf("run on the hf folder: exit %d, %q, want %q (%s)", code, out, want, stderr)
	}
	wantChat, _, _ := runCLIStdin(t, "Hi!\n", "chat", "-model", dir, "-temperature", "0", "-n", "6")
	if out, stderr, code := runCLIStdin(t, "Hi!\n", "chat", "-model", back, "-temperature", "0", "-n", "6"); code != 0 || out != wantChat {
		t.Errorf("chat on the hf folder: exit %d, %q, want %q (%s)", code, out, wantChat, stderr)
	}

	// From a folder the files are copied as they are.
	copied := filepath.Join(tmp, "copied")
	if _, stderr, code := runCLI(t, "convert", "-model", dir, "-to", "hf", "-type", "f32", "-o", copied); code != 0 {
		t.Fatalf("convert folder -to hf: exit %d: %s", code, stderr)
	}
	for _, n := range []string{"tokenizer.json", "tokenizer_config.json"} {
		a, _ := os.ReadFile(filepath.Join(dir, n))
		b, err := os.ReadFile(filepath.Join(copied, n))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s not copied (%v)", n, err)
		}
	}
}

// TestConvertGGUFWithoutTokenizer converts a model that has no tokenizer:
// the file says so the way llama.cpp reads it (tokenizer.ggml.model "none"
// and the vocabulary size), token ids run from it as from the folder, and
// text is refused with the reason.
func TestConvertGGUFWithoutTokenizer(t *testing.T) {
	tmp := t.TempDir()
	dir, file := filepath.Join(tmp, "m"), filepath.Join(tmp, "m.gguf")
	if _, stderr, code := runCLI(t, "random-model", "-preset", "tiny", "-dtype", "f32", "-o", dir); code != 0 {
		t.Fatalf("random-model: %s", stderr)
	}
	_, stderr, code := runCLI(t, "convert", "-model", dir, "-to", "gguf", "-type", "f32", "-o", file)
	if code != 0 || !strings.Contains(stderr, `tokenizer.ggml.model = "none"`) {
		t.Fatalf("convert: exit %d, stderr %q; want success and a warning naming tokenizer.ggml.model = \"none\"", code, stderr)
	}
	f, err := gguf.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	model, err := f.Metadata().String("tokenizer.ggml.model")
	vocab, err2 := f.Metadata().Uint("minimax-01.vocab_size")
	f.Close()
	if err != nil || err2 != nil || model != "none" || vocab != 512 {
		t.Fatalf("tokenizer.ggml.model = %q (%v), minimax-01.vocab_size = %d (%v); want \"none\" and 512", model, err, vocab, err2)
	}
	want, _, _ := runCLI(t, "generate", "-model", dir, "-ids", "1,2,3", "-n", "4")
	if got, stderr, code := runCLI(t, "generate", "-model", file, "-ids", "1,2,3", "-n", "4"); code != 0 || got != want {
		t.Fatalf("generate from the GGUF file: %q (exit %d, %s), want %q as from the folder", got, code, stderr, want)
	}
	if _, stderr, code := runCLI(t, "run", "-model", file, "-raw", "hi"); code == 0 || !strings.Contains(stderr, "without a vocabulary") {
		t.Fatalf("run with text: exit %d, stderr %q; want a failure saying the model has no vocabulary", code, stderr)
	}
}
