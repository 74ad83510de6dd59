package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadGPT2 reads a GPT-2 style tokenizer folder without tokenizer.json:
// vocab.json (token -> id), merges.txt and, if present,
// tokenizer_config.json. It builds what Hugging Face's converter for
// GPT2Tokenizer builds: a byte-level BPE without unk, the GPT-2 regex
// pre-tokenizer (ByteLevel with use_regex, add_prefix_space from the
// config), the ByteLevel decoder, and a BOS template only if the config sets
// add_bos_token. Added tokens come from the config's added_tokens_decoder
// (with their ids); the other special tokens it names (bos, eos, unk, pad,
// additional_special_tokens) that are not in the vocabulary get the next
// free ids in that order.
func LoadGPT2(dir string) (*Tokenizer, error) {
	vocabData, err := os.ReadFile(filepath.Join(dir, "vocab.json"))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var vocab map[string]int32
	if err := json.Unmarshal(vocabData, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", filepath.Join(dir, "vocab.json"), err)
	}
	mergesData, err := os.ReadFile(filepath.Join(dir, "merges.txt"))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	merges, err := ParseMerges(string(mergesData))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", filepath.Join(dir, "merges.txt"), err)
	}
	cfg, err := readConfig(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := newGPT2(vocab, merges, cfg)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", dir, err)
	}
	return t, nil
}

// ParseMerges parses a merges.txt file: an optional "#version" line, then
// one merge per line, two tokens separated by a single space. Every line
// counts, including a last one without a newline. (Python transformers'
// slow GPT2Tokenizer drops the last line of the file, assuming it ends with
// a newline; Rust tokenizers, which this follows, does not.)
func ParseMerges(text string) ([][2]string, error) {
	lines := strings.Split(text, "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	merges := make([][2]string, 0, len(lines))
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if strings.HasPrefix(l, "#version") {
			continue
		}
		a, b, ok := strings.Cut(l, " ")
		if !ok || strings.Contains(b, " ") {
			return nil, fmt.Errorf("merges line %d %q is not two tokens separated by one space", i+1, l)
		}
		merges = append(merges, [2]string{a, b})
	}
	return merges, nil
}

// MergesVocab builds the vocabulary a byte-level BPE trained by Hugging Face
// tokenizers has, from its merges alone: ids 0..255 are the 256 byte-level
// runes in GPT-2's bytes_to_unicode order (byteOrder: '!'..'~', '¡'..'¬',
// '®'..'ÿ', then Ā, ā, ... for the remaining bytes), and merge k creates id
// 256+k. Qwen2/Qwen3 and o200k vocabularies are numbered exactly so
// (gpt2_test.go checks it on qwen3's file), which is the evidence for this
// assumption; a vocabulary trained otherwise (Llama 3, DeepSeek-V3) is not.
// A merge whose result already has an id makes the numbering ambiguous and
// is an error.
func MergesVocab(merges [][2]string) (map[string]int32, error) {
	vocab := make(map[string]int32, 256+len(merges))
	for i, b := range byteOrder {
		vocab[byteRuneStr[b]] = int32(i)
	}
	for k, m := range merges {
		tok := m[0] + m[1]
		if old, ok := vocab[tok]; ok {
			return nil, fmt.Errorf("merge %d %q %q makes %q, which already has id %d", k, m[0], m[1], tok, old)
		}
		vocab[tok] = int32(256 + k)
	}
	return vocab, nil
}

// FromMerges builds a GPT-2 style byte-level tokenizer (as LoadGPT2 does)
// from a merges.txt text alone, numbering the vocabulary as MergesVocab
// says, and adds the given tokens with the ids they carry (a negative ID
// takes the next free id). This rebuilds a tokenizer whose vocab.json and
// tokenizer.json are missing, such as MiniMax-M1's from its published
// merges.txt: 256 + 199,744 merges = 200,000 regular tokens. The ids of such
// a tokenizer's special tokens are not in merges.txt; the caller must know
// them (for MiniMax only <end_of_sentence> = 200020 is documented).
func FromMerges(mergesTxt string, added []AddedToken) (*Tokenizer, error) {
	merges, err := ParseMerges(mergesTxt)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	vocab, err := MergesVocab(merges)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	cfg := &tokenizerConfig{Decoder: map[int]AddedToken{}}
	t, err := newGPT2Added(vocab, merges, cfg, added)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

// newGPT2 builds the GPT-2 pipeline with the added tokens of cfg.
func newGPT2(vocab map[string]int32, merges [][2]string, cfg *tokenizerConfig) (*Tokenizer, error) {
	var added []AddedToken
	for _, a := range cfg.Decoder {
		added = append(added, a)
	}
	slices.SortFunc(added, func(a, b AddedToken) int { return a.ID - b.ID })
	for _, name := range append([]string{cfg.BOS, cfg.EOS, cfg.UNK, cfg.PAD}, cfg.Additional...) {
		known := slices.ContainsFunc(added, func(a AddedToken) bool { return a.Content == name })
		if name != "" && !known {
			// A name already in the vocabulary keeps its id and becomes special.
			added = append(added, AddedToken{ID: -1, Content: name, Special: true})
		}
	}
	t, err := newGPT2Added(vocab, merges, cfg, added)
	if err != nil {
		return nil, err
	}
	t.setBOSEOS(cfg)
	return t, nil
}

// newGPT2Added assembles the GPT-2 pipeline (see LoadGPT2) with the given
// added tokens, which keep their ids.
func newGPT2Added(vocab map[string]int32, merges [][2]string, cfg *tokenizerConfig, added []AddedToken) (*Tokenizer, error) {
	model, err := newBPE(vocab, merges, "", "", "")
	if err != nil {
		return nil, err
	}
	yes := true
	pre := &component{Type: "ByteLevel", AddPrefixSpace: &cfg.AddPrefixSpace, UseRegex: &yes}
	dec := &component{Type: "ByteLevel"}
	t, err := build(model, nil, pre, nil, dec, added, true, options{})
	if err != nil {
		return nil, err
	}
	if cfg.AddBOS {
		id, ok := t.TokenToID(cfg.BOS)
		if cfg.BOS == "" || !ok {
			return nil, errors.New("add_bos_token is set but the bos_token is unknown")
		}
		t.post = &templatePost{parts: []templatePart{{ids: []int{id}, toks: []string{cfg.BOS}}, {seq: true}}}
	}
	return t, nil
}
