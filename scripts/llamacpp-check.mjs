// llamacpp-check.mjs: loads a GGUF file in llama.cpp (through its Node
// binding node-llama-cpp, CPU only, prebuilt libraries, nothing built or
// downloaded) and reports as JSON what llama.cpp read (architecture,
// hyper-parameters, metadata, special tokens), its token ids for the prompts,
// and a greedy continuation with the top-k log-probabilities of every step.
// With -lightning BIN it runs the same file in Lightning and reports how far
// the two agree (issue 15; results in the README's GGUF section).
//
// Setup, once, in a scratch folder outside the repository (node-llama-cpp
// 3.22.1 ships llama.cpp release v0.5.0 prebuilt for Linux, macOS, Windows):
//   mkdir -p /tmp/nlc && cd /tmp/nlc && npm install node-llama-cpp@3.22.1
//
// Usage (from the repository root):
//   NODE_PATH=/tmp/nlc/node_modules node scripts/llamacpp-check.mjs [flags] MODEL.gguf [PROMPT ...]
//   scripts/llamacpp-check.sh [flags] MODEL.gguf [PROMPT ...]   (NODE_PATH defaults to /tmp/nlc/node_modules)
// Node does not look up ES modules such as node-llama-cpp in NODE_PATH by
// itself; the script looks next to itself, then in each NODE_PATH folder.
//
// Flags:
//   -n N            tokens generated greedily per prompt; 0 = tokenize only [16]
//   -top K          log-probabilities listed per step [5]
//   -threads T      llama.cpp threads, and GOMAXPROCS of Lightning [2]
//   -kv TYPE        llama.cpp's KV cache type for the softmax layers: F32
//                   (Lightning's default), F16 (llama.cpp's), BF16, Q8_0 [F32]
//   -fa             let llama.cpp use flash attention (its default where it
//                   can), which rounds K and V to F16 whatever -kv says
//   -prompts FILE   read the prompts from a JSONL file, one {"text": "..."}
//                   per line (after any on the command line)
//   -lightning BIN  also run `BIN tokenize`, `BIN generate` and `BIN logits`
//                   on the same file and compare (see below)
//   -ref MODEL      with -lightning: a reference for both engines, run by
//                   Lightning (a folder or .gguf: the F32 file, or a quantized
//                   file converted back with `convert -to hf -type f32`,
//                   which holds its exact dequantized weights)
//
// Without prompts, a fixed set is used: English, numbers, code, white space,
// CJK and emoji, and a chat turn with MiniMax's special tokens.
//
// Output (stdout): {"file", "llama_cpp": {release, node_llama_cpp, build,
// system_info (the CPU features of the backend), context (the KV cache and
// recurrent state lines of its log)},
// "architecture", "hparams" (llama.cpp's print_info lines), "metadata" (the
// key/values its loader listed), "tensor_types", "tokens" (BOS, EOS, the
// end-of-generation set, add_bos), "warnings", "prompts": [{"text",
// "add_bos", "ids", "steps": [{"id", "text", "logp", "top": [{"id",
// "logp"}]}], "continuation"}], "summary"}. Special-token text in a prompt
// is parsed as those tokens (as Hugging Face tokenizers do); BOS is
// prepended when the file says add_bos_token. Log-probabilities are
// log-softmax of llama.cpp's raw logits, in float64.
//
// With -lightning, each prompt also gets "lightning": {"ids" (Lightning's
// tokenizer, read from the same file, on the same text), "ids_equal",
// "generated" (`generate` from llama.cpp's prompt ids: Lightning's own
// greedy continuation), "greedy_equal", "first_difference" (a step index or
// null), "top1_agree" (steps where Lightning's argmax is llama.cpp's token),
// "max_abs_dlogp_top" (|Δ log p| over llama.cpp's top-k tokens, max over
// steps), "mean_kl", "max_kl" (KL(llama.cpp ‖ Lightning) over the whole
// vocabulary, nats, mean and max over steps)}; with -ref also
// "ref_{mean,max}_kl_{llama_cpp,lightning}": KL(reference ‖ engine), each
// engine's distance from the reference. Lightning's log-probabilities come
// from `logits` on the prompt followed by llama.cpp's continuation, so both
// engines are conditioned on the same tokens at every step. The summary
// adds them up, and a line on stderr says it in words. The exit status is 1
// when a tokenization or a greedy continuation differs.

import {createRequire} from "node:module";
import {pathToFileURL} from "node:url";
import {execFileSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const DEFAULT_PROMPTS = [
    "Once upon a time",
    "The capital of France is",
    "Numbers: 3.14159, 2026-08-13, 1234567890 and 1,000,000.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "  leading spaces,\ttabs\n\n\nnewlines   and trailing   ",
    "雷电 (lightning) ünïcödé — émoji 😀🚀, Ελληνικά, русский",
    "<begin_of_document><beginning_of_sentence>user name=user\nHi there! What is 12+30?<end_of_sentence>\n<beginning_of_sentence>ai name=assistant\n",
];

function usage(msg) {
    if (msg)
        process.stderr.write(`llamacpp-check: ${msg}\n`);
    process.stderr.write("usage: node scripts/llamacpp-check.mjs [-n 16] [-top 5] [-threads 2] [-kv F32] [-fa] [-prompts FILE.jsonl]\n" +
        "         [-lightning BIN [-ref MODEL]] MODEL.gguf [PROMPT ...]\n" +
        "  (node-llama-cpp@3.22.1 installed next to the script or in a NODE_PATH folder; see the comment at the top)\n");
    process.exit(2);
}

function parseArgs(argv) {
    const opt = {n: 16, top: 5, threads: 2, kv: "F32", fa: false, lightning: "", ref: "", file: "", prompts: []};
    const ints = {"-n": ["n", 0], "-top": ["top", 1], "-threads": ["threads", 1]};
    let promptsFile = "";
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "-h" || a === "-help" || a === "--help")
            usage();
        const value = () => {
            if (i + 1 >= argv.length)
                usage(`${a} wants a value`);
            return argv[++i];
        };
        if (a in ints) {
            const [key, min] = ints[a];
            const v = Number(value());
            if (!Number.isInteger(v) || v < min)
                usage(`${a} wants an integer of at least ${min}, got ${argv[i]}`);
            opt[key] = v;
        } else if (a === "-fa") {
            opt.fa = true;
        } else if (a === "-kv") {
            opt.kv = value().toUpperCase();
            if (!["F32", "F16", "BF16", "Q8_0"].includes(opt.kv))
                usage(`-kv wants F32, F16, BF16 or Q8_0, got ${argv[i]}`);
        } else if (a === "-lightning" || a === "-ref") {
            opt[a.slice(1)] = value();
        } else if (a === "-prompts") {
            promptsFile = value();
        } else if (opt.file === "" && a.startsWith("-")) {
            usage(`unknown flag ${a}`);
        } else if (opt.file === "") {
            opt.file = a;
        } else {
            opt.prompts.push(a);
        }
    }
    if (opt.file === "")
        usage("no model file");
    if (!fs.existsSync(opt.file))
        usage(`${opt.file}: no such file`);
    if (opt.ref !== "" && opt.lightning === "")
        usage("-ref needs -lightning");
    if (promptsFile !== "") {
        fs.readFileSync(promptsFile, "utf8").split("\n").forEach((line, i) => {
            if (line.trim() === "")
                return;
            let rec;
            try {
                rec = JSON.parse(line);
            } catch (e) {
                usage(`${promptsFile}:${i + 1}: ${e.message}`);
            }
            if (typeof rec?.text !== "string")
                usage(`${promptsFile}:${i + 1}: want {"text": "..."}`);
            opt.prompts.push(rec.text);
        });
    }
    if (opt.prompts.length === 0)
        opt.prompts = DEFAULT_PROMPTS;
    return opt;
}

// importNodeLlamaCpp finds node-llama-cpp next to this script or in a
// NODE_PATH folder and imports it.
async function importNodeLlamaCpp() {
    const here = path.dirname(new URL(import.meta.url).pathname);
    const dirs = [here, ...(process.env.NODE_PATH || "").split(path.delimiter).filter(Boolean)];
    for (const dir of dirs) {
        let entry;
        try {
            entry = createRequire(path.join(dir, "_")).resolve("node-llama-cpp");
        } catch {
            continue;
        }
        const mod = await import(pathToFileURL(entry).href);
        const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(entry), "..", "package.json"), "utf8"));
        return {mod, version: pkg.version};
    }
    usage(`node-llama-cpp not found next to the script or in NODE_PATH (${process.env.NODE_PATH || "unset"})`);
}

// llamaLog sorts llama.cpp's log lines into what the loader read.
function llamaLog() {
    const r = {hparams: {}, metadata: {}, tensorTypes: {}, eog: [], memory: [], warnings: []};
    r.add = (level, msg) => {
        for (const line of msg.split("\n")) {
            let m;
            if ((m = /^llama_model_loader: - kv\s+\d+:\s+(\S+)\s+(\S+)\s+=\s?(.*)$/.exec(line)))
                r.metadata[m[1]] = {type: m[2], value: m[3]};
            else if ((m = /^llama_model_loader: - type\s+(\S+):\s+(\d+) tensors/.exec(line)))
                r.tensorTypes[m[1]] = Number(m[2]);
            else if ((m = /^print_info: EOG token\s+= (.*)$/.exec(line)))
                r.eog.push(m[1]);
            else if ((m = /^print_info: (\S[^=]*?)\s+= (.*)$/.exec(line)))
                r.hparams[m[1]] = m[2];
            else if (/^llama_kv_cache: size|^llama_memory_recurrent: size|Flash Attention/.test(line))
                r.memory.push(line.trim());
            if ((level === "warn" || level === "error" || level === "fatal") && line.trim() !== "")
                r.warnings.push(line);
        }
    };
    return r;
}

// logSoftmax is log-softmax of logits (any array-like) in float64.
function logSoftmax(logits) {
    let max = -Infinity;
    for (const v of logits)
        if (v > max)
            max = v;
    let sum = 0;
    for (const v of logits)
        sum += Math.exp(v - max);
    const lse = max + Math.log(sum);
    return Float64Array.from(logits, (v) => v - lse);
}

// argmax returns the index of the largest value, the lowest on ties (as
// llama.cpp's greedy sampler and Lightning's generate).
function argmax(a) {
    let best = 0;
    for (let i = 1; i < a.length; i++)
        if (a[i] > a[best])
            best = i;
    return best;
}

const round = (x) => Number(x.toPrecision(7));
const sci = (x) => Number(x.toExponential(3));

function topK(logp, k) {
    const idx = Array.from(logp.keys()).sort((a, b) => logp[b] - logp[a] || a - b);
    return idx.slice(0, k).map((id) => ({id, logp: round(logp[id])}));
}

// klDiv is KL(p ‖ q) in nats for the log-probabilities lp, lq.
function klDiv(lp, lq) {
    let kl = 0;
    for (let j = 0; j < lp.length; j++)
        kl += Math.exp(lp[j]) * (lp[j] - lq[j]);
    return kl;
}

// runLlama tokenizes every prompt with llama.cpp and generates greedily. It
// returns the report and, per prompt, the log-probabilities of each step.
async function runLlama(nlc, opt) {
    const log = llamaLog();
    const llama = await nlc.mod.getLlama({gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
        maxThreads: opt.threads, logLevel: "info", logger: log.add, progressLogs: false});
    const model = await llama.loadModel({modelPath: opt.file, gpuLayers: 0});
    const addBos = model.tokens.shouldPrependBosToken && model.tokens.bos != null;
    const out = {
        file: opt.file,
        llama_cpp: {release: llama.llamaCppRelease, node_llama_cpp: nlc.version, build: llama.buildType, system_info: llama.systemInfo},
        architecture: log.hparams.arch,
        hparams: log.hparams,
        metadata: log.metadata,
        tensor_types: log.tensorTypes,
        tokens: {bos: model.tokens.bos, eos: model.tokens.eos, eot: model.tokens.eot, eog: log.eog, add_bos: addBos},
        warnings: [...log.warnings, ...model.getWarnings()],
        prompts: opt.prompts.map((text) => {
            const ids = Array.from(model.tokenize(text, true));
            return {text, add_bos: addBos, ids: addBos ? [model.tokens.bos, ...ids] : ids};
        }),
    };
    const logps = out.prompts.map(() => []);
    if (opt.n > 0) {
        const longest = Math.max(...out.prompts.map((p) => p.ids.length));
        const context = await model.createContext({contextSize: longest + opt.n + 8, sequences: 1, threads: opt.threads,
            experimentalKvCacheKeyType: opt.kv, experimentalKvCacheValueType: opt.kv, flashAttention: opt.fa});
        out.llama_cpp.context = log.memory;
        const seq = context.getSequence();
        const next = {generateNext: {token: true, logits: true, options: {temperature: 0}}};
        for (const [i, p] of out.prompts.entries()) {
            if (p.ids.length === 0)
                throw new Error(`prompt ${JSON.stringify(p.text)} has no tokens`);
            await seq.clearHistory();
            p.steps = [];
            let input = p.ids.map((id, j) => (j === p.ids.length - 1 ? [id, next] : id));
            for (let s = 0; s < opt.n; s++) {
                const r = (await seq.controlledEvaluate(input))[input.length - 1].next;
                const logits = new Float64Array(r.logits.size);
                for (const [id, v] of r.logits)
                    logits[id] = v;
                const logp = logSoftmax(logits);
                const id = argmax(logp);
                if (id !== r.token)
                    throw new Error(`llama.cpp's greedy token ${r.token} is not the argmax ${id} of its logits`);
                p.steps.push({id, text: model.detokenize([id], true), logp: round(logp[id]), top: topK(logp, opt.top)});
                logps[i].push(logp);
                input = [[id, next]];
            }
            p.continuation = model.detokenize(p.steps.map((s) => s.id), true, p.ids);
        }
        await context.dispose();
    }
    await model.dispose();
    await llama.dispose();
    return {out, logps};
}

// readSafetensorsF32 returns the F32 tensor name of a safetensors file and its shape.
function readSafetensorsF32(file, name) {
    const buf = fs.readFileSync(file);
    const hlen = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + hlen).toString("utf8"));
    const t = header[name];
    if (!t || t.dtype !== "F32")
        throw new Error(`${file}: no F32 tensor ${name}`);
    const [a, b] = t.data_offsets;
    const data = buf.subarray(8 + hlen + a, 8 + hlen + b);
    const f = new Float32Array(data.byteLength / 4);
    for (let i = 0; i < f.length; i++)
        f[i] = data.readFloatLE(4 * i);
    return {data: f, shape: t.shape};
}

// runLightning runs the same file in Lightning, adds each prompt's
// comparison to out and returns the summary.
function runLightning(opt, out, logps) {
    const env = {...process.env, GOMAXPROCS: String(opt.threads)};
    const lightning = (args, input) => execFileSync(opt.lightning, args, {input, env, encoding: "utf8", maxBuffer: 1 << 30});
    const lines = out.prompts.map((p) => JSON.stringify({text: p.text, add_special_tokens: p.add_bos})).join("\n") + "\n";
    const ltIds = lightning(["tokenize", "-tokenizer", opt.file, "-jsonl"], lines).trim().split("\n").map((l) => JSON.parse(l).ids);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "llamacpp-check-"));
    // stepLogps runs `lightning logits` on model for the prompt followed by
    // llama.cpp's continuation: the log-probabilities of each step.
    const stepLogps = (model, p, file) => {
        const gen = p.steps.map((s) => s.id);
        lightning(["logits", "-model", model, "-ids", [...p.ids, ...gen.slice(0, -1)].join(","), "-o", file]);
        const {data, shape} = readSafetensorsF32(file, "logits");
        const V = shape[1];
        return gen.map((_, k) => {
            const row = p.ids.length - 1 + k;
            return logSoftmax(data.subarray(row * V, (row + 1) * V));
        });
    };
    const sum = {prompts: out.prompts.length, tokenizer_equal: 0};
    if (opt.n > 0)
        Object.assign(sum, {greedy_equal: 0, top1_agree: 0, steps: 0, max_abs_dlogp_top: 0, mean_kl: 0, max_kl: 0});
    if (opt.n > 0 && opt.ref !== "")
        Object.assign(sum, {ref: opt.ref, ref_mean_kl_llama_cpp: 0, ref_max_kl_llama_cpp: 0, ref_mean_kl_lightning: 0, ref_max_kl_lightning: 0});
    try {
        out.prompts.forEach((p, i) => {
            const idsEqual = JSON.stringify(ltIds[i]) === JSON.stringify(p.ids);
            p.lightning = {ids: ltIds[i], ids_equal: idsEqual};
            sum.tokenizer_equal += idsEqual ? 1 : 0;
            if (opt.n === 0)
                return;
            const gen = p.steps.map((s) => s.id);
            const generated = lightning(["generate", "-model", opt.file, "-ids", p.ids.join(","), "-n", String(opt.n)]).trim().split(",").map(Number);
            const lt = stepLogps(opt.file, p, path.join(tmp, `logits-${i}.safetensors`));
            const ref = opt.ref === "" ? null : stepLogps(opt.ref, p, path.join(tmp, `ref-${i}.safetensors`));
            const c = {top1: 0, maxD: 0, sumKL: 0, maxKL: 0, sumL: 0, maxL: 0, sumT: 0, maxT: 0};
            p.steps.forEach((s, k) => {
                const pl = logps[i][k], q = lt[k];
                if (q.length !== pl.length)
                    throw new Error(`vocabulary sizes differ: llama.cpp ${pl.length}, Lightning ${q.length}`);
                c.top1 += argmax(q) === s.id ? 1 : 0;
                for (const t of s.top)
                    c.maxD = Math.max(c.maxD, Math.abs(pl[t.id] - q[t.id]));
                const kl = klDiv(pl, q);
                c.sumKL += kl;
                c.maxKL = Math.max(c.maxKL, kl);
                if (ref) {
                    const kL = klDiv(ref[k], pl), kT = klDiv(ref[k], q);
                    Object.assign(c, {sumL: c.sumL + kL, maxL: Math.max(c.maxL, kL), sumT: c.sumT + kT, maxT: Math.max(c.maxT, kT)});
                }
            });
            const firstDiff = gen.findIndex((id, k) => id !== generated[k]);
            Object.assign(p.lightning, {generated, greedy_equal: firstDiff < 0 && generated.length === gen.length,
                first_difference: firstDiff < 0 ? null : firstDiff, top1_agree: c.top1,
                max_abs_dlogp_top: sci(c.maxD), mean_kl: sci(c.sumKL / gen.length), max_kl: sci(c.maxKL)});
            if (ref)
                Object.assign(p.lightning, {ref_mean_kl_llama_cpp: sci(c.sumL / gen.length), ref_max_kl_llama_cpp: sci(c.maxL),
                    ref_mean_kl_lightning: sci(c.sumT / gen.length), ref_max_kl_lightning: sci(c.maxT)});
            sum.greedy_equal += p.lightning.greedy_equal ? 1 : 0;
            sum.top1_agree += c.top1;
            sum.steps += gen.length;
            sum.max_abs_dlogp_top = Math.max(sum.max_abs_dlogp_top, c.maxD);
            sum.mean_kl += c.sumKL;
            sum.max_kl = Math.max(sum.max_kl, c.maxKL);
            if (ref) {
                sum.ref_mean_kl_llama_cpp += c.sumL;
                sum.ref_max_kl_llama_cpp = Math.max(sum.ref_max_kl_llama_cpp, c.maxL);
                sum.ref_mean_kl_lightning += c.sumT;
                sum.ref_max_kl_lightning = Math.max(sum.ref_max_kl_lightning, c.maxT);
            }
        });
    } finally {
        fs.rmSync(tmp, {recursive: true, force: true});
    }
    for (const k of Object.keys(sum)) {
        if (/^(ref_)?mean_kl/.test(k))
            sum[k] /= sum.steps;
        if (/kl|dlogp/.test(k))
            sum[k] = sci(sum[k]);
    }
    return sum;
}

// describe says the summary s in one line.
function describe(opt, s) {
    let line = `llamacpp-check: ${opt.file}: tokenizers agree on ${s.tokenizer_equal}/${s.prompts} prompts`;
    if (opt.n > 0)
        line += `, greedy continuations (${opt.n} tokens) on ${s.greedy_equal}/${s.prompts}, top-1 on ${s.top1_agree}/${s.steps} steps; ` +
            `max |Δ log p| over llama.cpp's top ${opt.top} ${s.max_abs_dlogp_top}, KL(llama.cpp ‖ Lightning) mean ${s.mean_kl} max ${s.max_kl} nats`;
    if (opt.n > 0 && opt.ref !== "")
        line += `; KL from ${opt.ref}: llama.cpp mean ${s.ref_mean_kl_llama_cpp} max ${s.ref_max_kl_llama_cpp}, ` +
            `Lightning mean ${s.ref_mean_kl_lightning} max ${s.ref_max_kl_lightning}`;
    return line + "\n";
}

const opt = parseArgs(process.argv.slice(2));
const nlc = await importNodeLlamaCpp();
let result;
try {
    result = await runLlama(nlc, opt);
} catch (e) {
    process.stderr.write(`llamacpp-check: llama.cpp could not run ${opt.file}: ${e.message}\n`);
    process.exit(1);
}
const {out, logps} = result;
out.summary = {prompts: out.prompts.length, steps_per_prompt: opt.n};
let ok = true;
if (opt.lightning !== "") {
    const s = runLightning(opt, out, logps);
    out.summary.lightning = s;
    ok = s.tokenizer_equal === s.prompts && (opt.n === 0 || s.greedy_equal === s.prompts);
    process.stderr.write(describe(opt, s));
}
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
process.exit(ok ? 0 : 1);
