package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// TestMergeNaiveEqualsHeap checks that the quadratic merge loop used for
// short words gives the same symbols as the reference's heap algorithm, on
// random byte strings (llama3, whose merges produce the same token from
// several pairs) and random SentencePiece text (llama2).
func TestMergeNaiveEqualsHeap(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, name := range []string{"llama3", "llama2"} {
		tk := loadGolden(t, name, false)
		m := tk.model
		st := &encodeState{}
		var texts []string
		for _, c := range readJSONL[goldenCase](t, filepath.Join("testdata", name, "cases.jsonl.gz")) {
			texts = append(texts, c.Text)
		}
		for trial := 0; trial < 3000; trial++ {
			s := texts[r.IntN(len(texts))]
			if len(s) == 0 {
				continue
			}
			a := r.IntN(len(s))
			s = strings.ToValidUTF8(s[a:min(len(s), a+1+r.IntN(naiveMergeMax))], "")
			var syms []int32
			if m.byteLevel {
				for i := 0; i < len(s); i++ {
					syms = append(syms, m.byteIDs[s[i]])
				}
			} else {
				syms = m.initialSymbols(nil, strings.ReplaceAll(s, " ", "▁"))
			}
			if len(syms) < 2 {
				continue
			}
			naive := m.mergeNaive(append([]int32(nil), syms...), st)
			heap := m.mergeHeap(append([]int32(nil), syms...), st)
			if !equalInt32(naive, heap) {
				t.Fatalf("%s %q: naive %v, heap %v", name, s, naive, heap)
			}
		}
	}
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestChunksEqualWholeWord checks that cutting long words (tokenizeChunks)
// gives the ids of BPE on the whole word, for llama2 (byte fallback) and for
// llama2 with unk instead of byte fallback.
func TestChunksEqualWholeWord(t *testing.T) {
	var texts []string
	for _, c := range readJSONL[goldenCase](t, filepath.Join("testdata", "llama2", "cases.jsonl.gz")) {
		texts = append(texts, c.Text)
	}
	for _, c := range readJSONL[fuzzCase](t, filepath.Join("testdata", "llama2", "fuzz.jsonl.gz")) {
		texts = append(texts, c.Text)
	}
	base := loadGolden(t, "llama2", false)
	var file map[string]any
	if err := json.Unmarshal(readGz(t, filepath.Join("testdata", "llama2", "tokenizer.json.gz")), &file); err != nil {
		t.Fatal(err)
	}
	file["model"].(map[string]any)["byte_fallback"] = false
	data, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	noFallback, err := FromJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*bpe{base.model, noFallback.model} {
		st := &encodeState{}
		cut := 0
		for _, s := range texts {
			w := "▁" + strings.ReplaceAll(s, " ", "▁")
			w = strings.Repeat(w, 1+chunkMin/max(1, len(w)))
			whole := m.bpeWord(nil, w, st)
			chunked := m.tokenizeChunks(nil, w, st)
			if !equalInt32(whole, chunked) {
				t.Fatalf("%q: whole %v, cut %v", w, whole, chunked)
			}
			cut++
		}
		t.Logf("%d long words", cut)
	}
}
