package tokenizer

import (
	"fmt"
	"strings"
)

// postProcessor adds special tokens around an encoded sequence when
// Encode is asked to (addSpecial). Only single sequences are supported.
type postProcessor interface {
	process(ids []int, toks []string) ([]int, []string)
}

// templatePost is TemplateProcessing's single template, resolved: each part
// is either the sequence (nil ids) or a special token's ids and strings.
type templatePost struct{ parts []templatePart }

type templatePart struct {
	seq  bool
	ids  []int
	toks []string
}

func (p *templatePost) process(ids []int, toks []string) ([]int, []string) {
	var outIDs []int
	var outToks []string
	for _, part := range p.parts {
		if part.seq {
			outIDs = append(outIDs, ids...)
			if toks != nil {
				outToks = append(outToks, toks...)
			}
			continue
		}
		outIDs = append(outIDs, part.ids...)
		if toks != nil {
			outToks = append(outToks, part.toks...)
		}
	}
	return outIDs, outToks
}

type postSeq []postProcessor

func (q postSeq) process(ids []int, toks []string) ([]int, []string) {
	for _, p := range q {
		ids, toks = p.process(ids, toks)
	}
	return ids, toks
}

// buildPostProcessor turns a parsed post_processor into a postProcessor;
// nil means none. ByteLevel only adjusts offsets in the reference, so it
// changes nothing here.
func buildPostProcessor(c *component) (postProcessor, error) {
	if c == nil {
		return nil, nil
	}
	switch c.Type {
	case "ByteLevel":
		return nil, nil
	case "Sequence":
		var q postSeq
		for i := range c.Processors {
			p, err := buildPostProcessor(&c.Processors[i])
			if err != nil {
				return nil, err
			}
			if p != nil {
				q = append(q, p)
			}
		}
		if len(q) == 0 {
			return nil, nil
		}
		return q, nil
	case "TemplateProcessing":
		return buildTemplate(c)
	case "RobertaProcessing", "BertProcessing":
		cls, err := c.tokenPair(c.Cls, "cls")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Type, err)
		}
		sep, err := c.tokenPair(c.Sep, "sep")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Type, err)
		}
		return &templatePost{parts: []templatePart{cls, {seq: true}, sep}}, nil
	default:
		return nil, fmt.Errorf("post_processor: unsupported type %q", c.Type)
	}
}

func buildTemplate(c *component) (postProcessor, error) {
	var items []templateItem
	if err := decodeTemplate(c.Single, &items); err != nil {
		return nil, fmt.Errorf("TemplateProcessing: single: %w", err)
	}
	p := &templatePost{}
	for _, it := range items {
		switch {
		case it.Sequence != nil:
			if it.Sequence.ID != "A" {
				return nil, fmt.Errorf("TemplateProcessing: single template uses sequence %q; only A is possible", it.Sequence.ID)
			}
			p.parts = append(p.parts, templatePart{seq: true})
		case it.SpecialToken != nil:
			st, ok := c.SpecialTokens[it.SpecialToken.ID]
			if !ok {
				return nil, fmt.Errorf("TemplateProcessing: special token %q is not in special_tokens", it.SpecialToken.ID)
			}
			if len(st.IDs) != len(st.Tokens) {
				return nil, fmt.Errorf("TemplateProcessing: special token %q has %d ids and %d tokens", it.SpecialToken.ID, len(st.IDs), len(st.Tokens))
			}
			p.parts = append(p.parts, templatePart{ids: st.IDs, toks: st.Tokens})
		default:
			return nil, fmt.Errorf("TemplateProcessing: template item is neither Sequence nor SpecialToken")
		}
	}
	return p, nil
}

// parseTemplateString parses the string form of a template, "<s>:0 $A:0",
// into items (type ids are irrelevant here and dropped).
func parseTemplateString(s string) ([]templateItem, error) {
	var items []templateItem
	for _, f := range strings.Fields(s) {
		name, _, _ := strings.Cut(f, ":")
		if strings.HasPrefix(name, "$") {
			id := strings.TrimPrefix(name, "$")
			switch id {
			case "", "A", "0":
				id = "A"
			case "B", "1":
				id = "B"
			default:
				return nil, fmt.Errorf("bad sequence %q", f)
			}
			items = append(items, templateItem{Sequence: &templateRef{ID: id}})
		} else {
			items = append(items, templateItem{SpecialToken: &templateRef{ID: name}})
		}
	}
	return items, nil
}
