package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// Vocab is a GPT-2 style byte-level BPE tokenizer given as data: what a GGUF
// file's tokenizer.ggml.* section holds for tokenizer.ggml.model = "gpt2".
// TokenizerJSON writes it as a Hugging Face tokenizer.json, and Tokenizer is
// the tokenizer of that file, so the section has one meaning.
type Vocab struct {
	Tokens []string     // by id; "" for an id with no token
	Merges [][2]string  // in rank order
	Added  []AddedToken // matched in the text before BPE, with their ids (and contents equal to Tokens[ID])
	BOS    string       // name of the BOS token, or ""
	EOS    string       // name of the EOS token, or ""
	AddBOS bool         // put BOS in front of encoded text
	// Pre is llama.cpp's name for the regex that splits text before BPE
	// (tokenizer.ggml.pre); see ggmlPre. Other names, and "", get GPT-2's.
	Pre string
}

// ggmlPre lists llama.cpp's pre-tokenizer names (tokenizer.ggml.pre) whose
// split is one regex this package runs exactly, with that regex: what
// llama.cpp's llama-vocab.cpp uses for the name, and the pattern
// tokenizer.json files of those models hold.
var ggmlPre = []struct{ name, regex string }{
	{"gpt-2", patGPT2},
	{"qwen2", patQwen2},
	{"gpt-4o", patO200K},
}

// GGMLPre returns llama.cpp's name for the pre-tokenizer of t when t splits
// text with one regex that ggmlPre lists, then maps bytes with ByteLevel
// (no prefix space) and decodes with ByteLevel: the pipelines a GGUF
// tokenizer section can describe. A normalizer, which GGUF cannot
// describe either, is not looked at.
func (t *Tokenizer) GGMLPre() (string, bool) {
	if !t.pre.byteLevel || !t.streamByteLevel || len(t.pre.steps) != 1 {
		return "", false
	}
	var regex string
	switch s := t.pre.steps[0].(type) {
	case *byteLevelPre: // ByteLevel with use_regex
		if s.addPrefixSpace || s.split == nil {
			return "", false
		}
		regex = s.split.regex
	case *splitPre:
		// Every listed pattern matches every character, so keeping the
		// matches (Isolated) and removing the rest (Removed, inverted) agree.
		if (s.behavior != splitIsolated || s.invert) && (s.behavior != splitRemoved || !s.invert) {
			return "", false
		}
		regex = s.regex
	default:
		return "", false
	}
	for _, p := range ggmlPre {
		if p.regex == regex {
			return p.name, true
		}
	}
	return "", false
}

// Vocab returns t as data, the inverse of Vocab.Tokenizer for the
// tokenizers GGMLPre names. What a Vocab cannot say about t is listed in
// notes (then the Vocab's tokenizer may encode some text differently): a
// pre-tokenizer GGMLPre does not name (Pre is then "gpt-2"), a normalizer,
// a post-processor that does more than put BOS in front, and the options
// of added tokens (lstrip, rstrip, single_word, normalized).
func (t *Tokenizer) Vocab() (v *Vocab, notes []string) {
	v = &Vocab{Tokens: make([]string, t.VocabSize()), Merges: t.Merges(), Added: t.AddedTokens()}
	for id := range v.Tokens {
		v.Tokens[id], _ = t.IDToToken(id)
	}
	for i, a := range v.Added {
		if a.LStrip || a.RStrip || a.SingleWord || a.Normalized {
			notes = append(notes, fmt.Sprintf("added token %q: lstrip, rstrip, single_word and normalized are dropped", a.Content))
		}
		v.Added[i] = AddedToken{ID: a.ID, Content: a.Content, Special: a.Special}
		v.Tokens[a.ID] = a.Content
	}
	if id, ok := t.BOS(); ok {
		v.BOS = v.Tokens[id]
	}
	if id, ok := t.EOS(); ok {
		v.EOS = v.Tokens[id]
	}
	var ok bool
	if v.Pre, ok = t.GGMLPre(); !ok {
		v.Pre = "gpt-2"
		notes = append(notes, "the pre-tokenizer is not one regex llama.cpp names (gpt-2, qwen2, gpt-4o); GPT-2's is used")
	}
	if t.norm != nil {
		notes = append(notes, "the normalizer is dropped")
	}
	plain, with := t.Encode("x", false), t.Encode("x", true)
	v.AddBOS = t.bos >= 0 && slices.Equal(with, append([]int{t.bos}, plain...))
	if !v.AddBOS && !slices.Equal(with, plain) {
		notes = append(notes, "the post-processor adds tokens other than a leading BOS; they are dropped")
	}
	return v, notes
}

// Tokenizer builds the tokenizer v describes (the one its TokenizerJSON
// file gives, with v's BOS and EOS).
func (v *Vocab) Tokenizer() (*Tokenizer, error) {
	data, err := v.TokenizerJSON()
	if err != nil {
		return nil, err
	}
	t, err := FromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t.setBOSEOS(&tokenizerConfig{BOS: v.BOS, EOS: v.EOS})
	return t, nil
}

// TokenizerJSON writes v as a Hugging Face tokenizer.json: a BPE model whose
// vocabulary holds every token with its id (the added tokens too, which is
// how their ids survive loading: transformers and this package give an
// added token the id of the vocabulary entry with its content), the
// merges, the added tokens, the pre-tokenizer Pre names (GPT-2's as
// ByteLevel with use_regex; the others as a Split on the regex, then
// ByteLevel), a TemplateProcessing post-processor that puts BOS in front
// when AddBOS is set, and the ByteLevel decoder.
func (v *Vocab) TokenizerJSON() ([]byte, error) {
	regex := patGPT2
	for _, p := range ggmlPre {
		if p.name == v.Pre {
			regex = p.regex
		}
	}
	ids := map[string]int{}
	for id, tok := range v.Tokens {
		if tok == "" {
			continue
		}
		if old, dup := ids[tok]; dup {
			return nil, fmt.Errorf("tokenizer: token %q has ids %d and %d", tok, old, id)
		}
		ids[tok] = id
	}
	for _, a := range v.Added {
		if id, ok := ids[a.Content]; !ok || id != a.ID {
			return nil, fmt.Errorf("tokenizer: added token %q has id %d, but the vocabulary gives that id to %q", a.Content, a.ID, v.token(a.ID))
		}
	}
	q := quoteJSON
	var w bytes.Buffer
	w.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
	for i, a := range v.Added {
		if i > 0 {
			w.WriteByte(',')
		}
		fmt.Fprintf(&w, "\n    {\"id\": %d, \"content\": %s, \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": %t}",
			a.ID, q(a.Content), a.Special)
	}
	w.WriteString("\n  ],\n  \"normalizer\": null,\n")
	if regex == patGPT2 {
		w.WriteString(`  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},` + "\n")
	} else {
		fmt.Fprintf(&w, `  "pre_tokenizer": {"type": "Sequence", "pretokenizers": [`+
			`{"type": "Split", "pattern": {"Regex": %s}, "behavior": "Isolated", "invert": false}, `+
			`{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},`+"\n", q(regex))
	}
	if v.AddBOS {
		bos, ok := ids[v.BOS]
		if v.BOS == "" || !ok {
			return nil, fmt.Errorf("tokenizer: BOS is to be added but the BOS token %q is not in the vocabulary", v.BOS)
		}
		b := q(v.BOS)
		fmt.Fprintf(&w, `  "post_processor": {"type": "TemplateProcessing", `+
			`"single": [{"SpecialToken": {"id": %[1]s, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], `+
			`"pair": [{"SpecialToken": {"id": %[1]s, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": %[1]s, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}], `+
			`"special_tokens": {%[1]s: {"id": %[1]s, "ids": [%[2]d], "tokens": [%[1]s]}}},`+"\n", b, bos)
	} else {
		w.WriteString(`  "post_processor": null,` + "\n")
	}
	w.WriteString(`  "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},` + "\n")
	w.WriteString(`  "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, ` +
		`"end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,` + "\n")
	w.WriteString("    \"vocab\": {")
	first := true
	for id, tok := range v.Tokens {
		if tok == "" {
			continue
		}
		if !first {
			w.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&w, "\n      %s: %d", q(tok), id)
	}
	w.WriteString("\n    },\n    \"merges\": [")
	for k, m := range v.Merges {
		if k > 0 {
			w.WriteByte(',')
		}
		fmt.Fprintf(&w, "\n      %s", q(m[0]+" "+m[1]))
	}
	w.WriteString("\n    ]\n  }\n}\n")
	return w.Bytes(), nil
}

// TokenizerConfigJSON writes the tokenizer_config.json that goes with
// TokenizerJSON: the added tokens (added_tokens_decoder), bos_token,
// eos_token, add_bos_token, the chat template (omitted when ""), and
// tokenizer_class PreTrainedTokenizerFast, so transformers reads
// tokenizer.json.
func (v *Vocab) TokenizerConfigJSON(chatTemplate string) ([]byte, error) {
	added := slices.Clone(v.Added)
	slices.SortFunc(added, func(a, b AddedToken) int { return a.ID - b.ID })
	cfg := struct {
		AddBOS         bool            `json:"add_bos_token"`
		AddPrefixSpace bool            `json:"add_prefix_space"`
		AddedTokens    json.RawMessage `json:"added_tokens_decoder"`
		BOS            json.RawMessage `json:"bos_token"`
		ChatTemplate   string          `json:"chat_template,omitempty"`
		CleanUpSpaces  bool            `json:"clean_up_tokenization_spaces"`
		EOS            json.RawMessage `json:"eos_token"`
		TokenizerClass string          `json:"tokenizer_class"`
	}{
		AddBOS:         v.AddBOS,
		AddedTokens:    addedTokensDecoder(added),
		BOS:            jsonStringOrNull(v.BOS),
		ChatTemplate:   chatTemplate,
		EOS:            jsonStringOrNull(v.EOS),
		TokenizerClass: "PreTrainedTokenizerFast",
	}
	var out bytes.Buffer
	e := json.NewEncoder(&out)
	e.SetEscapeHTML(false)
	e.SetIndent("", "  ")
	if err := e.Encode(cfg); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return out.Bytes(), nil
}

func (v *Vocab) token(id int) string {
	if id < 0 || id >= len(v.Tokens) {
		return ""
	}
	return v.Tokens[id]
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

// addedTokensDecoder writes tokenizer_config.json's added_tokens_decoder
// object for tokens in id order: each id's content and special flag, the
// other flags false.
func addedTokensDecoder(added []AddedToken) json.RawMessage {
	var dec bytes.Buffer
	dec.WriteString("{")
	for i, a := range added {
		if i > 0 {
			dec.WriteByte(',')
		}
		fmt.Fprintf(&dec, "\n    %s: {\"content\": %s, \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false, \"special\": %t}",
			strconv.Quote(strconv.Itoa(a.ID)), quoteJSON(a.Content), a.Special)
	}
	dec.WriteString("\n  }")
	return dec.Bytes()
}

// jsonStringOrNull is s as a JSON string, or null when s is empty.
func jsonStringOrNull(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage("null")
	}
	return json.RawMessage(quoteJSON(s))
}
