#!/usr/bin/env bash
# Makes the built-in model's folder, model/builtin/mini, from a trained checkpoint folder (e.g. a step-N folder of
# 'lightning train', with config.json, model.safetensors, tokenizer.json and tokenizer_config.json).
# usage: scripts/make-builtin.sh CHECKPOINT_DIR FORMAT [QUANTIZE_FLAGS...]
#   FORMAT: a 'lightning quantize' format (q8, q8b32, q4g64, ...), or f32/bf16/f16 for float weights;
#   QUANTIZE_FLAGS go to 'lightning quantize' (e.g. -embed q8). The folder must stay under 40 MB: mini's 31.9 M
#   parameters take 39.0 MB as q8 (embeddings kept F32), 64 MB as bf16.
# Then rebuild: go build ./cmd/lightning && ./lightning inspect   (names the new model and its sha256)
set -euo pipefail
src=${1:?usage: make-builtin.sh CHECKPOINT_DIR FORMAT}
format=${2:?usage: make-builtin.sh CHECKPOINT_DIR FORMAT}
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
dst="$repo/model/builtin/mini"
lightning=${LIGHTNING:-}
if [ -z "$lightning" ]; then
	# The binary embeds the folder, so it builds only when model.safetensors is there; quantize and convert
	# do not use the built-in model, so an empty stand-in does while building.
	if [ ! -f "$dst/model.safetensors" ]; then
		: >"$dst/model.safetensors"
		trap '[ -s "$dst/model.safetensors" ] || rm -f "$dst/model.safetensors"' EXIT
	fi
	lightning=$(mktemp -d)/lightning
	(cd "$repo" && go build -o "$lightning" ./cmd/lightning)
fi
for f in config.json tokenizer.json tokenizer_config.json; do
	[ -f "$src/$f" ] || { echo "make-builtin: $src has no $f" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"; [ -s "$dst/model.safetensors" ] || rm -f "$dst/model.safetensors"' EXIT
case "$format" in
f32 | bf16 | f16)
	# Float weights in one model.safetensors, written from the loaded model (any layout or dtype in).
	"$lightning" convert -model "$src" -to hf -type "$format" -o "$work/out"
	;;
*)
	"$lightning" quantize -model "$src" -format "$format" -o "$work/out" "$@"
	;;
esac
[ -f "$work/out/model.safetensors" ] || { echo "make-builtin: expected one model.safetensors (is the model over 2 GiB?)" >&2; exit 1; }

# The folder holds exactly these files: every *.json in it is embedded, so nothing else may be left there.
rm -f "$dst"/*.json "$dst/model.safetensors"
cp "$work/out/config.json" "$work/out/model.safetensors" "$dst/"
for f in tokenizer.json tokenizer_config.json generation_config.json; do
	[ -f "$src/$f" ] && cp "$src/$f" "$dst/"
done
chmod 644 "$dst"/*
ls -l "$dst"
du -cb "$dst"/* | tail -1 | awk '{ if ($1 >= 40e6) { print "make-builtin: warning: " $1 " bytes, over the 40 MB budget" > "/dev/stderr" } }'
