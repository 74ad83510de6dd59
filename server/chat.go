package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/sample"
	"github.com/lightninglm/lightning/tokenizer/chat"
	"github.com/lightninglm/lightning/tokenizer/jinja"
)

// chatTemplates are a model's parsed chat templates: transformers picks
// "tool_use" when tools are passed and the config has one.
type chatTemplates struct {
	plain, tools *chat.Template
}

func newChatTemplates(c *chat.Config) (*chatTemplates, error) {
	plain, err := c.Template("", false)
	if err != nil {
		return nil, err
	}
	tools, err := c.Template("", true)
	if err != nil {
		return nil, err
	}
	return &chatTemplates{plain: plain, tools: tools}, nil
}

// chatRoles are the message roles a request may use.
var chatRoles = []string{"system", "developer", "user", "assistant", "tool", "function"}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request, rc *requestCtx) *apiError {
	var req chatRequest
	if err := decodeBody(rc.body, &req); err != nil {
		return err
	}
	if err := s.checkModel(req.Model); err != nil {
		return err
	}
	b := rc.backend
	if b.chat == nil {
		return badRequest("messages", "this model has no chat template (tokenizer_config.json chat_template); use /v1/completions")
	}
	j := &job{}
	maxField, maxTok := "max_tokens", req.MaxTokens
	if req.MaxCompletionTokens != nil {
		maxField, maxTok = "max_completion_tokens", req.MaxCompletionTokens
	}
	if err := s.parseSampling(&req.samplingFields, maxField, maxTok, b.Engine.Info().VocabSize, j); err != nil {
		return err
	}
	if err := validateMessages(req.Messages); err != nil {
		return err
	}
	tools, toolsOn, force, err := parseTools(req.Tools, req.ToolChoice)
	if err != nil {
		return err
	}
	j.tools = toolsOn
	if force != nil {
		j.req.Constraint = newToolConstraint(b, *force, j.req.MaxTokens)
	}
	if req.TopLogprobs != nil {
		if *req.TopLogprobs < 0 || *req.TopLogprobs > sample.MaxTopLogprobs {
			return badRequest("top_logprobs", "top_logprobs = %d, want 0…%d", *req.TopLogprobs, sample.MaxTopLogprobs)
		}
		if req.Logprobs == nil || !*req.Logprobs {
			return badRequest("top_logprobs", "top_logprobs needs logprobs: true")
		}
		j.req.TopLogprobs = *req.TopLogprobs
	}
	j.req.Logprobs = req.Logprobs != nil && *req.Logprobs
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "text":
		case "json_object":
			if j.tools {
				return badRequest("response_format", "response_format json_object cannot be combined with tools")
			}
			j.req.Constraint = newJSONConstraint(b)
		case "json_schema":
			return unsupported("response_format", "response_format json_schema (use json_object)")
		default:
			return badRequest("response_format", "response_format.type = %q, want text, json_object or json_schema", rf.Type)
		}
	}
	kwargs := map[string]jinja.Value{}
	for k, v := range req.ChatTemplateKwargs {
		jv, err := jinja.FromGo(v)
		if err != nil {
			return badRequest("chat_template_kwargs", "chat_template_kwargs.%s: %v", k, err)
		}
		kwargs[k] = jv
	}
	tmpl := b.chat.plain
	if tools != nil {
		tmpl = b.chat.tools
	}
	prompt, err := s.renderChat(tmpl, req.Messages, tools, kwargs, true)
	if err != nil {
		return err
	}
	if prompt == "" {
		return badRequest("messages", "the rendered conversation is empty")
	}
	var sess *sessionUse
	if req.Session != nil {
		var apiErr *apiError
		if sess, apiErr = s.openSession(b, *req.Session); apiErr != nil {
			return apiErr
		}
		defer sess.release()
		sess.plan(b, j, prompt)
		w.Header().Set("X-Lightning-Session", sess.status)
		s.metrics.session(sess.status, j.base)
		rc.log = append(rc.log, "session", sess.name, "session_status", sess.status)
	} else {
		j.req.Prompt = encode(b, prompt, false)
	}
	j.req.StopTokens = b.StopTokens
	if j.req.Resume == nil {
		j.req.Checkpoints = s.turnBoundaries(b, tmpl, req.Messages, tools, kwargs, j.req.Prompt)
	}
	// answer is the reply as a message, for the session's conversation.
	var text strings.Builder
	var calls []toolCall
	answer := func() message {
		m := message{Role: "assistant", Content: content{Text: text.String()}, ToolCalls: calls}
		if len(calls) > 0 {
			m.Content.Text = strings.TrimSpace(m.Content.Text)
			m.Content.Null = m.Content.Text == ""
		}
		return m
	}

	id := "chatcmpl-" + rc.id
	base := chatCompletion{ID: id, Object: "chat.completion.chunk", Created: time.Now().Unix(), Model: s.cfg.ModelName, SystemFingerprint: s.fingerprint}
	wantLogprobs := j.req.Logprobs || j.req.TopLogprobs > 0
	logprobs := func(toks []engine.Token) *chatLogprobs {
		if !wantLogprobs {
			return nil
		}
		lp := &chatLogprobs{Content: make([]tokenLogprob, 0, len(toks))}
		for _, t := range toks {
			ts := s.tokenString(rc, int(t.ID))
			e := tokenLogprob{Token: ts, Logprob: finite(t.Logprob), Bytes: byteList(ts), TopLogprobs: []topLogprob{}}
			for _, a := range t.Top {
				as := s.tokenString(rc, a.Token)
				e.TopLogprobs = append(e.TopLogprobs, topLogprob{Token: as, Logprob: finite(a.Logprob), Bytes: byteList(as)})
			}
			lp.Content = append(lp.Content, e)
		}
		return lp
	}
	callID := func(i int) string { return fmt.Sprintf("call_%s_%d", rc.id[:8], i) }

	if j.stream {
		var ev *sse
		ncalls := 0
		var split chat.ReasoningSplitter
		// sendText sends a piece of the reply: its reasoning and its answer
		// as their own deltas, the logprobs with the last one (or alone).
		sendText := func(reply string, toks []engine.Token) error {
			reasoning, answer := "", reply
			if s.cfg.SplitReasoning {
				reasoning, answer = split.Feed(reply)
			}
			lp := logprobs(toks)
			if reasoning != "" {
				c := base
				d := &chatMessage{ReasoningContent: &reasoning}
				if answer == "" {
					c.Choices = []chatChoice{{Delta: d, Logprobs: lp}}
					return ev.send(c)
				}
				c.Choices = []chatChoice{{Delta: d}}
				if err := ev.send(c); err != nil {
					return err
				}
			}
			if answer != "" || (reasoning == "" && len(toks) > 0) {
				c := base
				c.Choices = []chatChoice{{Delta: &chatMessage{Content: &answer}, Logprobs: lp}}
				return ev.send(c)
			}
			return nil
		}
		out, apiErr := s.run(rc, j, func() error {
			ev = newSSE(w)
			c := base
			empty := ""
			c.Choices = []chatChoice{{Delta: &chatMessage{Role: "assistant", Content: &empty}}}
			return ev.send(c)
		}, func(p piece) error {
			c := base
			text.WriteString(p.text)
			if err := sendText(p.text, p.toks); err != nil {
				return err
			}
			for _, call := range p.calls {
				i := ncalls
				ncalls++
				calls = append(calls, toolCall{ID: callID(i), Type: "function", Function: functionCall{Name: call.Name, Arguments: call.Arguments}})
				c.Choices = []chatChoice{{Delta: &chatMessage{ToolCalls: []toolCall{{Index: &i, ID: callID(i), Type: "function",
					Function: functionCall{Name: call.Name, Arguments: call.Arguments}}}}}}
				if err := ev.send(c); err != nil {
					return err
				}
			}
			return nil
		})
		switch {
		case ev == nil:
			return apiErr // refused before the stream began
		case apiErr != nil:
			ev.fail(apiErr)
			return nil
		case out == nil:
			return nil // client gone
		}
		s.finishSession(rc, sess, req.Messages, out, answer()) // before the end, so the next turn finds it
		if s.cfg.SplitReasoning {
			restReasoning, restAnswer := split.Flush()
			c := base
			if restReasoning != "" {
				c.Choices = []chatChoice{{Delta: &chatMessage{ReasoningContent: &restReasoning}}}
				ev.send(c)
			}
			if restAnswer != "" {
				c.Choices = []chatChoice{{Delta: &chatMessage{Content: &restAnswer}}}
				ev.send(c)
			}
		}
		c := base
		c.Choices = []chatChoice{{Delta: &chatMessage{}, FinishReason: &out.finish}}
		ev.send(c)
		if j.includeUsage {
			c.Choices = []chatChoice{}
			c.Usage = makeUsage(out.res, j.base)
			ev.send(c)
		}
		ev.done()
		return nil
	}

	var lp *chatLogprobs
	if wantLogprobs {
		lp = &chatLogprobs{Content: []tokenLogprob{}}
	}
	out, apiErr := s.run(rc, j, func() error { return nil }, func(p piece) error {
		text.WriteString(p.text)
		for _, call := range p.calls {
			calls = append(calls, toolCall{ID: callID(len(calls)), Type: "function", Function: functionCall{Name: call.Name, Arguments: call.Arguments}})
		}
		if l := logprobs(p.toks); l != nil {
			lp.Content = append(lp.Content, l.Content...)
		}
		return nil
	})
	if apiErr != nil || out == nil {
		return apiErr
	}
	s.finishSession(rc, sess, req.Messages, out, answer())
	msg := &chatMessage{Role: "assistant", ToolCalls: calls}
	content := text.String()
	if s.cfg.SplitReasoning {
		var reasoning string
		if reasoning, content = chat.SplitReasoning(content); reasoning != "" {
			msg.ReasoningContent = &reasoning
		}
	}
	if len(calls) > 0 {
		content = strings.TrimSpace(content)
	}
	if content != "" || len(calls) == 0 {
		msg.Content = &content
	}
	resp := base
	resp.Object = "chat.completion"
	resp.Choices = []chatChoice{{Message: msg, Logprobs: lp, FinishReason: &out.finish}}
	resp.Usage = makeUsage(out.res, j.base)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// validateMessages checks the conversation's shape.
func validateMessages(msgs []message) *apiError {
	if len(msgs) == 0 {
		return badRequest("messages", "messages must be a non-empty array")
	}
	for i, m := range msgs {
		if !slices.Contains(chatRoles, m.Role) {
			return badRequest("messages", "messages[%d].role = %q, want one of %v", i, m.Role, chatRoles)
		}
		for k, p := range m.Content.Parts {
			if p.Type != "text" {
				return unsupported("messages", fmt.Sprintf("messages[%d].content[%d].type %q (only text parts)", i, k, p.Type))
			}
		}
		if m.Content.Null && len(m.ToolCalls) == 0 && m.Role != "assistant" {
			return badRequest("messages", "messages[%d].content is required for role %q", i, m.Role)
		}
		for k, c := range m.ToolCalls {
			if m.Role != "assistant" {
				return badRequest("messages", "messages[%d].tool_calls is only allowed on assistant messages", i)
			}
			if c.Function.Name == "" {
				return badRequest("messages", "messages[%d].tool_calls[%d].function.name is required", i, k)
			}
		}
	}
	return nil
}

// parseTools validates tools and tool_choice and returns the tools as
// template values (keys in the client's order, since templates print them),
// whether to parse tool calls out of the output, and, for tool_choice
// "required" or a named function, the grammar that forces a call.
func parseTools(raw, choice json.RawMessage) (jinja.Value, bool, *toolGrammar, *apiError) {
	var force *toolGrammar
	if len(choice) > 0 && !bytes.Equal(bytes.TrimSpace(choice), []byte("null")) {
		var s string
		var obj struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		switch {
		case json.Unmarshal(choice, &s) == nil:
			switch s {
			case "none":
				raw = nil // OpenAI: the model will not call tools
			case "auto":
			case "required":
				force = &toolGrammar{multi: true}
			default:
				return nil, false, nil, badRequest("tool_choice", "tool_choice = %q, want none, auto, required or a function object", s)
			}
		case json.Unmarshal(choice, &obj) == nil && obj.Type == "function" && obj.Function.Name != "":
			force = &toolGrammar{names: []string{obj.Function.Name}}
		default:
			return nil, false, nil, badRequest("tool_choice", "tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}")
		}
	}
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if force != nil {
			return nil, false, nil, badRequest("tool_choice", "tool_choice forces a tool call, but the request has no tools")
		}
		return nil, false, nil, nil
	}
	var defs []toolDef
	if err := json.Unmarshal(raw, &defs); err != nil {
		return nil, false, nil, badRequest("tools", "tools must be an array of {\"type\": \"function\", \"function\": {\"name\", \"description\", \"parameters\"}}: %v", err)
	}
	if len(defs) == 0 {
		if force != nil {
			return nil, false, nil, badRequest("tool_choice", "tool_choice forces a tool call, but the request has no tools")
		}
		return nil, false, nil, nil
	}
	var names []string
	for i, d := range defs {
		if d.Type != "function" || d.Function == nil || d.Function.Name == "" {
			return nil, false, nil, badRequest("tools", "tools[%d] must have type \"function\" and a function.name", i)
		}
		names = append(names, d.Function.Name)
	}
	if force != nil {
		if force.multi {
			force.names = names
		} else if !slices.Contains(names, force.names[0]) {
			return nil, false, nil, badRequest("tool_choice", "tool_choice names function %q, which is not in tools", force.names[0])
		}
		for _, n := range force.names {
			if !validFunctionName(n) {
				return nil, false, nil, badRequest("tools", "function name %q: a forced call needs names of 1-64 letters, digits, '_' or '-'", n)
			}
		}
	}
	v, err := jinja.DecodeJSON(raw)
	if err != nil {
		return nil, false, nil, badRequest("tools", "tools: %v", err)
	}
	return v, true, force, nil
}

// validFunctionName reports whether name fits OpenAI's rule for function
// names (1-64 of a-z A-Z 0-9 _ -), which also keeps it free of JSON escapes.
func validFunctionName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// renderChat renders messages with a template. Tool-call arguments become
// objects, as vLLM passes them (templates print them with tojson), and
// MiniMax's part-list templates, which do not render tool_calls, get them
// written into the assistant's content in the model's own format.
func (s *Server) renderChat(t *chat.Template, msgs []message, tools jinja.Value, kwargs map[string]jinja.Value, addGen bool) (string, *apiError) {
	list := make([]jinja.Value, len(msgs))
	for i, m := range msgs {
		d := jinja.NewDict()
		d.Set("role", m.Role)
		var c jinja.Value
		switch {
		case m.Content.Null:
		case m.Content.Parts != nil:
			parts := make([]jinja.Value, len(m.Content.Parts))
			for k, p := range m.Content.Parts {
				pd := jinja.NewDict()
				pd.Set("type", p.Type)
				pd.Set("text", p.Text)
				parts[k] = pd
			}
			c = jinja.NewList(parts...)
		default:
			c = m.Content.Text
		}
		if len(m.ToolCalls) > 0 && t.Format != chat.ContentString {
			calls := make([]chat.ToolCall, len(m.ToolCalls))
			for k, tc := range m.ToolCalls {
				calls[k] = chat.ToolCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments}
			}
			text := m.Content.Text
			if text != "" {
				text += "\n"
			}
			c = text + chat.FormatToolCalls(calls)
		}
		d.Set("content", c)
		if m.Name != "" {
			d.Set("name", m.Name)
		}
		if len(m.ToolCalls) > 0 {
			calls := make([]jinja.Value, len(m.ToolCalls))
			for k, tc := range m.ToolCalls {
				fn := jinja.NewDict()
				fn.Set("name", tc.Function.Name)
				var args jinja.Value = tc.Function.Arguments
				if v, err := jinja.DecodeJSON([]byte(tc.Function.Arguments)); err == nil {
					if _, ok := v.(*jinja.Dict); ok {
						args = v
					}
				}
				fn.Set("arguments", args)
				cd := jinja.NewDict()
				cd.Set("id", tc.ID)
				cd.Set("type", "function")
				cd.Set("function", fn)
				calls[k] = cd
			}
			d.Set("tool_calls", jinja.NewList(calls...))
		}
		if m.ToolCallID != "" {
			d.Set("tool_call_id", m.ToolCallID)
		}
		list[i] = d
	}
	norm, err := chat.NormalizeMessages(jinja.NewList(list...), t.Format)
	if err != nil {
		return "", badRequest("messages", "%v", err)
	}
	text, err := t.Render(&chat.Request{Messages: norm, Tools: tools, AddGenerationPrompt: addGen, Kwargs: kwargs})
	if err != nil {
		return "", badRequest("messages", "the model's chat template rejected the conversation: %v", err)
	}
	return text, nil
}

// turnBoundaries returns prompt positions worth a prefix-cache checkpoint:
// the end of the leading system messages (a shared system prompt) and the
// end of the conversation before its last message (where the next request
// of this conversation will diverge). A boundary counts only if the shorter
// conversation's tokens are exactly a prefix of the prompt's.
func (s *Server) turnBoundaries(b *Backend, t *chat.Template, msgs []message, tools jinja.Value, kwargs map[string]jinja.Value, prompt []int32) []int {
	if b.Engine.Config().PrefixCacheBytes == 0 {
		return nil
	}
	sys := 0
	for sys < len(msgs) && (msgs[sys].Role == "system" || msgs[sys].Role == "developer") {
		sys++
	}
	var out []int
	for _, k := range []int{sys, len(msgs) - 1} {
		if k <= 0 || k >= len(msgs) {
			continue
		}
		text, err := s.renderChat(t, msgs[:k], tools, kwargs, false)
		if err != nil {
			continue
		}
		ids := encode(b, text, false)
		if n := len(ids); n > 0 && n < len(prompt) && slices.Equal(ids, prompt[:n]) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// encode tokenizes text into engine token ids.
func encode(b *Backend, text string, addSpecial bool) []int32 {
	ids := b.Tokenizer.Encode(text, addSpecial)
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
