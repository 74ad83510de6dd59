package sample

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTopLogprobs compares with a float64 log-softmax and a full sort. The
// tolerance is one float32 rounding of the result plus the float64 sum's
// error: 2⁻²³·max(1, |logprob|).
func TestTopLogprobs(t *testing.T) {
	r := rand.New(rand.NewPCG(30, 31))
	for _, vocab := range []int{1, 3, 25, 1000, minimaxVocab} {
		logits := randomLogits(r, vocab, 3, 0.25) // coarse grid: ties
		lmax := math.Inf(-1)
		for _, l := range logits {
			lmax = math.Max(lmax, float64(l))
		}
		var z float64
		for _, l := range logits {
			z += math.Exp(float64(l) - lmax)
		}
		lse := lmax + math.Log(z)
		order := make([]int, vocab)
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
		close := func(got float32, want float64) bool {
			return math.Abs(float64(got)-want) <= 0x1p-23*math.Max(1, math.Abs(want))
		}
		for _, n := range []int{0, 1, 5, MaxTopLogprobs} {
			token := r.IntN(vocab)
			lp, top := TopLogprobs(nil, logits, token, n)
			if want := float64(logits[token]) - lse; !close(lp, want) {
				t.Errorf("V=%d: logprob of %d = %g, want %g", vocab, token, lp, want)
			}
			if len(top) != min(n, vocab) {
				t.Fatalf("V=%d n=%d: %d alternatives", vocab, n, len(top))
			}
			for j, a := range top {
				if a.Token != order[j] {
					t.Fatalf("V=%d n=%d: alternative %d is token %d, want %d", vocab, n, j, a.Token, order[j])
				}
				if want := float64(logits[a.Token]) - lse; !close(a.Logprob, want) {
					t.Errorf("V=%d: logprob of %d = %g, want %g", vocab, a.Token, a.Logprob, want)
				}
			}
		}
	}
}

func TestTopLogprobsNoAllocs(t *testing.T) {
	logits := randomLogits(rand.New(rand.NewPCG(32, 33)), 5000, 2, 0)
	dst := make([]Logprob, 0, MaxTopLogprobs)
	if n := testing.AllocsPerRun(50, func() { _, dst = TopLogprobs(dst, logits, 7, MaxTopLogprobs) }); n != 0 {
		t.Errorf("%v allocations per TopLogprobs with a large enough dst", n)
	}
}

// TestTopLogprobsIgnoresSampling: the reported distribution is the raw one,
// whatever the sampler's temperature and penalties did.
func TestTopLogprobsRaw(t *testing.T) {
	logits := []float32{1, 2, 3}
	p := seeded(1)
	p.Temperature, p.RepetitionPenalty = 0.1, 5
	s := newSampler(t, p, 3)
	s.AcceptPrompt([]int{2})
	tok := s.Sample(logits)
	lp, top := TopLogprobs(nil, logits, tok, 3)
	z := math.Exp(1) + math.Exp(2) + math.Exp(3)
	if want := 3 - math.Log(z); top[0].Token != 2 || math.Abs(float64(top[0].Logprob)-want) > 1e-6 {
		t.Errorf("top = %+v, want token 2 with %g", top, want)
	}
	if want := float64(logits[tok]) - math.Log(z); math.Abs(float64(lp)-want) > 1e-6 {
		t.Errorf("logprob of sampled %d = %g, want %g", tok, lp, want)
	}
}

func TestTopLogprobsPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"n > max":  func() { TopLogprobs(nil, []float32{1}, 0, MaxTopLogprobs+1) },
		"n < 0":    func() { TopLogprobs(nil, []float32{1}, 0, -1) },
		"token id": func() { TopLogprobs(nil, []float32{1}, 1, 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
