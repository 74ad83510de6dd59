package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/respjson"
	"github.com/openai/openai-go/v3/shared"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/sample"
	"github.com/lightninglm/lightning/server"
)

// TestOpenAIChat drives chat completions with the official Go client,
// streaming and not: greedy decoding gives the same text both ways, usage
// adds up, and logprobs come back in the client's types.
func TestOpenAIChat(t *testing.T) {
	ts := start(t, setup{template: "vllm_minimax_m1_tool"})
	params := openai.ChatCompletionNewParams{
		Model: modelName,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("You are terse."),
			openai.UserMessage("Name three colours."),
		},
		MaxTokens:   openai.Int(12),
		Temperature: openai.Float(0),
		Logprobs:    openai.Bool(true),
		TopLogprobs: openai.Int(3),
	}
	resp, err := ts.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 1 || resp.Object != "chat.completion" || resp.Model != modelName {
		t.Fatalf("response %+v", resp)
	}
	ch := resp.Choices[0]
	if ch.FinishReason != "length" || ch.Message.Role != "assistant" || ch.Message.Content == "" {
		t.Errorf("choice %+v", ch)
	}
	u := resp.Usage
	if u.CompletionTokens != 12 || u.PromptTokens < 10 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage %+v", u)
	}
	if len(ch.Logprobs.Content) != 12 {
		t.Fatalf("%d logprob entries, want 12", len(ch.Logprobs.Content))
	}
	var joined strings.Builder
	for _, lp := range ch.Logprobs.Content {
		if len(lp.TopLogprobs) != 3 || lp.Logprob > 0 || lp.TopLogprobs[0].Logprob < lp.Logprob {
			t.Errorf("logprob entry %+v", lp)
		}
		joined.WriteString(lp.Token)
	}

	// Streaming, with usage in the last chunk.
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := ts.client.Chat.Completions.NewStreaming(bg(), params)
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if chunks < 3 {
		t.Errorf("only %d chunks", chunks)
	}
	got := acc.Choices[0]
	if got.Message.Content != ch.Message.Content || got.FinishReason != "length" {
		t.Errorf("streamed %q (%s), non-streamed %q", got.Message.Content, got.FinishReason, ch.Message.Content)
	}
	if acc.Usage.CompletionTokens != 12 || acc.Usage.PromptTokens != u.PromptTokens {
		t.Errorf("streamed usage %+v", acc.Usage)
	}
}

// TestOpenAICompletions covers the legacy completions endpoint.
func TestOpenAICompletions(t *testing.T) {
	ts := start(t, setup{})
	params := openai.CompletionNewParams{
		Model:       modelName,
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens:   openai.Int(10),
		Temperature: openai.Float(0),
		Logprobs:    openai.Int(2),
	}
	resp, err := ts.client.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	c := resp.Choices[0]
	if c.Text == "" || c.FinishReason != "length" || len(c.Logprobs.Tokens) != 10 || len(c.Logprobs.TopLogprobs[0]) != 2 {
		t.Errorf("completion %+v", c)
	}
	stream := ts.client.Completions.NewStreaming(bg(), params)
	var text strings.Builder
	finish := ""
	for stream.Next() {
		for _, ch := range stream.Current().Choices {
			text.WriteString(ch.Text)
			if ch.FinishReason != "" {
				finish = string(ch.FinishReason)
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != c.Text || finish != "length" {
		t.Errorf("streamed %q (%s), non-streamed %q", text.String(), finish, c.Text)
	}
	// logit_bias: +100 on one token makes every token that one, even at
	// temperature 1.
	biased := params
	const forced = 4996
	biased.LogitBias = map[string]int64{fmt.Sprint(forced): 100}
	biased.Temperature = openai.Float(1)
	biased.Logprobs = openai.Int(0)
	resp, err = ts.client.Completions.New(bg(), biased)
	if err != nil {
		t.Fatal(err)
	}
	if want := ts.tok.Decode(slices.Repeat([]int{forced}, 10), true); resp.Choices[0].Text != want {
		t.Errorf("forced token: %q, want %q", resp.Choices[0].Text, want)
	}

	// A prompt of token ids, echoed back.
	ids := []int64{1, 450, 4996}
	resp, err = ts.client.Completions.New(bg(), openai.CompletionNewParams{
		Model: modelName, Prompt: openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: ids},
		MaxTokens: openai.Int(3), Echo: openai.Bool(true), Temperature: openai.Float(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.PromptTokens != 3 || !strings.HasPrefix(resp.Choices[0].Text, ts.tok.Decode([]int{1, 450, 4996}, false)) {
		t.Errorf("token prompt: %+v", resp)
	}
}

// TestSamplingFields sends every sampling field the server accepts,
// including vLLM's extensions through extra JSON.
func TestSamplingFields(t *testing.T) {
	ts := start(t, setup{template: "vllm_minimax_m1_tool"})
	params := openai.ChatCompletionNewParams{
		Model:            modelName,
		Messages:         []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hi")},
		MaxTokens:        openai.Int(8),
		Temperature:      openai.Float(0.8),
		TopP:             openai.Float(0.9),
		PresencePenalty:  openai.Float(0.5),
		FrequencyPenalty: openai.Float(0.5),
		Seed:             openai.Int(42),
		N:                openai.Int(1),
		Stop:             openai.ChatCompletionNewParamsStopUnion{OfStringArray: []string{"\n\n\n", "zzz"}},
	}
	extra := []option.RequestOption{option.WithJSONSet("top_k", 40), option.WithJSONSet("min_p", 0.05), option.WithJSONSet("repetition_penalty", 1.1)}
	a, err := ts.client.Chat.Completions.New(bg(), params, extra...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ts.client.Chat.Completions.New(bg(), params, extra...)
	if err != nil {
		t.Fatal(err)
	}
	if a.Choices[0].Message.Content != b.Choices[0].Message.Content {
		t.Errorf("same seed, different text: %q vs %q", a.Choices[0].Message.Content, b.Choices[0].Message.Content)
	}
	params.MaxTokens = openai.Int(0)
	params.MaxCompletionTokens = openai.Int(5)
	c, err := ts.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	if c.Usage.CompletionTokens > 5 {
		t.Errorf("max_completion_tokens ignored: %+v", c.Usage)
	}
}

var weatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:        "get_weather",
	Description: openai.String("Current weather of a city"),
	Parameters: shared.FunctionParameters{
		"type":       "object",
		"properties": map[string]any{"city": map[string]any{"type": "string"}},
		"required":   []string{"city"},
	},
})

// scripted starts a server whose model writes text, then EOS.
func scripted(t *testing.T, text string, ec engine.Config) *testServer {
	return scriptedWith(t, text, ec, server.Config{})
}

// scriptedWith is scripted with a server configuration.
func scriptedWith(t *testing.T, text string, ec engine.Config, sc server.Config) *testServer {
	tok := loadTokenizer(t, "llama2")
	ids := tok.Encode(text, false)
	script := make([]int32, len(ids))
	for i, id := range ids {
		script[i] = int32(id)
	}
	eos, _ := tok.EOS()
	m := &scriptModel{vocab: tok.VocabSize(), script: script, eos: int32(eos)}
	return start(t, setup{model: m, template: "vllm_minimax_m1_tool", engine: ec, server: sc})
}

// TestForcedToolChoice checks tool_choice "required" and a named function:
// the model's own call passes the constraint token by token (so the format
// the grammar forces is the one the tokenizer produces), and a call to a
// function other than the named one cannot come out.
func TestForcedToolChoice(t *testing.T) {
	out := "<tool_calls>\n" + `{"name": "get_weather", "arguments": {"city": "Paris"}}` + "\n</tool_calls>"
	timeTool := openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "get_time", Parameters: shared.FunctionParameters{"type": "object"}})
	named := func(name string) openai.ChatCompletionToolChoiceOptionUnionParam {
		return openai.ChatCompletionToolChoiceOptionUnionParam{OfFunctionToolChoice: &openai.ChatCompletionNamedToolChoiceParam{
			Function: openai.ChatCompletionNamedToolChoiceFunctionParam{Name: name}}}
	}
	ts := scripted(t, out, engine.Config{})
	for _, c := range []struct {
		name   string
		choice openai.ChatCompletionToolChoiceOptionUnionParam
		want   string // the call that must come out, or "" for none
	}{
		{"named", named("get_weather"), "get_weather"},
		{"required", openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}, "get_weather"},
		{"another function", named("get_time"), ""},
	} {
		resp, err := ts.client.Chat.Completions.New(bg(), openai.ChatCompletionNewParams{
			Model:      modelName,
			Messages:   []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
			Tools:      []openai.ChatCompletionToolUnionParam{weatherTool, timeTool},
			ToolChoice: c.choice,
			MaxTokens:  openai.Int(60),
		})
		if err != nil {
			t.Fatal(err)
		}
		ch := resp.Choices[0]
		var names []string
		for _, tc := range ch.Message.ToolCalls {
			names = append(names, tc.Function.Name)
		}
		switch {
		case c.want != "" && (ch.FinishReason != "tool_calls" || len(names) != 1 || names[0] != c.want || ch.Message.ToolCalls[0].Function.Arguments != `{"city": "Paris"}`):
			t.Errorf("%s: finish %s, calls %+v; want one %s call", c.name, ch.FinishReason, ch.Message.ToolCalls, c.want)
		case c.want == "" && slices.Contains(names, "get_weather"):
			t.Errorf("%s: the constraint let a get_weather call through", c.name)
		}
	}
	for _, bad := range []string{
		`"tool_choice": "required"`,
		`"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}`,
		`"tools": [{"type": "function", "function": {"name": "f g"}}], "tool_choice": "required"`,
	} {
		body := `{"model": "` + modelName + `", "messages": [{"role": "user", "content": "hi"}], ` + bad + `}`
		if code, _, e := post(t, ts.url, "/v1/chat/completions", apiKey, body); code != 400 || e.Param == nil || (*e.Param != "tool_choice" && *e.Param != "tools") {
			t.Errorf("%s: status %d, error %+v", bad, code, e)
		}
	}
}

// TestForcedToolChoiceSampled forces calls out of a random model, sampled
// with several seeds, through Qwen3's and MiniMax-M1's templates, streaming
// and not: whatever the model picks among the allowed tokens, the reply must
// come back as tool calls with finish_reason "tool_calls" within max_tokens
// (before the whitespace bound and the length budget, most seeds ran on as
// whitespace or a string until "length", and calls laid out over several
// lines were not parsed).
func TestForcedToolChoiceSampled(t *testing.T) {
	timeTool := openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "get_time", Parameters: shared.FunctionParameters{"type": "object"}})
	named := openai.ChatCompletionToolChoiceOptionUnionParam{OfFunctionToolChoice: &openai.ChatCompletionNamedToolChoiceParam{
		Function: openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_weather"}}}
	required := openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}
	for _, template := range []string{"", "minimax_m1"} { // "": the Qwen3 tokenizer's own template
		ts := start(t, setup{tok: "qwen3", template: template})
		for seed := range int64(4) {
			choice, allowed := named, []string{"get_weather"}
			if seed >= 2 {
				choice, allowed = required, []string{"get_weather", "get_time"}
			}
			params := openai.ChatCompletionNewParams{
				Model:      modelName,
				Messages:   []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
				Tools:      []openai.ChatCompletionToolUnionParam{weatherTool, timeTool},
				ToolChoice: choice,
				MaxTokens:  openai.Int(40),
				Seed:       openai.Int(seed),
			}
			var ch openai.ChatCompletionChoice
			if seed%2 == 0 {
				resp, err := ts.client.Chat.Completions.New(bg(), params)
				if err != nil {
					t.Fatal(err)
				}
				ch = resp.Choices[0]
			} else {
				stream := ts.client.Chat.Completions.NewStreaming(bg(), params)
				var acc openai.ChatCompletionAccumulator
				for stream.Next() {
					acc.AddChunk(stream.Current())
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				ch = acc.Choices[0]
			}
			name := template
			if name == "" {
				name = "qwen3"
			}
			for _, tc := range ch.Message.ToolCalls {
				t.Logf("%s seed %d: %s(%s)", name, seed, tc.Function.Name, tc.Function.Arguments)
			}
			if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) == 0 {
				t.Errorf("%s seed %d (stream %v): finish %q with %d tool calls, content %q", name, seed, seed%2 == 1,
					ch.FinishReason, len(ch.Message.ToolCalls), ch.Message.Content)
				continue
			}
			for _, tc := range ch.Message.ToolCalls {
				var args map[string]any
				if !slices.Contains(allowed, tc.Function.Name) || json.Unmarshal([]byte(tc.Function.Arguments), &args) != nil {
					t.Errorf("%s seed %d: call %s(%s)", name, seed, tc.Function.Name, tc.Function.Arguments)
				}
			}
		}
	}
}

// TestToolResultNullContent sends OpenAI's tool-result turn, an assistant
// message with "content": null and tool_calls followed by a tool message,
// through every chat template in the test data: it must render as the same
// turn with "content": "" does (the Qwen3 template failed on null with
// "argument of type 'NoneType' is not iterable").
func TestToolResultNullContent(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(chatTestdata, "*", "template.jinja"))
	if err != nil || len(dirs) < 5 {
		t.Fatalf("templates: %v, %v", dirs, err)
	}
	call := openai.ChatCompletionMessageToolCallUnionParam{OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{
		ID: "call_1", Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: "get_weather", Arguments: `{"city": "Paris"}`}}}
	params := openai.ChatCompletionNewParams{
		Model: modelName,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.UserMessage("Weather in Paris?"),
			{OfAssistant: &openai.ChatCompletionAssistantMessageParam{ToolCalls: []openai.ChatCompletionMessageToolCallUnionParam{call}}},
			openai.ToolMessage(`{"temperature": 21}`, "call_1"),
		},
		Tools:       []openai.ChatCompletionToolUnionParam{weatherTool},
		MaxTokens:   openai.Int(1),
		Temperature: openai.Float(0),
	}
	m := randomModel(t, loadTokenizer(t, "llama2").VocabSize())
	worked := 0
	for _, d := range dirs {
		name := filepath.Base(filepath.Dir(d))
		ts := start(t, setup{model: m, template: name})
		empty, errEmpty := ts.client.Chat.Completions.New(bg(), params, option.WithJSONSet("messages.1.content", ""))
		null, errNull := ts.client.Chat.Completions.New(bg(), params, option.WithJSONSet("messages.1.content", nil))
		switch {
		case errEmpty != nil:
			var e *openai.Error
			errors.As(errEmpty, &e)
			t.Logf("%s: the template refuses a tool-result turn whatever its content: %v", name, e.Message)
		case errNull != nil:
			t.Errorf("%s: content \"\" works, null fails: %v", name, errNull)
		case null.Usage.PromptTokens != empty.Usage.PromptTokens:
			t.Errorf("%s: null content renders %d prompt tokens, \"\" %d", name, null.Usage.PromptTokens, empty.Usage.PromptTokens)
		default:
			worked++
			if name == "qwen3" {
				t.Logf("qwen3: %d prompt tokens either way", null.Usage.PromptTokens)
			}
		}
	}
	if worked < len(dirs)-1 { // Mistral v0.1 allows only user and assistant turns
		t.Errorf("only %d of %d templates render a tool-result turn", worked, len(dirs))
	}
}

// TestReasoningContent checks -reasoning-parser: MiniMax-M1's leading
// <think>…</think> comes back as reasoning_content, streaming and not, with
// tool calls after it still parsed; without the option it stays in content.
func TestReasoningContent(t *testing.T) {
	out := "<think>\nThe user wants the weather. I will call the tool.\n</think>\n\nChecking.\n<tool_calls>\n" +
		`{"name": "get_weather", "arguments": {"city": "Paris"}}` + "\n</tool_calls>"
	const wantReasoning, wantContent = "The user wants the weather. I will call the tool.", "Checking."
	params := openai.ChatCompletionNewParams{
		Model:    modelName,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Tools:    []openai.ChatCompletionToolUnionParam{weatherTool},
	}
	reasoningOf := func(f map[string]respjson.Field) string {
		raw := f["reasoning_content"].Raw()
		if raw == "" || raw == "null" {
			return ""
		}
		var s string
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			t.Fatalf("reasoning_content %s: %v", raw, err)
		}
		return s
	}
	ts := scriptedWith(t, out, engine.Config{}, server.Config{SplitReasoning: true})
	resp, err := ts.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	msg := resp.Choices[0].Message
	if r := reasoningOf(msg.JSON.ExtraFields); r != wantReasoning || msg.Content != wantContent || len(msg.ToolCalls) != 1 {
		t.Errorf("message: reasoning %q, content %q, %d tool calls; want %q, %q, 1", r, msg.Content, len(msg.ToolCalls), wantReasoning, wantContent)
	}

	stream := ts.client.Chat.Completions.NewStreaming(bg(), params)
	var reasoning, content strings.Builder
	calls, mixed := 0, 0
	for stream.Next() {
		for _, ch := range stream.Current().Choices {
			r := reasoningOf(ch.Delta.JSON.ExtraFields)
			reasoning.WriteString(r)
			content.WriteString(ch.Delta.Content)
			calls += len(ch.Delta.ToolCalls)
			if r != "" && ch.Delta.Content != "" {
				mixed++
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if reasoning.String() != wantReasoning || strings.TrimSpace(content.String()) != wantContent || calls != 1 || mixed != 0 {
		t.Errorf("stream: reasoning %q, content %q, %d tool calls, %d deltas with both", reasoning.String(), content.String(), calls, mixed)
	}

	// Off (the default): the thinking stays in the content.
	plain := scripted(t, out, engine.Config{})
	resp, err = plain.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	msg = resp.Choices[0].Message
	if r := reasoningOf(msg.JSON.ExtraFields); r != "" || !strings.Contains(msg.Content, "<think>") {
		t.Errorf("without the option: reasoning %q, content %q", r, msg.Content)
	}
}

// TestToolCalls checks MiniMax's tool-call output becomes OpenAI tool_calls,
// streaming and not, and that the tool's answer renders as the next turn.
func TestToolCalls(t *testing.T) {
	out := "Let me check.\n<tool_calls>\n" +
		`{"name": "get_weather", "arguments": {"city": "Paris"}}` + "\n" +
		`{"name": "get_weather", "arguments": {"city": "Oslo"}}` + "\n</tool_calls>"
	ts := scripted(t, out, engine.Config{})
	params := openai.ChatCompletionNewParams{
		Model:    modelName,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris and Oslo?")},
		Tools:    []openai.ChatCompletionToolUnionParam{weatherTool},
	}
	resp, err := ts.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	msg := resp.Choices[0].Message
	if resp.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 2 {
		t.Fatalf("choice %+v", resp.Choices[0])
	}
	for i, city := range []string{"Paris", "Oslo"} {
		tc := msg.ToolCalls[i]
		var args map[string]string
		if err := json.Unmarshal([]byte(tc.Function.Arguments), &args); err != nil || tc.Function.Name != "get_weather" || args["city"] != city || tc.ID == "" {
			t.Errorf("tool call %d: %+v (%v)", i, tc, err)
		}
	}
	if msg.Content != "Let me check." {
		t.Errorf("content %q", msg.Content)
	}

	stream := ts.client.Chat.Completions.NewStreaming(bg(), params)
	var acc openai.ChatCompletionAccumulator
	var finished []string
	for stream.Next() {
		acc.AddChunk(stream.Current())
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc.Arguments)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	sm := acc.Choices[0].Message
	if acc.Choices[0].FinishReason != "tool_calls" || len(sm.ToolCalls) != 2 || sm.ToolCalls[1].Function.Arguments != msg.ToolCalls[1].Function.Arguments {
		t.Errorf("streamed: %+v", acc.Choices[0])
	}
	if strings.Contains(sm.Content, "tool_calls") || strings.TrimSpace(sm.Content) != "Let me check." {
		t.Errorf("streamed content leaks the tool-call block: %q", sm.Content)
	}
	if len(finished) != 2 {
		t.Errorf("accumulator finished %d tool calls", len(finished))
	}

	// Next turn: the assistant's calls and the tool results go back in.
	params.Messages = append(params.Messages, msg.ToParam(),
		openai.ToolMessage("18°C, sunny", msg.ToolCalls[0].ID),
		openai.ToolMessage("9°C, rain", msg.ToolCalls[1].ID))
	if _, err := ts.client.Chat.Completions.New(bg(), params); err != nil {
		t.Fatal(err)
	}
	// tool_choice none: the same output is plain text.
	params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("none")}
	resp, err = ts.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices[0].Message.ToolCalls) != 0 || !strings.Contains(resp.Choices[0].Message.Content, "<tool_calls>") || resp.Choices[0].FinishReason != "stop" {
		t.Errorf("tool_choice none: %+v", resp.Choices[0])
	}
}

// TestStopStrings checks that stop strings cut the text (the stop string
// itself excluded) in both modes, also when a stop string spans tokens.
func TestStopStrings(t *testing.T) {
	ts := scripted(t, "The answer is forty-two. END of story, nothing more.", engine.Config{})
	for _, stop := range []string{"END", "ty-t", "story, no"} {
		params := openai.ChatCompletionNewParams{
			Model:    modelName,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("?")},
			Stop:     openai.ChatCompletionNewParamsStopUnion{OfString: openai.String(stop)},
		}
		full := "The answer is forty-two. END of story, nothing more."
		want := full[:strings.Index(full, stop)]
		resp, err := ts.client.Chat.Completions.New(bg(), params)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != want || resp.Choices[0].FinishReason != "stop" {
			t.Errorf("stop %q: %q (%s), want %q", stop, got, resp.Choices[0].FinishReason, want)
		}
		stream := ts.client.Chat.Completions.NewStreaming(bg(), params)
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if got := acc.Choices[0].Message.Content; got != want {
			t.Errorf("stop %q streamed: %q, want %q", stop, got, want)
		}
	}
	// Without a stop string the model's EOS ends it: finish_reason stop.
	resp, err := ts.client.Chat.Completions.New(bg(), openai.ChatCompletionNewParams{
		Model: modelName, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("?")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "The answer is forty-two. END of story, nothing more." || resp.Choices[0].FinishReason != "stop" {
		t.Errorf("EOS: %+v", resp.Choices[0])
	}
}

// TestConcurrentClients runs many clients at once; each greedy stream must
// equal what the same request gives alone.
func TestConcurrentClients(t *testing.T) {
	ts := start(t, setup{template: "vllm_minimax_m1_tool", engine: engine.Config{MaxSeqs: 4, MaxQueue: 32}})
	ask := func(i int) (string, error) {
		resp, err := ts.client.Chat.Completions.New(bg(), openai.ChatCompletionNewParams{
			Model:       modelName,
			Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("Question number %d?", i))},
			MaxTokens:   openai.Int(int64(6 + i%5)),
			Temperature: openai.Float(0),
		})
		if err != nil {
			return "", err
		}
		return resp.Choices[0].Message.Content, nil
	}
	const n = 10
	alone := make([]string, n)
	for i := range n {
		var err error
		if alone[i], err = ask(i); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	got := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = ask(i)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("client %d: %v", i, errs[i])
		} else if got[i] != alone[i] {
			t.Errorf("client %d: concurrent %q, alone %q", i, got[i], alone[i])
		}
	}
}

// TestQwen3 renders a real tokenizer's own template (Qwen3, with tools) and
// shows prefix reuse across turns and a shared system prompt.
func TestQwen3(t *testing.T) {
	ts := start(t, setup{tok: "qwen3", engine: engine.Config{PrefixCacheBytes: 64 << 20}})
	system := openai.SystemMessage(strings.Repeat("You are a careful assistant who answers briefly. ", 8))
	params := openai.ChatCompletionNewParams{
		Model:       modelName,
		Messages:    []openai.ChatCompletionMessageParamUnion{system, openai.UserMessage("What is 2+2?")},
		Tools:       []openai.ChatCompletionToolUnionParam{weatherTool},
		MaxTokens:   openai.Int(6),
		Temperature: openai.Float(0),
	}
	first, err := ts.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	if first.Usage.PromptTokensDetails.CachedTokens != 0 {
		t.Errorf("first request reused %d tokens", first.Usage.PromptTokensDetails.CachedTokens)
	}
	// Same system prompt, another question: the system part is reused.
	params.Messages = []openai.ChatCompletionMessageParamUnion{system, openai.UserMessage("And 3+3?")}
	second, err := ts.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	if c := second.Usage.PromptTokensDetails.CachedTokens; c < 80 || c >= second.Usage.PromptTokens {
		t.Errorf("shared system prompt: %d of %d prompt tokens reused", c, second.Usage.PromptTokens)
	}
	// The next turn of the first conversation reuses all of its prompt (and
	// more, when the reply re-tokenizes to the same ids).
	params.Messages = []openai.ChatCompletionMessageParamUnion{system, openai.UserMessage("What is 2+2?"),
		first.Choices[0].Message.ToParam(), openai.UserMessage("Are you sure?")}
	third, err := ts.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	if c := third.Usage.PromptTokensDetails.CachedTokens; c < first.Usage.PromptTokens {
		t.Errorf("next turn: %d of %d prompt tokens reused, want at least the first prompt's %d", c, third.Usage.PromptTokens, first.Usage.PromptTokens)
	}
	t.Logf("first: %d prompt tokens; shared system prompt: %d of %d reused; next turn: %d of %d reused", first.Usage.PromptTokens,
		second.Usage.PromptTokensDetails.CachedTokens, second.Usage.PromptTokens,
		third.Usage.PromptTokensDetails.CachedTokens, third.Usage.PromptTokens)
}

// TestShortChatReuse runs a chat shorter than CacheMinTokens (the server's
// default of 32): its second turn must start from the state the first
// answer left, which the engine hands to the cache without a copy (before,
// nothing under 32 tokens was cached and every turn was read in full).
func TestShortChatReuse(t *testing.T) {
	tok := loadTokenizer(t, "llama2")
	ids := tok.Encode("Paris.", false)
	script := make([]int32, len(ids))
	for i, id := range ids {
		script[i] = int32(id)
	}
	eos, _ := tok.EOS()
	m := &scriptModel{vocab: tok.VocabSize(), script: script, eos: int32(eos)}
	ts := start(t, setup{model: m, template: "mistral_v01", engine: engine.Config{PrefixCacheBytes: 1 << 20, CacheMinTokens: 32}})
	params := openai.ChatCompletionNewParams{
		Model:    modelName,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Capital of France?")},
	}
	first, err := ts.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	params.Messages = append(params.Messages, first.Choices[0].Message.ToParam(), openai.UserMessage("Sure?"))
	second, err := ts.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	p1, p2, cached := first.Usage.PromptTokens, second.Usage.PromptTokens, second.Usage.PromptTokensDetails.CachedTokens
	t.Logf("turn 1: %d prompt tokens; turn 2: %d, %d reused", p1, p2, cached)
	if p2 >= 32 {
		t.Fatalf("turn 2 has %d prompt tokens; the test needs a chat under CacheMinTokens", p2)
	}
	if cached < p1 {
		t.Errorf("turn 2 reused %d prompt tokens, want at least turn 1's %d", cached, p1)
	}
}

// TestShortBehindLongPrompt sends a short request right after a long
// prompt has started prefilling: the short one must be answered while the
// long one is still being read, and /metrics must report both waits before
// their first prompt chunk. Before, prompts were read first come first
// served, so the short request waited for the whole long prefill (here ~60
// steps of 64 tokens; the short one needs 1 prefill step and 3 decode steps).
func TestShortBehindLongPrompt(t *testing.T) {
	ts := start(t, setup{engine: engine.Config{MaxSeqs: 4, BatchTokens: 64}, server: server.Config{MaxTokens: 16}})
	long := openai.CompletionNewParams{
		Model:     modelName,
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String(strings.Repeat("the quick brown fox ", 1000))},
		MaxTokens: openai.Int(1),
	}
	longDone := make(chan error, 1)
	go func() {
		_, err := ts.client.Completions.New(bg(), long)
		longDone <- err
	}()
	waitFor(t, func() bool { return ts.eng.Stats().Prefilling == 1 })
	short, err := ts.client.Completions.New(bg(), openai.CompletionNewParams{
		Model:     modelName,
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("Hi")},
		MaxTokens: openai.Int(4),
	})
	if err != nil {
		t.Fatal(err)
	}
	st := ts.eng.Stats()
	select {
	case err := <-longDone:
		t.Fatalf("the long prompt (err %v) finished before the short request, which waited behind it", err)
	default:
	}
	if short.Usage.CompletionTokens != 4 || st.Prefilling != 1 {
		t.Errorf("short request %+v; %d prompts still prefilling, want the long one", short.Usage, st.Prefilling)
	}
	if err := <-longDone; err != nil {
		t.Fatal(err)
	}
	metrics := get(t, ts.url+"/metrics", apiKey)
	if !strings.Contains(metrics, "lightning_prefill_wait_seconds_count 2") {
		t.Errorf("metrics lack the prefill wait of both requests:\n%s", metrics)
	}
}

// TestPromptTooSlowForTimeout sends a prompt that the measured prefill
// rate says cannot be read within the request timeout: it must be refused
// at once with 413 saying how long it would take, whether the rate was
// measured before it arrived (refused at submission) or only on its own
// first chunks (a fresh server: ended early, still before any output).
// Before, such a prompt ran until the timeout and got a 504.
func TestPromptTooSlowForTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	ec := engine.Config{MaxSeqs: 2, BatchTokens: 64}
	sc := server.Config{RequestTimeout: timeout}
	ts := start(t, setup{engine: ec, server: sc})
	// Measure the rate with a prompt sent to the engine without a deadline
	// (the race detector slows it beyond any short timeout).
	enc := ts.tok.Encode(strings.Repeat("the quick brown fox ", 60), false)
	warm := make([]int32, len(enc))
	for i, id := range enc {
		warm[i] = int32(id)
	}
	stream, err := ts.eng.Submit(bg(), engine.Request{Prompt: warm, MaxTokens: 1, Params: sample.DefaultParams()})
	if err != nil {
		t.Fatal(err)
	}
	stream.Wait(bg())
	rate := ts.eng.Stats().PrefillTokensPerSec
	if rate <= 0 {
		t.Fatal("no prefill rate measured")
	}
	// Three times what the rate reads within the timeout.
	unit := len(ts.tok.Encode("the quick brown fox ", false))
	long := openai.CompletionNewParams{
		Model:     modelName,
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String(strings.Repeat("the quick brown fox ", int(3*rate*timeout.Seconds())/unit+1))},
		MaxTokens: openai.Int(1),
	}
	fresh := start(t, setup{engine: ec, server: sc})
	for _, c := range []struct {
		name string
		ts   *testServer
	}{{"measured rate", ts}, {"fresh server", fresh}} {
		t0 := time.Now()
		_, err := c.ts.client.Completions.New(bg(), long)
		took := time.Since(t0)
		var e *openai.Error
		if !errors.As(err, &e) || e.StatusCode != 413 || e.Code != "prompt_too_long_for_timeout" || !strings.Contains(e.Message, "take at least") {
			t.Fatalf("%s: %v after %v, want 413 prompt_too_long_for_timeout", c.name, err, took)
		}
		t.Logf("%s (%.0f tokens/s): refused after %v: %s", c.name, rate, took.Round(time.Millisecond), e.Message)
		if took >= timeout {
			t.Errorf("%s: refused after %v, not before the timeout of %v", c.name, took, timeout)
		}
	}
	if m := get(t, ts.url+"/metrics", apiKey); !strings.Contains(m, "lightning_prompt_too_slow_total 1") {
		t.Error("metrics lack lightning_prompt_too_slow_total 1")
	}
}

// TestJSONMode checks response_format json_object: output is always a
// prefix of a JSON object, and complete when the model stops.
func TestJSONMode(t *testing.T) {
	obj := `{"city": "Paris", "n": [1, 2.5e3, true, null], "s": "a\"b"}`
	ts := scripted(t, obj, engine.Config{})
	params := openai.ChatCompletionNewParams{
		Model:          modelName,
		Messages:       []openai.ChatCompletionMessageParamUnion{openai.UserMessage("JSON please")},
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}},
	}
	resp, err := ts.client.Chat.Completions.New(bg(), params)
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.Choices[0]; c.Message.Content != obj || c.FinishReason != "stop" {
		t.Errorf("scripted JSON: %q (%s)", c.Message.Content, c.FinishReason)
	}

	// A random model, sampled: whatever it writes is held to the grammar.
	rs := start(t, setup{template: "vllm_minimax_m1_tool"})
	for seed := range int64(4) {
		params.Seed = openai.Int(seed)
		params.MaxTokens = openai.Int(40)
		resp, err := rs.client.Chat.Completions.New(bg(), params)
		if err != nil {
			t.Fatal(err)
		}
		out := resp.Choices[0].Message.Content
		t.Logf("seed %d: %q (%s)", seed, out, resp.Choices[0].FinishReason)
		if !strings.HasPrefix(strings.TrimLeft(out, " \t\r\n"), "{") || !jsonPrefix(out) {
			t.Errorf("seed %d: %q is not a prefix of a JSON object", seed, out)
		}
		if resp.Choices[0].FinishReason == "stop" && !json.Valid([]byte(out)) {
			t.Errorf("seed %d: stopped with invalid JSON %q", seed, out)
		}
	}
}

// jsonPrefix reports whether encoding/json reads s without a syntax error
// (only running out of input).
func jsonPrefix(s string) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		if _, err := dec.Token(); err != nil {
			return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		}
	}
}
