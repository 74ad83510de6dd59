package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// The OpenAI request and response shapes this server reads and writes. Fields
// a client may omit are pointers, so "absent" and "zero" differ. Unknown
// fields are ignored, as OpenAI's own SDKs send fields (user, metadata, store,
// …) that do not change generation.

// samplingFields are the generation settings shared by both endpoints.
type samplingFields struct {
	Temperature       *float64           `json:"temperature"`
	TopP              *float64           `json:"top_p"`
	TopK              *int               `json:"top_k"` // vLLM extension; -1 or 0 = off
	MinP              *float64           `json:"min_p"` // vLLM extension
	PresencePenalty   *float64           `json:"presence_penalty"`
	FrequencyPenalty  *float64           `json:"frequency_penalty"`
	RepetitionPenalty *float64           `json:"repetition_penalty"` // vLLM extension
	Seed              *int64             `json:"seed"`
	Stop              stopList           `json:"stop"`
	N                 *int               `json:"n"`
	MaxTokens         *int               `json:"max_tokens"`
	Stream            *bool              `json:"stream"`
	StreamOptions     *streamOptions     `json:"stream_options"`
	LogitBias         map[string]float64 `json:"logit_bias"`
}

type streamOptions struct {
	IncludeUsage *bool `json:"include_usage"`
}

// chatRequest is the body of POST /v1/chat/completions.
type chatRequest struct {
	Model    *string   `json:"model"`
	Messages []message `json:"messages"`
	samplingFields
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Logprobs            *bool           `json:"logprobs"`
	TopLogprobs         *int            `json:"top_logprobs"`
	Tools               json.RawMessage `json:"tools"` // kept raw: templates print tool schemas in their key order
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ResponseFormat      *responseFormat `json:"response_format"`
	ChatTemplateKwargs  map[string]any  `json:"chat_template_kwargs"` // vLLM extension, e.g. enable_thinking
	Session             *string         `json:"session"`              // Lightning extension: a session saved to disk
}

// completionRequest is the body of POST /v1/completions.
type completionRequest struct {
	Model  *string         `json:"model"`
	Prompt json.RawMessage `json:"prompt"`
	samplingFields
	Logprobs *int    `json:"logprobs"` // legacy: number of alternatives, 0…5
	Echo     *bool   `json:"echo"`
	Suffix   *string `json:"suffix"`
	BestOf   *int    `json:"best_of"`
	Session  *string `json:"session"` // refused: sessions are chat-only
}

type responseFormat struct {
	Type string `json:"type"`
}

// message is one chat message in the OpenAI shape.
type message struct {
	Role       string     `json:"role"`
	Content    content    `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []toolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// content is a message's content: a string, an array of parts, or null.
type content struct {
	Text  string
	Parts []contentPart // set when the client sent an array
	Null  bool
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// UnmarshalJSON accepts a string, null or an array of {type, text} parts.
func (c *content) UnmarshalJSON(b []byte) error {
	switch b = bytes.TrimSpace(b); {
	case bytes.Equal(b, []byte("null")):
		*c = content{Null: true}
		return nil
	case len(b) > 0 && b[0] == '"':
		*c = content{}
		return json.Unmarshal(b, &c.Text)
	case len(b) > 0 && b[0] == '[':
		var parts []contentPart
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		var sb strings.Builder
		for _, p := range parts {
			sb.WriteString(p.Text)
		}
		*c = content{Text: sb.String(), Parts: parts}
		return nil
	}
	return typeError(b, reflect.TypeFor[content]())
}

// typeError reports a JSON value of the wrong kind for t; encoding/json adds
// the field path.
func typeError(b []byte, t reflect.Type) error {
	kind := "value"
	if len(b) > 0 {
		switch b[0] {
		case '{':
			kind = "object"
		case '[':
			kind = "array"
		case '"':
			kind = "string"
		case 't', 'f':
			kind = "bool"
		case 'n':
			kind = "null"
		default:
			kind = "number"
		}
	}
	return &json.UnmarshalTypeError{Value: kind, Type: t}
}

// MarshalJSON writes the content back as a string (or null).
func (c content) MarshalJSON() ([]byte, error) {
	if c.Null {
		return []byte("null"), nil
	}
	return json.Marshal(c.Text)
}

// toolCall is a function call, in a request's assistant message or in a
// response.
type toolCall struct {
	Index    *int         `json:"index,omitempty"` // streaming deltas only
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function functionCall `json:"function"`
}

type functionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"` // JSON text
}

// toolDef is one entry of a request's tools, for validation.
type toolDef struct {
	Type     string `json:"type"`
	Function *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// stopList is "stop": a string or an array of strings.
type stopList []string

// UnmarshalJSON accepts null, a string or an array of strings.
func (s *stopList) UnmarshalJSON(b []byte) error {
	switch b = bytes.TrimSpace(b); {
	case bytes.Equal(b, []byte("null")):
		*s = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = stopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return typeError(b, reflect.TypeFor[stopList]())
	}
	*s = many
	return nil
}

// Responses.

type usage struct {
	PromptTokens        int            `json:"prompt_tokens"`
	CompletionTokens    int            `json:"completion_tokens"`
	TotalTokens         int            `json:"total_tokens"`
	PromptTokensDetails *promptDetails `json:"prompt_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint"`
	Choices           []chatChoice `json:"choices"`
	Usage             *usage       `json:"usage,omitempty"`
}

type chatChoice struct {
	Index        int           `json:"index"`
	Message      *chatMessage  `json:"message,omitempty"`
	Delta        *chatMessage  `json:"delta,omitempty"`
	Logprobs     *chatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

// chatMessage is a response message or a streaming delta.
type chatMessage struct {
	Role             string     `json:"role,omitempty"`
	Content          *string    `json:"content,omitempty"`
	ReasoningContent *string    `json:"reasoning_content,omitempty"` // with Config.SplitReasoning
	ToolCalls        []toolCall `json:"tool_calls,omitempty"`
}

type chatLogprobs struct {
	Content []tokenLogprob `json:"content"`
}

type tokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float32      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []topLogprob `json:"top_logprobs"`
}

type topLogprob struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

type completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []completionChoice `json:"choices"`
	Usage             *usage             `json:"usage,omitempty"`
}

type completionChoice struct {
	Index        int                 `json:"index"`
	Text         string              `json:"text"`
	Logprobs     *completionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

// completionLogprobs is the legacy completions logprobs shape.
type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// decodeBody parses a JSON request body into v and turns decoding errors
// into 400s that name the field.
func decodeBody(data []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := strings.ReplaceAll(te.Field, "samplingFields.", "") // the embedded struct's name
			if field == "" {
				return badRequest("", "request body must be a JSON object, not %s", te.Value)
			}
			return badRequest(field, "%s: wrong type %s, want %s", field, te.Value, jsonType(te.Type.String()))
		case errors.As(err, &se):
			return badRequest("", "malformed JSON at byte %d: %v", se.Offset, err)
		default:
			msg := err.Error()
			if field, rest, ok := strings.Cut(strings.TrimPrefix(msg, "json: "), ": "); ok && !strings.Contains(field, " ") {
				return badRequest(field, "%s: %s", field, rest)
			}
			return badRequest("", "invalid JSON body: %s", msg)
		}
	}
	if dec.More() {
		return badRequest("", "request body has data after the JSON object")
	}
	return nil
}

// jsonType names a Go type the way an API user thinks of it.
func jsonType(goType string) string {
	switch {
	case goType == "server.content":
		return "a string, an array of content parts or null"
	case goType == "server.stopList":
		return "a string or an array of strings"
	case strings.HasPrefix(goType, "*"):
		return jsonType(goType[1:])
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "server."), strings.HasPrefix(goType, "struct"):
		return "an object"
	}
	return fmt.Sprintf("type %s", goType)
}
