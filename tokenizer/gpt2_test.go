package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestMergesVocabNumbering checks the assumption behind MergesVocab on real
// files: in Qwen3's and GPT-4o's vocabularies, ids 0..255 are the byte runes
// in bytes_to_unicode order and merge k makes id 256+k.
func TestMergesVocabNumbering(t *testing.T) {
	for _, name := range []string{"qwen3", "gpt4o"} {
		var f struct {
			Model modelJSON `json:"model"`
		}
		if err := json.Unmarshal(readGz(t, filepath.Join("testdata", name, "tokenizer.json.gz")), &f); err != nil {
			t.Fatal(err)
		}
		merges, err := parseMergesJSON(f.Model.Merges)
		if err != nil {
			t.Fatal(err)
		}
		fileVocab, err := parseVocab(f.Model.Vocab)
		if err != nil {
			t.Fatal(err)
		}
		vocab, err := MergesVocab(merges)
		if err != nil {
			t.Fatal(err)
		}
		for tok, id := range vocab {
			if got, ok := fileVocab[tok]; !ok || got != id {
				t.Fatalf("%s: %q: file id %d %v, MergesVocab id %d", name, tok, got, ok, id)
			}
		}
		t.Logf("%s: %d of %d vocabulary entries numbered as MergesVocab says", name, len(vocab), len(fileVocab))
	}
}

func readM1Merges(t *testing.T) string {
	t.Helper()
	return string(readGz(t, filepath.Join("testdata", "minimax-m1", "merges.txt.gz")))
}

// TestMiniMaxM1FromMerges rebuilds MiniMax-M1's tokenizer from its published
// merges.txt and checks that it loads, has 200,000 regular tokens, keeps its
// special tokens whole, and round-trips every golden string.
func TestMiniMaxM1FromMerges(t *testing.T) {
	txt := readM1Merges(t)
	merges, err := ParseMerges(txt)
	if err != nil {
		t.Fatal(err)
	}
	if len(merges) != 199744 {
		t.Fatalf("%d merges, want 199744", len(merges))
	}
	// The special tokens of tokenizer_config.json and the M1 chat template.
	// Only <end_of_sentence> = 200020 is documented (spec §5.1); the others
	// take the next free ids and are placeholders.
	added := []AddedToken{
		{ID: -1, Content: "<beginning_of_sentence>", Special: true},
		{ID: 200020, Content: "<end_of_sentence>", Special: true},
		{ID: -1, Content: "<end_of_document>", Special: true},
		{ID: -1, Content: "<begin_of_document>", Special: true},
	}
	tk, err := FromMerges(txt, added)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(tk.model.vocab); got != 200000 {
		t.Errorf("%d regular tokens, want 200000", got)
	}
	for i, want := range map[string]int{"<beginning_of_sentence>": 200000, "<end_of_sentence>": 200020, "<end_of_document>": 200021, "<begin_of_document>": 200022} {
		if id, ok := tk.TokenToID(i); !ok || id != want || !tk.IsSpecial(id) {
			t.Errorf("%s: id %d %v special %v, want %d", i, id, ok, tk.IsSpecial(id), want)
		}
	}
	if tk.VocabSize() != 200023 {
		t.Errorf("VocabSize %d, want 200023", tk.VocabSize())
	}
	// First merges of the file: "Ġ Ġ" is id 256, "Ġ t" is 257.
	if id, _ := tk.TokenToID("ĠĠ"); id != 256 {
		t.Errorf("ĠĠ has id %d, want 256", id)
	}
	if id, _ := tk.TokenToID("Ġt"); id != 257 {
		t.Errorf("Ġt has id %d, want 257", id)
	}
	n := 0
	for _, c := range readJSONL[goldenCase](t, filepath.Join("testdata", "llama3", "cases.jsonl.gz")) {
		if c.AddSpecial {
			continue
		}
		ids := tk.Encode(c.Text, false)
		if got := tk.Decode(ids, false); got != c.Text {
			t.Errorf("%s: round trip %q, want %q", c.ID, got, c.Text)
		}
		n++
	}
	t.Logf("%d strings round-trip", n)
	text := "<begin_of_document><beginning_of_sentence>user name=user\nHello!<end_of_sentence>\n"
	ids := tk.Encode(text, false)
	if ids[0] != 200022 || ids[1] != 200000 || len(ids) < 4 || ids[len(ids)-2] != 200020 {
		t.Errorf("chat prompt ids %v: want the special tokens whole", ids)
	}
	if got := tk.Decode(ids, true); got != "user name=user\nHello!\n" {
		t.Errorf("decode without specials: %q", got)
	}
}

// TestLoadGPT2Folder loads a GPT-2 style folder (vocab.json, merges.txt,
// tokenizer_config.json) built from the M1 merges: the config's special
// tokens are appended after the vocabulary and become BOS/EOS.
func TestLoadGPT2Folder(t *testing.T) {
	txt := readM1Merges(t)
	merges, err := ParseMerges(txt)
	if err != nil {
		t.Fatal(err)
	}
	vocab, err := MergesVocab(merges)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vj, err := json.Marshal(vocab)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join("testdata", "minimax-m1", "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"vocab.json": vj, "merges.txt": []byte(txt), "tokenizer_config.json": cfg} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tk, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// bos, eos, unk in that order after the 200,000 regular tokens.
	if id, ok := tk.BOS(); !ok || id != 200000 {
		t.Errorf("BOS %d %v, want 200000", id, ok)
	}
	if id, ok := tk.EOS(); !ok || id != 200001 {
		t.Errorf("EOS %d %v, want 200001", id, ok)
	}
	if id, ok := tk.TokenToID("<end_of_document>"); !ok || id != 200002 || !tk.IsSpecial(id) {
		t.Errorf("unk %d %v", id, ok)
	}
	ref, err := FromMerges(txt, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range readJSONL[goldenCase](t, filepath.Join("testdata", "qwen3", "cases.jsonl.gz")) {
		if !c.AddSpecial && !equalInts(tk.Encode(c.Text, true), ref.Encode(c.Text, true)) {
			t.Errorf("%s: folder and FromMerges differ", c.ID)
		}
	}
}

// TestParseMerges checks the merges.txt format rules.
func TestParseMerges(t *testing.T) {
	m, err := ParseMerges("#version: 0.2\nĠ t\r\na b")
	if err != nil || len(m) != 2 || m[0] != [2]string{"Ġ", "t"} || m[1] != [2]string{"a", "b"} {
		t.Errorf("got %q %v", m, err)
	}
	for _, bad := range []string{"a b c\n", "ab\n", "a b\n\nc d\n"} {
		if _, err := ParseMerges(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := MergesVocab([][2]string{{"a", "b"}, {"a", "b"}}); err == nil {
		t.Error("duplicate merge result: no error")
	}
}
