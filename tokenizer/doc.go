// Package tokenizer turns text into token ids and back with the exact
// semantics of Hugging Face tokenizer.json files, as the Rust `tokenizers`
// library 0.23 implements them (the reference).
//
// Supported, each checked against the reference (testdata/README.md): the
// BPE model (byte-level or SentencePiece-style, with unk, fuse_unk,
// byte_fallback, ignore_merges, continuing_subword_prefix and
// end_of_word_suffix; no dropout); the normalizers NFC, NFD, NFKC, NFKD,
// Lowercase, Strip, Prepend, Replace and Sequence; the pre-tokenizers
// ByteLevel, Split, Digits, Metaspace, Punctuation, Whitespace,
// WhitespaceSplit, BertPreTokenizer and Sequence; the decoders ByteLevel,
// ByteFallback, Fuse, Strip, Replace, Metaspace and Sequence; the
// post-processors TemplateProcessing (single sequences), RobertaProcessing,
// BertProcessing, ByteLevel and Sequence; added tokens with all their
// options. Any other component type, and any truncation or padding setting,
// fails at load with an error that names it.
//
// Encoding follows the reference step by step: added tokens are found in the
// raw text first (longest match, leftmost first); the text between them is
// normalized, searched for added tokens marked "normalized", pre-tokenized,
// and each piece runs through the model (with a shared cache of word -> ids);
// the post-processor adds special tokens when asked. Regex patterns run on
// regexp2, whose look-ahead and Unicode classes match Oniguruma's on these
// patterns (\s is Unicode White_Space); the patterns of GPT-2, cl100k/Llama 3,
// Qwen2/3, o200k/GPT-4o and DeepSeek-V3 have hand-written matchers
// (fastregex.go), tested and fuzzed against regexp2.
//
// Added-token ids are assigned as the reference assigns them when loading
// (a token whose text is in the vocabulary keeps that id, a new one takes
// the next free id); for well-formed files this is the id the file states.
//
// StreamDecoder emits the text of generated ids as soon as no later id can
// change it.
//
// BPETrainer learns a byte-level BPE from text (bpetrain.go), with the o200k
// pre-tokenizer and the merges Hugging Face's BpeTrainer would learn, and
// writes tokenizer.json and tokenizer_config.json (MiniMax's special tokens
// and M1's chat template for lightning train-tokenizer).
//
// MiniMax: the real tokenizer.json of MiniMax-Text-01 / MiniMax-M1 is not
// available to this project. A checkpoint folder's tokenizer.json (or
// vocab.json + merges.txt) is loaded generically; FromMerges rebuilds a
// byte-level BPE from MiniMax-M1's published merges.txt alone, numbering the
// vocabulary the way Hugging Face's BPE trainer does (see MergesVocab), with
// the GPT-2 pre-tokenizer that transformers uses for a GPT2Tokenizer. Its
// regular token ids follow from that assumption; the ids of its special
// tokens are unknown except <end_of_sentence> = 200020.
package tokenizer
