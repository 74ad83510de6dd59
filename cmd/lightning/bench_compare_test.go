package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyDecodeExtra is what a decode step of the tiny preset moves besides
// the weights at context ctx, worked out from its shape (7 lightning layers
// of 4 heads × 16 × 16 fp32 states, read and written; one softmax layer of
// 2 kv heads × 16 keys and values, fp32, per token).
func tinyDecodeExtra(ctx int) int64 { return 7*2*4*16*16*4 + int64(ctx)*2*2*16*4 }

// checkCompareReport checks a -compare report's arithmetic: every spec
// with one figure per round at every point, medians of those figures,
// paired ratios to the first spec from the same rounds (1 for the first),
// decode bytes = weights per token + what the tiny shape moves besides,
// and roofline ratios from bytes, tok/s and each round's bandwidth.
func checkCompareReport(t *testing.T, r compareReport, specs []string, rounds int, prefill []int, ctxs []int) {
	t.Helper()
	if r.Rounds != rounds || len(r.ReadBWRounds) != rounds || len(r.Models) != len(specs) {
		t.Fatalf("%d rounds, %d bandwidth probes, %d models; want %d, %d, %d", r.Rounds, len(r.ReadBWRounds), len(r.Models), rounds, rounds, len(specs))
	}
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Abs(b) }
	med := func(xs []float64) float64 { return median(slices.Clone(xs)) }
	if !close(r.ReadBW, med(r.ReadBWRounds)) || slices.Min(r.ReadBWRounds) <= 0 {
		t.Errorf("read bandwidth %g, rounds %v", r.ReadBW, r.ReadBWRounds)
	}
	first := r.Models[0]
	for i, m := range r.Models {
		if m.Spec != specs[i] || len(m.Prefill) != len(prefill) || len(m.Decode) != len(ctxs) {
			t.Fatalf("model %d: %s with %d prefill and %d decode points; want %s, %d, %d", i, m.Spec, len(m.Prefill), len(m.Decode), specs[i], len(prefill), len(ctxs))
		}
		var sum int64
		for _, f := range m.Formats {
			sum += f.Bytes
		}
		if sum > m.BytesTok || sum < m.BytesTok-8 || m.WeightBytes < m.BytesTok {
			t.Errorf("%s: formats %+v add up to %d of %d bytes per token (weights %d)", m.Spec, m.Formats, sum, m.BytesTok, m.WeightBytes)
		}
		ratioOK := func(x compareRatio, tps, ref []float64) bool {
			rs := make([]float64, len(tps))
			for k := range tps {
				rs[k] = tps[k] / ref[k]
			}
			if i == 0 {
				return x.Ratio == 1 && x.RatioMin == 1 && x.RatioMax == 1
			}
			return close(x.Ratio, med(rs)) && x.RatioMin == slices.Min(rs) && x.RatioMax == slices.Max(rs)
		}
		for p, x := range m.Prefill {
			if x.Tokens != prefill[p] || len(x.TokPerSecRounds) != rounds || !close(x.TokPerSec, med(x.TokPerSecRounds)) ||
				!ratioOK(x.compareRatio, x.TokPerSecRounds, first.Prefill[p].TokPerSecRounds) {
				t.Errorf("%s: prefill %+v", m.Spec, x)
			}
		}
		for p, x := range m.Decode {
			roof := make([]float64, rounds)
			for k, tps := range x.TokPerSecRounds {
				roof[k] = float64(x.BytesTok) * tps / 1e9 / r.ReadBWRounds[k]
			}
			if x.Context != ctxs[p] || len(x.TokPerSecRounds) != rounds || !close(x.TokPerSec, med(x.TokPerSecRounds)) ||
				x.BytesTok != m.BytesTok+tinyDecodeExtra(x.Context) || !close(x.Roofline, med(roof)) ||
				!ratioOK(x.compareRatio, x.TokPerSecRounds, first.Decode[p].TokPerSecRounds) {
				t.Errorf("%s: decode %+v (weights %d B per token)", m.Spec, x, m.BytesTok)
			}
		}
	}
}

// TestBenchCompare runs bench -compare end to end on the tiny preset
// quantized to q8 at load and the tiny preset converted to a Q8_0 GGUF
// file (no timing is checked), then its text report and its usage errors.
func TestBenchCompare(t *testing.T) {
	preset, err := presetModelDir("tiny", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	gg := filepath.Join(t.TempDir(), "tiny-q8_0.gguf")
	if _, stderr, code := runCLI(t, "convert", "-model", preset, "-to", "gguf", "-type", "q8_0", "-o", gg); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, stderr)
	}
	specs := []string{"tiny:q8", gg}
	out, stderr, code := runCLI(t, "bench", "-compare", strings.Join(specs, ","), "-prefill", "24,40", "-decode-ctx", "0,5",
		"-decode-n", "2", "-rounds", "3", "-bw-mb", "8", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r compareReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !r.AllLoaded {
		t.Errorf("two tiny models were not loaded together (footprint %d of %d)", r.FootprintBytes, r.FootprintBudget)
	}
	checkCompareReport(t, r, specs, 3, []int{24, 40}, []int{0, 5})
	if q := r.Models[0]; q.Quant != "q8" || q.Model != preset || q.Formats[0].Format != "q8" {
		t.Errorf("tiny:q8: %+v", q)
	}
	if g := r.Models[1]; g.Quant != "" || g.Formats[0].Format != "q8b32" || !slices.ContainsFunc(g.Notes, func(s string) bool { return strings.Contains(s, "Q8_0 → q8b32") }) {
		t.Errorf("Q8_0 file: %+v; want its matrices as q8b32", g)
	}

	out, stderr, code = runCLI(t, "bench", "-compare", "tiny,tiny:q4g64", "-prefill", "", "-decode-ctx", "3", "-decode-n", "1", "-rounds", "1", "-bw-mb", "8")
	if code != 0 || !strings.Contains(out, "decode at context 3, 1 tokens per round") || !strings.Contains(out, "tiny:q4g64") ||
		!strings.Contains(out, "× read BW") || !strings.Contains(out, "q4g64 ") {
		t.Errorf("text report: exit %d\n%s\n%s", code, out, stderr)
	}

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-compare", "tiny:q9"}, `format "q9"`},
		{[]string{"-compare", "no-such-model"}, `"no-such-model" is not a model folder`},
		{[]string{"-compare", "tiny", "-profile"}, "-profile is not available with -compare"},
		{[]string{"-compare", "tiny", "-preset", "tiny"}, "-preset is not available with -compare"},
		{[]string{"-compare", "tiny", "-prefill", "", "-decode-ctx", ""}, "nothing to measure"},
		{[]string{"-compare", "tiny", "-rounds", "0"}, "-rounds and -bw-mb must be ≥ 1"},
		{[]string{"-rounds", "2"}, "-rounds needs -plan or -compare"},
		{[]string{"-bw-mb", "64"}, "-bw-mb needs -compare"},
	} {
		_, stderr, code := runCLI(t, append([]string{"bench"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.msg) {
			t.Errorf("bench %v: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.msg)
		}
	}
}

// TestBenchCompareInTurn runs a comparison with a memory budget too small
// for both models: each is then loaded in its turn of every round, and
// each round starts one model later (loads A, B, B, A in two rounds,
// against A, B once when they fit), and the report is as complete as when
// they stay loaded.
func TestBenchCompareInTurn(t *testing.T) {
	specs, err := parseCompareSpecs("tiny,tiny:q8")
	if err != nil {
		t.Fatal(err)
	}
	o := modelBenchOptions{prefill: []int{16}, decodeCtx: []int{0, 4}, decodeN: 2, chunk: 8, kvType: "f32", json: true}
	for _, tc := range []struct {
		budget int64
		loads  []string
	}{{1, []string{"tiny", "tiny:q8", "tiny:q8", "tiny"}}, {1 << 40, []string{"tiny", "tiny:q8"}}} {
		var out, stderr bytes.Buffer
		if err := benchCompareMode(&out, &stderr, specs, o, compareOptions{rounds: 2, bwMB: 8, budget: tc.budget}); err != nil {
			t.Fatal(err)
		}
		var r compareReport
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		var loads []string
		for _, line := range strings.Split(stderr.String(), "\n") {
			if s, ok := strings.CutPrefix(line, "loading "); ok {
				loads = append(loads, strings.TrimSuffix(s, "..."))
			}
		}
		if !slices.Equal(loads, tc.loads) || r.AllLoaded != (len(tc.loads) == 2) {
			t.Errorf("budget %d: loads %v, all loaded %v; want %v\n%s", tc.budget, loads, r.AllLoaded, tc.loads, stderr.String())
		}
		checkCompareReport(t, r, []string{"tiny", "tiny:q8"}, 2, o.prefill, o.decodeCtx)
	}
}

// TestParseCompareSpecs checks how a spec splits into model and format:
// presets, builtin, formats after the last colon, and an existing path
// with a colon in its name taken whole.
func TestParseCompareSpecs(t *testing.T) {
	dir := t.TempDir()
	colon := filepath.Join(dir, "b2:q8")
	if err := os.Mkdir(colon, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := parseCompareSpecs(" tiny:q4g64 ,builtin, :q8," + colon + "," + colon + ":q4g32," + dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []compareSpec{
		{Spec: "tiny:q4g64", Preset: "tiny", Quant: "q4g64"},
		{Spec: "builtin"},
		{Spec: ":q8", Quant: "q8"},
		{Spec: colon, Path: colon},
		{Spec: colon + ":q4g32", Path: colon, Quant: "q4g32"},
		{Spec: dir, Path: dir},
	}
	if !slices.Equal(got, want) {
		t.Errorf("specs\n %+v\nwant\n %+v", got, want)
	}
	if _, err := parseCompareSpecs(" , "); err == nil {
		t.Error("an empty list was accepted")
	}
}
