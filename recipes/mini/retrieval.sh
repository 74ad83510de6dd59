#!/usr/bin/env bash
# Phase 2 of the recipe of the built-in model "mini": retrieval. It continues from the last checkpoint of train.sh's
# run on a new mix in which half of the tokens are fresh passkey documents and copying documents, each placed so
# that no sequence boundary cuts it (in phase 1 about half of the passkey documents were cut, and a cut one asks
# for a key it cannot see).
# usage: recipes/mini/retrieval.sh WORK_DIR   (after recipes/mini/train.sh WORK_DIR)
# Resume an interrupted run with: lightning train -resume WORK_DIR/retrieval
#
# The MINI_* variables default to the recipe; recipes/mini/ci.sh sets them to run a miniature of it.
# A step whose output is already in WORK_DIR is skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(cd "${1:?usage: retrieval.sh WORK_DIR}" && pwd)
lightning=${LIGHTNING:-lightning}
corpus=${MINI_CORPUS:-$work/corpus}
steps=${MINI_RETRIEVAL_STEPS:-300}
short=${MINI_RETRIEVAL_SHORT:-3000}     # passkey documents with 0 to 8 filler groups
long=${MINI_RETRIEVAL_LONG:-500}        # and with 9 to 37
repeat=${MINI_RETRIEVAL_REPEAT:-2500}   # copying documents: a list of random words and numbers, twice
fill=${MINI_RETRIEVAL_FILL:-24000}
seq_len=${MINI_SEQ_LEN:-1024}
batch_tokens=${MINI_BATCH_TOKENS:-8192}
shuffle=1024 # train.sh's -shuffle (the trainer's default)

from=$(ls -d "$work"/run/step-* | tail -n 1)
data=$work/retrieval-data
mkdir -p "$data"
if [ ! -f "$data/arranged.jsonl" ]; then
	# 1. New passkey documents (phase 1's were seed 1): 3,000 short ones, 0 to 8 filler groups (about 60 to 300
	#    tokens; many answers per token), seed 3, and 500 of 9 to 37 groups (up to about 960 tokens, so the
	#    longest fits a 1,024-token sequence whole), seed 4; and 2,500 copying documents (8 to 64 random words of
	#    the training documents and numbers, listed twice: every token of the second list is a lookup), seed 5;
	#    shuffled together, seed 3.
	(cd "$repo" && go run ./scripts/corpus passkey -train "$short" -repeats 0:8 -seed 3) >"$data/passkey-short.jsonl"
	(cd "$repo" && go run ./scripts/corpus passkey -train "$long" -repeats 9:37 -seed 4) >"$data/passkey-long.jsonl"
	(cd "$repo" && go run ./scripts/corpus repeat -words "$corpus/train.jsonl" -n "$repeat" -seed 5) >"$data/repeat.jsonl"
	(cd "$repo" && go run ./scripts/corpus mix -o "$data/passkey.jsonl" -seed 3 \
		"$data/passkey-short.jsonl" "$data/passkey-long.jsonl" "$data/repeat.jsonl")
	# 2. Fill: the next documents of the pretraining mix after the last shuffle window phase 1 reached (then from
	#    its start again, if it runs out), without its passkey documents (they could be cut).
	reached=$(grep -m 1 '"doc":' "$from/trainer_state.json" | tr -dc 0-9)
	first=$(((reached / shuffle + 1) * shuffle + 1))
	awk -v first="$first" -v n="$fill" 'NR == FNR && FNR < first { next }
		!/^\{"text": "There is an important piece of information hidden/ { print; if (++c == n) exit }' \
		"$work/mix.jsonl" "$work/mix.jsonl" >"$data/fill.jsonl"
	# 3. Token counts with the tokenizer, then the order: passkey documents at about half of the tokens, never cut.
	for f in passkey fill; do
		"$lightning" tokenize -tokenizer "$work/tok" -jsonl -add-special-tokens <"$data/$f.jsonl" >"$data/$f.ids.jsonl"
	done
	(cd "$repo" && go run ./scripts/corpus arrange -seq-len "$seq_len" -share 0.5 \
		-whole "$data/passkey.jsonl:$data/passkey.ids.jsonl" -fill "$data/fill.jsonl:$data/fill.ids.jsonl" \
		-o "$data/arranged.jsonl.tmp")
	mv "$data/arranged.jsonl.tmp" "$data/arranged.jsonl"
fi
# 4. 300 steps of 8,192 tokens (2.5M tokens) from phase 1's weights with a fresh optimizer, in file order
#    (-shuffle 0 keeps the arrangement), learning rate 5e-4 after 25 warm-up steps, down to 5e-5.
exec "$lightning" train -init "$from" -data "$data/arranged.jsonl" -shuffle 0 -eval-data "$corpus/heldout-prose.jsonl" \
	-tokenizer "$work/tok" -seed 1 -threads 2 \
	-steps "$steps" -seq-len "$seq_len" -batch-tokens "$batch_tokens" -lr 5e-4 -min-lr 5e-5 -warmup 25 \
	-eval-every 50 -eval-tokens 32768 -save-every 50 -keep 3 -o "$work/retrieval"
