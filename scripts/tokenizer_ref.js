// Compares a tokenizer trained by `lightning train-tokenizer` with the
// reference, Hugging Face tokenizers (its Node binding), on held-out text.
//
// Setup, once, in a scratch folder outside the repository:
//   mkdir -p /tmp/tokref && cd /tmp/tokref && npm install tokenizers@0.23.2
//
// Usage (from the repository root):
//   NODE_PATH=/tmp/tokref/node_modules node scripts/tokenizer_ref.js DIR CASES.jsonl [-record OUT.jsonl] [-lightning BIN]
//
// DIR holds tokenizer.json; CASES.jsonl has one {"text": "..."} per line.
// The reference encodes every text (no added special tokens) and decodes the
// ids back. Then `BIN tokenize -tokenizer DIR -jsonl` (default: go run
// ./cmd/lightning) encodes the same texts, and the script prints how many
// cases agree and the first differences; it exits 1 if any case differs or
// the reference does not give a text back. With -record it writes the
// reference ids, one {"ids": [...]} per line: the Go test
// TestTrainBPEReference reads them from tokenizer/testdata/bpetrain/ref_ids.jsonl.
//
// A second mode checks the trainer itself against Hugging Face's BpeTrainer:
//   NODE_PATH=… node scripts/tokenizer_ref.js -hf-train TOKENIZER.json OUT.jsonl.gz FILE...
// takes the pipeline of TOKENIZER.json (its pre-tokenizer and decoder; the
// vocabulary, merges and added tokens are dropped), trains it with the BPE
// model's default trainer on FILE... (which reads each line, with its line
// ending, as one text, and merges until no pair is left), and writes the
// merges, one ["left", "right"] per line, gzipped. TestTrainBPEMatchesHFTrainer
// trains the Go trainer on the same lines and compares.
//
// The recorded files for the tests come from:
//   go test ./tokenizer -run TrainBPEGolden -update
//   NODE_PATH=/tmp/tokref/node_modules node scripts/tokenizer_ref.js tokenizer/testdata/bpetrain \
//     tokenizer/testdata/bpetrain/heldout.jsonl -record tokenizer/testdata/bpetrain/ref_ids.jsonl
//   NODE_PATH=/tmp/tokref/node_modules node scripts/tokenizer_ref.js -hf-train tokenizer/testdata/bpetrain/tokenizer.json \
//     tokenizer/testdata/bpetrain/hf_merges.jsonl.gz tokenizer/testdata/bpetrain/corpus/*
"use strict";

const fs = require("fs");
const path = require("path");
const os = require("os");
const zlib = require("zlib");
const { execFileSync } = require("child_process");
const { Tokenizer } = require("tokenizers");

function usage(msg) {
  console.error(`tokenizer_ref: ${msg}\nusage: node scripts/tokenizer_ref.js DIR CASES.jsonl [-record OUT.jsonl] [-lightning BIN]`);
  process.exit(2);
}

// hfTrain trains tokenizer.json's pipeline with the reference's BpeTrainer.
function hfTrain(tokenizerJSON, out, files) {
  const j = JSON.parse(fs.readFileSync(tokenizerJSON, "utf8"));
  j.added_tokens = [];
  j.model.vocab = {};
  j.model.merges = [];
  const tok = Tokenizer.fromString(JSON.stringify(j));
  tok.train(files);
  const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tokref-")), "tokenizer.json");
  tok.save(tmp);
  const merges = JSON.parse(fs.readFileSync(tmp, "utf8")).model.merges;
  const lines = merges.map((m) => JSON.stringify(typeof m === "string" ? m.split(" ") : m) + "\n").join("");
  fs.writeFileSync(out, zlib.gzipSync(lines, { level: 9 }));
  console.log(`${merges.length} merges from ${files.length} files in ${out}`);
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === "-hf-train") {
    if (args.length < 4) usage("-hf-train needs TOKENIZER.json OUT.jsonl.gz FILE...");
    hfTrain(args[1], args[2], args.slice(3));
    return;
  }
  const pos = [];
  let record = "";
  let lightning = "";
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "-record") record = args[++i] || usage("-record needs a file");
    else if (args[i] === "-lightning") lightning = args[++i] || usage("-lightning needs a binary");
    else pos.push(args[i]);
  }
  if (pos.length !== 2) usage("want DIR and CASES.jsonl");
  const [dir, casesPath] = pos;

  const texts = fs.readFileSync(casesPath, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l).text);
  const tok = Tokenizer.fromFile(path.join(dir, "tokenizer.json"));
  const ref = [];
  let bad = 0;
  for (const [i, text] of texts.entries()) {
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    const ids = Array.from(enc.getIds());
    ref.push(ids);
    const back = await tok.decode(ids, false);
    if (back !== text) {
      bad++;
      console.log(`case ${i}: the reference decodes its ids to ${JSON.stringify(back.slice(0, 60))}, not the text`);
    }
  }
  if (record) {
    fs.writeFileSync(record, ref.map((ids) => JSON.stringify({ ids }) + "\n").join(""));
    console.log(`recorded ${ref.length} cases in ${record}`);
  }

  const input = texts.map((text) => JSON.stringify({ text, add_special_tokens: false }) + "\n").join("");
  const [cmd, cmdArgs] = lightning ? [lightning, []] : ["go", ["run", "./cmd/lightning"]];
  const out = execFileSync(cmd, [...cmdArgs, "tokenize", "-tokenizer", dir, "-jsonl"], {
    input,
    maxBuffer: 1 << 30,
    stdio: ["pipe", "pipe", "inherit"],
  }).toString();
  const got = out.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l).ids);
  if (got.length !== texts.length) {
    console.log(`lightning gave ${got.length} results for ${texts.length} cases`);
    process.exit(1);
  }
  let same = 0;
  let bytes = 0;
  let tokens = 0;
  for (const [i, ids] of ref.entries()) {
    bytes += Buffer.byteLength(texts[i], "utf8");
    tokens += ids.length;
    if (JSON.stringify(ids) === JSON.stringify(got[i])) {
      same++;
    } else if (bad++ < 5) {
      console.log(`case ${i} ${JSON.stringify(texts[i].slice(0, 40))}:\n  reference ${JSON.stringify(ids)}\n  lightning ${JSON.stringify(got[i])}`);
    }
  }
  console.log(`${same}/${texts.length} cases give the same ids; ${bytes} bytes in ${tokens} tokens (${(bytes / tokens).toFixed(2)} bytes/token)`);
  process.exit(same === texts.length && bad === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
