// Generates testdata/<name>/fuzz.jsonl.gz: random strings over an alphabet of
// edge-case characters, encoded and decoded by the reference (Hugging Face
// tokenizers, Node binding). Run it from a folder where
// `npm install tokenizers@0.23.2` was done, giving the testdata folder:
//   node /path/to/tokenizer/testdata/oracle/gen_fuzz.mjs /path/to/tokenizer/testdata
import { createRequire } from "module";
import fs from "fs";
import path from "path";
import zlib from "zlib";

const { Tokenizer } = createRequire(path.join(process.cwd(), "x.js"))("tokenizers");
const dir = process.argv[2];

const alphabet = [
  "a", "b", "s", "t", "Z", "S", "T", "R", "E", "L", "D", "M", "V", "re", "ve", "ll", "'", "’", "'s", "'S", "'ll", "'LL", "'ſ", "ſ",
  " ", " ", " ", "\t", "\n", "\r", "\r\n", "\v", "\f", "\u0085", "\u00a0", "\u1680", "\u2000", "\u200a", "\u2028", "\u2029",
  "\u202f", "\u205f", "\u3000", "\u001c", "\u001f", "\u180e", "\u200b", "\ufeff",
  "0", "1", "7", "²", "½", "Ⅻ", "١", "१", "９",
  "!", ".", ",", "/", "$", "+", "<", "|", "~", "-", "_", "(", ")", "\"", "#", "@", "\\", "`", "{",
  "é", "É", "ǅ", "ʰ", "ª", "中", "文", "龥", "龦", "あ", "ア", "ー", "한", "ก", "ि", "\u0301", "\u0300", "\u20dd", "ः",
  "ß", "İ", "Σ", "ς", "Ǆ", "😀", "🫠", "\u{1F3FB}", "\u200d", "\u00ad", "€", "©", "、", "。", "«",
  "x\u0301", "A\u0308", "\u0000",
  // added-token look-alikes
  "<s>", "</s>", "<|endoftext|>", "<|im_start|>", "<think>", "<｜User｜>", "<|begin_of_text|>", "<|endoftext", "<unk>",
];

// mulberry32, a small seeded PRNG, so the strings are reproducible.
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = rng(20261129);
const texts = [];
for (let i = 0; i < 3000; i++) {
  const n = 1 + Math.floor(rand() * 16);
  let s = "";
  for (let k = 0; k < n; k++) s += alphabet[Math.floor(rand() * alphabet.length)];
  texts.push(s);
}

for (const name of ["llama3", "qwen3", "deepseek_v3", "gpt4o", "llama2"]) {
  const json = zlib.gunzipSync(fs.readFileSync(path.join(dir, name, "tokenizer.json.gz"))).toString("utf8");
  const tok = Tokenizer.fromString(json);
  const lines = [];
  for (const text of texts) {
    for (const add of [false, true]) {
      const enc = await tok.encode(text, null, { addSpecialTokens: add });
      const ids = enc.getIds();
      lines.push(JSON.stringify({ text, add_special_tokens: add, ids, decoded: await tok.decode(ids, false) }));
    }
  }
  fs.writeFileSync(path.join(dir, name, "fuzz.jsonl.gz"), zlib.gzipSync(lines.join("\n") + "\n", { level: 9 }));
  console.log(name, lines.length);
}
