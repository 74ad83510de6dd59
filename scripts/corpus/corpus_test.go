package main

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/evalset/passkey"
)

func TestBrownText(t *testing.T) {
	raw, err := os.ReadFile("testdata/brown-sample")
	if err != nil {
		t.Fatal(err)
	}
	want := `The Fulton County Grand Jury said Friday "no evidence" was found.` + "\n\n" +
		`It cost $1/2 (about), he said; didn't he? A second sentence -- here.` + "\n\n" +
		`The "note on this 'Selden' case"? (It was.)`
	if got := brownText(string(raw)); got != want {
		t.Errorf("brownText:\n got %q\nwant %q", got, want)
	}
}

// writeZText writes a zText testament (base.bzs, base.bzz) holding blocks.
func writeZText(t *testing.T, base string, blocks []string) {
	t.Helper()
	var index, data bytes.Buffer
	for _, blk := range blocks {
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		zw.Write([]byte(blk))
		zw.Close()
		for _, v := range []int{data.Len(), z.Len(), len(blk)} {
			binary.Write(&index, binary.LittleEndian, uint32(v))
		}
		data.Write(z.Bytes())
	}
	if err := os.WriteFile(base+".bzs", index.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".bzz", data.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadBible(t *testing.T) {
	dir := t.TempDir()
	writeZText(t, filepath.Join(dir, "ot"), []string{
		`<milestone type="x-importer" n="x"/>`,
		`<div sID="g1" type="front"/><title type="main">Preface</title> Some words.<div eID="g1" type="front"/> ` +
			`<div osisID="Gen" sID="g2" type="book"/><milestone n="Genesis" type="x-usfm-toc2"/><title type="main">Genesis</title>` +
			`<chapter n="1" osisID="Gen.1" sID="Gen.1"/><w lemma="x">In</w> <w>the</w> <w>beginning</w>, <w>God</w>` +
			`<note placement="foot"><reference>1:1 </reference>A note.</note><w>created</w> light &amp; dark. <chapter eID="Gen.1"/>` +
			`<chapter n="2" osisID="Gen.2" sID="Gen.2"/><l sID="l1"/>Line one;<l eID="l1"/> <l sID="l2"/>line two.<l eID="l2"/>` +
			`<chapter eID="Gen.2"/><div eID="g2" osisID="Gen" type="book"/>`,
	})
	writeZText(t, filepath.Join(dir, "nt"), []string{
		`<div osisID="Matt" sID="m" type="book"/><milestone n="Matthew" type="x-usfm-toc2"/>` +
			`<chapter n="1" osisID="Matt.1" sID="Matt.1"/>Text.<chapter eID="Matt.1"/><div eID="m" type="book"/>`,
	})
	docs, err := readBible(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []doc{
		{"front-ot-1-0", "Preface\n\nSome words."},
		{"Gen.1", "Genesis\n\nGenesis 1\n\nIn the beginning, God created light & dark."},
		{"Gen.2", "Genesis 2\n\nLine one;\nline two."},
		{"Matt.1", "Matthew 1\n\nText."},
	}
	if !reflect.DeepEqual(docs, want) {
		t.Errorf("readBible:\n got %q\nwant %q", docs, want)
	}
}

func TestRDataIndex(t *testing.T) {
	// janeaustenr 1.0.0's data/Rdata.rdx as R wrote it; the offsets and
	// lengths below were read from its bytes with a separate script.
	f, err := os.Open("testdata/janeaustenr-Rdata.rdx")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	index, err := unserializeR(raw.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(index.Names, []string{"variables", "references", "compressed"}) {
		t.Fatalf("index names %q", index.Names)
	}
	vars, _ := index.field("variables")
	wantNames := []string{"emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility"}
	wantLocs := [][]float64{{0, 352043}, {352043, 351373}, {703416, 175196}, {878612, 185130}, {1063742, 271037}, {1334779, 266556}}
	if !reflect.DeepEqual(vars.Names, wantNames) {
		t.Fatalf("variables %q, want %q", vars.Names, wantNames)
	}
	for i, v := range vars.List {
		if !reflect.DeepEqual(v.Numbers, wantLocs[i]) {
			t.Errorf("%s at %v, want %v", wantNames[i], v.Numbers, wantLocs[i])
		}
	}
	if c, _ := index.field("compressed"); !reflect.DeepEqual(c.Numbers, []float64{1}) {
		t.Errorf("compressed = %v, want [1]", c.Numbers)
	}
}

func TestUnserializeStrings(t *testing.T) {
	// A character vector c("ab", NA, "") in R's XDR format version 3, written
	// by hand from the format's description.
	var b bytes.Buffer
	b.WriteString("X\n")
	w := func(v ...int32) {
		for _, x := range v {
			binary.Write(&b, binary.BigEndian, x)
		}
	}
	w(3, 0x040200, 0x030500, 5)
	b.WriteString("UTF-8")
	w(16, 3)            // STRSXP, length 3
	w(0x8009, 2)        // CHARSXP (UTF-8 flag), 2 bytes
	b.WriteString("ab") //
	w(9, -1)            // NA_character_
	w(9, 0)             // ""
	v, err := unserializeR(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ab", "", ""}; !reflect.DeepEqual(v.Strings, want) {
		t.Errorf("got %q, want %q", v.Strings, want)
	}
	if _, err := unserializeR(b.Bytes()[:b.Len()-5]); err == nil {
		t.Error("truncated serialization: no error")
	}
}

func TestSplitChapters(t *testing.T) {
	lines := []string{"EMMA", "", "CHAPTER I", "", "Emma Woodhouse,", "handsome.", "", "CHAPTER II", "Mr. Weston"}
	ch := splitChapters(lines)
	if len(ch) != 2 {
		t.Fatalf("%d chapters, want 2", len(ch))
	}
	if got, want := unwrap(ch[0]), "EMMA\n\nCHAPTER I\n\nEmma Woodhouse, handsome."; got != want {
		t.Errorf("chapter 1 %q, want %q", got, want)
	}
	if got, want := unwrap(ch[1]), "CHAPTER II Mr. Weston"; got != want {
		t.Errorf("chapter 2 %q, want %q", got, want)
	}
}

func TestSplitFortunes(t *testing.T) {
	raw, err := os.ReadFile("testdata/fortunes-sample")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A fortune\nwith two lines.", "\t-- Someone", "Last one."}
	if got := splitFortunes(string(raw)); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestJargonFile(t *testing.T) {
	raw, err := os.ReadFile("testdata/jargon-sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []doc{
		{"section/Chapter 1. Hacker Slang", "Chapter 1. Hacker Slang\n\nHacker slang is wrapped like this."},
		{"entry//dev/null", "/dev/null: /dev·nuhl/, n.\n\n[from the Unix null device] A notional ‘black hole’. See bit bucket.\n\n    indented example"},
		{"entry/abbrev", "abbrev: /*-breev'/, /*-brev'/, n.\n\nCommon abbreviation for ‘abbreviation’."},
		{"section/Appendix A. Hacker Folklore", "Appendix A. Hacker Folklore\n\nA story."},
	}
	if got := jargonFile(string(raw)); !reflect.DeepEqual(got, want) {
		t.Errorf("jargonFile:\n got %q\nwant %q", got, want)
	}
}

func TestDevil(t *testing.T) {
	// BdqM = ((1·64 + 29)·64 + 42)·64 + 12.
	if n, err := dictdNumber("BdqM"); err != nil || n != 383628 {
		t.Errorf("dictdNumber(BdqM) = %d, %v; want 383628", n, err)
	}
	dir := t.TempDir()
	body := "00-database-short\nABC, n.  First.\nABC, v.  Second.\n\n    A verse.\n"
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(body))
	zw.Close()
	// Offsets and lengths below 64 are one digit: A=0, Q=16, S=18, f=31, i=34.
	index := "00-database-short\tA\tS\nabc\tS\tQ\nabc\ti\tf\nabcd\tS\tQ\n"
	os.WriteFile(filepath.Join(dir, "d.index"), []byte(index), 0o644)
	os.WriteFile(filepath.Join(dir, "d.dict.dz"), z.Bytes(), 0o644)
	got, err := readDevil(filepath.Join(dir, "d.index"), filepath.Join(dir, "d.dict.dz"))
	if err != nil {
		t.Fatal(err)
	}
	want := []devilEntry{
		{ID: "abc", Headword: "abc", Text: "ABC, n.  First."},
		{ID: "abc#2", Headword: "abc", Text: "ABC, v.  Second.\n\n    A verse."},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("readDevil:\n got %q\nwant %q", got, want)
	}
	for text, want := range map[string]string{
		got[1].Text:                                   "Second.",
		"WHITE, adj. and n.  Black.":                  "Black.",
		"WEREWOLF, n.  A wolf.  All  are evil.":       "A wolf. All are evil.",
		"ALLEGIANCE, n.\n\n    This thing Allegiance": "",
		"ABRACADABRA.\n\n    By _Abracadabra_ we":     "",
	} {
		if d := devilDefinition(text); d != want {
			t.Errorf("devilDefinition(%q) = %q, want %q", text, d, want)
		}
	}
}

func TestParseSynset(t *testing.T) {
	// A line of WordNet 3.0's data.verb.
	line := `00001740 29 v 04 breathe 0 take_a_breath 0 respire 0 suspire 3 021 * 00005041 v 0000 * 00004227 v 0000 + 03110323 a 0301 + 00831191 n 0303 + 04080833 n 0301 + 04250850 n 0105 + 00831191 n 0101 ^ 00004227 v 0103 ^ 00005041 v 0103 $ 00002325 v 0000 $ 00002573 v 0000 ~ 00002573 v 0000 ~ 00002724 v 0000 ~ 00002942 v 0000 ~ 00003826 v 0000 ~ 00004032 v 0000 ~ 00004227 v 0000 ~ 00005041 v 0000 ~ 00006697 v 0000 ~ 00007328 v 0000 ~ 00017031 v 0000 02 + 02 00 + 08 00 | draw air into, and expel out of, the lungs; "I can breathe better when the air is clean"; "The patient is respiring"  `
	s, err := parseSynset(line, "verb")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"breathe", "take a breath", "respire", "suspire"}; !reflect.DeepEqual(s.Words, want) {
		t.Errorf("words %q, want %q", s.Words, want)
	}
	if want := []int{0, 0, 0, 3}; !reflect.DeepEqual(s.LexIDs, want) || s.LexFile != 29 {
		t.Errorf("lex ids %v file %d, want %v file 29", s.LexIDs, s.LexFile, want)
	}
	if got, want := s.Definition(), "draw air into, and expel out of, the lungs"; got != want {
		t.Errorf("definition %q, want %q", got, want)
	}
	if got := s.Examples(); len(got) != 2 || got[1] != "The patient is respiring" {
		t.Errorf("examples %q", got)
	}
	adj, err := parseSynset(`01382086 00 a 02 big(a) 0 large 0 000 | above average in size`, "adjective")
	if err != nil || !reflect.DeepEqual(adj.Words, []string{"big", "large"}) {
		t.Errorf("adjective words %q, %v", adj.Words, err)
	}
}

// writeWordNet writes a two-synset WordNet: "run" as a noun (tagged 3
// times) and as a verb (tagged 9 times).
func writeWordNet(t *testing.T) string {
	dir := t.TempDir()
	files := map[string]string{
		"data.noun":   "  licence header line\n00000001 04 n 01 run 0 000 | a score in baseball\n",
		"data.verb":   "00000002 38 v 01 run 0 000 | move fast by using one's feet; \"Don't run!\"\n",
		"data.adj":    "",
		"data.adv":    "",
		"index.noun":  "run n 1 0 1 1 00000001  \n",
		"index.verb":  "run v 1 0 1 1 00000002  \n",
		"index.adj":   "",
		"index.adv":   "",
		"cntlist.rev": "run%1:04:00:: 1 3\nrun%2:38:00:: 1 9\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCommonestSense(t *testing.T) {
	wn, err := readWordNet(writeWordNet(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(wn.Synsets) != 2 {
		t.Fatalf("%d synsets, want 2", len(wn.Synsets))
	}
	s, n := wn.commonestSense("run")
	if s == nil || s.POS != "verb" || n != 9 {
		t.Fatalf("commonest sense of run: %+v, count %d; want the verb, 9", s, n)
	}
	if got, want := s.Text(), `run (verb): move fast by using one's feet; "Don't run!"`; got != want {
		t.Errorf("Text %q, want %q", got, want)
	}
}

func TestGoSource(t *testing.T) {
	docs, err := readGoSource("testdata/gosrc")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	if want := []string{"internal/x/x.go", "strings/fields.go"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("documents %q, want %q (no test or generated files)", ids, want)
	}
	want := []goAPI{
		{ImportPath: "strings", Package: "strings", Name: "Fields", Kind: "func", File: "strings/fields.go",
			Synopsis: "Fields splits the string s around each instance of one or more consecutive white space characters."},
		{ImportPath: "strings", Package: "strings", Name: "Builder", Kind: "type", File: "strings/fields.go",
			Synopsis: "Builder is used to efficiently build a string with Builder.WriteString."},
	}
	if got := goAPIs(docs); !reflect.DeepEqual(got, want) {
		t.Errorf("goAPIs:\n got %+v\nwant %+v", got, want)
	}
}

func TestSplitHash(t *testing.T) {
	// FNV-1a-64 of "brown\x00ca01", computed with a separate script.
	if got := splitHash("brown", "ca01"); got != 0xf95e8c6209d26056 {
		t.Errorf("splitHash = %#x, want 0xf95e8c6209d26056", got)
	}
	// Over n ids the held-out count is binomial(n, 2%): mean 2000 and
	// standard deviation sqrt(n·p·(1−p)) ≈ 44 at n = 100000; allow 5σ.
	const n = 100000
	held := 0
	for i := 0; i < n; i++ {
		if heldOut("test", fmt.Sprint("doc", i)) {
			held++
		}
	}
	if held < 2000-220 || held > 2000+220 {
		t.Errorf("%d of %d held out, want 2000 ± 220", held, n)
	}
}

func TestPasskey(t *testing.T) {
	d := makePasskey(12345, 0, 3)
	needle := fmt.Sprintf(passkey.Needle, 12345, 12345)
	if !strings.HasPrefix(d.Text, passkey.Intro+needle) || strings.Count(d.Text, passkey.Filler[:20]) != 3 {
		t.Errorf("depth 0: needle not first or wrong filler count:\n%s", d.Text)
	}
	end := makePasskey(54321, 1, 3)
	if !strings.HasSuffix(end.Text, strings.TrimSpace(fmt.Sprintf(passkey.Needle, 54321, 54321))+passkey.Question) || end.Answer != "54321" {
		t.Errorf("depth 1: needle not last before the question:\n%s", end.Text)
	}
	set := passkeyTrainingSet(50, 2, 5, 1)
	again := passkeyTrainingSet(50, 2, 5, 1)
	if !reflect.DeepEqual(set, again) {
		t.Error("training set differs between two runs with the same seed")
	}
	for _, p := range set {
		if p.Repeats < 2 || p.Repeats > 5 || !strings.HasSuffix(p.Text, passkey.Question+" "+p.Answer+".") ||
			!strings.Contains(p.Text, "The pass key is "+p.Answer+". Remember it.") {
			t.Fatalf("bad training document: %+v", p)
		}
	}
}

func TestChatTemplates(t *testing.T) {
	args := []any{"entity", "the reference", "extra", "Entity", "Name"}
	for _, set := range [][]chatTemplate{wordTemplates, devilTemplates, goFuncTemplates, goTypeTemplates} {
		for _, tpl := range set {
			q, a := fmt.Sprintf(tpl.question, args...), fmt.Sprintf(tpl.answer, args...)
			if strings.Contains(q+a, "%!") || !strings.Contains(a, "the reference") {
				t.Errorf("template %q / %q gives %q / %q", tpl.question, tpl.answer, q, a)
			}
		}
	}
}

func TestBuildChat(t *testing.T) {
	wn, err := readWordNet(writeWordNet(t))
	if err != nil {
		t.Fatal(err)
	}
	devil := []devilEntry{{ID: "abc", Headword: "abc", Text: "ABC, n.  First."}}
	apis := []goAPI{{ImportPath: "strings", Package: "strings", Name: "Fields", Kind: "func", File: "strings/strings.go", Synopsis: "Fields splits s."}}
	c := buildChat(wn, devil, apis)
	all := append(append([]conversation{}, c.Train...), c.HeldOut...)
	if len(all) != 3 { // too few for a two-turn conversation
		t.Fatalf("%d conversations, want 3 (run, abc, strings.Fields)", len(all))
	}
	for _, conv := range all {
		if len(conv.Messages) != 2 || conv.Messages[0].Role != "user" || conv.Messages[1].Role != "assistant" ||
			!strings.Contains(conv.Messages[1].Content, conv.Reference) || !strings.Contains(conv.Messages[0].Content, conv.Entity[strings.LastIndexByte(conv.Entity, '.')+1:]) {
			t.Errorf("bad conversation %+v", conv)
		}
	}
	if all[0].Reference != "move fast by using one's feet" {
		t.Errorf("run answered with %q, want the verb sense's definition without its example", all[0].Reference)
	}
}

func TestTwoTurn(t *testing.T) {
	c := &chatSet{}
	for i := 0; i < 40; i++ {
		e := fmt.Sprint("w", i)
		c.Train = append(c.Train, conversation{Kind: "word", Entity: e, Reference: "r" + e,
			Messages: []message{{"user", "q" + e}, {"assistant", "a" + e}}})
	}
	c.Counts = map[string][2]int{"word": {40, 0}}
	c.addTwoTurn()
	if len(c.Train) != 44 || c.Counts["two-turn"] != [2]int{4, 0} {
		t.Fatalf("%d conversations, counts %v; want 40 + 4 two-turn", len(c.Train), c.Counts)
	}
	used := map[string]bool{}
	for _, conv := range c.Train[40:] {
		m := conv.Messages
		if len(m) != 4 || m[0].Role != "user" || m[1].Role != "assistant" || m[2].Role != "user" || m[3].Role != "assistant" {
			t.Fatalf("bad two-turn conversation %+v", conv)
		}
		for _, q := range []string{m[0].Content, m[2].Content} {
			if used[q] {
				t.Errorf("question %q used in two two-turn conversations", q)
			}
			used[q] = true
		}
		if "a"+m[2].Content[1:] != m[3].Content || conv.Reference != "r"+m[2].Content[1:] {
			t.Errorf("second answer or reference does not match its question: %+v", conv)
		}
	}
}

func TestUnwrap(t *testing.T) {
	in := []string{"one", "two  ", "", "", "\tverse a", "\tverse b", "three", "four"}
	want := "one two\n\n\tverse a\n\tverse b\nthree four"
	if got := unwrap(in); got != want {
		t.Errorf("unwrap = %q, want %q", got, want)
	}
}

func TestScore(t *testing.T) {
	for _, c := range []struct {
		ref, reply string
		right      bool
		f1         float64
	}{
		{"do away with", "Abolish, a verb: do away with.", true, 2 * 0.5 * 1 / 1.5}, // 3 of 6 reply words, 3 of 3 reference words
		{"do away with", "To do with it away.", false, 2 * 0.6 * 1 / 1.6},           // all reference words, not as a phrase
		{"treat badly", "be kind", false, 0},
	} {
		if got := answerRight(c.ref, c.reply); got != c.right {
			t.Errorf("answerRight(%q, %q) = %v", c.ref, c.reply, got)
		}
		if got := tokenF1(c.ref, c.reply); got < c.f1-1e-12 || got > c.f1+1e-12 {
			t.Errorf("tokenF1(%q, %q) = %v, want %v", c.ref, c.reply, got, c.f1)
		}
	}
	dir := t.TempDir()
	held := `{"messages":[],"kind":"word","entity":"abolish","reference":"do away with"}` + "\n" +
		`{"messages":[],"kind":"word","entity":"abuse","reference":"treat badly"}` + "\n"
	answers := `{"kind":"word","entity":"abolish","answer":"It means to do away with."}` + "\n" +
		`{"kind":"word","entity":"abuse","answer":"be kind"}` + "\n"
	os.WriteFile(filepath.Join(dir, "h.jsonl"), []byte(held), 0o644)
	os.WriteFile(filepath.Join(dir, "a.jsonl"), []byte(answers), 0o644)
	var out bytes.Buffer
	if err := runScore([]string{"-heldout", filepath.Join(dir, "h.jsonl"), "-answers", filepath.Join(dir, "a.jsonl")}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "word          2      1   50.0%") {
		t.Errorf("score table:\n%s", out.String())
	}
}

// TestMix checks the mix against files that the Python script it replaced
// (random.Random(seed).shuffle, json.dumps(ensure_ascii=False)) wrote from the
// same inputs: control characters, quotes, U+2028, HTML characters, emoji,
// and a seed of two 32-bit words.
func TestMix(t *testing.T) {
	in := []string{"testdata/mix-text.jsonl", "testdata/mix-rendered.jsonl"}
	for _, seed := range []string{"1", "8589934597"} {
		out := filepath.Join(t.TempDir(), "mix.jsonl")
		if err := runMix(append([]string{"-o", out, "-seed", seed}, in...)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile("testdata/mix-seed" + seed + ".golden.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("seed %s: mix differs from Python's:\n got %.300q\nwant %.300q", seed, got, want)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"text\": \"a\"}\n{\"rendered\": null}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runMix([]string{"-o", filepath.Join(t.TempDir(), "m.jsonl"), bad})
	if err == nil || !strings.Contains(err.Error(), "bad.jsonl:2:") {
		t.Errorf("a line without text: got error %v, want one naming bad.jsonl:2", err)
	}
}

// TestUnigram checks the baseline against a count worked out by hand:
// training ids 1,1,2 in a vocabulary of 4 give, with add-one smoothing,
// p(1) = 3/7, p(2) = 2/7, p(3) = 1/7.
func TestUnigram(t *testing.T) {
	m, err := readUnigram(strings.NewReader("{\"ids\":[1,1]}\n{\"ids\":[2]}\n"), "train")
	if err != nil {
		t.Fatal(err)
	}
	got := m.nll([]int{1, 2, 3}, 4)
	want := -(math.Log(3.0/7) + math.Log(2.0/7) + math.Log(1.0/7)) / 3
	if math.Abs(got-want) > 1e-12 {
		t.Errorf("nll %v, want %v", got, want)
	}
	if _, err := readUnigram(strings.NewReader("{\"ids\":[1]}\n{\"text\":\"x\"}\n"), "train"); err == nil || !strings.Contains(err.Error(), "train:2") {
		t.Errorf("a line without ids: %v, want an error naming line 2", err)
	}
}

// TestArrange packs the arranged documents back to back the way the trainer
// does and checks that no whole document crosses a sequence boundary, that
// both sets keep their order, and that the whole documents' share is met.
func TestArrange(t *testing.T) {
	// The recipe's shape: sequences of 1,024 tokens, passkey documents of
	// 150 to 950 tokens, fill documents of 1 to 300.
	const seqLen = 1024
	var whole, fill []countedDoc
	for i := 0; i < 300; i++ {
		whole = append(whole, countedDoc{line: fmt.Sprint("w", i), tokens: 150 + (i*37)%800})
	}
	for i := 0; i < 6000; i++ {
		fill = append(fill, countedDoc{line: fmt.Sprint("f", i), tokens: 1 + (i*53)%300})
	}
	got, err := arrange(whole, fill, seqLen, 0.4)
	if err != nil {
		t.Fatal(err)
	}
	pos, wholeTokens, wi, fi := 0, 0, 0, 0
	for _, d := range got {
		if d.whole {
			if d.line != whole[wi].line {
				t.Fatalf("whole document %q out of order, want %q", d.line, whole[wi].line)
			}
			if pos/seqLen != (pos+d.tokens-1)/seqLen {
				t.Errorf("whole document %q (%d tokens) at %d crosses a %d-token boundary", d.line, d.tokens, pos, seqLen)
			}
			wi++
			wholeTokens += d.tokens
		} else {
			if d.line != fill[fi].line {
				t.Fatalf("fill document %q out of order, want %q", d.line, fill[fi].line)
			}
			fi++
		}
		pos += d.tokens
	}
	if wi != len(whole) {
		t.Errorf("%d of %d whole documents placed", wi, len(whole))
	}
	if share := float64(wholeTokens) / float64(pos); share < 0.3 || share > 0.42 {
		t.Errorf("whole documents are %.3f of the tokens, want about 0.4", share)
	}
	if _, err := arrange([]countedDoc{{tokens: seqLen + 1}}, fill, seqLen, 0.4); err == nil {
		t.Error("a whole document longer than a sequence was accepted")
	}
	if _, err := arrange(whole, fill[:10], seqLen, 0.4); err == nil || !strings.Contains(err.Error(), "ran out") {
		t.Errorf("too few fill documents: err = %v", err)
	}
}

// TestRepeatDocs checks the copying documents: the list twice, its length
// within bounds, about the asked share of numbers, and the same documents
// from the same seed.
func TestRepeatDocs(t *testing.T) {
	words := distinctWords([]string{"The cat sat; the CAT ran. A dog's 42 bones", "naïve x"})
	if got, want := strings.Join(words, " "), "bones cat ran sat the"; got != want {
		t.Fatalf("distinctWords = %q, want %q: lower-case words of 2 to 12 letters a-z, once each, sorted", got, want)
	}
	draw := func() []string { return repeatDocs(rand.New(rand.NewPCG(7, 1)), words, 400, 3, 9, 0.3) }
	docs := draw()
	items, nums := 0, 0
	for _, d := range docs {
		body, ok := strings.CutPrefix(d, "Repeat the list.\n\n")
		parts := strings.Split(strings.TrimSuffix(body, "\n"), "\n\n")
		if !ok || len(parts) != 2 || parts[0] != parts[1] {
			t.Fatalf("document %q is not the instruction and one list twice", d)
		}
		f := strings.Fields(parts[0])
		if len(f) < 3 || len(f) > 9 {
			t.Fatalf("list of %d items, want 3 to 9: %q", len(f), d)
		}
		for _, x := range f {
			items++
			if _, err := strconv.Atoi(x); err == nil {
				nums++
				if len(x) > 5 {
					t.Fatalf("number %q has more than 5 digits", x)
				}
			}
		}
	}
	if share := float64(nums) / float64(items); share < 0.25 || share > 0.35 {
		t.Errorf("numbers are %.3f of the items, want about 0.3", share)
	}
	if !reflect.DeepEqual(docs, draw()) {
		t.Error("the same seed gave other documents")
	}
}
