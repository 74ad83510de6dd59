package tokenizer

import (
	"compress/gzip"
	"io"
	"os"
	"reflect"
	"testing"
)

// TestFromVocabRoundTrip rebuilds the MiniMax-M1 tokenizer (FromMerges on its
// published merges.txt) from its vocabulary by id, its merges (Merges) and
// its added tokens, as a GGUF file's tokenizer section carries them, and
// checks that both encode and decode text identically.
func TestFromVocabRoundTrip(t *testing.T) {
	f, err := os.Open("testdata/minimax-m1/merges.txt.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	added := []AddedToken{{ID: 200019, Content: "<beginning_of_sentence>", Special: true}, {ID: 200020, Content: "<end_of_sentence>", Special: true}}
	orig, err := FromMerges(string(txt), added)
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, orig.VocabSize())
	for id := range tokens {
		tokens[id], _ = orig.IDToToken(id)
	}
	merges := orig.Merges()
	if want, _ := ParseMerges(string(txt)); !reflect.DeepEqual(merges, want) {
		t.Fatalf("Merges() gives %d merges, not the %d of merges.txt in order", len(merges), len(want))
	}
	re, err := FromVocab(tokens, merges, orig.AddedTokens(), "<beginning_of_sentence>", "<end_of_sentence>", false)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := re.EOS(); !ok || id != 200020 {
		t.Errorf("EOS = %d, %v", id, ok)
	}
	for _, s := range []string{"Hello, world! 你好 🌍", "<beginning_of_sentence>user\n  tabs\tand  spaces<end_of_sentence>", "don't 12345 ÀÉ"} {
		a, b := orig.Encode(s, false), re.Encode(s, false)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%q: %v, rebuilt %v", s, a, b)
		}
		if re.Decode(b, false) != s {
			t.Errorf("%q: decodes to %q", s, re.Decode(b, false))
		}
	}
}
