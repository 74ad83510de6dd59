#!/usr/bin/env bash
# A miniature of the recipe, run by scripts/test.sh so that train.sh keeps working. Offline, under a minute on
# 2 idle cores: train.sh on the small corpus in testdata/corpus with a 384-id tokenizer, config.json shrunk (the
# same layers and experts, hidden 64) and 80 steps of 512 tokens; then the same again, stopped with SIGTERM and
# resumed with -resume, which must give the same tokenizer, mix, losses and weights; then a few steps of phase 2
# (retrieval.sh); then run and perplexity on the result.
# usage: recipes/mini/ci.sh   (from anywhere; needs go)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "ci.sh: FAIL: $*" >&2; exit 1; }

(cd "$repo" && go build -o "$tmp/lightning" ./cmd/lightning)
steps=80
vocab=384
export LIGHTNING=$tmp/lightning MINI_CORPUS=$here/testdata/corpus MINI_CONFIG=$tmp/config.json
export MINI_VOCAB=$vocab MINI_STEPS=$steps MINI_SEQ_LEN=64 MINI_BATCH_TOKENS=512

# The recipe's model shrunk: every field not named here (layer pattern, experts, norms) stays the recipe's.
sed -E -e 's/"hidden_size": [0-9]+/"hidden_size": 64/' -e 's/"head_dim": [0-9]+/"head_dim": 16/' \
	-e 's/"intermediate_size": [0-9]+/"intermediate_size": 64/' -e 's/"rotary_dim": [0-9]+/"rotary_dim": 8/' \
	"$here/config.json" >"$MINI_CONFIG"
for want in '"hidden_size": 64' '"head_dim": 16' '"intermediate_size": 64' '"rotary_dim": 8'; do
	grep -q "$want" "$MINI_CONFIG" || fail "could not shrink config.json to $want"
done

echo "-- the whole miniature recipe, uninterrupted" >&2
"$here/train.sh" "$tmp/a" 2>"$tmp/a.log" || { cat "$tmp/a.log" >&2; fail "train.sh"; }

echo "-- again, stopped by SIGTERM after a few steps and resumed" >&2
"$here/train.sh" "$tmp/b" 2>"$tmp/b.log" &
pid=$!
stepsDone() { cat "$tmp/b/run/metrics.jsonl" 2>/dev/null | wc -l; }
for ((i = 0; i < 3000; i++)); do # up to 5 minutes for the tokenizer, the mix and the first steps
	[ "$(stepsDone)" -ge 3 ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
[ "$(stepsDone)" -ge 3 ] || { kill "$pid" 2>/dev/null; cat "$tmp/b.log" >&2; fail "the second run took no 3 steps in 5 minutes"; }
kill -TERM "$pid" 2>/dev/null || true
status=0
wait "$pid" || status=$?
[ "$status" = 143 ] || { cat "$tmp/b.log" >&2; fail "the interrupted train.sh exited with status $status, want 143 (stopped by SIGTERM)"; }
saved=$(cd "$tmp/b/run" && ls -d step-* | tail -1)
[ "$((10#${saved#step-}))" -lt "$steps" ] || fail "the run reached its end before SIGTERM; give it more steps"
echo "stopped at $saved" >&2
"$LIGHTNING" train -resume "$tmp/b/run" 2>>"$tmp/b.log" || { cat "$tmp/b.log" >&2; fail "train -resume"; }

for f in tok/tokenizer.json mix.jsonl; do
	cmp "$tmp/a/$f" "$tmp/b/$f" || fail "$f differs between two runs of the recipe"
done
last=$(printf 'step-%08d' "$steps")
# metrics.jsonl without the timing fields: the resumed run must have taken the same steps to the same losses.
untimed() { sed -E 's/,"(tok_per_s|mfu|elapsed_s)":[^,}]*//g' "$1"; }
if ! diff <(untimed "$tmp/a/run/metrics.jsonl") <(untimed "$tmp/b/run/metrics.jsonl") >"$tmp/metrics.diff"; then
	head -n 20 "$tmp/metrics.diff" >&2
	fail "the resumed run's metrics (>) differ from the uninterrupted run's (<)"
fi
[ "$(wc -l <"$tmp/a/run/metrics.jsonl")" = "$steps" ] || fail "metrics.jsonl has $(wc -l <"$tmp/a/run/metrics.jsonl") lines, want $steps"
cmp "$tmp/a/run/$last/model.safetensors" "$tmp/b/run/$last/model.safetensors" ||
	fail "the resumed run's final weights differ from the uninterrupted run's"

echo "-- phase 2 (retrieval.sh) from the resumed run: passkey documents never cut by a sequence boundary" >&2
# Its passkey documents need longer sequences than the miniature's 64 tokens: with 384 ids the longest is about 2,000.
MINI_SEQ_LEN=4096 MINI_BATCH_TOKENS=4096 MINI_RETRIEVAL_STEPS=6 MINI_RETRIEVAL_SHORT=6 MINI_RETRIEVAL_LONG=2 MINI_RETRIEVAL_REPEAT=4 \
	MINI_RETRIEVAL_FILL=400 "$here/retrieval.sh" "$tmp/b" 2>"$tmp/r.log" || { cat "$tmp/r.log" >&2; fail "retrieval.sh"; }
grep -q 'whole documents 12 ' "$tmp/r.log" || { cat "$tmp/r.log" >&2; fail "retrieval.sh did not arrange its 8 passkey and 4 copying documents"; }
[ -d "$tmp/b/retrieval/step-00000006" ] || fail "retrieval.sh wrote no step-00000006 checkpoint"

echo "-- run and perplexity on $last" >&2
model=$tmp/b/run/$last
out=$("$LIGHTNING" run -model "$model" -raw -temperature 0 -n 12 "Lightning runs") || fail "lightning run -raw"
[ -n "$out" ] || fail "lightning run -raw wrote nothing"
"$LIGHTNING" run -model "$model" -temperature 0 -n 12 "What is Lightning?" >/dev/null || fail "lightning run (chat template)"
# Held-out text the model never saw: the perplexity must beat a uniform guess over the vocabulary.
out=$("$LIGHTNING" perplexity -model "$model" -text "$repo/LICENSE" -ctx 64) || fail "lightning perplexity"
echo "$out" >&2
ppl=$(echo "$out" | sed -nE 's/.*perplexity ([0-9.]+)$/\1/p')
[ -n "$ppl" ] || fail "no perplexity in lightning perplexity's output"
awk -v p="$ppl" -v v="$vocab" 'BEGIN { exit !(p > 1 && p < v) }' || fail "perplexity $ppl, want between 1 and $vocab"
echo "ci.sh: the miniature recipe passed (perplexity $ppl on LICENSE)" >&2
