// Package sample picks the next token from a row of logits.
//
// A [Sampler] holds one sequence's [Params], its random number generator and
// the token history the penalties need. The engine calls [Sampler.Sample] with
// the logits of the last position and then [Sampler.Accept] with the token it
// actually emits. [TopLogprobs] reports log-probabilities for the OpenAI API,
// and [StopMatcher] finds stop strings in generated text.
//
// # Order of operations
//
// Sample applies, in this order:
//
//  1. logit bias: Params.LogitBias added to the listed tokens' logits;
//  2. penalties: repetition (HF/vLLM/llama.cpp), then frequency and presence
//     (OpenAI), on the logits of tokens in the history;
//  3. temperature: z = logit/T; T = 0 means greedy and skips every later step;
//  4. top-k: keep the k largest z;
//  5. top-p: keep the smallest prefix of the survivors, by descending
//     probability, whose renormalised mass is at least p;
//  6. min-p: drop survivors whose probability is below min_p·p_max;
//  7. draw one token from what is left, proportionally to exp(z − z_max).
//
// This is the order of HF transformers (logit bias and penalty processors, then the
// temperature, top-k, top-p and min-p warpers) and of vLLM, except that vLLM
// applies min-p before top-k and top-p. Temperature comes before truncation so
// that top-p and min-p act on the distribution that is actually sampled: a 90%
// nucleus is 90% of the mass at this temperature. llama.cpp's default chain
// applies temperature last, so at T ≠ 1 its top-p and min-p keep different
// sets. Min-p is last because its threshold is relative to the most likely
// token, which every earlier step keeps: it only removes tokens and never
// changes which token the threshold refers to.
//
// # Cost
//
// Greedy decoding is one pass over the logits. With top-k, a heap of k
// entries takes one pass and only the k survivors are exponentiated and
// sorted. Without top-k every logit is exponentiated once (the softmax
// normaliser needs them all); top-p then sorts only the tokens near the
// nucleus boundary (see nBuckets), never the whole vocabulary.
//
// # Conventions
//
// Candidates are ordered by logit, descending, and ties break towards the
// lower token id. Greedy decoding therefore returns the lowest id among the
// maximal logits, and top-k and top-p cut ties the same way. Logits must be
// finite or −Inf; −Inf marks a token that must never be drawn.
//
// Each token's weight w(l) = exp((l − l_max)/T) is computed in float32 with
// the vectorized kernels.Exp (the exponent rounded in float32, the result
// within 2 ulp), so the most likely token has weight 1; sums and cumulative
// masses of the weights are taken in float64.
package sample
