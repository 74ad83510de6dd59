package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/sample"
	"github.com/lightninglm/lightning/tokenizer/chat"
)

// maxStops bounds the stop list (OpenAI allows 4; vLLM any number).
const maxStops = 16

// maxLogitBias bounds the logit_bias map.
const maxLogitBias = 1024

// job is a validated generation request, whatever the endpoint.
type job struct {
	req          engine.Request
	stops        []string
	stream       bool
	includeUsage bool
	tools        bool // parse MiniMax tool calls out of the output
	base         int  // prompt tokens absorbed by req.Resume (a session)
}

// parseSampling validates the fields both endpoints share into j. maxField
// names the field that set the token limit ("max_tokens" or
// "max_completion_tokens"), maxTok its value.
func (s *Server) parseSampling(f *samplingFields, maxField string, maxTok *int, vocab int, j *job) *apiError {
	if f.N != nil && *f.N != 1 {
		return badRequest("n", "n = %d: this server generates one choice per request (n must be 1); send parallel requests instead", *f.N)
	}
	p := sample.DefaultParams()
	if len(f.LogitBias) > 0 {
		if len(f.LogitBias) > maxLogitBias {
			return badRequest("logit_bias", "logit_bias has %d entries, at most %d allowed", len(f.LogitBias), maxLogitBias)
		}
		p.LogitBias = make(map[int32]float32, len(f.LogitBias))
		for k, v := range f.LogitBias {
			id, err := strconv.ParseInt(k, 10, 32)
			switch {
			case err != nil || id < 0 || id >= int64(vocab):
				return badRequest("logit_bias", "logit_bias key %q is not a token id in [0, %d)", k, vocab)
			case !(v >= -100 && v <= 100):
				return badRequest("logit_bias", "logit_bias[%q] = %g, want a number in [-100, 100]", k, v)
			}
			p.LogitBias[int32(id)] = float32(v)
		}
	}
	if v := f.Temperature; v != nil {
		if !(*v >= 0 && *v <= 2) {
			return badRequest("temperature", "temperature = %g, want a number in [0, 2]", *v)
		}
		p.Temperature = float32(*v)
	}
	if v := f.TopP; v != nil {
		if !(*v > 0 && *v <= 1) {
			return badRequest("top_p", "top_p = %g, want a number in (0, 1]", *v)
		}
		p.TopP = float32(*v)
	}
	if v := f.TopK; v != nil {
		if *v < -1 {
			return badRequest("top_k", "top_k = %d, want ≥ 1, or 0 or -1 for no limit", *v)
		}
		p.TopK = max(*v, 0)
	}
	if v := f.MinP; v != nil {
		if !(*v >= 0 && *v <= 1) {
			return badRequest("min_p", "min_p = %g, want a number in [0, 1]", *v)
		}
		p.MinP = float32(*v)
	}
	if v := f.PresencePenalty; v != nil {
		if !(*v >= -2 && *v <= 2) {
			return badRequest("presence_penalty", "presence_penalty = %g, want a number in [-2, 2]", *v)
		}
		p.PresencePenalty = float32(*v)
	}
	if v := f.FrequencyPenalty; v != nil {
		if !(*v >= -2 && *v <= 2) {
			return badRequest("frequency_penalty", "frequency_penalty = %g, want a number in [-2, 2]", *v)
		}
		p.FrequencyPenalty = float32(*v)
	}
	if v := f.RepetitionPenalty; v != nil {
		if !(*v > 0 && *v <= 10) {
			return badRequest("repetition_penalty", "repetition_penalty = %g, want a number in (0, 10]", *v)
		}
		p.RepetitionPenalty = float32(*v)
	}
	if v := f.Seed; v != nil {
		p.Seed, p.HasSeed = uint64(*v), true
	}
	if err := p.Validate(); err != nil {
		var pe *sample.ParamError
		if errors.As(err, &pe) {
			return badRequest(pe.Field, "%v", err)
		}
		return badRequest("", "%v", err)
	}
	if len(f.Stop) > maxStops {
		return badRequest("stop", "stop has %d entries, at most %d allowed", len(f.Stop), maxStops)
	}
	for i, st := range f.Stop {
		if st == "" {
			return badRequest("stop", "stop[%d] is empty", i)
		}
	}
	j.stops = f.Stop
	j.req.MaxTokens = s.cfg.MaxTokens
	if maxTok != nil {
		if *maxTok < 1 || *maxTok > s.cfg.MaxTokens {
			return badRequest(maxField, "%s = %d, want 1…%d (the server's limit)", maxField, *maxTok, s.cfg.MaxTokens)
		}
		j.req.MaxTokens = *maxTok
	}
	j.req.Params = p
	j.stream = f.Stream != nil && *f.Stream
	if f.StreamOptions != nil {
		if !j.stream {
			return badRequest("stream_options", "stream_options is only allowed with stream: true")
		}
		j.includeUsage = f.StreamOptions.IncludeUsage != nil && *f.StreamOptions.IncludeUsage
	}
	return nil
}

// checkModel accepts the served model's name.
func (s *Server) checkModel(m *string) *apiError {
	switch {
	case m == nil:
		return badRequest("model", "model is required (GET /v1/models lists it)")
	case *m != s.cfg.ModelName:
		return modelNotFound(*m)
	}
	return nil
}

// piece is output that became final: visible text, completed tool calls,
// and the tokens that produced it (for logprobs).
type piece struct {
	text  string
	calls []chat.ToolCall
	toks  []engine.Token
}

// outcome is how a generation ended.
type outcome struct {
	finish string // "stop", "length" or "tool_calls"
	res    *engine.Result
	calls  int     // tool calls emitted
	ids    []int32 // every generated token, kept for sessions (req.KeepState)
}

// run submits j and drives its stream to the end. started is called once
// the engine has accepted the request (before any token), emit with every
// piece of final output. A non-nil error before started means nothing was
// sent; after it, the caller reports it in-band.
func (s *Server) run(rc *requestCtx, j *job, started func() error, emit func(piece) error) (*outcome, *apiError) {
	b := rc.backend
	stream, err := b.Engine.Submit(rc.ctx, j.req)
	if err != nil {
		return nil, s.submitError(err, j)
	}
	defer stream.Cancel()
	if err := started(); err != nil {
		s.metrics.count(&s.metrics.disconnects)
		return nil, nil // client gone; Cancel above frees the sequence
	}
	stops, _ := sample.NewStopMatcher(j.stops) // validated in parseSampling
	dec := b.Tokenizer.NewStreamDecoder(true)
	var tc *chat.Stream
	if j.tools {
		tc = new(chat.Stream)
	}
	var (
		text     string // raw generated text so far
		released int    // bytes of text past the stop-string check
		stopped  bool   // a stop string matched
		first    = true
		last     time.Time
		out      = &outcome{}
	)
	// release moves text[released:end] through the tool-call parser and
	// emits it with toks.
	release := func(end int, toks []engine.Token, final bool) error {
		p := piece{text: text[released:end], toks: toks}
		released = end
		if tc != nil {
			var more []chat.ToolCall
			p.text, p.calls = tc.Push(p.text)
			if final {
				var t string
				t, more = tc.Close()
				p.text += t
				p.calls = append(p.calls, more...)
			}
			out.calls += len(p.calls)
		}
		if p.text == "" && len(p.calls) == 0 && len(p.toks) == 0 {
			return nil
		}
		return emit(p)
	}
	for {
		select {
		case <-stream.Ready():
		case <-rc.ctx.Done():
			// The engine sees the same context and ends the sequence within a
			// step; wait for its result so the slot is known to be free.
			<-stream.Ready()
		}
		toks, res := stream.Take()
		if len(toks) > 0 {
			now := time.Now()
			if first {
				s.metrics.ttft.observe(now.Sub(rc.start))
				first = false
			} else {
				gap := now.Sub(last) / time.Duration(len(toks))
				for range toks {
					s.metrics.itl.observe(gap)
				}
			}
			last = now
		}
		if j.req.KeepState {
			for _, t := range toks {
				out.ids = append(out.ids, t.ID)
			}
		}
		if stopped {
			toks = nil // tokens after a stop string are dropped
		}
		for _, t := range toks {
			text += dec.Add(int(t.ID))
		}
		if res != nil && !stopped {
			text += dec.Flush()
		}
		end := len(text)
		if !stopped {
			// Mid-stream, Next holds back text a stop string may still claim;
			// at the end, the earliest stop string left cuts the rest.
			stop := -1
			if res == nil {
				stop, end = stops.Next(text, released)
			} else {
				stop, _ = stops.Find(text, released)
			}
			if stop >= 0 {
				stopped, end = true, stop
				text = text[:stop]
				stream.Cancel()
			}
		}
		final := res != nil || stopped
		if err := release(max(end, released), toks, final); err != nil {
			s.metrics.count(&s.metrics.disconnects)
			return nil, nil // client gone
		}
		if res == nil {
			if stopped {
				var more []engine.Token
				more, res, _ = stream.Wait(context.Background())
				if j.req.KeepState {
					for _, t := range more {
						out.ids = append(out.ids, t.ID)
					}
				}
			} else {
				continue
			}
		}
		out.res = res
		rc.log = append(rc.log, "prompt_tokens", j.base+res.PromptTokens, "cached_tokens", j.base+res.CachedTokens,
			"completion_tokens", res.CompletionTokens, "finish", res.Reason)
		s.metrics.duration.observe(time.Since(rc.start))
		if res.PrefillWait >= 0 {
			s.metrics.prefillWait.observe(res.PrefillWait)
		}
		switch {
		case stopped:
			out.finish = "stop"
		case res.Reason == engine.FinishStop:
			out.finish = "stop"
		case res.Reason == engine.FinishLength:
			out.finish = "length"
		case res.Reason == engine.FinishAborted && errors.Is(res.Err, model.ErrUnavailable):
			s.log.Error("generation failed: model worker unavailable", "id", rc.id, "error", res.Err)
			return out, unavailable(fmt.Sprintf("a model worker is unavailable, retry later (%v)", res.Err), s.cfg.RetryAfter)
		case errors.Is(res.Err, engine.ErrTooSlow):
			s.metrics.count(&s.metrics.tooSlow)
			return out, s.tooSlowError(res.Err)
		case res.Reason == engine.FinishAborted && errors.Is(res.Err, engine.ErrPanic):
			s.log.Error("generation failed", "id", rc.id, "error", res.Err)
			return out, internalError("generation failed inside the engine; the request was dropped")
		case res.Reason == engine.FinishAborted && errors.Is(res.Err, model.ErrNonFinite):
			s.log.Error("generation failed", "id", rc.id, "error", res.Err)
			return out, internalError(fmt.Sprintf("generation failed: %v; the request was dropped", res.Err))
		case res.Reason == engine.FinishAborted:
			return out, unavailable("server shut down before the request finished", s.cfg.RetryAfter)
		case errors.Is(res.Err, context.DeadlineExceeded):
			s.metrics.count(&s.metrics.timeouts)
			return out, &apiError{Status: http.StatusGatewayTimeout, Type: "timeout_error", Code: strp("timeout"),
				Message: fmt.Sprintf("request exceeded the server's timeout of %v", s.cfg.RequestTimeout)}
		default: // the client went away
			s.metrics.count(&s.metrics.disconnects)
			return nil, nil
		}
		if out.calls > 0 {
			out.finish = "tool_calls"
		}
		return out, nil
	}
}

// submitError maps the engine's refusals to API errors.
func (s *Server) submitError(err error, j *job) *apiError {
	var pe *sample.ParamError
	switch {
	case errors.Is(err, engine.ErrQueueFull):
		return overloaded("server is at capacity (all sequence slots busy and the queue full); retry later", s.cfg.RetryAfter)
	case errors.Is(err, engine.ErrDraining), errors.Is(err, engine.ErrClosed):
		return unavailable("server is shutting down", s.cfg.RetryAfter)
	case errors.Is(err, engine.ErrTooLarge), errors.Is(err, engine.ErrContextLen):
		e := badRequest("max_tokens", "prompt (%d tokens) plus max_tokens (%d) is too long for this server: %v", j.base+len(j.req.Prompt), j.req.MaxTokens, err)
		e.Code = strp("context_length_exceeded")
		return e
	case errors.Is(err, engine.ErrTooSlow):
		s.metrics.count(&s.metrics.tooSlow)
		return s.tooSlowError(err)
	case errors.As(err, &pe):
		return badRequest(pe.Field, "%v", err)
	case errors.Is(err, engine.ErrTokenInvalid):
		return badRequest("prompt", "%v", err)
	case errors.Is(err, engine.ErrInvalid):
		return badRequest("", "%v", err)
	}
	return internalError(err.Error())
}

// tooSlowError is the 413 for a prompt that cannot be read within the
// request timeout; the engine's error says how long it would take.
func (s *Server) tooSlowError(err error) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Param: strp("prompt"), Code: strp("prompt_too_long_for_timeout"),
		Message: fmt.Sprintf("the prompt cannot be read within the server's request timeout of %v (%v); send a shorter prompt, or run the server with a longer -request-timeout",
			s.cfg.RequestTimeout, strings.TrimPrefix(err.Error(), engine.ErrTooSlow.Error()+": "))}
}

// sse writes server-sent events.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sse{w: w, rc: http.NewResponseController(w)}
}

func (e *sse) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.raw(b)
}

func (e *sse) raw(b []byte) error {
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", b); err != nil {
		return err
	}
	return e.rc.Flush()
}

// fail reports an error after the stream started, then ends it.
func (e *sse) fail(err *apiError) {
	e.send(map[string]*apiError{"error": err})
	e.raw([]byte("[DONE]"))
}

func (e *sse) done() { e.raw([]byte("[DONE]")) }

// tokenString returns a token's text for logprobs (cached).
func (s *Server) tokenString(rc *requestCtx, id int) string {
	if v, ok := s.tokenText.Load(id); ok {
		return v.(string)
	}
	t := rc.backend.Tokenizer.Decode([]int{id}, false)
	s.tokenText.Store(id, t)
	return t
}

func byteList(s string) []int {
	b := make([]int, len(s))
	for i := range len(s) {
		b[i] = int(s[i])
	}
	return b
}

// finite guards JSON encoding: a -Inf logprob (a masked token) cannot be
// written as JSON, so it is reported as the most negative float32.
func finite(v float32) float32 {
	if math.IsInf(float64(v), -1) {
		return -math.MaxFloat32
	}
	return v
}

// makeUsage reports a request's token counts; base prompt tokens came from
// a session's state (counted as cached).
func makeUsage(r *engine.Result, base int) *usage {
	p := base + r.PromptTokens
	return &usage{
		PromptTokens: p, CompletionTokens: r.CompletionTokens, TotalTokens: p + r.CompletionTokens,
		PromptTokensDetails: &promptDetails{CachedTokens: base + r.CachedTokens},
	}
}
