package sample

import (
	"math/rand/v2"
	"testing"
)

// minimaxVocab is MiniMax-01's vocabulary size (config vocab_size).
const minimaxVocab = 200064

// benchLogits returns logits shaped like a language model's: N(0, 2.5²) noise
// with a few tokens raised well above it ("peaked", the common case), or the
// noise alone at σ = 1 ("flat", a high-entropy position where top-p keeps
// most of the vocabulary).
func benchLogits(peaked bool) []float32 {
	r := rand.New(rand.NewPCG(1, 1))
	if !peaked {
		return randomLogits(r, minimaxVocab, 1, 0)
	}
	x := randomLogits(r, minimaxVocab, 2.5, 0)
	for i, v := range []float32{14, 13, 12.5, 11, 10} {
		x[(i+1)*37813] = v
	}
	return x
}

func BenchmarkSample(b *testing.B) {
	base := Params{TopP: 1, RepetitionPenalty: 1, HasSeed: true}
	with := func(f func(*Params)) Params { p := base; f(&p); return p }
	cases := []struct {
		name   string
		p      Params
		peaked bool
	}{
		{"greedy", with(func(p *Params) {}), true},
		{"T0.7_topP0.9", with(func(p *Params) { p.Temperature, p.TopP = 0.7, 0.9 }), true},
		{"T0.7_topP0.9_flat", with(func(p *Params) { p.Temperature, p.TopP = 0.7, 0.9 }), false},
		{"T0.7_topK40_topP0.9", with(func(p *Params) { p.Temperature, p.TopK, p.TopP = 0.7, 40, 0.9 }), true},
		{"T1", with(func(p *Params) { p.Temperature = 1 }), true},
		{"T0.7_minP0.05", with(func(p *Params) { p.Temperature, p.MinP = 0.7, 0.05 }), true},
		{"T0.7_topP0.9_penalties", with(func(p *Params) {
			p.Temperature, p.TopP, p.RepetitionPenalty, p.PresencePenalty, p.FrequencyPenalty = 0.7, 0.9, 1.1, 0.5, 0.5
		}), true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			logits := benchLogits(c.peaked)
			s := newSampler(b, c.p, minimaxVocab)
			r := rand.New(rand.NewPCG(2, 2))
			for range 1024 { // a 1K-token history for the penalties
				s.Accept(r.IntN(minimaxVocab))
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Sample(logits)
			}
		})
	}
}

func BenchmarkTopLogprobs(b *testing.B) {
	logits := benchLogits(true)
	dst := make([]Logprob, 0, MaxTopLogprobs)
	b.ReportAllocs()
	for b.Loop() {
		_, dst = TopLogprobs(dst, logits, 123, 5)
	}
}
