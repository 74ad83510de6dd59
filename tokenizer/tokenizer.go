package tokenizer

import (
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Tokenizer encodes text to token ids and decodes ids to text. It is safe
// for concurrent use.
type Tokenizer struct {
	model *bpe
	norm  normalizer // nil: none
	pre   *preTokenizerSeq
	post  postProcessor // nil: none
	dec   decoder       // nil: tokens are joined with spaces
	added *addedVocab

	bos, eos int // from tokenizer_config.json, -1 if unknown

	// What the stream decoder must hold back (see StreamDecoder).
	streamByteLevel bool   // a ByteLevel decoder: unfinished UTF-8 at the end
	streamFallback  bool   // a ByteFallback decoder: a trailing run of <0xNN>
	stripRunes      []rune // what the Strip decoders remove

	states sync.Pool // *encodeState
}

// encodeState is the scratch memory of one Encode call.
type encodeState struct {
	splits, subSplits []addedSplit
	pieces, pieces2   []piece
	spans             []span
	segs, segs2       []seg
	ids32             []int32
	syms              []int32
	ranks             []uint32
	newIDs            []int32
	prev, next        []int32
	alive             []bool
	heap              []heapItem
	buf               []byte
}

func (t *Tokenizer) getState() *encodeState {
	if st, ok := t.states.Get().(*encodeState); ok {
		return st
	}
	return &encodeState{}
}

// Encode returns the token ids of text. With addSpecial the post-processor
// adds its special tokens (for example a BOS); tokenizers without a
// TemplateProcessing-like post-processor add nothing. Invalid UTF-8 in text
// is first replaced by U+FFFD.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int {
	ids, _ := t.encode(text, addSpecial, false)
	return ids
}

// EncodeTokens is Encode that also returns the token strings (vocabulary
// spellings such as "Ġworld" or "<0xE4>", and the matched text of added
// tokens).
func (t *Tokenizer) EncodeTokens(text string, addSpecial bool) ([]int, []string) {
	return t.encode(text, addSpecial, true)
}

func (t *Tokenizer) encode(text string, addSpecial, wantToks bool) ([]int, []string) {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	st := t.getState()
	defer t.states.Put(st)
	ids := make([]int, 0, len(text)/3+1)
	var toks []string
	if wantToks {
		toks = []string{} // non-nil: the post-processor adds token strings too
	}
	st.splits = t.added.split(t.added.raw, text, st.splits[:0])
	for _, sp := range st.splits {
		if sp.id >= 0 {
			ids = append(ids, sp.id)
			if wantToks {
				toks = append(toks, text[sp.start:sp.end])
			}
			continue
		}
		seg := text[sp.start:sp.end]
		if t.norm != nil {
			seg = t.norm.normalize(seg)
		}
		if t.added.norm.empty() {
			ids, toks = t.encodeText(ids, toks, piece{s: seg, first: sp.start == 0}, wantToks, st)
			continue
		}
		st.subSplits = t.added.split(t.added.norm, seg, st.subSplits[:0])
		for _, sub := range st.subSplits {
			if sub.id >= 0 {
				ids = append(ids, sub.id)
				if wantToks {
					toks = append(toks, seg[sub.start:sub.end])
				}
				continue
			}
			p := piece{s: seg[sub.start:sub.end], first: sp.start == 0 && sub.start == 0}
			ids, toks = t.encodeText(ids, toks, p, wantToks, st)
		}
	}
	if addSpecial && t.post != nil {
		ids, toks = t.post.process(ids, toks)
	}
	return ids, toks
}

// encodeText pre-tokenizes one normalized segment and runs the model on
// each piece.
func (t *Tokenizer) encodeText(ids []int, toks []string, seg piece, wantToks bool, st *encodeState) ([]int, []string) {
	st.pieces = t.pre.run(st.pieces[:0], seg, st)
	for _, p := range st.pieces {
		st.ids32 = t.model.appendWord(st.ids32[:0], p.s, st)
		for _, id := range st.ids32 {
			ids = append(ids, int(id))
			if wantToks {
				tok, _ := t.model.token(id)
				toks = append(toks, tok)
			}
		}
	}
	return ids, toks
}

// Decode returns the text of ids. Ids that are neither in the vocabulary nor
// added tokens are dropped; with skipSpecial, so are special tokens. Bytes
// that do not form valid UTF-8 become U+FFFD (one per maximal invalid
// subpart, as in Rust's from_utf8_lossy).
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if tok, ok := t.tokenFor(id, skipSpecial); ok {
			toks = append(toks, tok)
		}
	}
	return t.decodeTokens(toks)
}

// tokenFor returns the string Decode uses for id, or false if Decode drops
// it. Like the reference, skipSpecial drops any token whose text is that of
// a special added token.
func (t *Tokenizer) tokenFor(id int, skipSpecial bool) (string, bool) {
	tok, ok := t.IDToToken(id)
	if !ok || (skipSpecial && t.added.special[tok]) {
		return "", false
	}
	return tok, true
}

func (t *Tokenizer) decodeTokens(toks []string) string {
	if t.dec == nil {
		return strings.Join(toks, " ")
	}
	return strings.Join(t.dec.decodeChain(toks), "")
}

// IDToToken returns the token string of id: an added token's text, or the
// vocabulary spelling of a model token. As in the reference, an added token
// with normalized true whose text the normalizer changes is returned in its
// normalized form (which is also what Decode feeds to the decoder).
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if a, ok := t.added.byID[id]; ok {
		if f, ok := t.added.form[id]; ok {
			return f, true
		}
		return a.Content, true
	}
	if id < 0 || id > 1<<31-1 {
		return "", false
	}
	return t.model.token(int32(id))
}

// TokenToID returns the id of a token string (an added token's text or a
// vocabulary spelling).
func (t *Tokenizer) TokenToID(tok string) (int, bool) {
	if id, ok := t.added.byContent[tok]; ok {
		return id, true
	}
	id, ok := t.model.vocab[tok]
	return int(id), ok
}

// VocabSize returns one more than the largest id in use (model vocabulary
// and added tokens), the number of rows an embedding table needs at least.
func (t *Tokenizer) VocabSize() int {
	n := len(t.model.idTok)
	for id := range t.added.byID {
		n = max(n, id+1)
	}
	return n
}

// AddedTokens returns the added tokens, sorted by id.
func (t *Tokenizer) AddedTokens() []AddedToken { return t.added.tokens() }

// SpecialTokenIDs returns the ids of the special added tokens, sorted.
func (t *Tokenizer) SpecialTokenIDs() []int {
	var ids []int
	for c := range t.added.special {
		if id, ok := t.added.byContent[c]; ok {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids
}

// IsSpecial reports whether id is a special added token.
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.added.byID[id]
	return ok && t.added.special[a.Content]
}

// BOS returns the id of the beginning-of-sequence token named by
// tokenizer_config.json, if the tokenizer was loaded with one.
func (t *Tokenizer) BOS() (int, bool) { return t.bos, t.bos >= 0 }

// EOS returns the id of the end-of-sequence token named by
// tokenizer_config.json, if the tokenizer was loaded with one. Generation
// should also stop at the ids the model's generation_config.json lists.
func (t *Tokenizer) EOS() (int, bool) { return t.eos, t.eos >= 0 }

func (t *Tokenizer) setBOSEOS(c *tokenizerConfig) {
	t.bos, t.eos = -1, -1
	if id, ok := t.TokenToID(c.BOS); ok && c.BOS != "" {
		t.bos = id
	}
	if id, ok := t.TokenToID(c.EOS); ok && c.EOS != "" {
		t.eos = id
	}
}
