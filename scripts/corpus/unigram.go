package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
)

// The unigram baseline of the model card: a model that ignores context,
// whose perplexity a language model must clearly beat.

// unigramModel is the training documents' token counts.
type unigramModel struct {
	counts map[int]int64
	total  int64 // tokens counted
	maxID  int
}

// readUnigram counts the ids of a `lightning tokenize -jsonl` output: one
// {"ids": [...]} line per training document.
func readUnigram(r io.Reader, name string) (*unigramModel, error) {
	m := &unigramModel{counts: map[int]int64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var rec struct {
			IDs *[]int `json:"ids"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.IDs == nil {
			return nil, fmt.Errorf("%s:%d: want a {\"ids\": [...]} line", name, line)
		}
		for _, id := range *rec.IDs {
			if id < 0 {
				return nil, fmt.Errorf("%s:%d: negative id %d", name, line, id)
			}
			m.counts[id]++
			m.total++
			m.maxID = max(m.maxID, id)
		}
	}
	return m, sc.Err()
}

// nll is the mean negative log-likelihood (nats per token) of ids under the
// counts with add-one smoothing over a vocabulary of vocab ids.
func (m *unigramModel) nll(ids []int, vocab int) float64 {
	denom := float64(m.total + int64(vocab))
	sum := 0.0
	for _, id := range ids {
		sum -= math.Log(float64(m.counts[id]+1) / denom)
	}
	return sum / float64(len(ids))
}

// runUnigram prints the unigram perplexity of each held-out id file.
func runUnigram(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("corpus unigram", flag.ContinueOnError)
	train := fs.String("train", "", "training token ids: `lightning tokenize -jsonl` output, one {\"ids\": [...]} line per document")
	vocab := fs.Int("vocab", 0, "vocabulary size for the add-one smoothing (the tokenizer's; default: the largest id seen + 1)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: corpus unigram -train TRAIN_IDS.jsonl [-vocab N] HELDOUT_IDS.json...\n\nEach HELDOUT_IDS.json is one JSON array of ids (`lightning tokenize < heldout.txt`). Prints the tokens, the\nmean negative log-likelihood (nats/token) and the perplexity of a unigram model fitted on the training ids\nwith add-one smoothing.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *train == "" || fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("need -train and at least one held-out file")
	}
	f, err := os.Open(*train)
	if err != nil {
		return err
	}
	m, err := readUnigram(f, *train)
	f.Close()
	if err != nil {
		return err
	}
	for _, path := range fs.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var ids []int
		if err := json.Unmarshal(b, &ids); err != nil || len(ids) == 0 {
			return fmt.Errorf("%s: want a non-empty JSON array of ids", path)
		}
		v := *vocab
		for _, id := range ids {
			v = max(v, id+1, m.maxID+1)
		}
		nll := m.nll(ids, v)
		fmt.Fprintf(out, "%s: %d tokens, unigram NLL %.4f nats/token, perplexity %.1f\n", path, len(ids), nll, math.Exp(nll))
	}
	return nil
}
