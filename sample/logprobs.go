package sample

import "math"

// MaxTopLogprobs is the largest number of alternatives [TopLogprobs] reports,
// the OpenAI API's limit for top_logprobs.
const MaxTopLogprobs = 20

// Logprob is a token and its natural-log probability.
type Logprob struct {
	Token   int
	Logprob float32
}

// TopLogprobs returns the log-probability of token under softmax(logits) and
// appends to dst[:0] the n most likely tokens with theirs, most likely first,
// ties by lower id. It allocates only if cap(dst) < n.
//
// The distribution is the raw one, the logits as the model produced them:
// before penalties, temperature and truncation, like vLLM's default
// (raw_logprobs) and like OpenAI, which reports the model's distribution. So
// the chosen token can be reported with a logprob below every alternative's,
// or be one that top-k would have excluded.
//
// The log-sum-exp is accumulated in float64. TopLogprobs panics if n is
// outside [0, MaxTopLogprobs] or token outside [0, len(logits)).
func TopLogprobs(dst []Logprob, logits []float32, token, n int) (float32, []Logprob) {
	if n < 0 || n > MaxTopLogprobs {
		panic("sample: TopLogprobs n outside [0, MaxTopLogprobs]")
	}
	if uint(token) >= uint(len(logits)) {
		panic("sample: TopLogprobs token outside the logits")
	}
	lmax := float64(logits[argmax(logits)])
	var z float64
	for _, l := range logits {
		z += math.Exp(float64(l) - lmax)
	}
	lse := lmax + math.Log(z)

	dst = dst[:0]
	if n = min(n, len(logits)); n > 0 {
		var heap [MaxTopLogprobs]cand
		for _, c := range topK(heap[:], logits, n) {
			dst = append(dst, Logprob{int(c.id), float32(float64(c.l) - lse)})
		}
	}
	return float32(float64(logits[token]) - lse), dst
}
