package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tokenizerTestdata holds the tokenizer package's reference files.
const tokenizerTestdata = "../../tokenizer/testdata"

func gunzipFile(t *testing.T, path string) []byte {
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
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// llama2Case is one reference case of the llama2 tokenizer (which adds <s>
// with add_special_tokens).
type llama2Case struct {
	ID                 string `json:"id"`
	Text               string `json:"text"`
	AddSpecial         bool   `json:"add_special_tokens"`
	IDs                []int  `json:"ids"`
	Decoded            string `json:"decoded"`
	DecodedSkipSpecial string `json:"decoded_skip_special"`
}

// tokenizeFixture writes the llama2 tokenizer.json to a temporary folder and
// returns its path and the reference cases.
func tokenizeFixture(t *testing.T) (string, []llama2Case) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(path, gunzipFile(t, filepath.Join(tokenizerTestdata, "llama2", "tokenizer.json.gz")), 0o644); err != nil {
		t.Fatal(err)
	}
	var cases []llama2Case
	for _, line := range strings.Split(string(gunzipFile(t, filepath.Join(tokenizerTestdata, "llama2", "cases.jsonl.gz"))), "\n") {
		if line == "" {
			continue
		}
		var c llama2Case
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(c.ID, "basic-") || strings.HasPrefix(c.ID, "special-") || strings.HasPrefix(c.ID, "zh-") {
			cases = append(cases, c)
		}
	}
	return path, cases
}

func tokenizeRun(t *testing.T, in string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	err := runTokenize(fs, args, strings.NewReader(in), &out)
	return out.String(), err
}

func TestTokenizeCommand(t *testing.T) {
	path, cases := tokenizeFixture(t)
	dir := filepath.Dir(path)
	var jsonlIn, jsonlWant, decIn, decWant strings.Builder
	for i, c := range cases {
		want, _ := json.Marshal(c.IDs)
		line, _ := json.Marshal(map[string]any{"text": c.Text, "add_special_tokens": c.AddSpecial})
		jsonlIn.Write(append(line, '\n'))
		jsonlWant.WriteString(`{"ids":` + string(want) + "}\n")
		decIn.WriteString(`{"ids":` + string(want) + "}\n\n") // blank lines are skipped
		var text bytes.Buffer
		enc := json.NewEncoder(&text)
		enc.SetEscapeHTML(false)
		enc.Encode(map[string]string{"text": c.DecodedSkipSpecial})
		decWant.Write(text.Bytes())

		if i%8 != 0 {
			continue // each single run loads the tokenizer again; a sample is enough
		}
		args := []string{"-tokenizer", path}
		if c.AddSpecial {
			args = append(args, "-add-special-tokens")
		}
		got, err := tokenizeRun(t, c.Text, args...)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want)+"\n" {
			t.Errorf("%s add=%v: got %s, want %s", c.ID, c.AddSpecial, got, want)
		}
		// Single decode; the folder form of -tokenizer.
		got, err = tokenizeRun(t, string(want), "-tokenizer", dir, "-decode")
		if err != nil {
			t.Fatal(err)
		}
		var s string
		if err := json.Unmarshal([]byte(got), &s); err != nil || s != c.Decoded {
			t.Errorf("%s: -decode gave %s (%v), want %q", c.ID, got, err, c.Decoded)
		}
	}
	if got, err := tokenizeRun(t, jsonlIn.String(), "-tokenizer", path, "-jsonl"); err != nil || got != jsonlWant.String() {
		t.Errorf("-jsonl: err %v\n got %s\nwant %s", err, got, jsonlWant.String())
	}
	if got, err := tokenizeRun(t, decIn.String(), "-tokenizer", path, "-jsonl", "-decode", "-skip-special-tokens"); err != nil || got != decWant.String() {
		t.Errorf("-jsonl -decode: err %v\n got %s\nwant %s", err, got, decWant.String())
	}
	// The default for lines without add_special_tokens is the flag.
	if got, _ := tokenizeRun(t, `{"text":"Hello"}`+"\n", "-tokenizer", path, "-jsonl", "-add-special-tokens"); !strings.HasPrefix(got, `{"ids":[1,`) {
		t.Errorf("-jsonl default add_special_tokens: got %s", got)
	}
}

func TestTokenizeCommandErrors(t *testing.T) {
	path, _ := tokenizeFixture(t)
	for _, tc := range []struct {
		in    string
		args  []string
		usage bool
	}{
		{"x", []string{"-skip-special-tokens"}, true}, // the built-in model's tokenizer
		{"x", []string{"-tokenizer", path, "-skip-special-tokens"}, true},
		{"x", []string{"-tokenizer", path, "stray"}, true},
		{"x", []string{"-tokenizer", filepath.Join(filepath.Dir(path), "missing.json")}, false},
		{"[1, 2", []string{"-tokenizer", path, "-decode"}, false},
		{"not json\n", []string{"-tokenizer", path, "-jsonl"}, false},
		{`{"txt": "x"}` + "\n", []string{"-tokenizer", path, "-jsonl"}, false},
	} {
		_, err := tokenizeRun(t, tc.in, tc.args...)
		if err == nil || errors.Is(err, errUsage) != tc.usage {
			t.Errorf("%v: err %v, want usage error %v", tc.args, err, tc.usage)
		}
	}
}
