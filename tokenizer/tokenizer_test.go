package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// tinyJSON is a minimal tokenizer.json (a byte-level BPE over "ab") whose
// parts the error tests replace.
func tinyJSON(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	vocab := map[string]any{"a": 0, "b": 1, "ab": 2, "Ġ": 3}
	m := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": []any{},
		"normalizer": nil, "pre_tokenizer": nil, "post_processor": nil, "decoder": nil,
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "vocab": vocab, "merges": []any{"a b"}},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLoadErrors checks that what is not supported fails at load, naming
// the component and type, instead of being ignored.
func TestLoadErrors(t *testing.T) {
	model := func(m map[string]any) map[string]any { return m["model"].(map[string]any) }
	for _, tc := range []struct {
		edit func(m map[string]any)
		want string
	}{
		{func(m map[string]any) { m["normalizer"] = map[string]any{"type": "BertNormalizer"} }, `normalizer: unsupported type "BertNormalizer"`},
		{func(m map[string]any) {
			m["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{map[string]any{"type": "Precompiled"}}}
		}, `normalizer: unsupported type "Precompiled"`},
		{func(m map[string]any) { m["pre_tokenizer"] = map[string]any{"type": "UnicodeScripts"} }, `pre_tokenizer: unsupported type "UnicodeScripts"`},
		{func(m map[string]any) { m["decoder"] = map[string]any{"type": "WordPiece"} }, `decoder: unsupported type "WordPiece"`},
		{func(m map[string]any) { m["post_processor"] = map[string]any{"type": "Foo"} }, `post_processor: unsupported type "Foo"`},
		{func(m map[string]any) { model(m)["type"] = "Unigram" }, `model: unsupported type "Unigram"`},
		{func(m map[string]any) { model(m)["dropout"] = 0.1 }, "dropout"},
		{func(m map[string]any) { model(m)["unk_token"] = "<unk>" }, "unk_token"},
		{func(m map[string]any) { model(m)["merges"] = []any{"a c"} }, "not in vocab"},
		{func(m map[string]any) { model(m)["merges"] = []any{"a b c"} }, "merges"},
		{func(m map[string]any) { m["truncation"] = map[string]any{"max_length": 512} }, "truncation"},
		{func(m map[string]any) { m["padding"] = map[string]any{"strategy": "BatchLongest"} }, "padding"},
		{func(m map[string]any) { m["version"] = "2.0" }, "version"},
		{func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "("}, "behavior": "Isolated", "invert": false}
		}, "Split pre-tokenizer: regex"},
		{func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"String": "a"}, "behavior": "Sideways", "invert": false}
		}, `unknown behavior "Sideways"`},
		{func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "add_prefix_space": false}
		}, "add_prefix_space does not match"},
		{func(m map[string]any) {
			m["decoder"] = map[string]any{"type": "Strip", "content": "ab", "start": 1, "stop": 0}
		}, "not a single character"},
		{func(m map[string]any) {
			m["post_processor"] = map[string]any{"type": "TemplateProcessing", "single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}}, "special_tokens": map[string]any{}}
		}, `special token "<s>" is not in special_tokens`},
	} {
		_, err := FromJSON(tinyJSON(t, tc.edit))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
	}
	if _, err := FromJSON(tinyJSON(t, nil)); err != nil {
		t.Fatalf("the base file fails: %v", err)
	}
}

// TestEncodeInvalidUTF8 checks that invalid UTF-8 is encoded as U+FFFD.
func TestEncodeInvalidUTF8(t *testing.T) {
	tk := loadGolden(t, "llama3", false)
	got := tk.Encode("a\xffb", false)
	want := tk.Encode("a\uFFFDb", false)
	if !equalInts(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestStreamDecoderRandom feeds random id sequences, biased towards byte
// tokens, incomplete UTF-8 and special tokens, and checks after every id that
// the emitted text plus Flush equals Decode, and that the emitted text is a
// prefix of Decode of the ids so far.
func TestStreamDecoderRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	// llama2 with a Strip decoder that removes up to three leading spaces.
	var file map[string]any
	if err := json.Unmarshal(readGz(t, filepath.Join("testdata", "llama2", "tokenizer.json.gz")), &file); err != nil {
		t.Fatal(err)
	}
	file["decoder"] = map[string]any{"type": "Sequence", "decoders": []any{
		map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
		map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
		map[string]any{"type": "Strip", "content": " ", "start": 3, "stop": 0},
	}}
	data, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	strip3, err := FromJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(goldenNames, "llama2-strip3") {
		var tk *Tokenizer
		if name == "llama2-strip3" {
			tk = strip3
		} else {
			tk = loadGolden(t, name, false)
		}
		// Candidate ids: byte-level single bytes (or <0xNN>), specials, and ordinary tokens.
		var pool []int
		for b := 0; b < 256; b++ {
			if id, ok := tk.TokenToID(byteRuneStr[b]); ok && !tk.streamFallback {
				pool = append(pool, id)
			}
			if id, ok := tk.TokenToID(byteFallbackToken(byte(b))); ok {
				pool = append(pool, id)
			}
		}
		pool = append(pool, tk.SpecialTokenIDs()[:min(5, len(tk.SpecialTokenIDs()))]...)
		for _, w := range []string{" the", "▁the", "é", "中文", "😀", " 🫠", "\n", " ", "  ", "   "} {
			pool = append(pool, tk.Encode(w, false)...)
		}
		for trial := 0; trial < 300; trial++ {
			skip := trial%2 == 0
			d := tk.NewStreamDecoder(skip)
			var ids []int
			var got strings.Builder
			for k := 0; k < 1+r.IntN(30); k++ {
				id := pool[r.IntN(len(pool))]
				ids = append(ids, id)
				got.WriteString(d.Add(id))
				full := tk.Decode(ids, skip)
				if !strings.HasPrefix(full, got.String()) {
					t.Fatalf("%s: ids %v: emitted %q is not a prefix of %q", name, ids, got.String(), full)
				}
				if !utf8.ValidString(got.String()) {
					t.Fatalf("%s: emitted invalid UTF-8 %q", name, got.String())
				}
			}
			got.WriteString(d.Flush())
			if full := tk.Decode(ids, skip); got.String() != full {
				t.Fatalf("%s: ids %v: stream %q, Decode %q", name, ids, got.String(), full)
			}
		}
	}
}

// TestAPI covers the small accessors.
func TestAPI(t *testing.T) {
	tk := loadGolden(t, "llama2", false)
	if n := tk.VocabSize(); n != 32000 {
		t.Errorf("VocabSize %d", n)
	}
	if ids := tk.SpecialTokenIDs(); !equalInts(ids, []int{0, 1, 2}) {
		t.Errorf("SpecialTokenIDs %v", ids)
	}
	if _, ok := tk.IDToToken(-1); ok {
		t.Error("IDToToken(-1) ok")
	}
	if _, ok := tk.IDToToken(1 << 40); ok {
		t.Error("IDToToken(1<<40) ok")
	}
	if _, ok := tk.BOS(); ok {
		t.Error("BOS without tokenizer_config.json")
	}
	if got := len(tk.AddedTokens()); got != 3 {
		t.Errorf("%d added tokens", got)
	}
	ids, toks := tk.EncodeTokens("Hi", true)
	if len(ids) != len(toks) || toks[0] != "<s>" {
		t.Errorf("EncodeTokens %v %q", ids, toks)
	}
}

// TestLoadWithConfig loads tokenizer.json as a file and as a folder; the
// tokenizer_config.json beside it names BOS and EOS.
func TestLoadWithConfig(t *testing.T) {
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join("testdata", "llama2", "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), readGz(t, filepath.Join("testdata", "llama2", "tokenizer.json.gz")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, filepath.Join(dir, "tokenizer.json")} {
		tk, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := tk.BOS(); !ok || id != 1 {
			t.Errorf("%s: BOS %d %v, want 1", path, id, ok)
		}
		if id, ok := tk.EOS(); !ok || id != 2 {
			t.Errorf("%s: EOS %d %v, want 2", path, id, ok)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing path: no error")
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "neither tokenizer.json") {
		t.Errorf("empty folder: %v", err)
	}
}

// TestFromFiles builds the tokenizer from the two files' contents and checks
// it against Load of the folder holding them: the same BOS and EOS and the
// same ids.
func TestFromFiles(t *testing.T) {
	tj := readGz(t, filepath.Join("testdata", "llama2", "tokenizer.json.gz"))
	cfg, err := os.ReadFile(filepath.Join("testdata", "llama2", "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tk, err := FromFiles(tj, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tk.BOS(); !ok || id != 1 {
		t.Errorf("BOS %d %v, want 1", id, ok)
	}
	if id, ok := tk.EOS(); !ok || id != 2 {
		t.Errorf("EOS %d %v, want 2", id, ok)
	}
	noCfg, err := FromJSON(tj)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := noCfg.EOS(); ok {
		t.Error("FromJSON alone knows an EOS; the test cannot tell whether FromFiles read the config")
	}
	if _, err := FromFiles(tj, []byte(`{"eos_token": 7}`)); err == nil || !strings.Contains(err.Error(), "tokenizer_config.json") {
		t.Errorf("bad config: err = %v, want one naming tokenizer_config.json", err)
	}
}

// TestConcurrentEncode encodes the golden strings from several goroutines
// at once (run with -race) and checks the results.
func TestConcurrentEncode(t *testing.T) {
	tk := loadGolden(t, "qwen3", false)
	tk.model.cache.clear()
	cases := readJSONL[goldenCase](t, filepath.Join("testdata", "qwen3", "cases.jsonl.gz"))
	errs := make(chan string, 8)
	for g := 0; g < 4; g++ {
		go func() {
			for i := range cases {
				c := cases[(i*7+g*31)%len(cases)]
				if ids := tk.Encode(c.Text, c.AddSpecial); !equalInts(ids, c.IDs) {
					errs <- c.ID
					return
				}
			}
			errs <- ""
		}()
	}
	for g := 0; g < 4; g++ {
		if id := <-errs; id != "" {
			t.Errorf("%s: wrong ids under concurrency", id)
		}
	}
}
