package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files of the BPE trainer tests")

// The trainer tests use testdata/bpetrain (see its README.md): a corpus of
// Go source and hand-written multilingual and chat text, held-out cases, the
// tokenizer trained from the corpus (golden), and the ids Hugging Face
// tokenizers gives for the held-out cases with that tokenizer.json, recorded
// by scripts/tokenizer_ref.js.
const (
	bpeTestDir   = "testdata/bpetrain"
	bpeTestVocab = 2048
)

// corpusTexts returns the corpus files' contents in name order.
func corpusTexts(t testing.TB) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(bpeTestDir, "corpus", "*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("corpus: %v (%d files)", err, len(names))
	}
	sort.Strings(names)
	texts := make([]string, len(names))
	for i, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		texts[i] = string(b)
	}
	return texts
}

func trainTexts(t testing.TB, texts []string, specials []string, vocab int) *TrainedBPE {
	t.Helper()
	tr, err := NewBPETrainer(specials)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range texts {
		tr.Add(s)
	}
	res, err := tr.Train(vocab, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkGolden compares got with the golden file; with -update it rewrites
// the file, and on a mismatch it writes got beside it as name.got.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(bpeTestDir, name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		_ = os.WriteFile(path+".got", got, 0o644)
		t.Errorf("%s differs from the golden file (got written to %s.got); if training changed on purpose, run with -update and re-record the reference ids (scripts/tokenizer_ref.js)", name, path)
	}
}

// TestTrainBPEGolden trains the test corpus and checks the files against the
// golden ones, which the reference ids were computed from; a change in
// training shows here first.
func TestTrainBPEGolden(t *testing.T) {
	res := trainTexts(t, corpusTexts(t), MiniMaxSpecialTokens, bpeTestVocab)
	if want := bpeTestVocab - 256 - len(MiniMaxSpecialTokens); len(res.Merges) != want {
		t.Fatalf("%d merges, want vocab − 256 − specials = %d", len(res.Merges), want)
	}
	if res.VocabSize() != bpeTestVocab {
		t.Fatalf("VocabSize %d, want %d", res.VocabSize(), bpeTestVocab)
	}
	checkGolden(t, "tokenizer.json", res.TokenizerJSON())
	cfg, err := res.TokenizerConfigJSON(MiniMaxConfig)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "tokenizer_config.json", cfg)
}

// TestTrainBPEDeterministic trains twice, the second time from the texts in
// reverse order: the result depends only on the pre-token counts, so the
// files must be identical (map iteration order differs between the runs).
func TestTrainBPEDeterministic(t *testing.T) {
	texts := corpusTexts(t)
	a := trainTexts(t, texts, MiniMaxSpecialTokens, 1024).TokenizerJSON()
	rev := slices.Clone(texts)
	slices.Reverse(rev)
	b := trainTexts(t, rev, MiniMaxSpecialTokens, 1024).TokenizerJSON()
	if !bytes.Equal(a, b) {
		t.Fatal("two trainings on the same data gave different tokenizer.json files")
	}
}

// TestTrainBPEMatchesHFTrainer trains on the corpus the way Hugging Face's
// BpeTrainer reads files (each line with its ending is one text; no special
// tokens, so their text is counted like any other) until no pair is left,
// and compares every merge, in order, with the merges that BpeTrainer
// (tokenizers 0.23.2, same pre-tokenizer) learned from the same files
// (scripts/tokenizer_ref.js -hf-train). Its queue breaks ties the same way:
// higher count, then the smaller pair of ids, with ids in code-point order
// of the byte-level symbols and merges numbered in order.
func TestTrainBPEMatchesHFTrainer(t *testing.T) {
	want := readJSONL[[2]string](t, filepath.Join(bpeTestDir, "hf_merges.jsonl.gz"))
	tr, err := NewBPETrainer(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range corpusTexts(t) {
		for len(text) > 0 {
			line, rest, ended := strings.Cut(text, "\n")
			if ended {
				line += "\n"
			}
			tr.Add(line)
			text = rest
		}
	}
	res, err := tr.Train(1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range min(len(res.Merges), len(want)) {
		if res.Merges[i] != want[i] {
			t.Fatalf("merge %d: %q, reference %q", i, res.Merges[i], want[i])
		}
	}
	if len(res.Merges) != len(want) {
		t.Fatalf("%d merges, reference %d", len(res.Merges), len(want))
	}
}

// TestTrainBPEHandWorked checks merges worked out by hand on one word,
// "aaabdaaabac" (the pattern keeps it whole), with the tie rule: equal
// counts go to the smaller (left id, right id), ids 0..255 being the bytes
// in byte-level rune order ('a' = 64 < 'b' < 'c' < 'd' = 67), merges 256 and
// up.
//
//	aa 4, ab 2, others 1                  → a a   = 256 (aa a b d aa a b a c)
//	aa·a 2 and a·b 2 tie: (64,65) first   → a b   = 257 (aa ab d aa ab a c)
//	aa·ab 2                               → aa ab = 258 (aaab d aaab a c)
//	all 1: (64,66) is the smallest pair   → a c   = 259 (aaab d aaab ac)
//	(258,67) (67,258) (258,259): (67,258) → d aaab = 260 (aaab daaab ac)
//	(258,260) (260,259)                   → aaab daaab = 261
//	(261,259)                             → the whole word = 262; no pair is left
func TestTrainBPEHandWorked(t *testing.T) {
	res := trainTexts(t, []string{"aaabdaaabac"}, nil, 256+100)
	want := [][2]string{{"a", "a"}, {"a", "b"}, {"aa", "ab"}, {"a", "c"}, {"d", "aaab"}, {"aaab", "daaab"}, {"aaabdaaab", "ac"}}
	if !slices.Equal(res.Merges, want) {
		t.Fatalf("merges %q, want %q", res.Merges, want)
	}
}

// TestTrainBPESpecialsNotTrained checks that special tokens in the text are
// cut out before counting: a text made of special tokens gives no merges.
func TestTrainBPESpecialsNotTrained(t *testing.T) {
	res := trainTexts(t, []string{strings.Repeat("<think></think>[e~[", 50)}, MiniMaxSpecialTokens, 1000)
	if len(res.Merges) != 0 {
		t.Fatalf("merges %q from text made only of special tokens", res.Merges)
	}
}

type refCase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func readRefLines(t *testing.T, name string) []refCase {
	t.Helper()
	f, err := os.Open(filepath.Join(bpeTestDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []refCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var c refCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s:%d: %v", name, len(out)+1, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTrainBPEReference loads the golden trained tokenizer as any tokenizer
// folder is loaded and checks, on held-out text, the ids against those of
// Hugging Face tokenizers 0.23.2 (recorded by scripts/tokenizer_ref.js), and
// that decoding gives the text back.
func TestTrainBPEReference(t *testing.T) {
	tok, err := Load(bpeTestDir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != bpeTestVocab {
		t.Fatalf("VocabSize %d, want %d", tok.VocabSize(), bpeTestVocab)
	}
	eos, ok := tok.EOS()
	if want, _ := tok.TokenToID("<end_of_sentence>"); !ok || eos != want {
		t.Fatalf("EOS %d %v, want <end_of_sentence> = %d", eos, ok, want)
	}
	cases := readRefLines(t, "heldout.jsonl")
	refs := readRefLines(t, "ref_ids.jsonl")
	if len(cases) != len(refs) {
		t.Fatalf("%d held-out cases but %d reference lines", len(cases), len(refs))
	}
	var nBytes, nTokens int
	for i, c := range cases {
		got := tok.Encode(c.Text, false)
		if !slices.Equal(got, refs[i].IDs) {
			t.Errorf("case %d %.40q: ids differ from the reference\n got %v\nwant %v", i, c.Text, got, refs[i].IDs)
			continue
		}
		if utf8.ValidString(c.Text) {
			if back := tok.Decode(got, false); back != c.Text {
				t.Errorf("case %d: decode(encode(x)) = %.60q, want %.60q", i, back, c.Text)
			}
		}
		nBytes += len(c.Text)
		nTokens += len(got)
	}
	t.Logf("held-out: %d bytes in %d tokens, %.2f bytes/token", nBytes, nTokens, float64(nBytes)/float64(nTokens))
}

// TestTrainBPESpecialIDs checks the layout of the ids: bytes, merges, then
// the special tokens in MiniMaxSpecialTokens order, each matched whole.
func TestTrainBPESpecialIDs(t *testing.T) {
	res := trainTexts(t, corpusTexts(t), MiniMaxSpecialTokens, 600)
	tok, err := FromJSON(res.TokenizerJSON())
	if err != nil {
		t.Fatal(err)
	}
	base := 600 - len(MiniMaxSpecialTokens)
	if got := 256 + len(res.Merges); got != base {
		t.Fatalf("specials start at %d, want %d", got, base)
	}
	for i, s := range MiniMaxSpecialTokens {
		if ids := tok.Encode(s, false); !slices.Equal(ids, []int{base + i}) || !tok.IsSpecial(base+i) {
			t.Errorf("%q encodes to %v, want [%d] (special)", s, ids, base+i)
		}
	}
	if ids := tok.Encode("Ġ", false); len(ids) != 2 { // U+0120 is two bytes, not the space token
		t.Errorf("\"Ġ\" encodes to %v, want its two bytes", ids)
	}
}

func TestTrainBPEErrors(t *testing.T) {
	tr, err := NewBPETrainer(MiniMaxSpecialTokens)
	if err != nil {
		t.Fatal(err)
	}
	tr.Add("some text")
	min := 256 + len(MiniMaxSpecialTokens)
	if _, err := tr.Train(min-1, nil); !errors.Is(err, ErrVocabTooSmall) {
		t.Errorf("vocab %d: err %v, want ErrVocabTooSmall", min-1, err)
	}
	if res, err := tr.Train(min, nil); err != nil || len(res.Merges) != 0 {
		t.Errorf("vocab %d: %v merges, err %v; want 0 merges", min, res, err)
	}
	if _, err := NewBPETrainer([]string{"<a>", "<a>"}); err == nil {
		t.Error("duplicate special token accepted")
	}
	if _, err := NewBPETrainer([]string{""}); err == nil {
		t.Error("empty special token accepted")
	}
	res := trainTexts(t, []string{"abc"}, []string{"<x>"}, 300)
	if _, err := res.TokenizerConfigJSON(TrainedConfig{EOS: "<y>"}); err == nil {
		t.Error("config naming an unknown special token accepted")
	}
}

// BenchmarkBPECount measures pre-token counting (the o200k matcher and the
// word map) on the test corpus, in bytes of text per second.
func BenchmarkBPECount(b *testing.B) {
	texts := corpusTexts(b)
	size := 0
	for _, s := range texts {
		size += len(s)
	}
	b.SetBytes(int64(size))
	for b.Loop() {
		tr, err := NewBPETrainer(MiniMaxSpecialTokens)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range texts {
			tr.Add(s)
		}
	}
}

// BenchmarkBPEMerge measures the merge loop: 1734 merges over the test
// corpus's counted words, reported as merges per second.
func BenchmarkBPEMerge(b *testing.B) {
	tr, err := NewBPETrainer(MiniMaxSpecialTokens)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range corpusTexts(b) {
		tr.Add(s)
	}
	merges := 0
	for b.Loop() {
		res, err := tr.Train(bpeTestVocab, nil)
		if err != nil {
			b.Fatal(err)
		}
		merges += len(res.Merges)
	}
	b.ReportMetric(float64(merges)/b.Elapsed().Seconds(), "merges/s")
}
