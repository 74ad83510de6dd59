package main

import (
	"fmt"
	"math/rand/v2"

	"github.com/lightninglm/lightning/evalset/passkey"
)

// passkeyDoc is one passkey document (the task's text is defined in
// evalset/passkey). Text ends with the question ("… The pass key is"); a
// training document then has passkey.Answer appended (" 12345.").
type passkeyDoc struct {
	Text    string  `json:"text"`
	Source  string  `json:"source"`
	Answer  string  `json:"answer"`
	Depth   float64 `json:"depth"`   // where the needle sits in the filler, 0 (start) to 1 (end)
	Repeats int     `json:"repeats"` // filler sentences groups in the haystack
}

// makePasskey builds a document with repeats filler groups and the needle
// inserted after round(depth·repeats) of them.
func makePasskey(key int, depth float64, repeats int) passkeyDoc {
	return passkeyDoc{Text: passkey.Prompt(key, depth, repeats), Source: "passkey", Answer: fmt.Sprint(key), Depth: depth, Repeats: repeats}
}

// passkeyTrainingSet draws n documents with a seeded generator: keys uniform
// in [10000, 99999], depth uniform in {0, 0.01, …, 1}, length uniform in
// [minRepeats, maxRepeats] filler groups.
func passkeyTrainingSet(n, minRepeats, maxRepeats int, seed uint64) []passkeyDoc {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]passkeyDoc, n)
	for i := range out {
		key := passkey.Key(r)
		depth := float64(r.IntN(101)) / 100
		repeats := minRepeats + r.IntN(maxRepeats-minRepeats+1)
		out[i] = makePasskey(key, depth, repeats)
		out[i].Text += passkey.Answer(key)
	}
	return out
}

// passkeyGrid builds an evaluation grid: for every length and depth, perCell
// prompts (ending with the question) with seeded random keys.
func passkeyGrid(lengths []int, depths []float64, perCell int, seed uint64) []passkeyDoc {
	r := rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))
	var out []passkeyDoc
	for _, n := range lengths {
		for _, d := range depths {
			for i := 0; i < perCell; i++ {
				out = append(out, makePasskey(passkey.Key(r), d, n))
			}
		}
	}
	return out
}
