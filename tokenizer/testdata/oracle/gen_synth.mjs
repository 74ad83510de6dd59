// Generates testdata/synthetic.jsonl.gz: tokenizers assembled from the
// llama2 / qwen3 files with other normalizers, pre-tokenizers, added tokens,
// post-processors and decoders swapped in (plus a tiny hand-made BPE with a
// continuing_subword_prefix, end_of_word_suffix and unk), each run by the
// reference (Hugging Face tokenizers, Node binding) on a list of strings.
// Run it from a folder where `npm install tokenizers@0.23.2` was done:
//   node /path/to/tokenizer/testdata/oracle/gen_synth.mjs /path/to/tokenizer/testdata
//
// Each output line is {name, base, override, model_override, cases: [...]}:
// the tokenizer is base's tokenizer.json with the top-level keys of override
// replaced and the keys of model_override replaced inside "model" (base
// "none": override is the whole file).
import { createRequire } from "module";
import fs from "fs";
import path from "path";
import zlib from "zlib";

const { Tokenizer } = createRequire(path.join(process.cwd(), "x.js"))("tokenizers");
const dir = process.argv[2];

const ms = (scheme, split = true) => ({ type: "Metaspace", replacement: "▁", prepend_scheme: scheme, split });
const bl = (add_prefix_space, use_regex) => ({ type: "ByteLevel", add_prefix_space, trim_offsets: false, use_regex });
const split = (pattern, behavior, invert = false) => ({ type: "Split", pattern, behavior, invert });
const tok = (id, content, o = {}) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false, ...o,
});

const configs = [
  { name: "metaspace_always", base: "llama2", override: { normalizer: null, pre_tokenizer: ms("always"), decoder: ms("always") } },
  { name: "metaspace_first", base: "llama2", override: { normalizer: null, pre_tokenizer: ms("first", false), decoder: ms("first") } },
  { name: "metaspace_never", base: "llama2", override: { normalizer: null, pre_tokenizer: ms("never"), decoder: ms("never") } },
  { name: "metaspace_legacy", base: "llama2", override: { normalizer: null, pre_tokenizer: { type: "Metaspace", replacement: "▁", add_prefix_space: true }, decoder: { type: "Metaspace", replacement: "▁", add_prefix_space: false, prepend_scheme: "never" } } },
  { name: "unk_fused", base: "llama2", model_override: { byte_fallback: false } },
  { name: "unk_unfused", base: "llama2", model_override: { byte_fallback: false, fuse_unk: false } },
  {
    name: "normalizers", base: "llama2", override: {
      normalizer: { type: "Sequence", normalizers: [
        { type: "NFKC" }, { type: "Lowercase" }, { type: "Strip", strip_left: true, strip_right: true },
        { type: "Replace", pattern: { Regex: "\\s+" }, content: " " },
        { type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" },
      ] },
    },
  },
  { name: "nfd", base: "llama2", override: { normalizer: { type: "Sequence", normalizers: [{ type: "NFD" }, { type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] } } },
  { name: "nfkd_strip_left", base: "llama2", override: { normalizer: { type: "Sequence", normalizers: [{ type: "NFKD" }, { type: "Strip", strip_left: true, strip_right: false }, { type: "Replace", pattern: { String: " " }, content: "▁" }] } } },
  ...["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"].flatMap((b) => [false, true].map((inv) => ({
    name: `split_${b}_${inv ? "inverted" : "plain"}`, base: "qwen3",
    override: { normalizer: null, pre_tokenizer: { type: "Sequence", pretokenizers: [split({ Regex: "[,.!? ]+|\\d" }, b, inv), bl(false, false)] } },
  }))),
  { name: "split_string", base: "qwen3", override: { pre_tokenizer: { type: "Sequence", pretokenizers: [split({ String: "ab" }, "MergedWithNext"), split({ String: " " }, "Removed"), bl(false, false)] } } },
  { name: "digits_punct", base: "qwen3", override: { pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: false }, { type: "Punctuation", behavior: "Isolated" }, bl(true, false)] } } },
  { name: "whitespace_digits", base: "qwen3", override: { pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Whitespace" }, { type: "Digits", individual_digits: true }, bl(false, false)] } } },
  { name: "bert_pre", base: "qwen3", override: { pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "BertPreTokenizer" }, bl(false, false)] } } },
  { name: "wssplit_gpt2", base: "qwen3", override: { pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "WhitespaceSplit" }, bl(true, true)] } } },
  { name: "bytelevel_then_split", base: "qwen3", override: { pre_tokenizer: { type: "Sequence", pretokenizers: [bl(false, true), split({ String: "Ġ" }, "MergedWithNext")] } } },
  { name: "bytelevel_only", base: "qwen3", override: { pre_tokenizer: bl(true, true), normalizer: { type: "Lowercase" } } },
  {
    name: "added_options", base: "llama2", override: {
      added_tokens: [
        tok(0, "<unk>", { special: true }), tok(1, "<s>", { special: true }), tok(2, "</s>", { special: true }),
        tok(32000, "<mask>", { lstrip: true, rstrip: true, special: true }),
        tok(32001, "ony", { single_word: true }),
        tok(32002, "yesterday", { normalized: true }),
        tok(32003, "[X]", {}),
        tok(32004, "ab", { single_word: true, lstrip: true }),
        tok(32005, "▁day", { normalized: true, special: true }),
        tok(32006, "<think>", { rstrip: true }),
        tok(32007, "<thi", {}),
      ],
    },
  },
  {
    name: "template", base: "llama2", override: {
      post_processor: {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "eos", type_id: 0 } }],
        pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
        special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] }, eos: { id: "eos", ids: [2, 13], tokens: ["</s>", "<0x0A>"] } },
      },
    },
  },
  { name: "roberta", base: "llama2", override: { post_processor: { type: "RobertaProcessing", sep: ["</s>", 2], cls: ["<s>", 1], trim_offsets: true, add_prefix_space: true } } },
  { name: "bert_post", base: "llama2", override: { post_processor: { type: "BertProcessing", sep: ["</s>", 2], cls: ["<s>", 1] } } },
  { name: "post_sequence", base: "qwen3", override: { post_processor: { type: "Sequence", processors: [bl(false, false), { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<|im_start|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }], pair: [], special_tokens: { "<|im_start|>": { id: "<|im_start|>", ids: [151644], tokens: ["<|im_start|>"] } } }] } } },
  {
    name: "decoders", base: "llama2", override: {
      decoder: { type: "Sequence", decoders: [
        { type: "Replace", pattern: { Regex: "▁+" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" },
        { type: "Strip", content: " ", start: 0, stop: 1 },
      ] },
    },
    // The reference's Strip decoder panics on an empty token when stop > 0,
    // so cases whose ids decode to nothing are left out.
    nonEmptyOnly: true,
  },
  { name: "no_decoder", base: "llama2", override: { decoder: null } },
  {
    name: "tiny_prefix_suffix", base: "none", override: {
      version: "1.0", truncation: null, padding: null,
      added_tokens: [tok(0, "[UNK]", { special: true })],
      normalizer: null, pre_tokenizer: { type: "WhitespaceSplit" }, post_processor: null, decoder: null,
      model: {
        type: "BPE", dropout: null, unk_token: "[UNK]", continuing_subword_prefix: "##", end_of_word_suffix: "</w>",
        fuse_unk: false, byte_fallback: false, ignore_merges: false,
        vocab: {
          "[UNK]": 0, h: 1, "##e": 2, "##l": 3, "##o</w>": 4, "##p</w>": 5, he: 6, hel: 7, hell: 8, "hello</w>": 9,
          "##l</w>": 10, "hell</w>": 11, a: 12, "a</w>": 13, "##a": 14, "##a</w>": 15, "h</w>": 16, "##p": 17, "help</w>": 18,
        },
        merges: ["h ##e", "he ##l", "hel ##l", "hell ##o</w>", "hel ##l</w>", "hel ##p</w>"],
      },
    },
  },
];

const inputs = [
  "", " ", "Hello world", "  leading and trailing  ", "I'm you're THEY'LL", "Numbers 12345 and 3.14!", "a,b.c!d?e",
  "hello hell help xyz", "hello  aa a hh", "<mask> My name is Anthony <mask>", "  <mask>  x", "a<mask>b", "yesterday Yesterday YESTERDAY",
  "the day▁day today", "[X]abc[X]", "ab cab ab, ab.", "ony pony ony.", "<think>  hi</think>", "<thi<think>", "İstanbul ΣΑΣ ς",
  "ﬁ ① Ⅻ ｶ ㎏", "e\u0301 é", "tab\tnewline\nend\r\n", "multi   spaces", "x marks xx the xspot", "emoji 🫠 ok 👍🏽",
  "中文测试，好的。", "<s>[INST] hi [/INST]</s>", "▁already▁spaced", "\u00a0nbsp\u3000ideographic", "ab1cd22ef333",
  "func main() { fmt.Println(\"hi\") }", "e-mail: a@b.c; cost: $5.00", "ÀÉÎÕÜ àéîõü", "  ", "\n\n", "ὈΔΥΣΣΕΎΣ",
];

const out = [];
for (const c of configs) {
  let cfg;
  if (c.base === "none") {
    cfg = c.override;
  } else {
    cfg = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(dir, c.base, "tokenizer.json.gz"))).toString("utf8"));
    Object.assign(cfg, c.override || {});
    Object.assign(cfg.model, c.model_override || {});
  }
  const tk = Tokenizer.fromString(JSON.stringify(cfg));
  const cases = [];
  for (const text of inputs) {
    for (const add of [false, true]) {
      const enc = await tk.encode(text, null, { addSpecialTokens: add });
      const ids = enc.getIds();
      if (c.nonEmptyOnly && ids.filter((id) => id > 2).length === 0) continue;
      cases.push({
        text, add_special_tokens: add, ids, tokens: enc.getTokens(),
        decoded: await tk.decode(ids, false), decoded_skip_special: await tk.decode(ids, true),
      });
    }
  }
  out.push(JSON.stringify({ name: c.name, base: c.base, override: c.override || {}, model_override: c.model_override || {}, cases }));
  console.log(c.name);
}
fs.writeFileSync(path.join(dir, "synthetic.jsonl.gz"), zlib.gzipSync(out.join("\n") + "\n", { level: 9 }));
