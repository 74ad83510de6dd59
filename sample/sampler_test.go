package sample

import (
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// refDist is the test oracle: the distribution Sample draws from, computed the
// obvious way (full sort, no histogram, no heap) from already penalised
// logits. It returns the probability of every token.
func refDist(logits []float32, p Params) []float64 {
	V := len(logits)
	prob := make([]float64, V)
	order := make([]int, V)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
	if p.Temperature == 0 {
		prob[order[0]] = 1
		return prob
	}
	lmax := float64(logits[order[0]])
	invT := 1 / float64(p.Temperature)
	w := func(i int) float64 { return math.Exp(-(lmax - float64(logits[i])) * invT) }
	keep := order
	if p.TopK > 0 && p.TopK < V {
		keep = keep[:p.TopK]
	}
	if p.TopP < 1 {
		var z float64
		for _, i := range keep {
			z += w(i)
		}
		var cum float64
		for n, i := range keep {
			cum += w(i)
			if cum >= float64(p.TopP)*z {
				keep = keep[:n+1]
				break
			}
		}
	}
	var z float64
	for _, i := range keep {
		if w(i) >= float64(p.MinP) {
			prob[i] = w(i)
			z += w(i)
		}
	}
	for i := range prob {
		prob[i] /= z
	}
	return prob
}

func newSampler(t testing.TB, p Params, vocab int) *Sampler {
	t.Helper()
	s, err := NewSampler(p, vocab)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func seeded(seed uint64) Params {
	p := DefaultParams()
	p.Seed, p.HasSeed = seed, true
	return p
}

// randomLogits returns n logits ~ N(0, sigma²) rounded to a grid of step
// (step 0: no rounding), so that ties occur when step is coarse.
func randomLogits(r *rand.Rand, n int, sigma, step float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		v := r.NormFloat64() * sigma
		if step > 0 {
			v = math.Round(v/step) * step
		}
		x[i] = float32(v)
	}
	return x
}

// supportProbs returns the probability Sample gives each token for logits
// (already penalised), read from the sampler's internal support.
func supportProbs(s *Sampler, logits []float32) []float64 {
	prob := make([]float64, len(logits))
	if s.p.Temperature == 0 {
		prob[argmax(logits)] = 1
		return prob
	}
	c, z, all := s.support(logits)
	if all {
		for i, e := range s.w {
			prob[i] = float64(e) / z
		}
		return prob
	}
	for _, x := range c {
		prob[x.id] = float64(s.w[x.id]) / z
	}
	return prob
}

// TestSupportMatchesReference checks the whole truncation pipeline (heap
// top-k, histogram top-p, min-p) against refDist on random logits with and
// without ties, over vocabularies small and MiniMax-sized. The supports must
// agree exactly and the probabilities to within the error of float32
// weights: each exponent d = (l − l_max)/T is rounded twice in float32
// (≤ |d|·2⁻²³) and kernels.Exp errs by ≤ 2 ulp (2⁻²²), so a weight is off
// by at most 2⁻²² + |d|·2⁻²³ relative and a probability w/z by twice the
// largest such error over the support, plus V·2ε for the float64 sums taken
// in a different order.
func TestSupportMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	configs := []Params{
		{Temperature: 1, TopP: 1},
		{Temperature: 0.7, TopP: 0.9},
		{Temperature: 1.3, TopP: 0.5},
		{Temperature: 0.7, TopK: 40, TopP: 1},
		{Temperature: 0.7, TopK: 40, TopP: 0.9},
		{Temperature: 1, TopK: 3, TopP: 0.95, MinP: 0.2},
		{Temperature: 0.9, TopP: 1, MinP: 0.05},
		{Temperature: 0.9, TopP: 0.8, MinP: 0.1},
		{Temperature: 2, TopK: 500, TopP: 0.99, MinP: 0.01},
		{Temperature: 0.01, TopP: 0.9},
		{Temperature: 5, TopP: 0.3},
		{Temperature: 1, TopP: 0.7, MinP: 1},
	}
	type shape struct {
		vocab       int
		sigma, step float64
		trials      int
	}
	shapes := []shape{{1, 1, 0, 3}, {2, 1, 1, 10}, {7, 2, 1, 50}, {1000, 3, 0, 20}, {1000, 2, 0.5, 20}, {200064, 2.5, 0, 2}, {200064, 0.3, 0.25, 1}}
	for _, p := range configs {
		p.RepetitionPenalty = 1
		for _, sh := range shapes {
			s := newSampler(t, p, sh.vocab)
			for trial := range sh.trials {
				logits := randomLogits(r, sh.vocab, sh.sigma, sh.step)
				got, want := supportProbs(s, logits), refDist(logits, p)
				lmax := float64(logits[argmax(logits)])
				var dmax float64
				for i, q := range want {
					if q > 0 {
						dmax = math.Max(dmax, (lmax-float64(logits[i]))/float64(p.Temperature))
					}
				}
				tol := float64(sh.vocab)*0x1p-52 + 2*(0x1p-22+dmax*0x1p-23)
				for i := range want {
					if (got[i] > 0) != (want[i] > 0) || math.Abs(got[i]-want[i]) > tol*want[i] {
						t.Fatalf("%+v V=%d trial %d: token %d (logit %g) prob %g, want %g", p, sh.vocab, trial, i, logits[i], got[i], want[i])
					}
				}
			}
		}
	}
}

func TestGreedyIsArgmaxLowestID(t *testing.T) {
	p := DefaultParams()
	p.Temperature = 0
	cases := []struct {
		logits []float32
		want   int
	}{
		{[]float32{1, 3, 2}, 1},
		{[]float32{5, 5, 5}, 0},
		{[]float32{0, 7, 2, 7, 7}, 1},
		{[]float32{float32(math.Inf(-1)), -3, -3}, 1},
		{[]float32{float32(math.Inf(-1)), float32(math.Inf(-1))}, 0},
		{[]float32{-1}, 0},
	}
	for _, c := range cases {
		s := newSampler(t, p, len(c.logits))
		if got := s.Sample(c.logits); got != c.want {
			t.Errorf("greedy %v = %d, want %d", c.logits, got, c.want)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	s := newSampler(t, p, 5000)
	for range 50 {
		logits := randomLogits(r, 5000, 2, 0.5) // coarse grid: ties at the top
		want := 0
		for i, v := range logits {
			if v > logits[want] {
				want = i
			}
		}
		if got := s.Sample(logits); got != want {
			t.Fatalf("greedy = %d, want %d", got, want)
		}
	}
}

// TestTemperatureLimitIsGreedy: as T → 0 every weight but the maximum's
// underflows, so sampling returns the argmax. The logits have a unique
// maximum with a margin of at least 0.1, so at T ≤ 1e-3 the runner-up weight
// is below e^-100.
func TestTemperatureLimitIsGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, T := range []float32{1e-3, 1e-6, 1e-30} {
		p := seeded(7)
		p.Temperature = T
		s := newSampler(t, p, 1000)
		for range 100 {
			logits := randomLogits(r, 1000, 2, 0)
			g := argmax(logits)
			logits[g] += 0.1
			if got := s.Sample(logits); got != g {
				t.Fatalf("T=%g: sampled %d, want argmax %d", T, got, g)
			}
		}
	}
}

// TestTopK1IsGreedy includes ties at the maximum: top-k breaks them towards
// the lower id exactly like greedy.
func TestTopK1IsGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	p := seeded(10)
	p.Temperature, p.TopK = 1.5, 1
	s := newSampler(t, p, 3000)
	for range 100 {
		logits := randomLogits(r, 3000, 2, 0.5)
		if got, want := s.Sample(logits), argmax(logits); got != want {
			t.Fatalf("top-k 1 sampled %d, want greedy %d", got, want)
		}
	}
}

// kthLargest returns the k largest tokens by (logit desc, id asc).
func kthLargest(logits []float32, k int) map[int]bool {
	order := make([]int, len(logits))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
	set := map[int]bool{}
	for _, i := range order[:k] {
		set[i] = true
	}
	return set
}

func TestTopKNeverSamplesOutside(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, k := range []int{2, 5, 40, 999} {
		p := seeded(13)
		p.Temperature, p.TopK = 3, k // high temperature: the tail is likely
		s := newSampler(t, p, 1000)
		logits := randomLogits(r, 1000, 1, 0.25)
		top := kthLargest(logits, k)
		hit := map[int]bool{}
		for range 5000 {
			tok := s.Sample(logits)
			if !top[tok] {
				t.Fatalf("k=%d: sampled %d outside the top k", k, tok)
			}
			hit[tok] = true
		}
		if k <= 5 && len(hit) != k {
			t.Errorf("k=%d: only %d of the top k were ever sampled", k, len(hit))
		}
	}
}

// TestTopPBoundary uses probabilities 0.5, 0.3, 0.15, 0.05 at T = 1: the
// nucleus is the smallest prefix with mass ≥ p, so the token that crosses p
// is included. The four tokens sit at scattered ids in vocabularies of 4 and
// of 200,064 (the rest at −Inf, or at −60 where they carry ~1e-21 mass), so
// the histogram has to find a boundary among many filler tokens.
func TestTopPBoundary(t *testing.T) {
	probs := []float64{0.5, 0.3, 0.15, 0.05}
	cases := []struct {
		topP float32
		keep int // tokens kept, most likely first
	}{{0.3, 1}, {0.49, 1}, {0.51, 2}, {0.79, 2}, {0.81, 3}, {0.94, 3}, {0.96, 4}, {1, 4}}
	for _, vocab := range []int{4, 200064} {
		for _, fill := range []float32{float32(math.Inf(-1)), -60} {
			ids := []int{3, 0, 2, 1}
			if vocab > 4 {
				ids = []int{150000, 7, 200063, 99}
			}
			logits := make([]float32, vocab)
			for i := range logits {
				logits[i] = fill
			}
			for j, id := range ids {
				logits[id] = float32(math.Log(probs[j]))
			}
			for _, c := range cases {
				p := seeded(14)
				p.TopP = c.topP
				s := newSampler(t, p, vocab)
				got := supportProbs(s, logits)
				var mass float64
				for j, id := range ids[:c.keep] {
					mass += probs[j]
					if got[id] == 0 {
						t.Errorf("V=%d fill=%g top_p=%g: token %d (p=%g) dropped", vocab, fill, c.topP, id, probs[j])
					}
				}
				for _, id := range ids[c.keep:] {
					if got[id] != 0 {
						t.Errorf("V=%d fill=%g top_p=%g: token %d kept", vocab, fill, c.topP, id)
					}
				}
				for i, q := range got {
					if q > 0 && !slices.Contains(ids, i) && c.topP < 1 { // top_p 1 keeps the −60 tail
						t.Fatalf("V=%d fill=%g top_p=%g: filler token %d kept", vocab, fill, c.topP, i)
					}
				}
				for j, id := range ids[:c.keep] {
					if math.Abs(got[id]-probs[j]/mass) > 1e-6 {
						t.Errorf("V=%d top_p=%g: token %d prob %g, want %g", vocab, c.topP, id, got[id], probs[j]/mass)
					}
				}
				draws := 200
				if vocab > 4 {
					draws = 10 // each draw scans 200K logits
				}
				for range draws {
					if tok := s.Sample(logits); !slices.Contains(ids[:c.keep], tok) {
						t.Fatalf("V=%d top_p=%g: sampled %d outside the nucleus", vocab, c.topP, tok)
					}
				}
			}
		}
	}
}

// TestMinP: no token with p < min_p·p_max is ever sampled, and every other
// token stays possible.
func TestMinP(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, minP := range []float32{0.05, 0.3, 0.9} {
		p := seeded(17)
		p.Temperature, p.MinP = 0.8, minP
		s := newSampler(t, p, 500)
		logits := randomLogits(r, 500, 1.5, 0)
		full := refDist(logits, Params{Temperature: 0.8, TopP: 1})
		pmax := slices.Max(full)
		got := supportProbs(s, logits)
		for i, q := range full {
			if keep := q >= float64(minP)*pmax*(1-1e-12); keep != (got[i] > 0) {
				// the 1e-12 slack only matters for a token exactly at the threshold
				t.Errorf("min_p=%g: token %d p=%g (threshold %g) kept=%v", minP, i, q, float64(minP)*pmax, got[i] > 0)
			}
		}
		for range 3000 {
			tok := s.Sample(logits)
			if full[tok] < float64(minP)*pmax {
				t.Fatalf("min_p=%g: sampled token %d with p=%g < %g", minP, tok, full[tok], float64(minP)*pmax)
			}
		}
	}
}

func TestSeedReproducible(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 19))
	rows := make([][]float32, 200)
	for i := range rows {
		rows[i] = randomLogits(r, 2000, 1, 0) // flat: many plausible tokens
	}
	run := func(p Params) []int {
		s := newSampler(t, p, 2000)
		var toks []int
		for _, row := range rows {
			toks = append(toks, s.Sample(row))
		}
		return toks
	}
	for _, base := range []Params{seeded(0), {Temperature: 0.7, TopK: 50, TopP: 0.9, MinP: 0.02, RepetitionPenalty: 1}} {
		p42, p42b, p43 := base, base, base
		p42.Seed, p42.HasSeed = 42, true
		p42b.Seed, p42b.HasSeed = 42, true
		p43.Seed, p43.HasSeed = 43, true
		a, b, c := run(p42), run(p42b), run(p43)
		if !slices.Equal(a, b) {
			t.Errorf("%+v: same seed gave different tokens", base)
		}
		if slices.Equal(a, c) {
			t.Errorf("%+v: seeds 42 and 43 gave the same 200 tokens", base)
		}
	}
	unseeded := newSampler(t, DefaultParams(), 10)
	again := newSampler(t, Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1, Seed: unseeded.Seed(), HasSeed: true}, 10)
	if unseeded.Seed() == newSampler(t, DefaultParams(), 10).Seed() {
		t.Error("two unseeded samplers drew the same seed")
	}
	row := randomLogits(r, 10, 1, 0)
	for range 100 {
		if unseeded.Sample(row) != again.Sample(row) {
			t.Fatal("replaying Seed() did not reproduce an unseeded sampler")
		}
	}
}

// chi2Bound returns the chi-square quantile with df degrees of freedom at
// upper tail 1e-6 (Wilson–Hilferty, z = 4.753): a fixed-seed run exceeding it
// means the sampler's distribution is wrong, not bad luck.
func chi2Bound(df int) float64 {
	k := float64(df)
	a := 2 / (9 * k)
	return k * math.Pow(1-a+4.753*math.Sqrt(a), 3)
}

// TestEmpiricalDistribution draws 200,000 tokens per configuration with a
// fixed seed and compares the counts with refDist by a chi-square test;
// tokens outside the support must never appear.
func TestEmpiricalDistribution(t *testing.T) {
	logits := []float32{2.1, 0.3, -1, 1.7, 0.9, -0.2, 1.2, -3, 0.5, 1.9, -0.7, 0}
	configs := []Params{
		{Temperature: 1, TopP: 1},
		{Temperature: 0.6, TopP: 1},
		{Temperature: 1.5, TopK: 5, TopP: 1},
		{Temperature: 1, TopP: 0.8},
		{Temperature: 1, TopP: 1, MinP: 0.2},
		{Temperature: 0.8, TopK: 8, TopP: 0.9, MinP: 0.1},
	}
	const draws = 200000
	for ci, p := range configs {
		p.RepetitionPenalty, p.Seed, p.HasSeed = 1, uint64(100+ci), true
		s := newSampler(t, p, len(logits))
		counts := make([]int, len(logits))
		for range draws {
			counts[s.Sample(logits)]++
		}
		want := refDist(logits, p)
		var chi2 float64
		df := -1
		for i, q := range want {
			if q == 0 {
				if counts[i] != 0 {
					t.Errorf("%+v: token %d outside the support drawn %d times", p, i, counts[i])
				}
				continue
			}
			e := q * draws
			chi2 += (float64(counts[i]) - e) * (float64(counts[i]) - e) / e
			df++
		}
		if df > 0 && chi2 > chi2Bound(df) {
			t.Errorf("%+v: chi-square %.1f > %.1f (df %d); counts %v, want probs %v", p, chi2, chi2Bound(df), df, counts, want)
		}
	}
}

// TestPenalties checks that exactly the tokens in the history change, by
// exactly the documented float32 formula, and that Sample puts the caller's
// logits back bit for bit.
func TestPenalties(t *testing.T) {
	logits := []float32{2, -1, 0, 3, 0.5, -2, 1, 1, 4, -0.5}
	prompt := []int{0, 1, 2, 0, 9}
	generated := []int{3, 3, 1, 5, 3}
	p := seeded(1)
	p.RepetitionPenalty, p.PresencePenalty, p.FrequencyPenalty = 1.3, 0.4, 0.25
	s := newSampler(t, p, len(logits))
	s.AcceptPrompt(prompt)
	for _, tok := range generated {
		s.Accept(tok)
	}
	n := map[int]int{} // occurrences, prompt and generated
	g := map[int]int{} // generated occurrences
	for _, tok := range prompt {
		n[tok]++
	}
	for _, tok := range generated {
		n[tok]++
		g[tok]++
	}
	want := slices.Clone(logits)
	for i := range want {
		if n[i] > 0 {
			if want[i] > 0 {
				want[i] /= p.RepetitionPenalty
			} else {
				want[i] *= p.RepetitionPenalty
			}
		}
		if g[i] > 0 {
			want[i] = want[i] - float32(g[i])*p.FrequencyPenalty - p.PresencePenalty
		}
	}
	// Hand check of two entries: token 3 (3 generated) and token 0 (prompt only).
	if d := want[3] - (3/1.3 - 3*0.25 - 0.4); math.Abs(float64(d)) > 1e-6 {
		t.Fatalf("test formula for token 3 off by %g", d)
	}
	if want[0] != float32(2)/1.3 || want[4] != 0.5 {
		t.Fatalf("test formula wrong for tokens 0/4: %v", want)
	}

	got := slices.Clone(logits)
	s.penalize(got)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("token %d (n=%d g=%d): penalised logit %v, want %v", i, n[i], g[i], got[i], want[i])
		}
	}
	s.restore(got)
	if !bitsEqual(got, logits) {
		t.Errorf("restore gave %v, want %v", got, logits)
	}

	// Sample must see the penalised logits and leave the row untouched.
	row := slices.Clone(logits)
	greedy := p
	greedy.Temperature = 0
	gs := newSampler(t, greedy, len(logits))
	gs.AcceptPrompt(prompt)
	for _, tok := range generated {
		gs.Accept(tok)
	}
	if tok := gs.Sample(row); tok != argmax(want) {
		t.Errorf("greedy with penalties = %d, want %d", tok, argmax(want))
	}
	if !bitsEqual(row, logits) {
		t.Errorf("Sample modified logits: %v, want %v", row, logits)
	}
}

// TestLogitBias checks that the bias moves greedy and sampled choices,
// combines with penalties on the same token, leaves the caller's logits
// bit-for-bit unchanged, and that bad biases are refused.
func TestLogitBias(t *testing.T) {
	logits := []float32{2, -1, 0, 3, 0.5}
	p := seeded(3)
	p.Temperature = 0
	p.LogitBias = map[int32]float32{3: -100, 1: 3.5}
	s := newSampler(t, p, len(logits))
	row := slices.Clone(logits)
	if tok := s.Sample(row); tok != 1 { // 2 vs −1+3.5 = 2.5 vs 3−100
		t.Errorf("greedy with bias = %d, want 1", tok)
	}
	if !bitsEqual(row, logits) {
		t.Errorf("Sample modified logits: %v", row)
	}
	// With a repetition penalty on a biased token, the bias comes first:
	// (−1 + 3.5)/2 = 1.25 < 2, so token 0 wins.
	p.RepetitionPenalty = 2
	s = newSampler(t, p, len(logits))
	s.Accept(1)
	if tok := s.Sample(row); tok != 0 || !bitsEqual(row, logits) {
		t.Errorf("bias then penalty: token %d, logits %v; want 0 and unchanged", tok, row)
	}
	// A banned token is never drawn at temperature 1.
	p = seeded(4)
	p.LogitBias = map[int32]float32{3: -100, 0: -100}
	s = newSampler(t, p, len(logits))
	for range 2000 {
		if tok := s.Sample(row); tok == 3 || tok == 0 {
			t.Fatalf("drew banned token %d", tok)
		}
	}
	for _, bad := range []map[int32]float32{{1: 101}, {1: float32(math.NaN())}} {
		p.LogitBias = bad
		var pe *ParamError
		if _, err := NewSampler(p, len(logits)); !errors.As(err, &pe) || pe.Field != "logit_bias" {
			t.Errorf("bias %v: %v, want a logit_bias ParamError", bad, err)
		}
	}
	p.LogitBias = map[int32]float32{5: 1}
	if _, err := NewSampler(p, len(logits)); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("token past the vocabulary: %v", err)
	}
}

func bitsEqual(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestPenaltyWindow compares the sampler's counts with a recount of the last
// PenaltyWindow tokens after every token of a random prompt + generation.
func TestPenaltyWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 21))
	const vocab = 12
	for _, window := range []int{0, 1, 3, 17} {
		p := seeded(1)
		p.PenaltyWindow, p.FrequencyPenalty = window, 0.5
		s := newSampler(t, p, vocab)
		var seq []int
		var isGen []bool
		for step := range 200 {
			tok := r.IntN(vocab)
			gen := step >= 30
			if gen {
				s.Accept(tok)
			} else {
				s.AcceptPrompt([]int{tok})
			}
			seq, isGen = append(seq, tok), append(isGen, gen)
			lo := 0
			if window > 0 {
				lo = max(0, len(seq)-window)
			}
			var all, gcount [vocab]int32
			for i := lo; i < len(seq); i++ {
				all[seq[i]]++
				if isGen[i] {
					gcount[seq[i]]++
				}
			}
			distinct := 0
			for tk := range vocab {
				if s.all[tk] != all[tk] || s.gen[tk] != gcount[tk] {
					t.Fatalf("window %d step %d token %d: counts (%d, %d), want (%d, %d)", window, step, tk, s.all[tk], s.gen[tk], all[tk], gcount[tk])
				}
				if all[tk] > 0 {
					distinct++
					if s.seen[s.slot[tk]-1] != int32(tk) {
						t.Fatalf("window %d step %d: slot of %d broken", window, step, tk)
					}
				}
			}
			if len(s.seen) != distinct || len(s.saved) != distinct {
				t.Fatalf("window %d step %d: %d seen, want %d", window, step, len(s.seen), distinct)
			}
		}
	}
}

// TestPromptCountsOnlyForRepetition: prompt tokens get the repetition penalty
// but never the presence or frequency penalty.
func TestPromptCountsOnlyForRepetition(t *testing.T) {
	logits := []float32{1, 1, 1}
	p := seeded(1)
	p.PresencePenalty, p.FrequencyPenalty = 2, 2
	s := newSampler(t, p, 3)
	s.AcceptPrompt([]int{0, 0, 1})
	got := slices.Clone(logits)
	s.penalize(got)
	if !bitsEqual(got, logits) {
		t.Errorf("presence/frequency applied to prompt tokens: %v", got)
	}
	p.PresencePenalty, p.FrequencyPenalty, p.RepetitionPenalty = 0, 0, 2
	s = newSampler(t, p, 3)
	s.AcceptPrompt([]int{0, 0, 1})
	got = slices.Clone(logits)
	s.penalize(got)
	if want := []float32{0.5, 0.5, 1}; !bitsEqual(got, want) {
		t.Errorf("repetition on prompt tokens: %v, want %v", got, want)
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatalf("DefaultParams: %v", err)
	}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	cases := []struct {
		field string
		mod   func(*Params)
	}{
		{"temperature", func(p *Params) { p.Temperature = -0.1 }},
		{"temperature", func(p *Params) { p.Temperature = nan }},
		{"temperature", func(p *Params) { p.Temperature = inf }},
		{"top_k", func(p *Params) { p.TopK = -1 }},
		{"top_p", func(p *Params) { p.TopP = 0 }},
		{"top_p", func(p *Params) { p.TopP = 1.01 }},
		{"top_p", func(p *Params) { p.TopP = -0.5 }},
		{"top_p", func(p *Params) { p.TopP = nan }},
		{"min_p", func(p *Params) { p.MinP = -0.01 }},
		{"min_p", func(p *Params) { p.MinP = 1.5 }},
		{"min_p", func(p *Params) { p.MinP = nan }},
		{"repetition_penalty", func(p *Params) { p.RepetitionPenalty = 0 }},
		{"repetition_penalty", func(p *Params) { p.RepetitionPenalty = -1 }},
		{"repetition_penalty", func(p *Params) { p.RepetitionPenalty = inf }},
		{"presence_penalty", func(p *Params) { p.PresencePenalty = 2.5 }},
		{"presence_penalty", func(p *Params) { p.PresencePenalty = -2.01 }},
		{"presence_penalty", func(p *Params) { p.PresencePenalty = nan }},
		{"frequency_penalty", func(p *Params) { p.FrequencyPenalty = 3 }},
		{"frequency_penalty", func(p *Params) { p.FrequencyPenalty = -2.5 }},
		{"penalty_window", func(p *Params) { p.PenaltyWindow = -1 }},
	}
	for _, c := range cases {
		p := DefaultParams()
		c.mod(&p)
		err := p.Validate()
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Field != c.field {
			t.Errorf("%+v: Validate() = %v, want a ParamError for %s", p, err, c.field)
			continue
		}
		if _, err := NewSampler(p, 10); err == nil {
			t.Errorf("%+v: NewSampler accepted invalid params", p)
		}
	}
	// The edges of each range are valid.
	edges := []func(*Params){
		func(p *Params) { p.Temperature = 0 },
		func(p *Params) { p.TopP = 1e-6 },
		func(p *Params) { p.MinP = 1 },
		func(p *Params) { p.PresencePenalty, p.FrequencyPenalty = -2, 2 },
		func(p *Params) { p.RepetitionPenalty = 1e-3 },
		func(p *Params) { p.TopK = 1 << 30 },
	}
	for _, mod := range edges {
		p := DefaultParams()
		mod(&p)
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	if _, err := NewSampler(DefaultParams(), 0); err == nil {
		t.Error("NewSampler accepted vocabulary size 0")
	}
}

// TestMaskedTokens: −Inf tokens are never drawn, and an all-masked row gives
// greedy's answer instead of NaN arithmetic.
func TestMaskedTokens(t *testing.T) {
	ninf := float32(math.Inf(-1))
	for _, p := range []Params{seeded(1), {Temperature: 1, TopP: 0.5, RepetitionPenalty: 1}, {Temperature: 1, TopK: 3, TopP: 1, RepetitionPenalty: 1}, {Temperature: 1, TopP: 1, MinP: 0.5, RepetitionPenalty: 1}} {
		s := newSampler(t, p, 4)
		for range 100 {
			if tok := s.Sample([]float32{ninf, 0, ninf, 0}); tok != 1 && tok != 3 {
				t.Fatalf("%+v: sampled masked token %d", p, tok)
			}
		}
		if tok := s.Sample([]float32{ninf, ninf, ninf, ninf}); tok != 0 {
			t.Errorf("%+v: all masked gave %d, want 0", p, tok)
		}
	}
}

func TestSamplePanics(t *testing.T) {
	s := newSampler(t, seeded(1), 4)
	for name, f := range map[string]func(){
		"short logits": func() { s.Sample(make([]float32, 3)) },
		"token id":     func() { s.Accept(4) },
		"negative id":  func() { s.AcceptPrompt([]int{-1}) },
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

// TestNoAllocs: after warm-up (the history at its final size), neither
// Sample nor Accept allocates, on every path.
func TestNoAllocs(t *testing.T) {
	const vocab = 20000
	r := rand.New(rand.NewPCG(22, 23))
	logits := randomLogits(r, vocab, 2.5, 0)
	configs := map[string]Params{
		"greedy":        {TopP: 1, RepetitionPenalty: 1},
		"temperature":   {Temperature: 1, TopP: 1, RepetitionPenalty: 1},
		"top-k":         {Temperature: 0.7, TopK: 40, TopP: 1, RepetitionPenalty: 1},
		"top-p":         {Temperature: 0.7, TopP: 0.9, RepetitionPenalty: 1},
		"min-p":         {Temperature: 0.7, TopP: 1, MinP: 0.05, RepetitionPenalty: 1},
		"all+penalties": {Temperature: 0.7, TopK: 100, TopP: 0.9, MinP: 0.05, RepetitionPenalty: 1.1, PresencePenalty: 0.5, FrequencyPenalty: 0.3, PenaltyWindow: 64},
	}
	for name, p := range configs {
		p.Seed, p.HasSeed = 1, true
		s := newSampler(t, p, vocab)
		prompt := make([]int, 200)
		for i := range prompt {
			prompt[i] = r.IntN(vocab)
		}
		s.AcceptPrompt(prompt)
		if n := testing.AllocsPerRun(200, func() { s.Accept(s.Sample(logits)) }); n != 0 {
			t.Errorf("%s: %v allocations per Sample+Accept", name, n)
		}
	}
}
