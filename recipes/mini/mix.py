#!/usr/bin/env python3
"""Mixes the corpus builder's training files into one shuffled JSONL of {"text": ...} lines.

usage: mix.py OUT.jsonl SEED FILE.jsonl...   (chat files in {"rendered": ...} form are accepted too)
The order depends only on the seed and the input lines, so the mix is reproducible.
"""
import json, random, sys

out, seed, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
lines = []
for f in files:
    with open(f, encoding="utf-8") as fh:
        for line in fh:
            o = json.loads(line)
            text = o.get("text", o.get("rendered"))
            if text is None:
                sys.exit(f"{f}: a line has neither 'text' nor 'rendered'")
            lines.append(json.dumps({"text": text}, ensure_ascii=False))
random.Random(seed).shuffle(lines)
with open(out, "w", encoding="utf-8") as fh:
    fh.write("\n".join(lines) + "\n")
print(f"{out}: {len(lines)} documents", file=sys.stderr)
