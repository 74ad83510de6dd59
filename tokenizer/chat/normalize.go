package chat

import (
	"fmt"

	"github.com/lightninglm/lightning/tokenizer/jinja"
)

// NormalizeMessages rewrites OpenAI-style messages (string content; tool
// results as {"role": "tool", "tool_call_id": id, "name": tool, "content":
// s}) into the shape format expects, leaving the input untouched:
//
//   - ContentString: null content becomes "" (vLLM joins a message's text
//     parts, none for null, into its content), so that templates testing
//     `'x' in content` accept OpenAI's assistant tool-call turn ("content":
//     null plus tool_calls); everything else is unchanged.
//   - ContentM1Parts and ContentText01Parts: string content becomes
//     [{"type": "text", "text": s}] and null content []; list content is
//     kept. A tool result becomes, for M1, {"role": "tool", ...,
//     "content": [{"name": tool, "type": "text", "text": s}]} (its "name"
//     moved into the part) and, for Text-01, {"role": "function", "name":
//     tool, "content": [{"type": "text", "text": s}]}.
//
// A tool result without "name" takes the function name of the assistant
// tool call whose id matches its tool_call_id. Assistant tool_calls are kept
// as they are (the MiniMax templates do not render them; see
// FormatToolCalls for writing them into content).
func NormalizeMessages(messages jinja.Value, format ContentFormat) (jinja.Value, error) {
	list, ok := messages.(*jinja.List)
	if !ok {
		return nil, fmt.Errorf("chat: messages is %T, want a list", messages)
	}
	if format == ContentString {
		return nullContentToEmpty(list), nil
	}
	callNames := map[string]string{} // tool_call_id -> function name
	out := make([]jinja.Value, len(list.Items))
	for i, it := range list.Items {
		m, ok := it.(*jinja.Dict)
		if !ok {
			return nil, fmt.Errorf("chat: message %d is %T, want an object", i, it)
		}
		recordCallNames(m, callNames)
		role, _ := getString(m, "role")
		if role == "tool" {
			out[i] = toolResult(m, format, callNames)
			continue
		}
		n := jinja.NewDict()
		for j, k := range m.Keys() {
			v := m.Values()[j]
			if k == "content" {
				v = contentParts(v)
			}
			n.Set(k, v)
		}
		out[i] = n
	}
	return jinja.NewList(out...), nil
}

// nullContentToEmpty returns list with every message's null content
// replaced by "", sharing the messages that need no change.
func nullContentToEmpty(list *jinja.List) *jinja.List {
	out := make([]jinja.Value, len(list.Items))
	for i, it := range list.Items {
		out[i] = it
		m, ok := it.(*jinja.Dict)
		if !ok {
			continue
		}
		if c, has := m.Get("content"); !has || c != nil {
			continue
		}
		n := jinja.NewDict()
		for j, k := range m.Keys() {
			n.Set(k, m.Values()[j])
		}
		n.Set("content", "")
		out[i] = n
	}
	return jinja.NewList(out...)
}

// contentParts turns string content into one text part and null into no
// parts; other values are kept.
func contentParts(v jinja.Value) jinja.Value {
	switch c := v.(type) {
	case string:
		return jinja.NewList(textPart(c))
	case nil:
		return jinja.NewList()
	}
	return v
}

func textPart(s string) *jinja.Dict {
	p := jinja.NewDict()
	p.Set("type", "text")
	p.Set("text", s)
	return p
}

// recordCallNames remembers the function name of each tool call id of an
// assistant message.
func recordCallNames(m *jinja.Dict, names map[string]string) {
	calls, _ := m.Get("tool_calls")
	l, ok := calls.(*jinja.List)
	if !ok {
		return
	}
	for _, c := range l.Items {
		cd, ok := c.(*jinja.Dict)
		if !ok {
			continue
		}
		id, _ := getString(cd, "id")
		fn, _ := cd.Get("function")
		if fd, ok := fn.(*jinja.Dict); ok {
			if name, ok := getString(fd, "name"); ok && id != "" {
				names[id] = name
			}
		}
	}
}

// toolResult rewrites a role "tool" message for the MiniMax templates.
func toolResult(m *jinja.Dict, format ContentFormat, callNames map[string]string) *jinja.Dict {
	name, ok := getString(m, "name")
	if !ok {
		id, _ := getString(m, "tool_call_id")
		name = callNames[id]
	}
	content, _ := m.Get("content")
	var texts []string
	switch c := content.(type) {
	case string:
		texts = []string{c}
	case *jinja.List:
		for _, p := range c.Items {
			if pd, ok := p.(*jinja.Dict); ok {
				if s, ok := getString(pd, "text"); ok {
					texts = append(texts, s)
				}
			}
		}
	case nil:
		texts = []string{""}
	default:
		texts = []string{jinja.Str(c)}
	}
	parts := make([]jinja.Value, len(texts))
	for i, s := range texts {
		if format == ContentM1Parts {
			p := jinja.NewDict()
			p.Set("name", name)
			p.Set("type", "text")
			p.Set("text", s)
			parts[i] = p
		} else {
			parts[i] = textPart(s)
		}
	}
	n := jinja.NewDict()
	if format == ContentText01Parts {
		n.Set("role", "function")
		n.Set("name", name)
		n.Set("content", jinja.NewList(parts...))
		return n
	}
	for j, k := range m.Keys() {
		switch k {
		case "name":
		case "content":
			n.Set(k, jinja.NewList(parts...))
		default:
			n.Set(k, m.Values()[j])
		}
	}
	if _, ok := m.Get("content"); !ok {
		n.Set("content", jinja.NewList(parts...))
	}
	return n
}
