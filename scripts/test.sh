#!/usr/bin/env bash
# The whole test suite: formatting, vet, the default and purego builds, every
# package's tests, a miniature of the training recipe, the race detector on
# the concurrent packages, and short fuzz runs of the parsers. CI (.ci/run)
# runs exactly this script; run it from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "not gofmt-clean:"; echo "$bad"; exit 1; fi

echo "== generated assembly is current (kernels/_gen)"
before=$(mktemp -d)
cp kernels/*.s kernels/*kern_amd64.go "$before"/
(cd kernels/_gen && go run . && go run ./q8)
for f in kernels/*.s kernels/*kern_amd64.go; do
	cmp -s "$f" "$before/$(basename "$f")" || { echo "$f differs from what kernels/_gen generates: run (cd kernels/_gen && go run . && go run ./q8) and commit"; exit 1; }
done
rm -rf "$before"

echo "== go vet (default and purego)"
go vet ./...
go vet -tags purego ./...

echo "== go build (CGO_ENABLED=0, default and purego)"
CGO_ENABLED=0 go build ./...
CGO_ENABLED=0 go build -tags purego ./...

echo "== go test"
go test -count=1 -timeout 30m ./...

echo "== Kubernetes manifests (deploy/kubernetes, its own module: strict decoding, command lines against the binary)"
(cd deploy/kubernetes && go vet ./... && go test -count=1 ./...)

echo "== the recipe in miniature (recipes/mini/ci.sh: tokenizer, mix, training, SIGTERM and -resume, run, perplexity)"
./recipes/mini/ci.sh

echo "== go test -race (the concurrent packages: engine loop, HTTP server, distributed hub and workers)"
go test -count=1 -race -timeout 20m ./engine ./server ./dist

echo "== go test -tags purego (kernels without assembly)"
go test -count=1 -tags purego -timeout 20m ./kernels/...

echo "== short fuzz runs"
# Each run is bounded by a count of inputs, not a duration: Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded", no
# input written, when a duration -fuzztime ends (go.dev/issue/75804, fixed
# in Go 1.27). 400,000 inputs take 6–14 s at the 30,000–66,000 per second
# these parsers run on 2 cores; FuzzFastMatchers runs about 3,500 per second.
fuzz() { # package target inputs
	go test -run '^$' -fuzz "^$2\$" -fuzztime "$3x" -fuzzminimizetime 5s "$1"
}
for f in $(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do
	pkg=./$(dirname "${f#./}")
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		echo "-- $pkg $target"
		case $target in
		FuzzFastMatchers) fuzz "$pkg" "$target" 40000 ;;
		*) fuzz "$pkg" "$target" 400000 ;;
		esac
	done
done
echo "== all tests passed"
