// Package chat renders Hugging Face chat templates the way transformers'
// tokenizer.apply_chat_template(..., tokenize=False) does, and parses the
// tool calls MiniMax models write.
//
// A Config comes from tokenizer_config.json (LoadConfig): its chat templates
// (one string, or the named-list form, with a sibling chat_template.jinja
// taking precedence as in transformers) and its special-token variables.
// Config.Template picks a template; Template.Render renders a Request
// (messages, tools, documents, add_generation_prompt, extra variables) with
// the special tokens, the caller's variables overriding them.
//
// MiniMax-M1's and MiniMax-Text-01's own templates index
// message['content'][0]['text'], so plain-string content must first become a
// list of parts (NormalizeMessages); vLLM's M1 template takes either shape.
// ParseToolCalls and Stream read MiniMax's
// <tool_calls>{"name": ..., "arguments": ...}</tool_calls> output.
package chat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/lightninglm/lightning/tokenizer/jinja"
)

// specialTokenNames are transformers' SPECIAL_TOKENS_ATTRIBUTES with a
// single token each; additional_special_tokens is a list.
var specialTokenNames = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// ErrNoTemplate is returned when a config holds no chat template.
var ErrNoTemplate = errors.New("chat: no chat template")

// Config is the chat-template part of a tokenizer_config.json.
type Config struct {
	// Templates maps template names to sources. A single-string
	// chat_template (or chat_template.jinja) is named "default".
	Templates map[string]string
	// SpecialTokens are the variables transformers passes to every
	// template: the special tokens that are set (AddedToken objects as
	// their content), and additional_special_tokens when non-empty.
	SpecialTokens map[string]jinja.Value
}

// LoadConfig reads a tokenizer_config.json. A chat_template.jinja file in
// the same directory replaces the config's default template, as in
// transformers.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("chat: %s: %w", path, err)
	}
	jinjaPath := filepath.Join(filepath.Dir(path), "chat_template.jinja")
	if src, err := os.ReadFile(jinjaPath); err == nil {
		c.Templates["default"] = string(src)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("chat: %w", err)
	}
	return c, nil
}

// ParseConfig reads the chat_template and special-token fields of
// tokenizer_config.json data.
func ParseConfig(data []byte) (*Config, error) {
	v, err := jinja.DecodeJSON(data)
	if err != nil {
		return nil, err
	}
	root, ok := v.(*jinja.Dict)
	if !ok {
		return nil, errors.New("tokenizer config is not a JSON object")
	}
	c := &Config{Templates: map[string]string{}, SpecialTokens: map[string]jinja.Value{}}
	switch t, _ := root.Get("chat_template"); t := t.(type) {
	case nil:
	case string:
		c.Templates["default"] = t
	case *jinja.List:
		for i, it := range t.Items {
			d, ok := it.(*jinja.Dict)
			if !ok {
				return nil, fmt.Errorf("chat_template[%d] is not an object", i)
			}
			name, ok1 := getString(d, "name")
			src, ok2 := getString(d, "template")
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("chat_template[%d] needs string fields name and template", i)
			}
			c.Templates[name] = src
		}
	default:
		return nil, fmt.Errorf("chat_template is neither a string nor a list of {name, template}")
	}
	for _, name := range specialTokenNames {
		v, _ := root.Get(name)
		if s, ok := tokenContent(v); ok && s != "" {
			c.SpecialTokens[name] = s
		}
	}
	if extra, _ := root.Get("additional_special_tokens"); extra != nil {
		l, ok := extra.(*jinja.List)
		if !ok {
			return nil, errors.New("additional_special_tokens is not a list")
		}
		var toks []jinja.Value
		for _, it := range l.Items {
			if s, ok := tokenContent(it); ok {
				toks = append(toks, s)
			}
		}
		if len(toks) > 0 {
			c.SpecialTokens["additional_special_tokens"] = jinja.NewList(toks...)
		}
	}
	return c, nil
}

func getString(d *jinja.Dict, key string) (string, bool) {
	v, _ := d.Get(key)
	s, ok := v.(string)
	return s, ok
}

// tokenContent reads a special token written as a string or as an
// AddedToken object ({"__type": "AddedToken", "content": ...}).
func tokenContent(v jinja.Value) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case *jinja.Dict:
		return getString(t, "content")
	}
	return "", false
}

// Names lists the template names, sorted.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.Templates))
	for n := range c.Templates {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Template selects and parses a template as transformers does: the named
// one when name is set; otherwise "tool_use" when tools are passed and the
// config has one, else "default".
func (c *Config) Template(name string, withTools bool) (*Template, error) {
	if len(c.Templates) == 0 {
		return nil, ErrNoTemplate
	}
	if name == "" {
		name = "default"
		if _, ok := c.Templates["tool_use"]; ok && withTools {
			name = "tool_use"
		}
	}
	src, ok := c.Templates[name]
	if !ok {
		return nil, fmt.Errorf("chat: no chat template named %q (have %v)", name, c.Names())
	}
	t, err := New(src, c.SpecialTokens)
	if err != nil {
		return nil, fmt.Errorf("chat: template %q: %w", name, err)
	}
	t.Name = name
	return t, nil
}
