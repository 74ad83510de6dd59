package minimax01

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/quant"
)

// TestSessionResumeMatchesUninterrupted saves a state after part of a golden
// prompt, loads it, feeds the rest and compares the logits with the
// reference prefill (2e-4 absolute, the golden tolerance).
func TestSessionResumeMatchesUninterrupted(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		g := openGolden(t, filepath.Join("testdata/golden", name), Options{})
		m := g.m
		prompt := g.man.Prompts["p700"]
		want := g.prefillLogits(t, "p700")
		V := m.Config.Vocab
		for _, cut := range []int{1, 256, 300} {
			st := m.NewState()
			m.Forward([]model.Seq{{State: st, Tokens: prompt[:cut]}}, nil)
			path := filepath.Join(t.TempDir(), "s.session")
			if err := m.SaveStateFile(path, st.(*State), []byte(`{"note":"test"}`)); err != nil {
				t.Fatal(err)
			}
			back, meta, err := m.LoadStateFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(meta) != `{"note":"test"}` || back.Len() != cut {
				t.Fatalf("meta %q len %d", meta, back.Len())
			}
			got := make([]float32, (len(prompt)-cut)*V)
			m.Forward([]model.Seq{{State: back, Tokens: prompt[cut:], Logits: model.LogitsAll}}, got)
			if e := maxAbsDiff(got, want[cut*V:]); e > logitTol {
				t.Errorf("%s cut %d: resumed logits max |Δ| %.3g", name, cut, e)
			}
		}
	}
}

// TestSessionRejectsBadFiles checks corrupt, truncated and foreign files.
func TestSessionRejectsBadFiles(t *testing.T) {
	g := openGolden(t, "testdata/golden/tiny-a", Options{})
	m := g.m
	st := m.NewState()
	m.Forward([]model.Seq{{State: st, Tokens: g.man.Prompts["p7"]}}, nil)
	var buf bytes.Buffer
	if err := m.SaveState(&buf, st.(*State), []byte("meta")); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	check := func(name string, data []byte, want string) {
		t.Helper()
		_, _, err := m.LoadState(bytes.NewReader(data))
		if err == nil || !errors.Is(err, ErrSession) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want ErrSession mentioning %q", name, err, want)
		}
	}
	for _, cut := range []int{0, 5, 20, 60, len(good) / 2, len(good) - 1} {
		check("truncated", good[:cut], "truncated")
	}
	flipped := append([]byte(nil), good...)
	flipped[len(good)/2] ^= 0x40
	check("corrupted", flipped, "checksum")
	bad := append([]byte(nil), good...)
	copy(bad, "NOTASESS")
	check("magic", bad, "magic")
	bad = append([]byte(nil), good...)
	bad[8] = 9
	check("version", bad, "version")
	check("trailing", append(append([]byte(nil), good...), 0), "trailing")

	// Another model of the same shape (different weights) must be rejected.
	dir := writeTiny(t, RandomOptions{DType: quant.F32, Seed: 3})
	other, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, _, err := other.LoadState(bytes.NewReader(good)); err == nil || !strings.Contains(err.Error(), "different model") {
		t.Errorf("foreign session: error %v", err)
	}
	if _, _, err := m.LoadStateFile(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
