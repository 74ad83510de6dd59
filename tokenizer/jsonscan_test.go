package tokenizer

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// TestJSONScanner compares parseVocab and parseMergesJSON with
// encoding/json on the golden files and on escape edge cases.
func TestJSONScanner(t *testing.T) {
	for _, name := range goldenNames {
		var f struct {
			Model modelJSON `json:"model"`
		}
		if err := json.Unmarshal(readGz(t, filepath.Join("testdata", name, "tokenizer.json.gz")), &f); err != nil {
			t.Fatal(err)
		}
		checkVocab(t, name, f.Model.Vocab)
		checkMerges(t, name, f.Model.Merges)
	}
	checkVocab(t, "escapes", []byte(`{"a\"b": 1, "\\": 2, "\u00e9\u4e2d": 3, "\ud83d\ude00": 4, "\ud800x": 5, "\udc00": 6, "\/\b\f\n\r\t": 7, "é": 8, "`+"\xff"+`": 9, "dup": 10, "dup": 11}`))
	checkMerges(t, "pairs", []byte(`[["a","b"],["\u0120","c d"]]`))
	checkMerges(t, "strings", []byte(` [ "a b" , "\u0120 t" ] `))
	for _, bad := range []string{`{"a": -1}`, `{"a": 1`, `{"a" 1}`, `{"a": 1,}`, `{"a\q": 1}`, `{"a": 99999999999}`} {
		if _, err := parseVocab([]byte(bad)); err == nil {
			t.Errorf("parseVocab(%s): no error", bad)
		}
	}
	for _, bad := range []string{`["a b c"]`, `["ab"]`, `[["a"]]`, `[["a","b","c"]]`, `["a b"`, `[1]`} {
		if _, err := parseMergesJSON([]byte(bad)); err == nil {
			t.Errorf("parseMergesJSON(%s): no error", bad)
		}
	}
}

func checkVocab(t *testing.T, name string, raw []byte) {
	t.Helper()
	var want map[string]int32
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	got, err := parseVocab(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", name, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: %q: %d, want %d", name, k, got[k], v)
		}
	}
}

func checkMerges(t *testing.T, name string, raw []byte) {
	t.Helper()
	got, err := parseMergesJSON(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var pairs [][2]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		pairs = nil
		var lines []string
		if err := json.Unmarshal(raw, &lines); err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			var p [2]string
			for i, c := range l {
				if c == ' ' {
					p = [2]string{l[:i], l[i+1:]}
					break
				}
			}
			pairs = append(pairs, p)
		}
	}
	if len(got) != len(pairs) {
		t.Fatalf("%s: %d merges, want %d", name, len(got), len(pairs))
	}
	for i := range pairs {
		if got[i] != pairs[i] {
			t.Fatalf("%s: merge %d %q, want %q", name, i, got[i], pairs[i])
		}
	}
}
