package tokenizer

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
)

// MiniMaxSpecialTokens are the special tokens of a tokenizer trained for
// MiniMax-01-family models, in id order after the BPE tokens:
//
//   - first MiniMax-M2's 54 added tokens in their order (ids 200000–200053
//     of its tokenizer.json): "]!p~[", the <fim_…>, repository, issue,
//     Jupyter and commit markers, "]~b]" (turn start), "[e~[" (turn end,
//     id 200020), the media markers, "]~!b[" (conversation start, 200034),
//     the code-edit markers, <think>, </think> and the tool-call tags;
//   - then the four names that MiniMax-Text-01 and M1 use, which their
//     tokenizer_config.json and chat template emit: <beginning_of_sentence>
//     (bos, turn start), <end_of_sentence> (eos, turn end; id 200020 in
//     their files, the slot of M2's "[e~["), <begin_of_document> and
//     <end_of_document> (unk).
//
// The full added-token list of Text-01 and M1 lives only in their
// tokenizer.json, which we could not read; M2's is the complete list we
// have, so it is taken whole. Ids here are relative (after the merges), not
// MiniMax's 200000 and up.
var MiniMaxSpecialTokens = []string{
	"]!p~[", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>", "<reponame>", "<filename>",
	"<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>", "<jupyter_start>", "<jupyter_text>",
	"<jupyter_code>", "<jupyter_output>", "<empty_output>", "<commit_before>", "<commit_msg>",
	"<commit_after>", "]~b]", "[e~[", "]!d~[", "<function_call>", "<code_interpreter>", "]<]speech[>[",
	"]<]image[>[", "]<]video[>[", "]<]start of speech[>[", "]<]end of speech[>[", "]<]start of image[>[",
	"]<]end of image[>[", "]<]start of video[>[", "]<]end of video[>[", "]<]vision pad[>[", "]~!b[",
	"<jupyter_error>", "<add_file>", "<delete_file>", "<rename_file>", "<edit_file>", "<commit_message>",
	"<empty_source_file>", "<repo_struct>", "<code_context>", "<file_content>", "<source_files>",
	"<pr_start>", "<review_comment>", "<filepath>", "<file_sep>", "<think>", "</think>",
	"<minimax:tool_call>", "</minimax:tool_call>",
	"<beginning_of_sentence>", "<end_of_sentence>", "<begin_of_document>", "<end_of_document>",
}

// MiniMaxChatTemplate is MiniMax-M1's chat template, verbatim from its
// tokenizer_config.json (MiniMax-AI/MiniMax-M1 at 2abb4f4; spec §5.3).
//
//go:embed minimax_m1_chat_template.jinja
var MiniMaxChatTemplate string

// TrainedConfig is the part of tokenizer_config.json that
// TokenizerConfigJSON writes beside a trained tokenizer.json.
type TrainedConfig struct {
	BOS, EOS, UNK  string // special-token names (must be among the specials), or ""
	ChatTemplate   string // Jinja source, or ""
	ModelMaxLength int
}

// MiniMaxConfig is MiniMax-M1's tokenizer_config.json: bos
// <beginning_of_sentence>, eos <end_of_sentence>, unk <end_of_document>,
// its chat template and model_max_length.
var MiniMaxConfig = TrainedConfig{
	BOS:            "<beginning_of_sentence>",
	EOS:            "<end_of_sentence>",
	UNK:            "<end_of_document>",
	ChatTemplate:   MiniMaxChatTemplate,
	ModelMaxLength: 40960000,
}

// TokenizerConfigJSON writes the tokenizer_config.json that goes with
// TokenizerJSON: the special tokens (added_tokens_decoder), bos/eos/unk, the
// chat template, and tokenizer_class PreTrainedTokenizerFast, so
// transformers reads tokenizer.json (a slow GPT2Tokenizer would use GPT-2's
// regex instead of TrainPattern). No BOS is added to encodings: the chat
// template writes its own markers.
func (b *TrainedBPE) TokenizerConfigJSON(c TrainedConfig) ([]byte, error) {
	for _, name := range []string{c.BOS, c.EOS, c.UNK} {
		if name != "" && !b.hasSpecial(name) {
			return nil, fmt.Errorf("tokenizer: config names %q, which is not a special token", name)
		}
	}
	specials := make([]AddedToken, len(b.Specials))
	for i, sp := range b.Specials {
		specials[i] = AddedToken{ID: 256 + len(b.Merges) + i, Content: sp, Special: true}
	}
	cfg := struct {
		AddBOS         bool            `json:"add_bos_token"`
		AddPrefixSpace bool            `json:"add_prefix_space"`
		AddedTokens    json.RawMessage `json:"added_tokens_decoder"`
		BOS            json.RawMessage `json:"bos_token"`
		ChatTemplate   json.RawMessage `json:"chat_template"`
		CleanUpSpaces  bool            `json:"clean_up_tokenization_spaces"`
		EOS            json.RawMessage `json:"eos_token"`
		ModelMaxLength int             `json:"model_max_length"`
		TokenizerClass string          `json:"tokenizer_class"`
		UNK            json.RawMessage `json:"unk_token"`
	}{
		AddedTokens:    addedTokensDecoder(specials),
		BOS:            jsonStringOrNull(c.BOS),
		ChatTemplate:   jsonStringOrNull(c.ChatTemplate),
		EOS:            jsonStringOrNull(c.EOS),
		ModelMaxLength: c.ModelMaxLength,
		TokenizerClass: "PreTrainedTokenizerFast",
		UNK:            jsonStringOrNull(c.UNK),
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

func (b *TrainedBPE) hasSpecial(s string) bool {
	for _, sp := range b.Specials {
		if sp == s {
			return true
		}
	}
	return false
}
