package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// decoder is one step of the reference's Decoder::decode_chain: it maps the
// list of token strings to a new list. The final text is their
// concatenation.
type decoder interface {
	decodeChain(toks []string) []string
}

type decoderSeq []decoder

func (q decoderSeq) decodeChain(toks []string) []string {
	for _, d := range q {
		toks = d.decodeChain(toks)
	}
	return toks
}

// byteLevelDecoder maps byte-level runes back to bytes and reads the result
// as UTF-8 with from_utf8_lossy rules. A token with a rune outside the
// byte-level alphabet (an added token like "<｜User｜>") contributes its own
// UTF-8 bytes.
type byteLevelDecoder struct{}

func (byteLevelDecoder) decodeChain(toks []string) []string {
	return []string{string(appendLossy(nil, byteLevelBytes(nil, toks)))}
}

// byteLevelBytes appends the bytes the tokens stand for.
func byteLevelBytes(dst []byte, toks []string) []byte {
	for _, t := range toks {
		n := len(dst)
		var ok bool
		if dst, ok = unByteLevel(dst, t); !ok {
			dst = append(dst[:n], t...)
		}
	}
	return dst
}

// byteFallbackDecoder turns runs of <0xNN> tokens back into text. A run that
// is valid UTF-8 becomes that text; otherwise every byte of the run becomes
// one U+FFFD (so one bad byte spoils the characters around it in the run).
type byteFallbackDecoder struct{}

// fallbackByte parses a <0xNN> token as Rust's u8::from_str_radix(_, 16)
// would parse its two middle bytes (which accepts a leading '+').
func fallbackByte(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	hex := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	if t[3] == '+' {
		v, ok := hex(t[4])
		return v, ok
	}
	hi, ok1 := hex(t[3])
	lo, ok2 := hex(t[4])
	return hi<<4 | lo, ok1 && ok2
}

func (byteFallbackDecoder) decodeChain(toks []string) []string {
	out := make([]string, 0, len(toks))
	var run []byte
	flush := func() {
		if len(run) == 0 {
			return
		}
		if utf8.Valid(run) {
			out = append(out, string(run))
		} else {
			for range run {
				out = append(out, "\uFFFD")
			}
		}
		run = run[:0]
	}
	for _, t := range toks {
		if b, ok := fallbackByte(t); ok {
			run = append(run, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// fuseDecoder joins all tokens into one.
type fuseDecoder struct{}

func (fuseDecoder) decodeChain(toks []string) []string { return []string{strings.Join(toks, "")} }

// stripDecoder removes up to start copies of content from the left of each
// token and up to stop from its right.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (d stripDecoder) decodeChain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		rs := []rune(t)
		a := 0
		for a < d.start && a < len(rs) && rs[a] == d.content {
			a++
		}
		b := len(rs)
		for k := 0; k < d.stop && b > a && rs[b-1] == d.content; k++ {
			b--
		}
		out[i] = string(rs[a:b])
	}
	return out
}

// replaceDecoder replaces the matches of a pattern in each token.
type replaceDecoder struct {
	m       matcher
	content string
}

func (d replaceDecoder) decodeChain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = replaceAll(d.m, t, d.content)
	}
	return out
}

// metaspaceDecoder turns the replacement rune back into spaces; in the
// first token it drops them instead unless the prepend scheme is "never".
type metaspaceDecoder struct {
	repl      rune
	dropFirst bool
}

func (d metaspaceDecoder) decodeChain(toks []string) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		if i == 0 && d.dropFirst {
			out[i] = strings.ReplaceAll(t, string(d.repl), "")
		} else {
			out[i] = strings.ReplaceAll(t, string(d.repl), " ")
		}
	}
	return out
}

// buildDecoder turns a parsed decoder into a decoder; nil means none.
func buildDecoder(c *component, slowRegex bool) (decoder, error) {
	if c == nil {
		return nil, nil
	}
	switch c.Type {
	case "Sequence":
		var q decoderSeq
		for i := range c.Decoders {
			d, err := buildDecoder(&c.Decoders[i], slowRegex)
			if err != nil {
				return nil, err
			}
			q = append(q, d)
		}
		return q, nil
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		r, err := singleRune(c.Content, "content")
		if err != nil {
			return nil, fmt.Errorf("Strip decoder: %w", err)
		}
		return stripDecoder{content: r, start: c.Start, stop: c.Stop}, nil
	case "Replace":
		m, err := c.Pattern.matcher(slowRegex)
		if err != nil {
			return nil, fmt.Errorf("Replace decoder: %w", err)
		}
		return replaceDecoder{m: m, content: c.Content}, nil
	case "Metaspace":
		repl, err := c.replacementRune()
		if err != nil {
			return nil, fmt.Errorf("Metaspace decoder: %w", err)
		}
		scheme, err := c.prependScheme()
		if err != nil {
			return nil, fmt.Errorf("Metaspace decoder: %w", err)
		}
		return metaspaceDecoder{repl: repl, dropFirst: scheme != "never"}, nil
	default:
		return nil, fmt.Errorf("decoder: unsupported type %q", c.Type)
	}
}
