package tokenizer

import (
	"slices"
	"strings"
)

// StreamDecoder turns ids into text one id at a time, for streaming
// generated text. After each Add, the text returned so far is exactly
// Decode(ids so far) minus a held-back tail that later ids can still
// change:
//
//   - with a ByteLevel decoder, an unfinished UTF-8 sequence at the end
//     (which Decode shows as one U+FFFD);
//   - with a ByteFallback decoder, a trailing run of <0xNN> tokens, because
//     the reference decodes each run as a whole and one invalid byte turns
//     every byte of the run into U+FFFD (so "🫠" followed by <0xF0> decodes
//     as five U+FFFD).
//
// Flush returns the tail. The decoder keeps only a short window of tokens:
// each Add decodes the tokens since the last point where everything was
// emitted, plus context tokens before it (usually one), so that decoders
// that treat the start of the text specially, like Strip or Metaspace, act
// the same on both decodes whose difference is emitted.
type StreamDecoder struct {
	t    *Tokenizer
	skip bool
	toks []string // window of token strings
	sent int      // bytes of decodeTokens(toks) already returned
	buf  []byte
}

// NewStreamDecoder returns a stream decoder; skipSpecial is as for Decode.
func (t *Tokenizer) NewStreamDecoder(skipSpecial bool) *StreamDecoder {
	return &StreamDecoder{t: t, skip: skipSpecial}
}

// Add feeds the next id and returns the text it completes, often "".
func (d *StreamDecoder) Add(id int) string {
	tok, ok := d.t.tokenFor(id, d.skip)
	if !ok {
		return ""
	}
	d.toks = append(d.toks, tok)
	s := d.t.decodeTokens(d.toks)
	stable := max(d.stableLen(s), d.sent)
	out := s[d.sent:stable]
	d.sent = stable
	if stable == len(s) && len(d.toks) > 1 {
		d.reanchor()
	}
	return out
}

// reanchor drops the window's tokens except a context suffix: the last
// token, or more when a Strip decoder could remove the suffix's text
// entirely (its decode must show a rune Strip does not remove, so that
// stripping the window and stripping the window plus new tokens remove the
// same text).
func (d *StreamDecoder) reanchor() {
	k := len(d.toks) - 1
	for ; k > 0; k-- {
		txt := d.t.decodeTokens(d.toks[k:])
		if strings.IndexFunc(txt, func(r rune) bool { return !slices.Contains(d.t.stripRunes, r) }) >= 0 {
			break
		}
	}
	if k == 0 {
		return
	}
	d.toks = append(d.toks[:0], d.toks[k:]...)
	d.sent = len(d.t.decodeTokens(d.toks))
}

// Flush returns the held-back tail (as Decode shows it) and starts over.
func (d *StreamDecoder) Flush() string {
	s := d.t.decodeTokens(d.toks)
	out := ""
	if d.sent < len(s) {
		out = s[d.sent:]
	}
	d.toks, d.sent = d.toks[:0], 0
	return out
}

// stableLen returns how much of s, the decode of the window, no later id can
// change.
func (d *StreamDecoder) stableLen(s string) int {
	n := len(s)
	if d.t.streamFallback {
		j := len(d.toks)
		for j > 0 {
			if _, ok := fallbackByte(d.toks[j-1]); !ok {
				break
			}
			j--
		}
		if j < len(d.toks) {
			pre := d.t.decodeTokens(d.toks[:j])
			n = commonPrefix(s, pre)
		}
	}
	if d.t.streamByteLevel {
		d.buf = byteLevelBytes(d.buf[:0], d.toks)
		if incompleteTail(d.buf) > 0 && strings.HasSuffix(s[:n], "\uFFFD") {
			n -= len("\uFFFD")
		}
	}
	return n
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
