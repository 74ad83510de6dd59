package tokenizer

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzAlphabet is drawn from when making random strings: every class the
// patterns distinguish, with the edge cases of the golden README (Unicode
// white space, characters that look like spaces but are not, marks, letter
// subcategories, numbers that are not digits, contractions).
var fuzzAlphabet = []string{
	"a", "b", "s", "t", "Z", "S", "T", "R", "E", "L", "D", "M", "V", "re", "ve", "ll", "'", "’", "'s", "'S", "'ll", "'LL", "'ſ", "ſ",
	" ", " ", " ", "\t", "\n", "\r", "\r\n", "\v", "\f", "\u0085", "\u00a0", "\u1680", "\u2000", "\u200a", "\u2028", "\u2029",
	"\u202f", "\u205f", "\u3000", "\u001c", "\u001f", "\u180e", "\u200b", "\ufeff",
	"0", "1", "7", "²", "½", "Ⅻ", "١", "१", "９",
	"!", ".", ",", "/", "$", "+", "<", "|", "~", "-", "_", "(", ")", "\"", "#", "@", "\\", "`", "{",
	"é", "É", "ǅ", "ʰ", "ª", "中", "文", "龥", "龦", "あ", "ア", "ー", "한", "ก", "ि", "\u0301", "\u0300", "\u20dd", "ः",
	"ß", "İ", "Σ", "ς", "Ǆ", "😀", "🫠", "\U0001F3FB", "\u200d", "\u00ad", "€", "©", "、", "。", "«",
	"x\u0301", "A\u0308", "\u0000",
}

func randomText(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(fuzzAlphabet[r.IntN(len(fuzzAlphabet))])
	}
	return b.String()
}

func spansEqual(a, b []span) bool {
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

// TestFastMatchersMatchRegexp2 compares every hand-written matcher with
// regexp2 running the same pattern, on the golden strings and on random
// strings.
func TestFastMatchersMatchRegexp2(t *testing.T) {
	var texts []string
	for _, c := range readJSONL[goldenCase](t, filepath.Join("testdata", "llama3", "cases.jsonl.gz")) {
		if !c.AddSpecial {
			texts = append(texts, c.Text)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		texts = append(texts, randomText(r, 1+r.IntN(12)))
	}
	for pat, fast := range fastMatchers {
		slow, err := compileRegex(pat, true)
		if err != nil {
			t.Fatal(err)
		}
		bad := 0
		for _, s := range texts {
			got := fast.findAll(s, nil)
			want := slow.findAll(s, nil)
			if !spansEqual(got, want) {
				t.Errorf("pattern %q on %q:\n fast %v\n slow %v", pat, s, got, want)
				if bad++; bad > 5 {
					break
				}
			}
		}
	}
}

// TestGoldenCasesSlowRegex runs the golden encode cases with every regex on
// regexp2, so the general path is checked against the reference too.
func TestGoldenCasesSlowRegex(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for _, name := range goldenNames {
		t.Run(name, func(t *testing.T) {
			tk := loadGolden(t, name, true)
			for _, c := range readJSONL[goldenCase](t, filepath.Join("testdata", name, "cases.jsonl.gz")) {
				if ids := tk.Encode(c.Text, c.AddSpecial); !equalInts(ids, c.IDs) {
					t.Fatalf("%s add=%v: ids\n got %v\nwant %v", c.ID, c.AddSpecial, ids, c.IDs)
				}
			}
		})
	}
}

// FuzzFastMatchers compares every hand-written matcher with regexp2 on
// arbitrary text.
func FuzzFastMatchers(f *testing.F) {
	for _, s := range []string{"Hello, world!", "I'm  fine\r\n\n  x", "中文 123 ½", "A\u0301B'S", "\u0085\u00a0 a"} {
		f.Add(s)
	}
	slow := map[string]matcher{}
	for pat := range fastMatchers {
		m, err := compileRegex(pat, true)
		if err != nil {
			f.Fatal(err)
		}
		slow[pat] = m
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\uFFFD") // the tokenizer repairs its input the same way
		}
		for pat, fast := range fastMatchers {
			if got, want := fast.findAll(s, nil), slow[pat].findAll(s, nil); !spansEqual(got, want) {
				t.Fatalf("pattern %q on %q:\n fast %v\n slow %v", pat, s, got, want)
			}
		}
	})
}
