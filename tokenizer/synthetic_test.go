package tokenizer

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// synthetic is one record of testdata/synthetic.jsonl.gz
// (testdata/oracle/gen_synth.mjs): a tokenizer assembled from a base file
// with components swapped in, and the reference's results on a list of
// strings.
type synthetic struct {
	Name          string                     `json:"name"`
	Base          string                     `json:"base"`
	Override      map[string]json.RawMessage `json:"override"`
	ModelOverride map[string]json.RawMessage `json:"model_override"`
	Cases         []goldenCase               `json:"cases"`
}

// build assembles the record's tokenizer.json.
func (s *synthetic) build(t *testing.T) []byte {
	t.Helper()
	if s.Base == "none" {
		data, err := json.Marshal(s.Override)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(readGz(t, filepath.Join("testdata", s.Base, "tokenizer.json.gz")), &top); err != nil {
		t.Fatal(err)
	}
	for k, v := range s.Override {
		top[k] = v
	}
	if len(s.ModelOverride) > 0 {
		var model map[string]json.RawMessage
		if err := json.Unmarshal(top["model"], &model); err != nil {
			t.Fatal(err)
		}
		for k, v := range s.ModelOverride {
			model[k] = v
		}
		top["model"], _ = json.Marshal(model)
	}
	data, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestSynthetic checks normalizers, pre-tokenizers, added-token options,
// post-processors, decoders and BPE options that the five real files do not
// use, against the reference.
func TestSynthetic(t *testing.T) {
	for _, s := range readJSONL[synthetic](t, filepath.Join("testdata", "synthetic.jsonl.gz")) {
		t.Run(s.Name, func(t *testing.T) {
			data := s.build(t)
			modes := []bool{false}
			if over, _ := json.Marshal(s.Override); strings.Contains(string(over), `"Regex"`) {
				modes = append(modes, true) // also run the override's regexes on regexp2
			}
			for _, slow := range modes {
				tk, err := fromJSON(data, options{slowRegex: slow})
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range s.Cases {
					ids, toks := tk.EncodeTokens(c.Text, c.AddSpecial)
					if !equalInts(ids, c.IDs) {
						t.Errorf("%q add=%v: ids\n got %v\nwant %v", c.Text, c.AddSpecial, ids, c.IDs)
					} else if !equalStrings(toks, c.Tokens) {
						t.Errorf("%q add=%v: tokens\n got %q\nwant %q", c.Text, c.AddSpecial, toks, c.Tokens)
					}
					if got := tk.Decode(c.IDs, false); got != c.Decoded {
						t.Errorf("%q: decode %q, want %q", c.Text, got, c.Decoded)
					}
					if got := tk.Decode(c.IDs, true); got != c.DecodedSkipSpecial {
						t.Errorf("%q: decode skip special %q, want %q", c.Text, got, c.DecodedSkipSpecial)
					}
				}
			}
		})
	}
}
