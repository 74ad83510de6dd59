package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The golden files in testdata/<name>/ are copies (gzipped) of the expected
// outputs of Hugging Face tokenizers 0.23.2 for five real tokenizer.json
// files; see testdata/README.md.
var goldenNames = []string{"llama3", "qwen3", "deepseek_v3", "gpt4o", "llama2"}

func readGz(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if _, err := bufio.NewReader(zr).WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

// readJSONL decodes every line of a gzipped JSON-lines file into a new T.
func readJSONL[T any](t testing.TB, path string) []T {
	t.Helper()
	var out []T
	for i, line := range strings.Split(string(readGz(t, path)), "\n") {
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("%s:%d: %v", path, i+1, err)
		}
		out = append(out, v)
	}
	return out
}

var goldenCache sync.Map // name + "/" + slow -> *Tokenizer

// loadGolden loads testdata/<name>/tokenizer.json.gz; slow routes every
// regex through regexp2 instead of the hand-written matchers.
func loadGolden(t testing.TB, name string, slow bool) *Tokenizer {
	t.Helper()
	key := name
	if slow {
		key += "/slow"
	}
	if v, ok := goldenCache.Load(key); ok {
		return v.(*Tokenizer)
	}
	tk, err := fromJSON(readGz(t, filepath.Join("testdata", name, "tokenizer.json.gz")), options{slowRegex: slow})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	goldenCache.Store(key, tk)
	return tk
}

type goldenCase struct {
	ID                 string   `json:"id"`
	Text               string   `json:"text"`
	AddSpecial         bool     `json:"add_special_tokens"`
	IDs                []int    `json:"ids"`
	Tokens             []string `json:"tokens"`
	Decoded            string   `json:"decoded"`
	DecodedSkipSpecial string   `json:"decoded_skip_special"`
}

type goldenStream struct {
	ID                string   `json:"id"`
	Text              string   `json:"text"`
	IDs               []int    `json:"ids"`
	PrefixDecoded     []string `json:"prefix_decoded"`
	PrefixDecodedSkip []string `json:"prefix_decoded_skip_special"`
}

type goldenSingle struct {
	ID                 int     `json:"id"`
	Token              *string `json:"token"`
	Decoded            string  `json:"decoded"`
	DecodedSkipSpecial string  `json:"decoded_skip_special"`
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestGoldenCases checks every encode/decode case of every golden
// tokenizer: ids, token strings, decode and decode without specials.
func TestGoldenCases(t *testing.T) {
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			tk := loadGolden(t, name, false)
			cases := readJSONL[goldenCase](t, filepath.Join("testdata", name, "cases.jsonl.gz"))
			fails := 0
			for _, c := range cases {
				ids, toks := tk.EncodeTokens(c.Text, c.AddSpecial)
				if !equalInts(ids, c.IDs) {
					t.Errorf("%s add=%v: ids\n got %v\nwant %v", c.ID, c.AddSpecial, ids, c.IDs)
					fails++
				} else if !equalStrings(toks, c.Tokens) {
					t.Errorf("%s add=%v: tokens\n got %q\nwant %q", c.ID, c.AddSpecial, toks, c.Tokens)
					fails++
				}
				if got := tk.Decode(c.IDs, false); got != c.Decoded {
					t.Errorf("%s: decode\n got %q\nwant %q", c.ID, got, c.Decoded)
					fails++
				}
				if got := tk.Decode(c.IDs, true); got != c.DecodedSkipSpecial {
					t.Errorf("%s: decode skip special\n got %q\nwant %q", c.ID, got, c.DecodedSkipSpecial)
					fails++
				}
				if fails > 20 {
					t.Fatal("too many failures")
				}
			}
			t.Logf("%d cases", len(cases))
		})
	}
}

// TestGoldenSingleIDs checks IDToToken and the decode of single ids,
// including ids with no token and max_id+1.
func TestGoldenSingleIDs(t *testing.T) {
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			tk := loadGolden(t, name, false)
			for _, c := range readJSONL[goldenSingle](t, filepath.Join("testdata", name, "single_ids.jsonl.gz")) {
				tok, ok := tk.IDToToken(c.ID)
				if (c.Token == nil) == ok || (ok && tok != *c.Token) {
					t.Errorf("id %d: token %q %v, want %v", c.ID, tok, ok, c.Token)
				}
				if got := tk.Decode([]int{c.ID}, false); got != c.Decoded {
					t.Errorf("id %d: decode %q, want %q", c.ID, got, c.Decoded)
				}
				if got := tk.Decode([]int{c.ID}, true); got != c.DecodedSkipSpecial {
					t.Errorf("id %d: decode skip special %q, want %q", c.ID, got, c.DecodedSkipSpecial)
				}
			}
		})
	}
}

// TestGoldenAddedIDs checks that registering the added tokens in file order
// (the reference's rule) gives the ids the files declare.
func TestGoldenAddedIDs(t *testing.T) {
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			tk := loadGolden(t, name, false)
			var f struct {
				Added []addedJSON `json:"added_tokens"`
			}
			if err := json.Unmarshal(readGz(t, filepath.Join("testdata", name, "tokenizer.json.gz")), &f); err != nil {
				t.Fatal(err)
			}
			for _, a := range f.Added {
				if id, ok := tk.TokenToID(a.Content); !ok || id != a.ID {
					t.Errorf("%q: id %d %v, file says %d", a.Content, id, ok, a.ID)
				}
				if tk.IsSpecial(a.ID) != a.Special {
					t.Errorf("%q: IsSpecial %v, file says %v", a.Content, tk.IsSpecial(a.ID), a.Special)
				}
			}
		})
	}
}

// TestGoldenStreaming feeds the ids of each streaming record one at a time.
// After id k the text emitted so far must be decode(ids[:k]) minus the tail
// that the reference itself may still change: for byte-level decoders an
// unfinished UTF-8 sequence (one trailing U+FFFD), for byte fallback the
// trailing run of <0xNN> tokens (whose decode is decode(ids[:j]) for the
// run start j). Flush must give the rest.
func TestGoldenStreaming(t *testing.T) {
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			tk := loadGolden(t, name, false)
			recs := readJSONL[goldenStream](t, filepath.Join("testdata", name, "streaming.jsonl.gz"))
			held := 0
			for _, r := range recs {
				for _, skip := range []bool{false, true} {
					want := r.PrefixDecoded
					if skip {
						want = r.PrefixDecodedSkip
					}
					d := tk.NewStreamDecoder(skip)
					var got strings.Builder
					for k, id := range r.IDs {
						got.WriteString(d.Add(id))
						full := want[k]
						exp := full
						if tk.streamFallback {
							j := k + 1
							for j > 0 {
								tok, _ := tk.IDToToken(r.IDs[j-1])
								if _, ok := fallbackByte(tok); !ok {
									break
								}
								j--
							}
							if j <= k {
								exp = ""
								if j > 0 {
									exp = want[j-1]
								}
							}
						}
						if tk.streamByteLevel {
							var toks []string
							for _, id := range r.IDs[:k+1] {
								if tok, ok := tk.tokenFor(id, skip); ok {
									toks = append(toks, tok)
								}
							}
							if incompleteTail(byteLevelBytes(nil, toks)) > 0 {
								if !strings.HasSuffix(exp, "\uFFFD") {
									t.Fatalf("%s: decode(ids[:%d]) = %q does not end in U+FFFD", r.ID, k+1, exp)
								}
								exp = strings.TrimSuffix(exp, "\uFFFD")
							}
						}
						if exp != full {
							held++
						}
						if got.String() != exp {
							t.Fatalf("%s skip=%v after %d ids: emitted %q, want %q (decode %q)", r.ID, skip, k+1, got.String(), exp, full)
						}
					}
					got.WriteString(d.Flush())
					if last := want[len(want)-1]; got.String() != last {
						t.Fatalf("%s skip=%v: after Flush %q, want %q", r.ID, skip, got.String(), last)
					}
				}
			}
			t.Logf("%d records, %d prefixes with a held-back tail", len(recs), held)
		})
	}
}

type fuzzCase struct {
	Text       string `json:"text"`
	AddSpecial bool   `json:"add_special_tokens"`
	IDs        []int  `json:"ids"`
	Decoded    string `json:"decoded"`
}

// TestGoldenFuzz checks 3000 random strings of edge-case characters
// (testdata/oracle/gen_fuzz.mjs) per tokenizer against the reference.
func TestGoldenFuzz(t *testing.T) {
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			tk := loadGolden(t, name, false)
			fails := 0
			for _, c := range readJSONL[fuzzCase](t, filepath.Join("testdata", name, "fuzz.jsonl.gz")) {
				if ids := tk.Encode(c.Text, c.AddSpecial); !equalInts(ids, c.IDs) {
					t.Errorf("%q add=%v: ids\n got %v\nwant %v", c.Text, c.AddSpecial, ids, c.IDs)
					fails++
				}
				if got := tk.Decode(c.IDs, false); got != c.Decoded {
					t.Errorf("%q: decode %q, want %q", c.Text, got, c.Decoded)
					fails++
				}
				if fails > 10 {
					t.Fatal("too many failures")
				}
			}
		})
	}
}
