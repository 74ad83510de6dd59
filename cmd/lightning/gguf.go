package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lightninglm/lightning/format/gguf"
	"github.com/lightninglm/lightning/model/builtin"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/tokenizer"
	"github.com/lightninglm/lightning/tokenizer/chat"
)

// The tokenizer section of a GGUF file (llama.cpp's tokenizer.ggml.*), for
// tokenizer.ggml.model = "gpt2": tokens by id, their types, merges as
// "a b" strings, the BOS/EOS ids and the chat template.
const (
	keyTokModel     = "tokenizer.ggml.model"
	tokModelNone    = "none" // llama.cpp's tokenizer.ggml.model of a model without a vocabulary
	keyTokPre       = "tokenizer.ggml.pre"
	keyTokTokens    = "tokenizer.ggml.tokens"
	keyTokTypes     = "tokenizer.ggml.token_type"
	keyTokMerges    = "tokenizer.ggml.merges"
	keyTokBOS       = "tokenizer.ggml.bos_token_id"
	keyTokEOS       = "tokenizer.ggml.eos_token_id"
	keyTokAddBOS    = "tokenizer.ggml.add_bos_token"
	keyChatTemplate = "tokenizer.chat_template"
)

// llama.cpp's token types (llama_token_type).
const (
	tokNormal      = 1
	tokControl     = 3
	tokUserDefined = 4
	tokUnused      = 5
)

// loadTokenizer reads the tokenizer of a model folder, of a GGUF file's
// metadata, or of the built-in model ("").
func loadTokenizer(path string) (*tokenizer.Tokenizer, error) {
	if path == "" {
		return builtin.Tokenizer()
	}
	if !minimax01.IsGGUF(path) {
		return tokenizer.Load(path)
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ggufTokenizer(f.Metadata(), path)
}

// ggufTokenizer builds the tokenizer a GGUF tokenizer section describes.
func ggufTokenizer(m *gguf.Metadata, path string) (*tokenizer.Tokenizer, error) {
	v, err := ggufVocab(m, path)
	if err != nil {
		return nil, err
	}
	t, err := v.Tokenizer()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ggufVocab reads a GGUF tokenizer section. Lightning's GPT-2 byte-level
// pipeline is the one MiniMax-01's GPT2Tokenizer uses, so a "gpt2" model is
// required; tokenizer.ggml.pre picks the split regex (tokenizer.Vocab.Pre).
func ggufVocab(m *gguf.Metadata, path string) (*tokenizer.Vocab, error) {
	model, err := m.String(keyTokModel)
	if err != nil {
		return nil, fmt.Errorf("%s: no tokenizer section (%v)", path, err)
	}
	if model == tokModelNone {
		return nil, fmt.Errorf("%s: no tokenizer (%s is %q: the model was written without a vocabulary)", path, keyTokModel, model)
	}
	if model != "gpt2" {
		return nil, fmt.Errorf("%s: %s is %q; Lightning reads byte-level BPE (\"gpt2\") tokenizers only", path, keyTokModel, model)
	}
	tokens, err := m.Strings(keyTokTokens)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	types, err := m.Ints(keyTokTypes)
	if err != nil || len(types) != len(tokens) {
		return nil, fmt.Errorf("%s: %s must list a type for each of the %d tokens (%v)", path, keyTokTypes, len(tokens), err)
	}
	mergeStrs, err := m.Strings(keyTokMerges)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	v := &tokenizer.Vocab{Tokens: make([]string, len(tokens)), Merges: make([][2]string, len(mergeStrs))}
	for i, s := range mergeStrs {
		a, b, ok := strings.Cut(s, " ")
		if !ok || strings.Contains(b, " ") {
			return nil, fmt.Errorf("%s: %s[%d] %q is not two tokens separated by a space", path, keyTokMerges, i, s)
		}
		v.Merges[i] = [2]string{a, b}
	}
	for id, typ := range types {
		switch typ {
		case tokUnused:
			continue
		case tokControl, tokUserDefined:
			v.Added = append(v.Added, tokenizer.AddedToken{ID: id, Content: tokens[id], Special: typ == tokControl})
		}
		v.Tokens[id] = tokens[id]
	}
	name := func(key string) string {
		id, err := m.Uint(key)
		if err != nil || id >= uint64(len(tokens)) {
			return ""
		}
		return tokens[id]
	}
	v.BOS, v.EOS = name(keyTokBOS), name(keyTokEOS)
	v.AddBOS, _ = m.Bool(keyTokAddBOS)
	v.Pre, _ = m.String(keyTokPre)
	return v, nil
}

// loadChatConfig reads the chat templates of a model folder
// (tokenizer_config.json), of a GGUF file (tokenizer.chat_template) or of
// the built-in model (""). The error wraps os.ErrNotExist when there is
// none.
func loadChatConfig(path string) (*chat.Config, error) {
	if path == "" {
		return builtin.ChatConfig()
	}
	if !minimax01.IsGGUF(path) {
		return chat.LoadConfig(filepath.Join(path, "tokenizer_config.json"))
	}
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := f.Metadata()
	tmpl, err := m.String(keyChatTemplate)
	if err != nil {
		return nil, fmt.Errorf("%s: no %s: %w", path, keyChatTemplate, os.ErrNotExist)
	}
	cfg := map[string]any{"chat_template": tmpl}
	if tokens, err := m.Strings(keyTokTokens); err == nil {
		for key, field := range map[string]string{keyTokBOS: "bos_token", keyTokEOS: "eos_token"} {
			if id, err := m.Uint(key); err == nil && id < uint64(len(tokens)) {
				cfg[field] = tokens[id]
			}
		}
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	c, err := chat.ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", path, keyChatTemplate, err)
	}
	return c, nil
}

// ggufTokenizerMeta is the tokenizer section for a model folder's (or the
// built-in model's, dir "") tokenizer (and chat template, when it has one), as llama.cpp's converter
// writes it for a GPT-2 style vocabulary: every id below vocab gets a token
// ("[PAD<id>]", type unused, for ids the tokenizer lacks). What the section
// cannot say about the tokenizer is reported through warn.
func ggufTokenizerMeta(dir string, vocab int, warn func(string)) (*gguf.Metadata, error) {
	tok, err := loadTokenizer(dir)
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() > vocab {
		return nil, fmt.Errorf("the tokenizer has %d ids but the model's vocabulary is %d", tok.VocabSize(), vocab)
	}
	v, notes := tok.Vocab()
	for _, n := range notes {
		warn("tokenizer: " + n)
	}
	special := map[int]bool{}
	for _, a := range v.Added {
		special[a.ID] = a.Special
	}
	tokens, types := make([]string, vocab), make([]int32, vocab)
	for id := range vocab {
		sp, isAdded := special[id]
		switch {
		case id >= len(v.Tokens) || v.Tokens[id] == "":
			tokens[id], types[id] = fmt.Sprintf("[PAD%d]", id), tokUnused
		case isAdded && sp:
			tokens[id], types[id] = v.Tokens[id], tokControl
		case isAdded:
			tokens[id], types[id] = v.Tokens[id], tokUserDefined
		default:
			tokens[id], types[id] = v.Tokens[id], tokNormal
		}
	}
	ms := make([]string, len(v.Merges))
	for i, p := range v.Merges {
		ms[i] = p[0] + " " + p[1]
	}
	m := gguf.NewMetadata()
	m.Set(keyTokModel, "gpt2")
	m.Set(keyTokPre, v.Pre)
	m.Set(keyTokTokens, gguf.Array{Elem: gguf.TypeString, Values: tokens})
	m.Set(keyTokTypes, gguf.Array{Elem: gguf.TypeInt32, Values: types})
	m.Set(keyTokMerges, gguf.Array{Elem: gguf.TypeString, Values: ms})
	if id, ok := tok.BOS(); ok {
		m.Set(keyTokBOS, uint32(id))
	}
	if id, ok := tok.EOS(); ok {
		m.Set(keyTokEOS, uint32(id))
	}
	m.Set(keyTokAddBOS, v.AddBOS)
	if cc, err := loadChatConfig(dir); err == nil {
		if src, ok := cc.Templates["default"]; ok {
			m.Set(keyChatTemplate, src)
		}
	}
	return m, nil
}

// tokenizerFiles are the files of a model folder that make up its tokenizer
// and chat template, and the generation settings beside them.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "chat_template.jinja", "special_tokens_map.json", "generation_config.json"}

// writeTokenizerFiles gives the Hugging Face folder dir the tokenizer of a
// model: a folder's tokenizer files are copied; a GGUF file's tokenizer
// section (and chat template) become tokenizer.json and
// tokenizer_config.json. It returns the names of the files written.
func writeTokenizerFiles(src, dir string) ([]string, error) {
	var names []string
	if src == "" { // the built-in model: its embedded tokenizer files
		for _, f := range builtin.Files() {
			if !slices.Contains(tokenizerFiles, f.Name) {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644); err != nil {
				return names, err
			}
			names = append(names, f.Name)
		}
		return names, nil
	}
	if !minimax01.IsGGUF(src) {
		for _, n := range tokenizerFiles {
			b, err := os.ReadFile(filepath.Join(src, n))
			if os.IsNotExist(err) {
				continue
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, n), b, 0o644)
			}
			if err != nil {
				return names, err
			}
			names = append(names, n)
		}
		return names, nil
	}
	f, err := gguf.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := f.Metadata()
	v, err := ggufVocab(m, src)
	if err != nil {
		return nil, err
	}
	tj, err := v.TokenizerJSON()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	tmpl, _ := m.String(keyChatTemplate)
	cfg, err := v.TokenizerConfigJSON(tmpl)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	for _, out := range []struct {
		name string
		data []byte
	}{{"tokenizer.json", tj}, {"tokenizer_config.json", cfg}} {
		if err := os.WriteFile(filepath.Join(dir, out.name), out.data, 0o644); err != nil {
			return names, err
		}
		names = append(names, out.name)
	}
	return names, nil
}
