package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/tokenizer"
)

// The fixtures: testdata/tok is a byte-level BPE (256 bytes, 16 merges,
// <|endoftext|> as EOS; 273 ids) and testdata/corpus holds nine short
// documents (six text files and a JSONL file of three), about 900 bytes.
var corpus = []string{"testdata/corpus"}

func loadTok(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load("testdata/tok")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// encodedDocs is the reference for packing: the split's documents in order,
// each encoded and ended with EOS, computed without a Stream.
func encodedDocs(t *testing.T, tok *tokenizer.Tokenizer, split Split, frac float64) [][]int32 {
	t.Helper()
	eos, _ := tok.EOS()
	var docs [][]int32
	for d, err := range Docs(corpus) {
		if err != nil {
			t.Fatal(err)
		}
		if HeldOut(d.Name, d.Index, frac) != (split == EvalSplit) {
			continue
		}
		var ids []int32
		for _, id := range tok.Encode(d.Text, true) {
			ids = append(ids, int32(id))
		}
		docs = append(docs, append(ids, int32(eos)))
	}
	return docs
}

// TestStreamPacksDocuments checks over three epochs that the sequences are
// full, that their tokens are the documents' tokens in order, and that a
// segment starts exactly at each sequence start and each document start.
func TestStreamPacksDocuments(t *testing.T) {
	tok := loadTok(t)
	const seqLen = 37 // shorter than most documents, so some are cut
	docs := encodedDocs(t, tok, TrainSplit, 0)
	if len(docs) != 9 {
		t.Fatalf("%d documents in the corpus, want 9", len(docs))
	}
	var want []int32 // three epochs of the documents
	wantStart := map[int]bool{}
	for range 3 {
		for _, d := range docs {
			wantStart[len(want)] = true
			want = append(want, d...)
		}
	}
	s, err := NewStream(tok, Options{Paths: corpus, SeqLen: seqLen, Wrap: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []int32
	for len(got)+seqLen <= len(want) {
		toks, starts, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if len(toks) != seqLen || len(starts) == 0 || starts[0] != 0 || !slices.IsSorted(starts) {
			t.Fatalf("sequence at token %d: %d tokens, starts %v", len(got), len(toks), starts)
		}
		for i := 1; i < seqLen; i++ {
			if slices.Contains(starts, i) != wantStart[len(got)+i] {
				t.Fatalf("sequence at token %d: starts %v; document starts %v", len(got), starts, wantStart)
			}
		}
		got = append(got, toks...)
	}
	if !slices.Equal(got, want[:len(got)]) {
		t.Errorf("packed tokens differ from the documents' tokens")
	}
	if p := s.Position(); p.Epoch != 2 {
		t.Errorf("position %+v after %d of 3 epochs' tokens", p, len(got))
	}
}

// TestStreamSeekResumes checks that a stream moved to a saved position
// gives exactly the sequences the original gave after it, from positions
// mid-document, at document ends and across epochs, and through JSON.
func TestStreamSeekResumes(t *testing.T) {
	tok := loadTok(t)
	for _, tc := range []struct{ seqLen, window int }{{2, 0}, {16, 0}, {64, 0}, {300, 0}, {16, 3}, {64, 4}} {
		seqLen := tc.seqLen
		opt := Options{Paths: corpus, SeqLen: seqLen, EvalFrac: 0.2, Split: TrainSplit, Wrap: true, ShuffleWindow: tc.window, Seed: 5}
		s, err := NewStream(tok, opt)
		if err != nil {
			t.Fatal(err)
		}
		var positions []Position
		var seqs []string
		for range 60 {
			positions = append(positions, s.Position())
			toks, starts, err := s.Next()
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, fmt.Sprint(toks, starts))
		}
		s.Close()
		r, err := NewStream(tok, opt)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < len(positions); k += 7 {
			b, _ := json.Marshal(positions[k])
			var p Position
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			if err := r.Seek(p); err != nil {
				t.Fatalf("seq-len %d: seek to %s: %v", seqLen, b, err)
			}
			for j := k; j < min(k+5, len(seqs)); j++ {
				toks, starts, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if got := fmt.Sprint(toks, starts); got != seqs[j] {
					t.Fatalf("seq-len %d: after seeking to %s, sequence %d is %s, want %s", seqLen, b, j, got, seqs[j])
				}
			}
		}
		r.Close()
		if positions[len(positions)-1].Epoch == 0 && seqLen >= 16 {
			t.Errorf("seq-len %d: 60 sequences stayed in epoch 0; the test should cross epochs there", seqLen)
		}
	}
}

func TestStreamSeekChangedData(t *testing.T) {
	tok := loadTok(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.txt": strings.Repeat("alpha beta ", 20), "b.txt": strings.Repeat("gamma ", 30)})
	opt := Options{Paths: []string{dir}, SeqLen: 16, Wrap: true}
	s, err := NewStream(tok, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	p := s.Position()
	if p.Name != "a.txt" || p.Offset != 16 {
		t.Fatalf("position %+v, want 16 tokens into a.txt", p)
	}
	if err := os.Rename(filepath.Join(dir, "a.txt"), filepath.Join(dir, "c.txt")); err != nil {
		t.Fatal(err)
	}
	if err := s.Seek(p); err == nil || !strings.Contains(err.Error(), "did the data change") {
		t.Errorf("seek after renaming the document: %v", err)
	}
	if err := s.Seek(Position{Doc: 5}); err == nil || !strings.Contains(err.Error(), "did the data change") {
		t.Errorf("seek past the documents: %v", err)
	}
}

// TestHeldOutSplit checks that the split is a partition fixed by the
// document's name, and that its size follows the fraction: over 20000
// names at 0.1 the count is binomial, mean 2000 and standard deviation
// √(20000·0.1·0.9) ≈ 42, so ±5σ is [1788, 2212].
func TestHeldOutSplit(t *testing.T) {
	n := 0
	for i := range 20000 {
		if HeldOut("file.jsonl", i, 0.1) {
			n++
		}
		if HeldOut("file.jsonl", i, 0) {
			t.Fatal("fraction 0 holds out a document")
		}
		if HeldOut("file.jsonl", i, 0.1) && !HeldOut("file.jsonl", i, 0.3) {
			t.Fatal("a document held out at 0.1 is not held out at 0.3")
		}
	}
	if n < 1788 || n > 2212 {
		t.Errorf("%d of 20000 held out at 0.1", n)
	}
	tok := loadTok(t)
	train := encodedDocs(t, tok, TrainSplit, 0.3)
	eval := encodedDocs(t, tok, EvalSplit, 0.3)
	all := encodedDocs(t, tok, TrainSplit, 0)
	if len(train)+len(eval) != len(all) || len(eval) == 0 || len(train) == 0 {
		t.Fatalf("split 0.3 of %d documents: %d training, %d held out", len(all), len(train), len(eval))
	}
	seqs, err := ReadSequences(tok, Options{Paths: corpus, SeqLen: 16, EvalFrac: 0.3, Split: EvalSplit}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []int32
	for _, s := range seqs {
		got = append(got, s.Tokens...)
	}
	for _, d := range eval {
		want = append(want, d...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("held-out sequences hold %d tokens, the held-out documents %d", len(got), len(want))
	}
}

func TestReadSequencesLimit(t *testing.T) {
	tok := loadTok(t)
	seqs, err := ReadSequences(tok, Options{Paths: corpus, SeqLen: 16}, 40)
	if err != nil {
		t.Fatal(err)
	}
	var lens []int
	for _, s := range seqs {
		lens = append(lens, len(s.Tokens))
		for _, st := range s.DocStarts {
			if st >= len(s.Tokens) {
				t.Errorf("doc start %d past the %d tokens", st, len(s.Tokens))
			}
		}
	}
	if !reflect.DeepEqual(lens, []int{16, 16, 8}) {
		t.Errorf("sequence lengths %v, want [16 16 8]", lens)
	}
	s, err := NewStream(tok, Options{Paths: []string{"testdata/corpus/05-short.txt"}, SeqLen: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	toks, _, err := s.Next()
	if err != nil || len(toks) == 0 || len(toks) >= 16 {
		t.Fatalf("one short document: %d tokens, %v", len(toks), err)
	}
	if _, _, err := s.Next(); err != io.EOF {
		t.Errorf("after the only document: %v, want io.EOF", err)
	}
}

func TestStreamErrors(t *testing.T) {
	tok := loadTok(t)
	empty := t.TempDir()
	writeFiles(t, empty, map[string]string{"blank.txt": "", ".hidden": "text"})
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{Paths: corpus, SeqLen: 1}, "at least 2"},
		{Options{Paths: corpus, SeqLen: 8, EvalFrac: 1}, "0 ≤ fraction < 1"},
		{Options{Paths: []string{empty}, SeqLen: 8}, "no documents with text"},
		{Options{Paths: corpus, SeqLen: 8, EvalFrac: 0.999999}, "every document with text is held out"},
		{Options{Paths: corpus, SeqLen: 8, EvalFrac: 1e-9, Split: EvalSplit}, "no held-out documents"},
		{Options{Paths: []string{"testdata/nowhere"}, SeqLen: 8}, "no such file"},
	} {
		_, err := NewStream(tok, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.opt, err, tc.want)
		}
	}
	if _, err := ReadSequences(tok, Options{Paths: corpus, SeqLen: 8}, 0); !errors.Is(err, ErrNoTokens) {
		t.Errorf("ReadSequences of 0 tokens: %v", err)
	}
}

// TestStreamShuffle follows the documents of a stream shuffled in windows
// of 4 over four epochs of the nine documents (windows of 4, 4 and 1):
// each epoch gives every document once, each window a permutation of the
// same window in file order, and the orders differ from the file's and
// between epochs; the same seed gives the same orders.
func TestStreamShuffle(t *testing.T) {
	tok := loadTok(t)
	orders := func(seed uint64) [][]string {
		s, err := NewStream(tok, Options{Paths: corpus, SeqLen: 8, Wrap: true, ShuffleWindow: 4, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		epochs := [][]string{nil}
		for {
			if s.pos.Epoch == len(epochs) {
				if len(epochs) == 4 {
					return epochs
				}
				epochs = append(epochs, nil)
			}
			epochs[s.pos.Epoch] = append(epochs[s.pos.Epoch], fmt.Sprintf("%s#%d", s.curDoc.Name, s.curDoc.Index))
			if err := s.advance(); err != nil {
				t.Fatal(err)
			}
		}
	}
	var fileOrder []string
	for d, err := range Docs(corpus) {
		if err != nil {
			t.Fatal(err)
		}
		fileOrder = append(fileOrder, fmt.Sprintf("%s#%d", d.Name, d.Index))
	}
	got := orders(9)
	for e, order := range got {
		if len(order) != 9 {
			t.Fatalf("epoch %d: %d documents, want 9: %v", e, len(order), order)
		}
		for w := 0; w < 9; w += 4 {
			a, b := slices.Clone(order[w:min(w+4, 9)]), slices.Clone(fileOrder[w:min(w+4, 9)])
			slices.Sort(a)
			slices.Sort(b)
			if !slices.Equal(a, b) {
				t.Errorf("epoch %d, window at %d: %v, not a permutation of %v", e, w, order[w:min(w+4, 9)], fileOrder[w:min(w+4, 9)])
			}
		}
		if slices.Equal(order, fileOrder) {
			t.Errorf("epoch %d is in file order", e)
		}
		if e > 0 && slices.Equal(order, got[e-1]) {
			t.Errorf("epoch %d repeats the order of epoch %d", e, e-1)
		}
	}
	if again := orders(9); !reflect.DeepEqual(again, got) {
		t.Error("the same seed gave other orders")
	}
	if other := orders(10); reflect.DeepEqual(other, got) {
		t.Error("another seed gave the same orders")
	}
}

// BenchmarkStreamNext measures reading, tokenizing and packing the test
// corpus over and over (the cost the training loop pays per sequence).
func BenchmarkStreamNext(b *testing.B) {
	tok := loadTok(b)
	s, err := NewStream(tok, Options{Paths: corpus, SeqLen: 256, Wrap: true, ShuffleWindow: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Next(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(256*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
