package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// The passkey task of the MiniMax-01 report's long-context evaluation
// ("needle in a haystack"): a five-digit pass key hidden at a chosen depth in
// repetitive filler, with the question at the end.
const (
	passkeyIntro  = "There is an important piece of information hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about it.\n\n"
	passkeyFiller = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
	passkeyNeedle = "The pass key is %d. Remember it. %d is the pass key. "
	passkeyAsk    = "\n\nWhat is the pass key? The pass key is"
)

// passkeyDoc is one passkey document. Text ends with the question ("… The
// pass key is"); a training document then has " " + Answer + "." appended.
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
	if depth < 0 || depth > 1 || repeats < 0 {
		panic("passkey: depth outside [0, 1] or negative length")
	}
	at := int(depth*float64(repeats) + 0.5)
	var b strings.Builder
	b.WriteString(passkeyIntro)
	b.WriteString(strings.Repeat(passkeyFiller, at))
	fmt.Fprintf(&b, passkeyNeedle, key, key)
	b.WriteString(strings.Repeat(passkeyFiller, repeats-at))
	prompt := strings.TrimRight(b.String(), " ") + passkeyAsk
	return passkeyDoc{Text: prompt, Source: "passkey", Answer: fmt.Sprint(key), Depth: depth, Repeats: repeats}
}

// passkeyTrainingSet draws n documents with a seeded generator: keys uniform
// in [10000, 99999], depth uniform in [0, 1], length uniform in
// [minRepeats, maxRepeats] filler groups.
func passkeyTrainingSet(n, minRepeats, maxRepeats int, seed uint64) []passkeyDoc {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]passkeyDoc, n)
	for i := range out {
		key := 10000 + r.IntN(90000)
		depth := float64(r.IntN(101)) / 100
		repeats := minRepeats + r.IntN(maxRepeats-minRepeats+1)
		out[i] = makePasskey(key, depth, repeats)
		out[i].Text += " " + out[i].Answer + "."
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
				out = append(out, makePasskey(10000+r.IntN(90000), d, n))
			}
		}
	}
	return out
}
