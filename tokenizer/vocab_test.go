package tokenizer

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lightninglm/lightning/tokenizer/chat"
)

// m1Tokenizer builds the MiniMax-M1 tokenizer from its published merges.txt
// and its two documented special tokens.
func m1Tokenizer(t *testing.T) (*Tokenizer, string) {
	t.Helper()
	f, err := os.Open("testdata/minimax-m1/merges.txt.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	added := []AddedToken{{ID: 200019, Content: "<beginning_of_sentence>", Special: true}, {ID: 200020, Content: "<end_of_sentence>", Special: true}}
	tok, err := FromMerges(string(txt), added)
	if err != nil {
		t.Fatal(err)
	}
	return tok, string(txt)
}

// TestVocabRoundTrip rebuilds the MiniMax-M1 tokenizer from its vocabulary
// by id, its merges (Merges) and its added tokens, as a GGUF file's
// tokenizer section carries them, and checks that both encode and decode
// text identically, and that Vocab gives that data back.
func TestVocabRoundTrip(t *testing.T) {
	orig, txt := m1Tokenizer(t)
	tokens := make([]string, orig.VocabSize())
	for id := range tokens {
		tokens[id], _ = orig.IDToToken(id)
	}
	merges := orig.Merges()
	if want, _ := ParseMerges(txt); !reflect.DeepEqual(merges, want) {
		t.Fatalf("Merges() gives %d merges, not the %d of merges.txt in order", len(merges), len(want))
	}
	v := &Vocab{Tokens: tokens, Merges: merges, Added: orig.AddedTokens(), BOS: "<beginning_of_sentence>", EOS: "<end_of_sentence>", Pre: "gpt-2"}
	re, err := v.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := re.EOS(); !ok || id != 200020 {
		t.Errorf("EOS = %d, %v", id, ok)
	}
	for _, s := range []string{"Hello, world! 你好 🌍", "<beginning_of_sentence>user\n  tabs\tand  spaces<end_of_sentence>", "don't 12345 ÀÉ"} {
		a, b := orig.Encode(s, false), re.Encode(s, false)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%q: %v, rebuilt %v", s, a, b)
		}
		if re.Decode(b, false) != s {
			t.Errorf("%q: decodes to %q", s, re.Decode(b, false))
		}
	}
	back, notes := re.Vocab()
	if len(notes) > 0 || !reflect.DeepEqual(back, v) {
		t.Errorf("Vocab() of the rebuilt tokenizer differs from the data it was built from (notes %q)", notes)
	}

	// A BOS in front of encodings is carried by AddBOS.
	v.AddBOS = true
	withBOS, err := v.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	if ids := withBOS.Encode("hi", true); len(ids) != 2 || ids[0] != 200019 {
		t.Errorf("AddBOS: Encode(hi) = %v, want BOS 200019 first", ids)
	}
	if back, _ := withBOS.Vocab(); !back.AddBOS {
		t.Error("Vocab() of a tokenizer that adds BOS has AddBOS false")
	}
}

// TestVocabFilesMatchReference writes real tokenizers (GPT-4o's and
// Qwen3's, whose pre-tokenizers llama.cpp names gpt-4o and qwen2) as a
// Vocab's tokenizer.json and tokenizer_config.json, loads that folder, and
// checks every golden case against the ids and text of Hugging Face
// tokenizers. Qwen3's NFC normalizer has no place in a GGUF section, so its
// cases whose text NFC changes are skipped.
func TestVocabFilesMatchReference(t *testing.T) {
	for _, tc := range []struct{ name, pre string }{{"gpt4o", "gpt-4o"}, {"qwen3", "qwen2"}} {
		t.Run(tc.name, func(t *testing.T) {
			orig := loadGolden(t, tc.name, false)
			v, _ := orig.Vocab()
			if v.Pre != tc.pre {
				t.Fatalf("Pre = %q, want %q", v.Pre, tc.pre)
			}
			v.BOS, v.EOS = "", v.Added[0].Content
			dir := t.TempDir()
			tj, err := v.TokenizerJSON()
			if err != nil {
				t.Fatal(err)
			}
			const tmpl = "{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"
			cfg, err := v.TokenizerConfigJSON(tmpl)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tj, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644); err != nil {
				t.Fatal(err)
			}
			loaded, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if id, ok := loaded.EOS(); !ok || id != v.Added[0].ID {
				t.Errorf("EOS = %d, %v, want %d", id, ok, v.Added[0].ID)
			}
			cc, err := chat.LoadConfig(filepath.Join(dir, "tokenizer_config.json"))
			if _, eos := cc.SpecialTokens["eos_token"]; err != nil || cc.Templates["default"] != tmpl || !eos {
				t.Errorf("chat config: %+v, %v", cc, err)
			}
			checked := 0
			for _, c := range readJSONL[goldenCase](t, filepath.Join("testdata", tc.name, "cases.jsonl.gz")) {
				if orig.norm != nil && orig.norm.normalize(c.Text) != c.Text {
					continue
				}
				checked++
				if ids := loaded.Encode(c.Text, c.AddSpecial); !equalInts(ids, c.IDs) {
					t.Errorf("%s add=%v: ids\n got %v\nwant %v", c.ID, c.AddSpecial, ids, c.IDs)
				} else if got := loaded.Decode(ids, false); got != c.Decoded {
					t.Errorf("%s: decodes to %q, want %q", c.ID, got, c.Decoded)
				}
			}
			if checked < 100 {
				t.Errorf("only %d cases checked", checked)
			}
		})
	}
}
