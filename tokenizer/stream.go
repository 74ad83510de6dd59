package tokenizer

import "strings"

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
// emitted, plus one token before it as context (so decoders that treat the
// first token specially, like Strip or Metaspace, see the same first token
// in both decodes whose difference is emitted).
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
		last := d.toks[len(d.toks)-1]
		d.toks = append(d.toks[:0], last)
		d.sent = len(d.t.decodeTokens(d.toks))
	}
	return out
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
