package sample

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/lightninglm/lightning/kernels"
)

// Sampler draws the tokens of one sequence. It is not safe for concurrent use;
// give each sequence its own.
//
// All scratch memory is allocated by [NewSampler]: Sample never allocates, and
// Accept only while the penalty history is still growing (amortised appends,
// up to PenaltyWindow entries and the number of distinct tokens in it).
// With sampling and every penalty on, a sampler holds about 24 bytes per
// vocabulary entry (4.8 MB for 200,064 tokens); a greedy sampler without
// penalties holds none.
type Sampler struct {
	p     Params
	vocab int
	seed  uint64
	rng   *rand.PCG

	// Token history for the penalties; all nil unless a penalty is on.
	hist  []histEntry // ring of the last PenaltyWindow tokens; nil if PenaltyWindow = 0
	head  int         // oldest entry of hist once it is full
	all   []int32     // [vocab] occurrences in the window, prompt and generated
	gen   []int32     // [vocab] generated occurrences in the window
	seen  []int32     // distinct tokens with all > 0, in no particular order
	slot  []int32     // [vocab] 1 + index of the token in seen, 0 if absent
	saved []float32   // [len(seen)] caller's logits of seen, put back after Sample

	// Params.LogitBias by token id, and the caller's logits it changed.
	biasTok   []int32
	biasVal   []float32
	biasSaved []float32

	// Scratch for temperature sampling; nil for greedy samplers.
	w    []float32             // [vocab] weights exp((l − l_max)/T) of the tokens considered
	cand []cand                // [vocab] candidate tokens
	mass [nBuckets + 1]float64 // top-p histogram: weight per bucket
}

// histEntry is one token of the penalty window.
type histEntry struct {
	tok int32
	gen bool // generated, as opposed to prompt
}

// cand is a candidate token with its penalised logit.
type cand struct {
	id int32
	l  float32
}

// pcgStream is the second seed word of every sampler's PCG generator (the
// 64-bit golden ratio); the first is the sequence's seed.
const pcgStream = 0x9e3779b97f4a7c15

// NewSampler returns a sampler for p over a vocabulary of vocab tokens, the
// length of every logits row it will be given. It returns p.Validate's error
// for bad settings.
func NewSampler(p Params, vocab int) (*Sampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if vocab < 1 || vocab > math.MaxInt32 {
		return nil, fmt.Errorf("sample: vocabulary size %d outside [1, %d]", vocab, math.MaxInt32)
	}
	seed := p.Seed
	if !p.HasSeed {
		seed = rand.Uint64()
	}
	s := &Sampler{p: p, vocab: vocab, seed: seed, rng: rand.NewPCG(seed, pcgStream)}
	for _, t := range slices.Sorted(maps.Keys(p.LogitBias)) {
		if t < 0 || int(t) >= vocab {
			return nil, fmt.Errorf("sample: logit_bias token %d outside the vocabulary [0, %d)", t, vocab)
		}
		s.biasTok = append(s.biasTok, t)
		s.biasVal = append(s.biasVal, p.LogitBias[t])
	}
	s.biasSaved = make([]float32, len(s.biasTok))
	if p.penalized() {
		s.all = make([]int32, vocab)
		s.gen = make([]int32, vocab)
		s.slot = make([]int32, vocab)
	}
	if p.Temperature > 0 {
		s.w = make([]float32, vocab)
		s.cand = make([]cand, vocab)
	}
	return s, nil
}

// Params returns the settings the sampler was created with.
func (s *Sampler) Params() Params { return s.p }

// Seed returns the seed of the sampler's generator: Params.Seed if HasSeed was
// set, otherwise the random seed it drew, so a run can be reproduced.
func (s *Sampler) Seed() uint64 { return s.seed }

// Accept records a generated token for the penalties. The engine calls it with
// each token it emits, whether or not Sample chose it. It panics if token is
// outside [0, vocab).
func (s *Sampler) Accept(token int) { s.push(token, true) }

// AcceptPrompt records prompt tokens, oldest first, for the penalties. They
// count for RepetitionPenalty and for the PenaltyWindow but never for
// PresencePenalty or FrequencyPenalty, which follow OpenAI and vLLM in
// counting generated tokens only. Call it before the first Accept. It panics
// if a token is outside [0, vocab).
func (s *Sampler) AcceptPrompt(tokens []int) {
	for _, t := range tokens {
		s.push(t, false)
	}
}

func (s *Sampler) push(token int, generated bool) {
	if uint(token) >= uint(s.vocab) {
		panic("sample: token id outside the vocabulary")
	}
	if s.all == nil {
		return // no penalty: no history
	}
	e := histEntry{int32(token), generated}
	if n := s.p.PenaltyWindow; n > 0 {
		if len(s.hist) < n {
			s.hist = append(s.hist, e)
		} else {
			s.remove(s.hist[s.head])
			s.hist[s.head] = e
			s.head = (s.head + 1) % n
		}
	}
	t := e.tok
	s.all[t]++
	if generated {
		s.gen[t]++
	}
	if s.all[t] == 1 {
		s.seen = append(s.seen, t)
		s.saved = append(s.saved, 0)
		s.slot[t] = int32(len(s.seen))
	}
}

// remove forgets one occurrence that left the penalty window.
func (s *Sampler) remove(e histEntry) {
	t := e.tok
	s.all[t]--
	if e.gen {
		s.gen[t]--
	}
	if s.all[t] > 0 {
		return
	}
	i := s.slot[t] - 1
	last := s.seen[len(s.seen)-1]
	s.seen[i] = last
	s.slot[last] = i + 1
	s.seen = s.seen[:len(s.seen)-1]
	s.saved = s.saved[:len(s.saved)-1]
	s.slot[t] = 0
}

// Sample returns the next token for logits, a row of len vocab (see the
// package documentation for the steps). It does not record the token; call
// Accept.
//
// The logit bias and the penalties are applied to logits in place and undone
// before Sample returns, so logits are bit-for-bit unchanged afterwards, but no other
// goroutine may read them during the call. Sample panics if len(logits) is not
// the vocabulary size.
func (s *Sampler) Sample(logits []float32) int {
	if len(logits) != s.vocab {
		panic("sample: len(logits) differs from the vocabulary size")
	}
	for i, t := range s.biasTok {
		s.biasSaved[i] = logits[t]
		logits[t] += s.biasVal[i]
	}
	s.penalize(logits)
	var tok int
	if s.p.Temperature == 0 {
		tok = argmax(logits)
	} else {
		c, z, all := s.support(logits)
		if all {
			tok = s.drawAll(z)
		} else {
			tok = s.draw(c, z)
		}
	}
	s.restore(logits)
	for i, t := range s.biasTok {
		logits[t] = s.biasSaved[i]
	}
	return tok
}

// penalize applies the penalties to the logits of the tokens in the window,
// saving the originals for restore. For a token with n occurrences in the
// window, g of them generated:
//
//	if n > 0: l = l/RepetitionPenalty if l > 0, else l·RepetitionPenalty
//	if g > 0: l = l − float32(g)·FrequencyPenalty − PresencePenalty
//
// all in float32, evaluated left to right.
func (s *Sampler) penalize(logits []float32) {
	rep, pres, freq := s.p.RepetitionPenalty, s.p.PresencePenalty, s.p.FrequencyPenalty
	for j, t := range s.seen {
		l := logits[t]
		s.saved[j] = l
		if rep != 1 {
			if l > 0 {
				l /= rep
			} else {
				l *= rep
			}
		}
		if g := s.gen[t]; g > 0 {
			l = l - float32(g)*freq - pres
		}
		logits[t] = l
	}
}

// restore puts back the logits penalize changed.
func (s *Sampler) restore(logits []float32) {
	for j, t := range s.seen {
		logits[t] = s.saved[j]
	}
}

// argmax returns the index of the largest element, the lowest on ties
// (kernels.Argmax: a vectorized max, then the first index holding it).
func argmax(x []float32) int { return kernels.Argmax(x) }

// support applies temperature, top-k, top-p and min-p to the penalised logits.
// It sets s.w[i] to the weight exp((l_i − l_max)/T) of every token it
// returns and returns the survivors with their total weight z; all reports
// that every token survives (nothing truncates), in which case c is nil and
// s.w holds the weight of every token.
func (s *Sampler) support(logits []float32) (c []cand, z float64, all bool) {
	invT := 1 / float64(s.p.Temperature)
	k, topP, minP := s.p.TopK, float64(s.p.TopP), float64(s.p.MinP)
	sure := 0 // c[:sure] survive top-p in any order; c[sure:] is sorted best first
	if k > 0 && k < len(logits) {
		c = topK(s.cand, logits, k)
		lmax := float64(c[0].l)
		if math.IsInf(lmax, -1) {
			return s.allMasked()
		}
		z = s.weighCands(c, c[0].l, invT)
	} else {
		lmax := float64(logits[argmax(logits)])
		if math.IsInf(lmax, -1) {
			return s.allMasked()
		}
		z = s.weigh(logits, lmax, invT, topP < 1)
		switch {
		case topP < 1:
			c, sure = s.nucleus(logits, lmax, invT, topP*z)
		case minP == 0:
			return nil, z, true
		default:
			c = s.cand[:0]
			for i, e := range s.w {
				if float64(e) >= minP {
					c = append(c, cand{int32(i), logits[i]})
				}
			}
		}
	}
	if topP < 1 {
		// z is the mass top-p is taken of: the top k, or the whole vocabulary.
		target := topP * z
		var cum float64
		for _, x := range c[:sure] {
			cum += float64(s.w[x.id])
		}
		for i := sure; i < len(c); i++ {
			cum += float64(s.w[c[i].id])
			if cum >= target {
				c = c[:i+1]
				break
			}
		}
	}
	if minP > 0 {
		// The most likely token has weight 1, so p < min_p·p_max ⇔ w < min_p.
		n := 0
		for _, x := range c {
			if float64(s.w[x.id]) >= minP {
				c[n] = x
				n++
			}
		}
		c = c[:n]
	}
	z = 0
	for _, x := range c {
		z += float64(s.w[x.id])
	}
	return c, z, false
}

// allMasked is support's answer when every logit is −Inf: greedy's token 0,
// rather than NaN weights.
func (s *Sampler) allMasked() ([]cand, float64, bool) {
	s.w[0] = 1
	s.cand[0] = cand{0, float32(math.Inf(-1))}
	return s.cand[:1], 1, false
}

// expChunk is how many weights weigh and weighCands compute per call of
// kernels.Exp: small enough that the chunk's logits and weights stay in L1
// between the passes over it.
const expChunk = 512

// histMinWeight is below the weight of every token the top-p histogram
// counts: e^-16.0625, a sixteenth of a nat below the last bucket's bound.
const histMinWeight = 1.05e-7

// weights32 returns −l_max and 1/T rounded to float32, the operands of the
// weights' exponents (l − l_max)·(1/T), which are computed in float32 and
// exponentiated by kernels.Exp (within 2 ulp). A 1/T beyond the float32
// range (T below 3e-39) is clamped to the largest float32, which keeps the
// maximum at weight 1 where 0·∞ would be NaN; such a temperature is greedy
// in effect either way.
func weights32(lmax, invT float64) (negMax, it float32) {
	return float32(-lmax), float32(min(invT, math.MaxFloat32))
}

// weigh sets s.w to the weights of all tokens and returns their sum. With
// hist it also fills the top-p histogram.
func (s *Sampler) weigh(logits []float32, lmax, invT float64, hist bool) float64 {
	w := s.w[:len(logits)]
	negMax, it := weights32(lmax, invT)
	if hist {
		s.mass = [nBuckets + 1]float64{}
	}
	var z0, z1, z2, z3 float64
	for i0 := 0; i0 < len(w); i0 += expChunk {
		wc := w[i0:min(i0+expChunk, len(w))]
		lc := logits[i0 : i0+len(wc)]
		for i, l := range lc {
			wc[i] = (l + negMax) * it
		}
		kernels.Exp(wc, wc)
		i := 0
		for ; i+4 <= len(wc); i += 4 {
			z0 += float64(wc[i])
			z1 += float64(wc[i+1])
			z2 += float64(wc[i+2])
			z3 += float64(wc[i+3])
		}
		for ; i < len(wc); i++ {
			z0 += float64(wc[i])
		}
		if hist {
			// The last bucket (d ≥ 16 nats) is never read (see
			// nucleus); its tokens, most of a peaked distribution,
			// are skipped by their weight (e^-16 ≈ 1.1e-7, less a
			// margin far above the weights' float32 error) before
			// bucketOf places the others exactly.
			for i, e := range wc {
				if e >= histMinWeight {
					if b := bucketOf((lmax - float64(lc[i])) * invT); b < nBuckets {
						s.mass[b] += float64(e)
					}
				}
			}
		}
	}
	return (z0 + z1) + (z2 + z3)
}

// weighCands sets s.w[x.id] to the weight of every candidate x, for a
// maximum logit lmax, and returns their sum.
func (s *Sampler) weighCands(c []cand, lmax float32, invT float64) float64 {
	negMax, it := weights32(float64(lmax), invT)
	var buf [expChunk]float32
	var z float64
	for len(c) > 0 {
		b := buf[:min(len(c), len(buf))]
		for i, x := range c[:len(b)] {
			b[i] = (x.l + negMax) * it
		}
		kernels.Exp(b, b)
		for i, x := range c[:len(b)] {
			s.w[x.id] = b[i]
			z += float64(b[i])
		}
		c = c[len(b):]
	}
	return z
}

// draw returns a token of c chosen with probability s.w[id]/z.
func (s *Sampler) draw(c []cand, z float64) int {
	u := s.uniform() * z
	var cum float64
	last := int(c[0].id)
	for _, x := range c {
		e := float64(s.w[x.id])
		if e == 0 {
			continue
		}
		cum += e
		last = int(x.id)
		if u < cum {
			return last
		}
	}
	return last // u rounded up to z
}

// drawAll returns token i with probability s.w[i]/z.
func (s *Sampler) drawAll(z float64) int {
	u := s.uniform() * z
	var cum float64
	last := 0
	for i, e := range s.w {
		if e == 0 {
			continue
		}
		cum += float64(e)
		last = i
		if u < cum {
			return i
		}
	}
	return last
}

// uniform returns a float64 uniform in [0, 1) with 53 random bits.
func (s *Sampler) uniform() float64 {
	return float64(s.rng.Uint64()>>11) * 0x1p-53
}
