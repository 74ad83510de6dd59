package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/tokenizer"
	"github.com/lightninglm/lightning/train/data"
)

// bpeTestData is the trainer's test corpus and golden output (see its
// README.md); the golden tokenizer.json is the one Hugging Face tokenizers'
// reference ids were recorded with.
const bpeTestData = "../../tokenizer/testdata/bpetrain"

// TestTrainTokenizerCLI trains on the test corpus folder and checks the files
// against the tokenizer package's golden ones (trained from the same files in
// the same order), then renders a chat with the written config and encodes
// it.
func TestTrainTokenizerCLI(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tok")
	_, stderr, code := runCLI(t, "train-tokenizer", "-data", filepath.Join(bpeTestData, "corpus"), "-vocab", "2048", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"counting:", "merging", "trained 1734 merges", "wrote " + out + ": 2048 ids"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(bpeTestData, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s/%s", name, bpeTestData, name)
		}
	}

	// The conversation of spec §5.2 with M1's template: §5.2's rendering
	// prefixed with <begin_of_document> (spec §5.3).
	in := `{"messages": [{"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]},` +
		`{"role": "user", "content": [{"type": "text", "text": "Hello!"}]}], "add_generation_prompt": true}`
	oldIn := stdin
	stdin = strings.NewReader(in)
	defer func() { stdin = oldIn }()
	rendered, stderr, code := runCLI(t, "template", "-config", filepath.Join(out, "tokenizer_config.json"))
	if code != 0 {
		t.Fatalf("template: exit %d: %s", code, stderr)
	}
	want := "<begin_of_document><beginning_of_sentence>system ai_setting=assistant\nYou are a helpful assistant.<end_of_sentence>\n" +
		"<beginning_of_sentence>user name=user\nHello!<end_of_sentence>\n<beginning_of_sentence>ai name=assistant\n"
	if rendered != want {
		t.Fatalf("rendered %q\nwant %q", rendered, want)
	}
	tok, err := tokenizer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode(rendered, false)
	bos, _ := tok.TokenToID("<beginning_of_sentence>")
	doc, _ := tok.TokenToID("<begin_of_document>")
	eos, ok := tok.EOS()
	if !ok || ids[0] != doc || ids[1] != bos || countOf(ids, bos) != 3 || countOf(ids, eos) != 2 {
		t.Errorf("prompt ids %v: want <begin_of_document> %d, then <beginning_of_sentence> %d ×3 and <end_of_sentence> %d ×2", ids, doc, bos, eos)
	}
	if back := tok.Decode(ids, false); back != rendered {
		t.Errorf("decode(encode(prompt)) = %q", back)
	}
}

func countOf(ids []int, id int) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

func TestTrainTokenizerErrors(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(bpeTestData, "corpus")
	full := filepath.Join(dir, "full")
	if err := os.WriteFile(filepath.Join(dir, "empty.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-vocab", "1000", "-o", out}, 2, "no data"},
		{[]string{"-data", corpus, "-o", out}, 2, "-vocab is required"},
		{[]string{"-data", corpus, "-vocab", "313", "-o", out}, 2, "-vocab 313 is too small: it must hold the 256 byte tokens and the 58 special tokens (at least 314)"},
		{[]string{"-data", corpus, "-vocab", "1000"}, 2, "-o DIR is required"},
		{[]string{"-data", corpus, "-vocab", "1000", "-o", out, "-eval-frac", "1"}, 2, "-eval-frac 1 is not in [0, 1)"},
		{[]string{"-data", filepath.Join(dir, "missing"), "-vocab", "1000", "-o", out}, 1, "missing"},
		{[]string{"-data", filepath.Join(dir, "empty.txt"), "-vocab", "1000", "-o", out}, 1, "no training text"},
		{[]string{"-data", corpus, "-vocab", "1000", "-o", full}, 1, "is not empty"},
	} {
		_, stderr, code := runCLI(t, append([]string{"train-tokenizer"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.msg)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed run created the output folder")
	}
}

// TestTrainTokenizerEvalFrac checks that the documents data.HeldOut picks are
// measured and not counted for training.
func TestTrainTokenizerEvalFrac(t *testing.T) {
	corpus := filepath.Join(bpeTestData, "corpus")
	files, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, f := range files {
		if data.HeldOut(f.Name(), 0, 0.5) {
			held++
		}
	}
	if held == 0 || held == len(files) {
		t.Fatalf("%d of %d files held out; pick another fraction so both sides have files", held, len(files))
	}
	out := filepath.Join(t.TempDir(), "tok")
	_, stderr, code := runCLI(t, "train-tokenizer", "-data", corpus, "-vocab", "600", "-eval-frac", "0.5", "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{fmt.Sprintf(" in %d documents,", len(files)-held), fmt.Sprintf("held-out: %d documents,", held), "bytes/token"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
