package chat

import (
	"fmt"
	"strings"
	"time"

	"github.com/lightninglm/lightning/tokenizer/jinja"
)

// ContentFormat is the message shape a template expects.
type ContentFormat int

const (
	// ContentString: content is a plain string (most templates, including
	// vLLM's MiniMax-M1 tool template, which also accepts parts).
	ContentString ContentFormat = iota
	// ContentM1Parts: MiniMax-M1's template: content is a list of parts
	// [{"type": "text", "text": s}]; tool results are role "tool" with
	// parts [{"name": tool, "type": "text", "text": s}].
	ContentM1Parts
	// ContentText01Parts: MiniMax-Text-01's template: content is a list of
	// parts; tool results are role "function" with a "name" field.
	ContentText01Parts
)

func (f ContentFormat) String() string {
	switch f {
	case ContentM1Parts:
		return "m1_parts"
	case ContentText01Parts:
		return "t01_parts"
	}
	return "string"
}

// ParseContentFormat reads the names String returns.
func ParseContentFormat(s string) (ContentFormat, error) {
	switch s {
	case "string":
		return ContentString, nil
	case "m1_parts":
		return ContentM1Parts, nil
	case "t01_parts":
		return ContentText01Parts, nil
	}
	return 0, fmt.Errorf("chat: unknown content format %q (want string, m1_parts or t01_parts)", s)
}

// DetectContentFormat guesses the message shape from template source: a
// template that indexes message['content'][0]['text'] wants parts, and
// among those one with a 'function' role is Text-01's.
func DetectContentFormat(source string) ContentFormat {
	if !strings.Contains(source, "message['content'][0]['text']") {
		return ContentString
	}
	if strings.Contains(source, "== 'function'") {
		return ContentText01Parts
	}
	return ContentM1Parts
}

// Template is a parsed chat template with its special-token variables. It
// is safe for concurrent use.
type Template struct {
	Name          string // name in the config ("default", "tool_use", ...)
	Source        string
	Format        ContentFormat // detected with DetectContentFormat
	SpecialTokens map[string]jinja.Value
	tmpl          *jinja.Template
}

// New parses template source; special holds the special-token variables
// (see Config.SpecialTokens) and may be nil.
func New(source string, special map[string]jinja.Value) (*Template, error) {
	t, err := jinja.Parse(source)
	if err != nil {
		return nil, err
	}
	return &Template{Source: source, Format: DetectContentFormat(source), SpecialTokens: special, tmpl: t}, nil
}

// Request is one apply_chat_template call.
type Request struct {
	Messages            jinja.Value // a list of message dicts
	Tools               jinja.Value // nil is passed as None
	Documents           jinja.Value // nil is passed as None
	AddGenerationPrompt bool
	// Kwargs are extra template variables (enable_thinking, a custom
	// bos_token, ...); they override the special tokens.
	Kwargs map[string]jinja.Value
	// Now is the clock behind strftime_now; nil means time.Now.
	Now func() time.Time
}

// reserved are the names apply_chat_template passes itself.
var reserved = []string{"messages", "tools", "documents", "add_generation_prompt"}

// Render renders the request. Template failures are *jinja.Error values
// (UndefinedError, TypeError, TemplateError from raise_exception, ...).
func (t *Template) Render(r *Request) (string, error) {
	vars := make(map[string]jinja.Value, len(t.SpecialTokens)+len(r.Kwargs)+4)
	for k, v := range t.SpecialTokens {
		vars[k] = v
	}
	for k, v := range r.Kwargs {
		for _, name := range reserved {
			if k == name {
				return "", fmt.Errorf("chat: kwarg %q collides with an apply_chat_template argument", k)
			}
		}
		vars[k] = v
	}
	vars["messages"] = r.Messages
	vars["tools"] = r.Tools
	vars["documents"] = r.Documents
	vars["add_generation_prompt"] = r.AddGenerationPrompt
	return t.tmpl.Render(vars, &jinja.Options{Now: r.Now})
}
