#!/usr/bin/env sh
# llamacpp-check.sh: runs scripts/llamacpp-check.mjs (a GGUF file in
# llama.cpp through node-llama-cpp, optionally against Lightning) with
# NODE_PATH defaulting to /tmp/nlc/node_modules, where
#   mkdir -p /tmp/nlc && cd /tmp/nlc && npm install node-llama-cpp@3.22.1
# puts it. Flags and output: see the comment at the top of the .mjs file.
#
# Example (the built-in model as F32 GGUF, against Lightning):
#   go build -o /tmp/lightning ./cmd/lightning
#   /tmp/lightning convert -to gguf -type f32 -o /tmp/mini-f32.gguf
#   scripts/llamacpp-check.sh -n 32 -lightning /tmp/lightning /tmp/mini-f32.gguf > /tmp/mini-f32.json
set -eu
command -v node >/dev/null || { echo "llamacpp-check: node not found (Node 20 or later)" >&2; exit 2; }
NODE_PATH=${NODE_PATH:-/tmp/nlc/node_modules} exec node "$(dirname "$0")/llamacpp-check.mjs" "$@"
