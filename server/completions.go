package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/lightninglm/lightning/engine"
)

// maxLegacyLogprobs is the completions API's limit for logprobs.
const maxLegacyLogprobs = 5

func (s *Server) completions(w http.ResponseWriter, r *http.Request, rc *requestCtx) *apiError {
	var req completionRequest
	if err := decodeBody(rc.body, &req); err != nil {
		return err
	}
	if err := s.checkModel(req.Model); err != nil {
		return err
	}
	b := rc.backend
	j := &job{}
	if err := s.parseSampling(&req.samplingFields, "max_tokens", req.MaxTokens, b.Engine.Info().VocabSize, j); err != nil {
		return err
	}
	if req.Suffix != nil && *req.Suffix != "" {
		return unsupported("suffix", "suffix (fill-in-the-middle)")
	}
	if req.Session != nil {
		return badRequest("session", "session is only supported by /v1/chat/completions")
	}
	if req.BestOf != nil && *req.BestOf != 1 {
		return badRequest("best_of", "best_of = %d: only 1 is supported", *req.BestOf)
	}
	if req.Logprobs != nil {
		if *req.Logprobs < 0 || *req.Logprobs > maxLegacyLogprobs {
			return badRequest("logprobs", "logprobs = %d, want 0…%d", *req.Logprobs, maxLegacyLogprobs)
		}
		j.req.Logprobs, j.req.TopLogprobs = true, *req.Logprobs
	}
	prompt, promptText, err := parsePrompt(b, req.Prompt)
	if err != nil {
		return err
	}
	j.req.Prompt = prompt
	j.req.StopTokens = b.StopTokens
	echo := req.Echo != nil && *req.Echo

	// Legacy logprobs: token strings, their logprobs, the top alternatives
	// as a map, and each token's offset in the returned text.
	var lp *completionLogprobs
	if j.req.Logprobs {
		lp = &completionLogprobs{Tokens: []string{}, TokenLogprobs: []float32{}, TopLogprobs: []map[string]float32{}, TextOffset: []int{}}
	}
	offset := 0
	if echo {
		offset = len(promptText)
	}
	addLogprobs := func(dst *completionLogprobs, toks []engine.Token) {
		for _, t := range toks {
			ts := s.tokenString(rc, int(t.ID))
			dst.Tokens = append(dst.Tokens, ts)
			dst.TokenLogprobs = append(dst.TokenLogprobs, finite(t.Logprob))
			top := map[string]float32{}
			for _, a := range t.Top {
				top[s.tokenString(rc, a.Token)] = finite(a.Logprob)
			}
			dst.TopLogprobs = append(dst.TopLogprobs, top)
			dst.TextOffset = append(dst.TextOffset, offset)
			offset += len(ts)
		}
	}
	base := completion{ID: "cmpl-" + rc.id, Object: "text_completion", Created: time.Now().Unix(), Model: s.cfg.ModelName, SystemFingerprint: s.fingerprint}

	if j.stream {
		var ev *sse
		out, apiErr := s.run(rc, j, func() error {
			ev = newSSE(w)
			if echo {
				c := base
				c.Choices = []completionChoice{{Text: promptText}}
				return ev.send(c)
			}
			return nil
		}, func(p piece) error {
			c := base
			ch := completionChoice{Text: p.text}
			if lp != nil {
				ch.Logprobs = &completionLogprobs{Tokens: []string{}, TokenLogprobs: []float32{}, TopLogprobs: []map[string]float32{}, TextOffset: []int{}}
				addLogprobs(ch.Logprobs, p.toks)
			}
			c.Choices = []completionChoice{ch}
			return ev.send(c)
		})
		switch {
		case ev == nil:
			return apiErr
		case apiErr != nil:
			ev.fail(apiErr)
			return nil
		case out == nil:
			return nil
		}
		c := base
		c.Choices = []completionChoice{{FinishReason: &out.finish}}
		ev.send(c)
		if j.includeUsage {
			c.Choices = []completionChoice{}
			c.Usage = makeUsage(out.res, j.base)
			ev.send(c)
		}
		ev.done()
		return nil
	}

	var text strings.Builder
	if echo {
		text.WriteString(promptText)
	}
	out, apiErr := s.run(rc, j, func() error { return nil }, func(p piece) error {
		text.WriteString(p.text)
		if lp != nil {
			addLogprobs(lp, p.toks)
		}
		return nil
	})
	if apiErr != nil || out == nil {
		return apiErr
	}
	resp := base
	resp.Choices = []completionChoice{{Text: text.String(), Logprobs: lp, FinishReason: &out.finish}}
	resp.Usage = makeUsage(out.res, j.base)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// parsePrompt reads "prompt": a string, an array of token ids, or an array
// holding one of those (batches of several prompts are refused: send one
// request each). It returns the token ids and the prompt's text.
func parsePrompt(b *Backend, raw json.RawMessage) ([]int32, string, *apiError) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, "", badRequest("prompt", "prompt is required")
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		if text == "" {
			return nil, "", badRequest("prompt", "prompt is empty")
		}
		return encode(b, text, true), text, nil
	}
	var ids []int32
	if json.Unmarshal(raw, &ids) == nil {
		return tokenPrompt(b, ids)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, "", badRequest("prompt", "prompt must be a string, an array of token ids, or an array of one of those")
	}
	if len(list) != 1 {
		return nil, "", badRequest("prompt", "prompt holds %d prompts; this server takes one per request", len(list))
	}
	if json.Unmarshal(list[0], &text) == nil {
		if text == "" {
			return nil, "", badRequest("prompt", "prompt is empty")
		}
		return encode(b, text, true), text, nil
	}
	if json.Unmarshal(list[0], &ids) == nil {
		return tokenPrompt(b, ids)
	}
	return nil, "", badRequest("prompt", "prompt[0] must be a string or an array of token ids")
}

func tokenPrompt(b *Backend, ids []int32) ([]int32, string, *apiError) {
	if len(ids) == 0 {
		return nil, "", badRequest("prompt", "prompt is empty")
	}
	v := int32(b.Engine.Info().VocabSize)
	ints := make([]int, len(ids))
	for i, id := range ids {
		if id < 0 || id >= v {
			return nil, "", badRequest("prompt", "prompt[%d] = %d is not a token id of this model (vocabulary %d)", i, id, v)
		}
		ints[i] = int(id)
	}
	return ids, b.Tokenizer.Decode(ints, false), nil
}
