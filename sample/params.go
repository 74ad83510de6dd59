package sample

import (
	"fmt"
	"math"
)

// Params are the sampling settings of one sequence. The zero value is not
// valid (TopP and RepetitionPenalty would be 0); start from [DefaultParams].
type Params struct {
	// Temperature divides the logits; 0 selects greedy decoding (argmax,
	// lowest id on ties), where TopK, TopP and MinP change nothing because
	// they always keep the most likely token.
	Temperature float32
	// TopK keeps the TopK most likely tokens; 0 turns it off.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability mass
	// is at least TopP, in (0, 1]; 1 turns it off.
	TopP float32
	// MinP drops tokens whose probability is below MinP times the probability
	// of the most likely token, in [0, 1]; 0 turns it off.
	MinP float32

	// RepetitionPenalty applies to every token in the penalty window, prompt
	// and generated alike (HF, vLLM and llama.cpp semantics): a positive logit
	// is divided by it, any other logit multiplied by it. It must be > 0; 1
	// turns it off.
	RepetitionPenalty float32
	// PresencePenalty is subtracted once from the logit of every token that
	// was generated (not in the prompt) within the penalty window. OpenAI
	// range [-2, 2]; 0 turns it off.
	PresencePenalty float32
	// FrequencyPenalty is subtracted from the logit of every generated token
	// once per generated occurrence within the penalty window. OpenAI range
	// [-2, 2]; 0 turns it off.
	FrequencyPenalty float32
	// PenaltyWindow limits all three penalties to the last PenaltyWindow
	// tokens of the sequence (prompt tokens passed to
	// [Sampler.AcceptPrompt] followed by generated ones, like llama.cpp's
	// repeat_last_n); 0 means the whole sequence.
	PenaltyWindow int

	// LogitBias is added to the logits of the listed tokens before the
	// penalties and every other step (OpenAI's logit_bias): −100 bans a token
	// in practice and +100 all but forces it. Values in [-100, 100]; token
	// ids must lie in the vocabulary (checked by NewSampler). Logprobs still
	// report the model's own distribution.
	LogitBias map[int32]float32

	// Seed seeds the sampler's random number generator when HasSeed is set:
	// the same Seed, Params and logits give the same tokens. Without HasSeed
	// the sampler draws a random seed, reported by [Sampler.Seed].
	Seed    uint64
	HasSeed bool
}

// DefaultParams returns the OpenAI defaults: temperature 1 and every other
// setting off, with a random seed.
func DefaultParams() Params {
	return Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1}
}

// ParamError reports an out-of-range sampling setting. Field is the
// snake_case name used by OpenAI-style APIs (temperature, top_p, …), so a
// server can report it as the offending parameter.
type ParamError struct {
	Field string
	Value float64
	Want  string // the allowed range, e.g. "in (0, 1]"
}

// Error implements error.
func (e *ParamError) Error() string {
	return fmt.Sprintf("sample: %s = %g, want %s", e.Field, e.Value, e.Want)
}

// Validate returns a *ParamError for the first setting outside its range, in
// field order, or nil. NaN and infinite values are rejected everywhere.
func (p Params) Validate() error {
	bad := func(field string, v float64, want string) error {
		return &ParamError{Field: field, Value: v, Want: want}
	}
	finite := func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
	switch {
	case !finite(p.Temperature) || p.Temperature < 0:
		return bad("temperature", float64(p.Temperature), ">= 0 (0 = greedy)")
	case p.TopK < 0:
		return bad("top_k", float64(p.TopK), ">= 0 (0 = off)")
	case !(p.TopP > 0 && p.TopP <= 1):
		return bad("top_p", float64(p.TopP), "in (0, 1] (1 = off)")
	case !(p.MinP >= 0 && p.MinP <= 1):
		return bad("min_p", float64(p.MinP), "in [0, 1] (0 = off)")
	case !finite(p.RepetitionPenalty) || p.RepetitionPenalty <= 0:
		return bad("repetition_penalty", float64(p.RepetitionPenalty), "> 0 (1 = off)")
	case !(p.PresencePenalty >= -2 && p.PresencePenalty <= 2):
		return bad("presence_penalty", float64(p.PresencePenalty), "in [-2, 2] (0 = off)")
	case !(p.FrequencyPenalty >= -2 && p.FrequencyPenalty <= 2):
		return bad("frequency_penalty", float64(p.FrequencyPenalty), "in [-2, 2] (0 = off)")
	case p.PenaltyWindow < 0:
		return bad("penalty_window", float64(p.PenaltyWindow), ">= 0 (0 = whole sequence)")
	}
	for _, b := range p.LogitBias {
		if !(b >= -100 && b <= 100) {
			return bad("logit_bias", float64(b), "in [-100, 100] for every token")
		}
	}
	return nil
}

// penalized reports whether any penalty is on, i.e. whether the sampler must
// keep a token history.
func (p Params) penalized() bool {
	return p.RepetitionPenalty != 1 || p.PresencePenalty != 0 || p.FrequencyPenalty != 0
}
