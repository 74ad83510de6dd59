#!/usr/bin/env bash
# vs-llamacpp.sh: Lightning against llama.cpp on the same model shape, the
# same weights and the same threads, in interleaved rounds (issue 17).
#
# Usage: scripts/vs-llamacpp.sh LLAMA_SRC [flags]
#
# LLAMA_SRC is a llama.cpp source snapshot: a checkout (a folder with
# CMakeLists.txt), a bare git directory (a mirror; HEAD is used), or an
# archive (.tar.gz, .tgz, .tar.xz, .tar, .zip). Nothing of it is kept: it is
# unpacked and built (CPU only, -march=native, cmake) in a temporary folder.
#
# Flags (defaults in brackets):
#   -preset NAME      random-weight model shape, see 'lightning random-model' [m300]
#   -threads N        threads of both engines [2]
#   -rounds N         interleaved rounds; each pairs one run of each engine [5]
#   -types LIST       weight types among f32,bf16,bf16dot,q8 [f32,bf16,bf16dot,q8]
#                     (bf16dot = Lightning's -bf16-dot against llama.cpp BF16;
#                      q8 = Lightning q8b32 against llama.cpp Q8_0)
#   -prefill LIST     prompt lengths [512,2048,8192]
#   -decode-ctx LIST  contexts to decode at [0,8192] (llama-bench -d; contexts
#                     other than 0 are skipped if this llama-bench has no -d)
#   -decode-n N       tokens decoded per decode cell [32]
#   -keep             keep the temporary folder (build, models, raw results)
#   -tokenizer DIR    tokenizer folder given to the random models, which
#                     llama.cpp needs to load a GGUF file (required); one of
#                     32,000 ids keeps the presets' vocabulary, e.g.
#                     lightning train-tokenizer -data text.jsonl -vocab 32000 -o DIR
#   -llama-bench PATH use this llama-bench, already built from LLAMA_SRC (for
#                     example with a quiet machine kept for the rounds), instead
#                     of building one
#
# The GGUF files are written by 'lightning convert -to gguf' when this
# Lightning has it, else by the snapshot's convert_hf_to_gguf.py when Python
# can import its dependencies (torch, numpy, transformers).
#
# Output: a Markdown table of tok/s medians of each engine and the median of
# the per-round ratios Lightning ÷ llama.cpp, with the machine, the load
# average and both commits. Needs: go, cmake, a C++ compiler, python3.
set -euo pipefail

die() { echo "vs-llamacpp: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 LLAMA_SRC [-preset m300] [-threads 2] [-rounds 5] [-types f32,bf16,bf16dot,q8] [-prefill 512,2048,8192] [-decode-ctx 0,8192] [-decode-n 32] -tokenizer DIR [-keep] [-llama-bench PATH]"
SRC=$1
shift
PRESET=m300 THREADS=2 ROUNDS=5 TYPES=f32,bf16,bf16dot,q8 PREFILL=512,2048,8192 DECODE_CTX=0,8192 DECODE_N=32 KEEP=0 PREBUILT= TOKENIZER=
while [ $# -gt 0 ]; do
	case $1 in
	-preset) PRESET=$2; shift 2 ;;
	-threads) THREADS=$2; shift 2 ;;
	-rounds) ROUNDS=$2; shift 2 ;;
	-types) TYPES=$2; shift 2 ;;
	-prefill) PREFILL=$2; shift 2 ;;
	-decode-ctx) DECODE_CTX=$2; shift 2 ;;
	-decode-n) DECODE_N=$2; shift 2 ;;
	-keep) KEEP=1; shift ;;
	-llama-bench) PREBUILT=$2; shift 2 ;;
	-tokenizer) TOKENIZER=$2; shift 2 ;;
	*) die "unknown flag $1" ;;
	esac
done

[ -n "$TOKENIZER" ] && [ -f "$TOKENIZER/tokenizer.json" ] ||
	die "-tokenizer DIR (a folder with tokenizer.json) is required: llama.cpp loads no GGUF file without a vocabulary"
TOKENIZER=$(cd "$TOKENIZER" && pwd)
for tool in go cmake c++ python3; do
	command -v $tool >/dev/null || die "$tool not found (Debian: apt-get install cmake g++ python3; Go from go.dev)"
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vs-llamacpp.XXXXXX")
if [ $KEEP = 1 ]; then
	echo "keeping $WORK" >&2
else
	trap 'rm -rf "$WORK"' EXIT
fi
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# 1. The llama.cpp source, unpacked into $WORK/llama.cpp.
LLAMA=$WORK/llama.cpp
mkdir -p "$LLAMA"
if [ -f "$SRC/CMakeLists.txt" ]; then
	cp -a "$SRC/." "$LLAMA"
	LLAMA_COMMIT=$(git -C "$SRC" rev-parse --short=8 HEAD 2>/dev/null || echo "unknown")
elif [ -d "$SRC" ] && git --git-dir="$SRC" rev-parse --verify -q HEAD >/dev/null; then
	git --git-dir="$SRC" archive --format=tar HEAD | tar -x -C "$LLAMA"
	LLAMA_COMMIT=$(git --git-dir="$SRC" rev-parse --short=8 HEAD)
elif [ -f "$SRC" ]; then
	case $SRC in
	*.zip) python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$SRC" "$LLAMA" ;;
	*) tar -xf "$SRC" -C "$LLAMA" ;;
	esac
	# Archives usually hold one top folder.
	top=$(dirname "$(find "$LLAMA" -maxdepth 2 -name CMakeLists.txt | head -1)")
	[ -n "$top" ] && [ "$top" != . ] || die "$SRC: no CMakeLists.txt in the archive"
	LLAMA=$top
	LLAMA_COMMIT="$(basename "$SRC")"
else
	die "$SRC: not a llama.cpp checkout, bare git directory or archive"
fi
[ -f "$LLAMA/CMakeLists.txt" ] || die "$SRC: no CMakeLists.txt"

# 2. Build llama-bench (CPU, native) and Lightning.
if [ -n "$PREBUILT" ]; then
	[ -x "$PREBUILT" ] || die "-llama-bench $PREBUILT: not an executable"
	LLAMA_BENCH=$PREBUILT
	log "using the llama-bench given, $LLAMA_BENCH (built from $LLAMA_COMMIT, as the caller says)"
else
	log "building llama-bench ($LLAMA_COMMIT) in $WORK/build"
	cmake -S "$LLAMA" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
		-DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
		>"$WORK/cmake.log" 2>&1 || { tail -30 "$WORK/cmake.log" >&2; die "cmake configure failed (log above)"; }
	cmake --build "$WORK/build" --target llama-bench -j "$(nproc)" >>"$WORK/cmake.log" 2>&1 ||
		{ tail -30 "$WORK/cmake.log" >&2; die "llama-bench build failed (log above)"; }
	LLAMA_BENCH=$(find "$WORK/build" -name llama-bench -type f -perm -u+x | head -1)
	[ -n "$LLAMA_BENCH" ] || die "llama-bench was not built"
fi
log "building lightning"
(cd "$ROOT" && go build -o "$WORK/lightning" ./cmd/lightning)
LIGHTNING=$WORK/lightning
LIGHTNING_COMMIT=$(cd "$ROOT" && git rev-parse --short=8 HEAD)$(cd "$ROOT" && git diff --quiet HEAD || echo "-dirty")

# 3. The models: one random checkpoint per type for Lightning, the same
# weights as GGUF for llama.cpp.
has() { case ",$TYPES," in *",$1,"*) return 0 ;; esac; return 1; }
log "writing the $PRESET models"
"$LIGHTNING" random-model -preset "$PRESET" -dtype f32 -seed 1 -tokenizer "$TOKENIZER" -o "$WORK/hf-f32" >/dev/null 2>&1
if has bf16 || has bf16dot; then
	"$LIGHTNING" random-model -preset "$PRESET" -dtype bf16 -seed 1 -tokenizer "$TOKENIZER" -o "$WORK/hf-bf16" >/dev/null 2>&1
fi
if has q8; then
	"$LIGHTNING" quantize -model "$WORK/hf-f32" -format q8b32 -lm-head q8b32 -embed q8b32 -o "$WORK/hf-q8b32" >/dev/null 2>&1
fi
if "$LIGHTNING" help 2>&1 | grep -qE '^  convert '; then
	to_gguf() { "$LIGHTNING" convert -model "$WORK/hf-f32" -to gguf -type "$1" -o "$2" >/dev/null 2>&1; }
	GGUF_WRITER="lightning convert -to gguf"
elif [ -f "$LLAMA/convert_hf_to_gguf.py" ] && python3 -c 'import torch, numpy, transformers' 2>/dev/null; then
	to_gguf() { python3 "$LLAMA/convert_hf_to_gguf.py" "$WORK/hf-f32" --outtype "$1" --outfile "$2" >/dev/null 2>&1; }
	GGUF_WRITER="convert_hf_to_gguf.py"
else
	die "no GGUF writer: this Lightning has no 'convert' command, and python3 cannot import torch, numpy and transformers for the snapshot's convert_hf_to_gguf.py"
fi
log "writing GGUF files with $GGUF_WRITER"
has f32 && to_gguf f32 "$WORK/m-f32.gguf"
{ has bf16 || has bf16dot; } && to_gguf bf16 "$WORK/m-bf16.gguf"
has q8 && to_gguf q8_0 "$WORK/m-q8_0.gguf"

# llama-bench's -d (context depth) is recent; without it only context 0 runs.
if "$LLAMA_BENCH" --help 2>&1 | grep -q -- '--n-depth'; then
	DEPTH_OK=1
else
	DEPTH_OK=0
	log "this llama-bench has no -d: decode only at context 0"
	DECODE_CTX=0
fi

# 4. Interleaved rounds: in each, every type runs once in llama.cpp, then
# once in Lightning. Each result line: round engine type cell tok/s.
RESULTS=$WORK/results.tsv
: >"$RESULTS"
llama_round() { # round type gguf
	local out=$WORK/llama-$1-$2 files=() p d
	# One llama-bench per cell, so that one that fails (or crashes) on a
	# file leaves only its own cell empty ("—" in the table).
	for p in ${PREFILL//,/ }; do
		"$LLAMA_BENCH" -m "$3" -t "$THREADS" -r 1 -o json -p "$p" -n 0 >"$out.p$p.json" 2>>"$WORK/llama.log" ||
			{ st=$?; log "llama-bench failed on $(basename "$3") (prefill $p, status $st; see llama.log)"; echo '[]' >"$out.p$p.json"; }
		files+=("$out.p$p.json")
	done
	for d in ${DECODE_CTX//,/ }; do
		local depth=()
		[ $DEPTH_OK = 1 ] && depth=(-d "$d")
		"$LLAMA_BENCH" -m "$3" -t "$THREADS" -r 1 -o json -p 0 -n "$DECODE_N" "${depth[@]}" >"$out.d$d.json" 2>>"$WORK/llama.log" ||
			{ st=$?; log "llama-bench failed on $(basename "$3") (decode at $d, status $st; see llama.log)"; echo '[]' >"$out.d$d.json"; }
		files+=("$out.d$d.json")
	done
	python3 - "$1" "$2" "${files[@]}" >>"$RESULTS" <<'EOF'
import json, sys
rnd, typ = sys.argv[1], sys.argv[2]
for path in sys.argv[3:]:
    for r in json.load(open(path)):
        depth = r.get("n_depth", 0)
        cell = f"prefill {r['n_prompt']}" if r["n_gen"] == 0 else f"decode at {depth}"
        print(rnd, "llama.cpp", typ, cell.replace(" ", "_"), r["avg_ts"], sep="\t")
EOF
}
lightning_round() { # round type model-dir [flags]
	local out=$WORK/lightning-$1-$2.json
	local rnd=$1 typ=$2 dir=$3
	shift 3
	"$LIGHTNING" bench -model "$dir" -threads "$THREADS" -prefill "$PREFILL" -decode-ctx "$DECODE_CTX" \
		-decode-n "$DECODE_N" -json "$@" >"$out" 2>>"$WORK/lightning.log"
	python3 - "$rnd" "$typ" "$out" >>"$RESULTS" <<'EOF'
import json, sys
rnd, typ, path = sys.argv[1:]
r = json.load(open(path))
for p in r.get("prefill") or []:
    print(rnd, "lightning", typ, f"prefill_{p['tokens']}", p["tok_per_s"], sep="\t")
for d in r.get("decode") or []:
    print(rnd, "lightning", typ, f"decode_at_{d['context']}", d["tok_per_s"], sep="\t")
EOF
}
LOAD_START=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
for r in $(seq 1 "$ROUNDS"); do
	log "round $r of $ROUNDS"
	if has f32; then
		llama_round "$r" f32 "$WORK/m-f32.gguf"
		lightning_round "$r" f32 "$WORK/hf-f32"
	fi
	if has bf16 || has bf16dot; then
		llama_round "$r" bf16 "$WORK/m-bf16.gguf"
		has bf16dot && awk -v r="$r" '$1 == r && $2 == "llama.cpp" && $3 == "bf16" { $3 = "bf16dot"; print }' OFS='\t' "$RESULTS" >>"$RESULTS"
		has bf16 && lightning_round "$r" bf16 "$WORK/hf-bf16"
		has bf16dot && lightning_round "$r" bf16dot "$WORK/hf-bf16" -bf16-dot
	fi
	if has q8; then
		llama_round "$r" q8 "$WORK/m-q8_0.gguf"
		lightning_round "$r" q8 "$WORK/hf-q8b32"
	fi
done
LOAD_END=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")

# 5. The table.
CPU=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || echo "unknown CPU")
python3 - "$RESULTS" "$TYPES" <<EOF
import collections, statistics, sys
rows = collections.defaultdict(dict)  # (type, cell) -> {round: {engine: tps}}
cells = []
for line in open(sys.argv[1]):
    rnd, eng, typ, cell, tps = line.split("\t")
    rows[(typ, cell)].setdefault(rnd, {})[eng] = float(tps)
    if cell not in cells:
        cells.append(cell)
names = {"f32": "f32", "bf16": "bf16 (exact path vs llama.cpp BF16)", "bf16dot": "bf16 with -bf16-dot vs llama.cpp BF16", "q8": "q8b32 vs Q8_0"}
print(f"Lightning $LIGHTNING_COMMIT vs llama.cpp $LLAMA_COMMIT (llama-bench), $PRESET, $THREADS threads, $ROUNDS interleaved rounds, GGUF by $GGUF_WRITER")
print(f"machine: $CPU, $(nproc) cores; load average $LOAD_START at the start, $LOAD_END at the end")
print()
print("Median of the per-round ratios Lightning ÷ llama.cpp (medians of tok/s, Lightning / llama.cpp, below):")
print()
print("| weights | " + " | ".join(c.replace("_", " ") for c in cells) + " |")
print("|---|" + "---|" * len(cells))
for typ in sys.argv[2].split(","):
    out = []
    for c in cells:
        rounds = [v for v in rows.get((typ, c), {}).values() if len(v) == 2]
        if not rounds:
            out.append("—")
            continue
        ratio = statistics.median(v["lightning"] / v["llama.cpp"] for v in rounds)
        lt = statistics.median(v["lightning"] for v in rounds)
        ll = statistics.median(v["llama.cpp"] for v in rounds)
        out.append(f"{ratio:.2f}× ({lt:.1f} / {ll:.1f})")
    print(f"| {names.get(typ, typ)} | " + " | ".join(out) + " |")
EOF
