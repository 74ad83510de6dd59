package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// fileJSON is the top level of a tokenizer.json file.
type fileJSON struct {
	Version       string          `json:"version"`
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	AddedTokens   []addedJSON     `json:"added_tokens"`
	Normalizer    *component      `json:"normalizer"`
	PreTokenizer  *component      `json:"pre_tokenizer"`
	PostProcessor *component      `json:"post_processor"`
	Decoder       *component      `json:"decoder"`
	Model         *modelJSON      `json:"model"`
}

type addedJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   json.RawMessage `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

// component is any normalizer, pre-tokenizer, post-processor or decoder of
// a tokenizer.json file; each type reads the fields it needs.
type component struct {
	Type string `json:"type"`

	PreTokenizers []component `json:"pretokenizers"`
	Normalizers   []component `json:"normalizers"`
	Decoders      []component `json:"decoders"`
	Processors    []component `json:"processors"`

	AddPrefixSpace *bool `json:"add_prefix_space"` // ByteLevel, Metaspace (legacy)
	UseRegex       *bool `json:"use_regex"`        // ByteLevel

	Pattern          *patternJSON `json:"pattern"`           // Split, Replace
	Behavior         string       `json:"behavior"`          // Split, Punctuation
	Invert           bool         `json:"invert"`            // Split
	Content          string       `json:"content"`           // Replace, Strip decoder
	IndividualDigits bool         `json:"individual_digits"` // Digits
	Replacement      string       `json:"replacement"`       // Metaspace
	PrependScheme    string       `json:"prepend_scheme"`    // Metaspace
	Split            *bool        `json:"split"`             // Metaspace
	Start            int          `json:"start"`             // Strip decoder
	Stop             int          `json:"stop"`              // Strip decoder
	StripLeft        bool         `json:"strip_left"`        // Strip normalizer
	StripRight       bool         `json:"strip_right"`       // Strip normalizer
	Prepend          string       `json:"prepend"`           // Prepend normalizer

	Single        json.RawMessage            `json:"single"`         // TemplateProcessing
	SpecialTokens map[string]templateSpecial `json:"special_tokens"` // TemplateProcessing
	Sep           json.RawMessage            `json:"sep"`            // Roberta/BertProcessing: [token, id]
	Cls           json.RawMessage            `json:"cls"`            // Roberta/BertProcessing
}

type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type templateItem struct {
	SpecialToken *templateRef `json:"SpecialToken"`
	Sequence     *templateRef `json:"Sequence"`
}

type templateRef struct {
	ID string `json:"id"`
}

type templateSpecial struct {
	ID     string   `json:"id"`
	IDs    []int    `json:"ids"`
	Tokens []string `json:"tokens"`
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func singleRune(s, field string) (rune, error) {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || n != len(s) {
		return 0, fmt.Errorf("%s %q is not a single character", field, s)
	}
	return r, nil
}

func (c *component) replacementRune() (rune, error) {
	return singleRune(c.Replacement, "replacement")
}

// prependScheme reads Metaspace's prepend_scheme (default "always"). The
// legacy add_prefix_space: false is accepted only beside "never", as in the
// reference; add_prefix_space: true changes nothing.
func (c *component) prependScheme() (string, error) {
	scheme := c.PrependScheme
	switch scheme {
	case "":
		scheme = "always"
	case "always", "first", "never":
	default:
		return "", fmt.Errorf("unknown prepend_scheme %q", c.PrependScheme)
	}
	if c.AddPrefixSpace != nil && !*c.AddPrefixSpace && scheme != "never" {
		return "", errors.New("add_prefix_space does not match declared prepend_scheme")
	}
	return scheme, nil
}

// tokenPair reads a Roberta/Bert [token, id] pair as a template part.
func (c *component) tokenPair(raw json.RawMessage, field string) (templatePart, error) {
	var pair [2]json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil {
		return templatePart{}, fmt.Errorf("%s: %w", field, err)
	}
	var tok string
	var id int
	if err := json.Unmarshal(pair[0], &tok); err != nil {
		return templatePart{}, fmt.Errorf("%s: %w", field, err)
	}
	if err := json.Unmarshal(pair[1], &id); err != nil {
		return templatePart{}, fmt.Errorf("%s: %w", field, err)
	}
	return templatePart{ids: []int{id}, toks: []string{tok}}, nil
}

// decodeTemplate reads a template in either of its forms: a list of items,
// or the string form "<s>:0 $A:0".
func decodeTemplate(raw json.RawMessage, items *[]templateItem) error {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		it, err := parseTemplateString(s)
		*items = it
		return err
	}
	return json.Unmarshal(raw, items)
}

// matcher compiles a Split/Replace pattern.
func (p *patternJSON) matcher(slowRegex bool) (matcher, error) {
	switch {
	case p == nil:
		return nil, errors.New("missing pattern")
	case p.String != nil:
		return literalMatcher(*p.String), nil
	case p.Regex != nil:
		return compileRegex(*p.Regex, slowRegex)
	}
	return nil, errors.New("pattern is neither String nor Regex")
}

// options are internal loading options (tests use slowRegex to run every
// regex through regexp2).
type options struct {
	slowRegex bool
}

// Load reads a tokenizer from a tokenizer.json file or from a folder. A
// folder must hold tokenizer.json or, failing that, the GPT-2 style pair
// vocab.json + merges.txt (see LoadGPT2). A tokenizer_config.json in the same
// folder supplies the BOS and EOS token names (BOS, EOS).
func Load(path string) (*Tokenizer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	dir, file := path, ""
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "tokenizer.json")); err == nil {
			file = filepath.Join(path, "tokenizer.json")
		} else if _, err := os.Stat(filepath.Join(path, "vocab.json")); err == nil {
			return LoadGPT2(path)
		} else {
			return nil, fmt.Errorf("tokenizer: %s has neither tokenizer.json nor vocab.json + merges.txt", path)
		}
	} else {
		dir, file = filepath.Dir(path), path
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := FromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", file, err)
	}
	cfg, err := readConfig(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t.setBOSEOS(cfg)
	return t, nil
}

// FromFiles builds a tokenizer from the contents of a tokenizer.json file
// and of the tokenizer_config.json beside it (which names BOS and EOS), as
// Load does from a folder holding both.
func FromFiles(tokenizerJSON, tokenizerConfigJSON []byte) (*Tokenizer, error) {
	t, err := FromJSON(tokenizerJSON)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json: %w", err)
	}
	cfg, err := parseConfig("tokenizer_config.json", tokenizerConfigJSON)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t.setBOSEOS(cfg)
	return t, nil
}

// FromJSON builds a tokenizer from the contents of a tokenizer.json file.
func FromJSON(data []byte) (*Tokenizer, error) { return fromJSON(data, options{}) }

func fromJSON(data []byte, opt options) (*Tokenizer, error) {
	// The vocab and merges are parsed by jsonscan.go; the rest, small, by
	// encoding/json.
	top, modelParts, err := splitTokenizerJSON(data)
	if err != nil {
		return nil, err
	}
	var f fileJSON
	if err := unmarshalParts(top, &f); err != nil {
		return nil, err
	}
	if len(modelParts) > 0 {
		f.Model = &modelJSON{Vocab: modelParts["vocab"], Merges: modelParts["merges"]}
		delete(modelParts, "vocab")
		delete(modelParts, "merges")
		if err := unmarshalParts(modelParts, f.Model); err != nil {
			return nil, fmt.Errorf("model: %w", err)
		}
	}
	if f.Version != "" && f.Version != "1.0" {
		return nil, fmt.Errorf("unknown tokenizer.json version %q", f.Version)
	}
	if !isNull(f.Truncation) {
		return nil, errors.New("truncation is set; truncating encodings is not supported")
	}
	if !isNull(f.Padding) {
		return nil, errors.New("padding is set; padding encodings is not supported")
	}
	if f.Model == nil {
		return nil, errors.New("missing model")
	}
	m := f.Model
	if m.Type != "BPE" && !(m.Type == "" && m.Merges != nil) {
		return nil, fmt.Errorf("model: unsupported type %q (only BPE)", m.Type)
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, fmt.Errorf("model: dropout %v is not supported", *m.Dropout)
	}
	if isNull(m.Vocab) {
		return nil, errors.New("model: missing vocab")
	}
	vocab, err := parseVocab(m.Vocab)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	merges, err := parseMergesJSON(m.Merges)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	model, err := newBPE(vocab, merges, str(m.UnkToken), str(m.ContinuingSubwordPrefix), str(m.EndOfWordSuffix))
	if err != nil {
		return nil, err
	}
	model.fuseUnk, model.byteFallback, model.ignoreMerges = m.FuseUnk, m.ByteFallback, m.IgnoreMerges
	added := make([]AddedToken, len(f.AddedTokens))
	for i, a := range f.AddedTokens {
		added[i] = AddedToken{ID: a.ID, Content: a.Content, Special: a.Special, SingleWord: a.SingleWord,
			LStrip: a.LStrip, RStrip: a.RStrip, Normalized: a.Normalized}
	}
	return build(model, f.Normalizer, f.PreTokenizer, f.PostProcessor, f.Decoder, added, false, opt)
}

// unmarshalParts decodes an object given as its fields' raw values.
func unmarshalParts(parts map[string][]byte, v any) error {
	obj := make(map[string]json.RawMessage, len(parts))
	for k, p := range parts {
		obj[k] = p
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func isNull(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) == 0 || string(s) == "null"
}

// build assembles a tokenizer from its parts.
func build(model *bpe, normC, preC, postC, decC *component, added []AddedToken, keepIDs bool, opt options) (*Tokenizer, error) {
	norm, err := buildNormalizer(normC, opt.slowRegex)
	if err != nil {
		return nil, err
	}
	pre, err := buildPreTokenizer(preC, opt.slowRegex)
	if err != nil {
		return nil, err
	}
	post, err := buildPostProcessor(postC)
	if err != nil {
		return nil, err
	}
	dec, err := buildDecoder(decC, opt.slowRegex)
	if err != nil {
		return nil, err
	}
	if pre.byteLevel {
		model.setByteLevel()
	}
	t := &Tokenizer{model: model, norm: norm, pre: pre, post: post, dec: dec, bos: -1, eos: -1}
	t.added = newAddedVocab(added, func(s string) (int, bool) {
		id, ok := model.vocab[s]
		return int(id), ok
	}, len(model.vocab), norm, keepIDs)
	t.streamByteLevel = containsDecoder(dec, func(d decoder) bool { _, ok := d.(byteLevelDecoder); return ok })
	t.streamFallback = containsDecoder(dec, func(d decoder) bool { _, ok := d.(byteFallbackDecoder); return ok })
	containsDecoder(dec, func(d decoder) bool {
		if s, ok := d.(stripDecoder); ok && s.start > 0 {
			t.stripRunes = append(t.stripRunes, s.content)
		}
		return false
	})
	return t, nil
}

func containsDecoder(d decoder, f func(decoder) bool) bool {
	if q, ok := d.(decoderSeq); ok {
		for _, x := range q {
			if containsDecoder(x, f) {
				return true
			}
		}
		return false
	}
	return d != nil && f(d)
}

// tokenizerConfig holds the fields of tokenizer_config.json this package
// reads.
type tokenizerConfig struct {
	BOS, EOS, UNK, PAD string
	Additional         []string
	AddBOS             bool
	AddPrefixSpace     bool
	Decoder            map[int]AddedToken // added_tokens_decoder
}

// readConfig reads tokenizer_config.json; a missing file gives a zero config.
func readConfig(path string) (*tokenizerConfig, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &tokenizerConfig{}, nil
	}
	if err != nil {
		return nil, err
	}
	return parseConfig(path, data)
}

// parseConfig parses the contents of tokenizer_config.json; path names it in
// errors.
func parseConfig(path string, data []byte) (*tokenizerConfig, error) {
	var raw struct {
		BOS            json.RawMessage            `json:"bos_token"`
		EOS            json.RawMessage            `json:"eos_token"`
		UNK            json.RawMessage            `json:"unk_token"`
		PAD            json.RawMessage            `json:"pad_token"`
		Additional     []json.RawMessage          `json:"additional_special_tokens"`
		AddBOS         *bool                      `json:"add_bos_token"`
		AddPrefixSpace *bool                      `json:"add_prefix_space"`
		Decoder        map[string]json.RawMessage `json:"added_tokens_decoder"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &tokenizerConfig{Decoder: map[int]AddedToken{}}
	var err error
	for _, f := range []struct {
		raw json.RawMessage
		dst *string
	}{{raw.BOS, &c.BOS}, {raw.EOS, &c.EOS}, {raw.UNK, &c.UNK}, {raw.PAD, &c.PAD}} {
		if *f.dst, err = tokenName(f.raw); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	for _, a := range raw.Additional {
		s, err := tokenName(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		c.Additional = append(c.Additional, s)
	}
	c.AddBOS = raw.AddBOS != nil && *raw.AddBOS
	c.AddPrefixSpace = raw.AddPrefixSpace != nil && *raw.AddPrefixSpace
	for k, v := range raw.Decoder {
		var id int
		if _, err := fmt.Sscan(k, &id); err != nil {
			return nil, fmt.Errorf("%s: added_tokens_decoder key %q: %w", path, k, err)
		}
		var a addedJSON
		if err := json.Unmarshal(v, &a); err != nil {
			return nil, fmt.Errorf("%s: added_tokens_decoder %q: %w", path, k, err)
		}
		c.Decoder[id] = AddedToken{ID: id, Content: a.Content, Special: a.Special, SingleWord: a.SingleWord,
			LStrip: a.LStrip, RStrip: a.RStrip, Normalized: a.Normalized}
	}
	return c, nil
}

// tokenName reads a special token given as a string or as an AddedToken
// object ({"content": ...}); null or absent gives "".
func tokenName(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", fmt.Errorf("special token %s: %w", raw, err)
	}
	return obj.Content, nil
}
