package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/sample"
)

// Request is one generation job: a prompt of token ids and how to continue it.
type Request struct {
	// Prompt is the tokens to feed before generating. With Resume set it holds
	// only the tokens that follow what the resumed state has absorbed.
	Prompt []int32
	// MaxTokens is the largest number of tokens to generate (≥ 1).
	MaxTokens int
	// Params are the sampling settings (sample.DefaultParams, or greedy with
	// Temperature 0).
	Params sample.Params
	// StopTokens end generation when sampled (end-of-turn, EOS). The stop token
	// is not emitted as a Token; Result.StopToken reports it.
	StopTokens []int32
	// TopLogprobs > 0 attaches the chosen token's log-probability and the
	// TopLogprobs most likely alternatives to every Token; Logprobs alone
	// attaches only the former. At most sample.MaxTopLogprobs.
	Logprobs    bool
	TopLogprobs int
	// Checkpoints are prompt positions (token counts, 0 < p < len(Prompt))
	// after which the engine snapshots the state into the prefix cache, e.g.
	// the ends of chat turns or of a shared system prompt. Prefill chunks are
	// cut there so the snapshot falls exactly on the boundary.
	Checkpoints []int
	// Resume, if set, is a state to start from (e.g. a saved session): the
	// engine takes ownership of it and feeds Prompt after what it absorbed.
	// Such requests neither use nor fill the prefix cache, because the tokens
	// behind the state are unknown.
	Resume model.State
	// KeepState hands the final state back in Result.State instead of
	// recycling it.
	KeepState bool
	// NoCache keeps the request away from the prefix cache entirely.
	NoCache bool
	// Constraint, if set, restricts which tokens may be sampled (e.g. to
	// keep the output valid JSON). It must allow a stop token when it wants
	// generation to end.
	Constraint Constraint
}

// Constraint restricts sampling, for example to a grammar. The engine asks
// Allowed about candidate tokens, possibly every token of the vocabulary in
// one step, and calls Accept with each token it emits (never a stop token).
// It holds one sequence's state and is used from the engine's goroutine
// only.
type Constraint interface {
	// Allowed reports whether tok may come next.
	Allowed(tok int32) bool
	// Accept advances past tok.
	Accept(tok int32)
}

// Token is one generated token.
type Token struct {
	ID int32
	// Logprob is the token's log-probability under the raw model distribution
	// (set when Request.Logprobs or TopLogprobs).
	Logprob float32
	// Top are the most likely alternatives, most likely first (TopLogprobs).
	Top []sample.Logprob
}

// FinishReason says why a sequence ended.
type FinishReason string

// Finish reasons; Stop and Length match the OpenAI API's names.
const (
	FinishStop      FinishReason = "stop"      // a stop token was sampled
	FinishLength    FinishReason = "length"    // MaxTokens generated
	FinishCancelled FinishReason = "cancelled" // the request's context ended or Cancel was called
	FinishAborted   FinishReason = "aborted"   // the engine was closed, or the step failed (Err says which)
)

// Result is a finished sequence's summary.
type Result struct {
	Reason FinishReason
	// StopToken is the stop token that ended the sequence, or -1.
	StopToken int32
	// Err is the context's error for FinishCancelled (context.Canceled or
	// context.DeadlineExceeded); ErrClosed, ErrPanic or ErrTooSlow for
	// FinishAborted.
	Err error
	// PromptTokens counts the prompt, CachedTokens the part of it restored
	// from the prefix cache instead of prefilled, CompletionTokens every
	// sampled token including a stop token.
	PromptTokens, CachedTokens, CompletionTokens int
	// Seed is the sampler's seed (reproduces a sampled run).
	Seed uint64
	// PrefillWait is the time from Submit to the step that read the first
	// prompt chunk (queueing and head-of-line waiting), or to the start from
	// a cached prefix that left nothing to read; -1 if it never got there.
	PrefillWait time.Duration
	// State is the final state when Request.KeepState was set: it has absorbed
	// every token but the last sampled one, which is Pending.
	State   model.State
	Pending []int32
}

// Absorbed returns the generated ids that a kept final state (KeepState)
// has absorbed, given the ids the stream emitted, and whether the state can
// be resumed at all: only a sequence that ended on a stop token or on
// MaxTokens can, and its state then holds the prompt and every sampled
// token (the stop token included) except the Pending one.
func (r *Result) Absorbed(emitted []int32) ([]int32, bool) {
	if r == nil || r.State == nil || (r.Reason != FinishStop && r.Reason != FinishLength) {
		return nil, false
	}
	sampled := emitted
	if r.StopToken >= 0 {
		sampled = append(slices.Clone(emitted), r.StopToken)
	}
	if len(r.Pending) > len(sampled) {
		return nil, false
	}
	return sampled[:len(sampled)-len(r.Pending)], true
}

// Errors returned by Submit. Callers branch on them with errors.Is; the
// returned error wraps them with details.
var (
	ErrQueueFull    = errors.New("engine: queue is full")
	ErrDraining     = errors.New("engine: draining, not accepting requests")
	ErrClosed       = errors.New("engine: closed")
	ErrTooLarge     = errors.New("engine: request needs more memory than the engine's budget")
	ErrContextLen   = errors.New("engine: prompt plus max tokens exceed the model's context length")
	ErrInvalid      = errors.New("engine: invalid request")
	ErrTokenInvalid = errors.New("engine: token id outside the vocabulary")
	// ErrTooSlow refuses (Submit) or ends (Reason FinishAborted) a request
	// whose prompt cannot be read before its context's deadline at the
	// measured prefill rate; the error says how long it would take.
	ErrTooSlow = errors.New("engine: the prompt cannot be read before the request's deadline")
	// ErrPanic ends sequences whose step panicked (Reason FinishAborted).
	ErrPanic = errors.New("engine: internal error during a step")
)

// Stream delivers a sequence's tokens as they are generated. The engine never
// blocks on a slow reader: tokens queue up in the stream (at most MaxTokens).
type Stream struct {
	ready  chan struct{} // receives a value when output or the result is new
	cancel context.CancelFunc

	mu     sync.Mutex
	toks   []Token
	result *Result
}

func newStream(cancel context.CancelFunc) *Stream {
	return &Stream{ready: make(chan struct{}, 1), cancel: cancel}
}

// Ready returns a channel that receives a value whenever Take has something
// new to return.
func (s *Stream) Ready() <-chan struct{} { return s.ready }

// Take returns the tokens generated since the last call and, once the
// sequence has ended, its result (else nil); tokens returned together with a
// result are the last ones.
func (s *Stream) Take() ([]Token, *Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.toks
	s.toks = nil
	return t, s.result
}

// Cancel stops the sequence; its slot is freed within one engine step and
// its result has Reason FinishCancelled.
func (s *Stream) Cancel() { s.cancel() }

// Wait collects the whole output: every token and the result. It returns
// early with ctx's error if ctx ends first (the sequence keeps running; call
// Cancel to stop it).
func (s *Stream) Wait(ctx context.Context) ([]Token, *Result, error) {
	var all []Token
	for {
		t, r := s.Take()
		all = append(all, t...)
		if r != nil {
			return all, r, nil
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return all, nil, ctx.Err()
		}
	}
}

func (s *Stream) push(t Token) {
	s.mu.Lock()
	s.toks = append(s.toks, t)
	s.mu.Unlock()
	s.notify()
}

func (s *Stream) finish(r *Result) {
	s.mu.Lock()
	s.result = r
	s.mu.Unlock()
	s.notify()
	s.cancel() // release the context's resources
}

func (s *Stream) notify() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}
