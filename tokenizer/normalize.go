package tokenizer

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites one text segment (the text between two added tokens).
type normalizer interface {
	normalize(s string) string
}

type normSeq []normalizer

func (q normSeq) normalize(s string) string {
	for _, n := range q {
		s = n.normalize(s)
	}
	return s
}

// unicodeNorm is NFC, NFD, NFKC or NFKD.
type unicodeNorm struct{ form norm.Form }

func (u unicodeNorm) normalize(s string) string { return u.form.String(s) }

// lowercaseNorm lowercases rune by rune, like Rust's char::to_lowercase:
// no context rules (final sigma stays σ), and 'İ' becomes "i̇" (two runes).
type lowercaseNorm struct{}

func (lowercaseNorm) normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r == 'İ' {
			b.WriteString("i\u0307")
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// stripNorm removes leading and/or trailing white space.
type stripNorm struct{ left, right bool }

func (n stripNorm) normalize(s string) string {
	if n.left {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	if n.right {
		s = strings.TrimRightFunc(s, unicode.IsSpace)
	}
	return s
}

// prependNorm prepends a string to non-empty text.
type prependNorm struct{ prefix string }

func (n prependNorm) normalize(s string) string {
	if s == "" {
		return s
	}
	return n.prefix + s
}

// replaceNorm replaces every match of a pattern with a fixed string.
type replaceNorm struct {
	m       matcher
	content string
}

func (n replaceNorm) normalize(s string) string { return replaceAll(n.m, s, n.content) }

// replaceAll replaces the non-overlapping matches of m in s by content.
func replaceAll(m matcher, s, content string) string {
	if lit, ok := m.(literalMatcher); ok {
		if lit == "" {
			return s
		}
		return strings.ReplaceAll(s, string(lit), content)
	}
	spans := m.findAll(s, nil)
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	prev := 0
	for _, sp := range spans {
		b.WriteString(s[prev:sp.start])
		b.WriteString(content)
		prev = sp.end
	}
	b.WriteString(s[prev:])
	return b.String()
}

// buildNormalizer turns a parsed normalizer into a normalizer; nil means none.
func buildNormalizer(c *component, slowRegex bool) (normalizer, error) {
	if c == nil {
		return nil, nil
	}
	switch c.Type {
	case "Sequence":
		var q normSeq
		for i := range c.Normalizers {
			n, err := buildNormalizer(&c.Normalizers[i], slowRegex)
			if err != nil {
				return nil, err
			}
			if n != nil {
				q = append(q, n)
			}
		}
		if len(q) == 0 {
			return nil, nil
		}
		return q, nil
	case "NFC":
		return unicodeNorm{norm.NFC}, nil
	case "NFD":
		return unicodeNorm{norm.NFD}, nil
	case "NFKC":
		return unicodeNorm{norm.NFKC}, nil
	case "NFKD":
		return unicodeNorm{norm.NFKD}, nil
	case "Lowercase":
		return lowercaseNorm{}, nil
	case "Strip":
		return stripNorm{left: c.StripLeft, right: c.StripRight}, nil
	case "Prepend":
		return prependNorm{c.Prepend}, nil
	case "Replace":
		m, err := c.Pattern.matcher(slowRegex)
		if err != nil {
			return nil, fmt.Errorf("Replace normalizer: %w", err)
		}
		return replaceNorm{m: m, content: c.Content}, nil
	default:
		return nil, fmt.Errorf("normalizer: unsupported type %q", c.Type)
	}
}
