package tokenizer

import (
	"fmt"
	"slices"
)

// FromVocab builds a GPT-2 style byte-level BPE tokenizer (the pipeline
// LoadGPT2 builds: GPT-2 regex, ByteLevel pre-tokenizer and decoder, no
// prefix space) from a vocabulary given by id (tokens[id]; "" for an id
// with no token), merges in rank order, and added tokens with their ids.
// bos and eos name the BOS and EOS tokens ("" if unknown); addBOS puts BOS
// in front of encoded text. This is what a GGUF file's tokenizer.ggml.*
// section describes for tokenizer.ggml.model = "gpt2".
func FromVocab(tokens []string, merges [][2]string, added []AddedToken, bos, eos string, addBOS bool) (*Tokenizer, error) {
	isAdded := make(map[int]bool, len(added))
	for _, a := range added {
		isAdded[a.ID] = true
	}
	vocab := make(map[string]int32, len(tokens))
	for id, tok := range tokens {
		if tok == "" || isAdded[id] {
			continue
		}
		if old, dup := vocab[tok]; dup {
			return nil, fmt.Errorf("tokenizer: token %q has ids %d and %d", tok, old, id)
		}
		vocab[tok] = int32(id)
	}
	cfg := &tokenizerConfig{BOS: bos, EOS: eos, AddBOS: addBOS, Decoder: map[int]AddedToken{}}
	t, err := newGPT2Added(vocab, merges, cfg, added)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t.setBOSEOS(cfg)
	return t, nil
}

// Merges returns the BPE merges in rank order, as pairs of tokens (the
// inverse of the merges a tokenizer was built from, a pair listed twice
// appearing once at its last rank).
func (t *Tokenizer) Merges() [][2]string {
	type ranked struct {
		rank int
		a, b int32
	}
	var rs []ranked
	for _, s := range t.model.merges.slots {
		if s.key != emptyKey {
			rs = append(rs, ranked{int(s.val >> 32), int32(s.key >> 32), int32(uint32(s.key))})
		}
	}
	slices.SortFunc(rs, func(x, y ranked) int { return x.rank - y.rank })
	out := make([][2]string, len(rs))
	for i, r := range rs {
		out[i] = [2]string{t.model.idTok[r.a], t.model.idTok[r.b]}
	}
	return out
}
