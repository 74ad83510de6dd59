package tokenizer

import (
	"path/filepath"
	"testing"
)

// longTexts returns the golden strings of the "long" category (1.4-4.4 KB
// paragraphs and documents).
func longTexts(b *testing.B) []string {
	var texts []string
	for _, c := range readJSONL[goldenCase](b, filepath.Join("testdata", "llama3", "cases.jsonl.gz")) {
		if !c.AddSpecial && len(c.ID) > 5 && c.ID[:5] == "long-" {
			texts = append(texts, c.Text)
		}
	}
	return texts
}

// BenchmarkEncodeLong measures encode throughput on the long strings with a
// warm word cache (the steady state, and what the reference comparison in
// the package notes measures).
func BenchmarkEncodeLong(b *testing.B) {
	texts := longTexts(b)
	size := 0
	for _, s := range texts {
		size += len(s)
	}
	for _, name := range goldenNames {
		tk := loadGolden(b, name, false)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for _, s := range texts {
					tk.Encode(s, false)
				}
			}
		})
	}
}

// BenchmarkEncodeLongCold is BenchmarkEncodeLong with the word cache
// emptied before each string: every word runs BPE and is cached again.
func BenchmarkEncodeLongCold(b *testing.B) {
	texts := longTexts(b)
	size := 0
	for _, s := range texts {
		size += len(s)
	}
	for _, name := range goldenNames {
		tk := loadGolden(b, name, false)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				for _, s := range texts {
					tk.model.cache.clear()
					tk.Encode(s, false)
				}
			}
		})
	}
}

// BenchmarkDecodeLong measures decode throughput (bytes of text out).
func BenchmarkDecodeLong(b *testing.B) {
	texts := longTexts(b)
	for _, name := range goldenNames {
		tk := loadGolden(b, name, false)
		var ids [][]int
		size := 0
		for _, s := range texts {
			ids = append(ids, tk.Encode(s, false))
			size += len(s)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				for _, x := range ids {
					tk.Decode(x, false)
				}
			}
		})
	}
}

// BenchmarkLoad measures parsing a tokenizer.json.
func BenchmarkLoad(b *testing.B) {
	for _, name := range goldenNames {
		data := readGz(b, filepath.Join("testdata", name, "tokenizer.json.gz"))
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := fromJSON(data, options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBPEWords runs BPE alone (no cache, no pre-tokenizer) on the
// distinct pre-tokens of the long strings.
func BenchmarkBPEWords(b *testing.B) {
	texts := longTexts(b)
	for _, name := range goldenNames {
		tk := loadGolden(b, name, false)
		st := &encodeState{}
		seen := map[string]bool{}
		var words []string
		size := 0
		for _, s := range texts {
			for _, p := range tk.pre.run(nil, piece{s: s}, st) {
				if !seen[p.s] {
					seen[p.s] = true
					words = append(words, p.s)
					size += len(p.s)
				}
			}
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			var out []int32
			for b.Loop() {
				for _, w := range words {
					out = tk.model.tokenizeWord(out[:0], w, st)
				}
			}
		})
	}
}
