package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model/minimax01"
)

// goldenDir holds the official reference outputs copied for the model tests.
const goldenDir = "../../model/minimax01/testdata/golden"

// runCLI runs the command line in-process and returns stdout, stderr and the
// exit status.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	old := stdout
	stdout = &out
	defer func() { stdout = old }()
	code := run(args, &errb)
	return out.String(), errb.String(), code
}

type goldenManifest struct {
	Prompts map[string][]int `json:"prompts"`
	Cases   []struct {
		Name      string `json:"name"`
		Kind      string `json:"kind"`
		Prompt    string `json:"prompt"`
		Tensor    string `json:"tensor"`
		Schedule  []int  `json:"schedule"`
		NewTokens int    `json:"new_tokens"`
		Generated []int  `json:"generated"`
	} `json:"cases"`
}

func readManifest(t *testing.T, dir string) goldenManifest {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m goldenManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func joinIDs(ids []int) string {
	s := make([]string, len(ids))
	for i, v := range ids {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

// TestLogitsCommandReproducesGolden runs 'lightning logits' on golden
// prompts, whole, token by token and in chunks of 100, and compares the
// written file with the reference logits (tolerance 2e-4 absolute, as in the
// model's golden test: ~7× the reference's fp32-vs-fp64 noise).
func TestLogitsCommandReproducesGolden(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		dir := filepath.Join(goldenDir, name)
		man := readManifest(t, dir)
		ref, err := safetensors.Open(filepath.Join(dir, "prefill.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		for _, c := range man.Cases {
			if c.Kind != "prefill" || (c.Prompt != "p7" && c.Prompt != "p257") {
				continue
			}
			for _, chunk := range []string{"0", "1", "100"} {
				out := filepath.Join(t.TempDir(), "logits.safetensors")
				_, stderr, code := runCLI(t, "logits", "-model", dir, "-ids", joinIDs(man.Prompts[c.Prompt]), "-chunk", chunk, "-o", out)
				if code != 0 {
					t.Fatalf("%s %s: exit %d: %s", name, c.Name, code, stderr)
				}
				f, err := safetensors.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := f.Tensor("logits")
				want, _ := ref.Tensor(c.Tensor)
				if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
					t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
				}
				var worst float64
				for i, v := range got.F32() {
					worst = max(worst, math.Abs(float64(v-want.F32()[i])))
				}
				f.Close()
				if worst > 2e-4 {
					t.Errorf("%s %s -chunk %s: max |Δ| %.3g", name, c.Name, chunk, worst)
				}
			}
		}
	}
}

// TestGenerateCommandReproducesGolden checks the greedy cases end to end.
func TestGenerateCommandReproducesGolden(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-a-bf16", "tiny-b"} {
		dir := filepath.Join(goldenDir, name)
		man := readManifest(t, dir)
		for _, c := range man.Cases {
			if c.Kind != "greedy" {
				continue
			}
			out, stderr, code := runCLI(t, "generate", "-model", dir, "-ids", joinIDs(man.Prompts[c.Prompt]), "-n", fmt.Sprint(c.NewTokens))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if got, want := strings.TrimSpace(out), joinIDs(c.Generated); got != want {
				t.Errorf("%s %s: got %s, want %s", name, c.Name, got, want)
			}
		}
	}
}

// TestCLIErrors checks that bad input gives a clear message and status 2
// (usage) or 1 (failure).
func TestCLIErrors(t *testing.T) {
	dir := filepath.Join(goldenDir, "tiny-a")
	for _, c := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"logits", "-model", dir, "-ids", "1,x", "-o", "/tmp/x"}, "not a token id", 2},
		{[]string{"generate", "-model", dir, "-ids", "1,99999"}, "outside the vocabulary", 2},
		{[]string{"generate", "-ids", "1,99999"}, "outside the vocabulary [0, 8192)", 2}, // the built-in model
		{[]string{"generate", "-model", "/nonexistent", "-ids", "1"}, "no such file", 1},
		{[]string{"inspect", "-model", dir, "-preset", "tiny"}, "not both", 2},
		{[]string{"inspect", "-preset", "tiny", "-check"}, "-check needs a checkpoint", 2},
		{[]string{"random-model", "-preset", "nope", "-o", "/tmp/x"}, "unknown preset", 1},
		{[]string{"nosuchcommand"}, "unknown command", 2},
		{[]string{"generate", "-model", dir, "-ids", "1", "-bogus"}, "flag provided but not defined", 2},
	} {
		_, stderr, code := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// TestRandomModelAndInspect makes a model with random-model, reads it back
// with inspect -json and generates from it.
func TestRandomModelAndInspect(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	if _, stderr, code := runCLI(t, "random-model", "-preset", "tiny", "-vocab", "1000", "-o", dir); code != 0 {
		t.Fatalf("random-model: %s", stderr)
	}
	out, stderr, code := runCLI(t, "inspect", "-model", dir, "-json")
	if code != 0 {
		t.Fatalf("inspect: %s", stderr)
	}
	var r inspectReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Shape["vocab"] != 1000 || r.LayerPlan != "[L]*7+[S]" || r.BytesSource != "safetensors headers" {
		t.Errorf("inspect report %+v", r)
	}
	// Header bytes match the parameter count: BF16 weights, F32 router gates
	// (8 layers × 4 experts × hidden 64).
	router := int64(8 * 4 * 64)
	if got, want := r.BytesByDType["BF16"], (r.Params-router)*2; got != want {
		t.Errorf("BF16 bytes %d, want %d", got, want)
	}
	if got := r.BytesByDType["F32"]; got != router*4 {
		t.Errorf("F32 bytes %d, want %d", got, router*4)
	}
	if out, stderr, code := runCLI(t, "generate", "-model", dir, "-ids", "1,2,3", "-n", "4"); code != 0 || len(strings.Split(strings.TrimSpace(out), ",")) != 4 {
		t.Errorf("generate on the random model: %q %s", out, stderr)
	}
}

// TestBenchModelMode runs bench's model mode on the tiny preset with tiny
// sizes and checks the JSON report is complete.
func TestBenchModelMode(t *testing.T) {
	out, stderr, code := runCLI(t, "bench", "-preset", "tiny", "-prefill", "64", "-decode-ctx", "0,64", "-decode-n", "2", "-long", "300", "-chunk", "128", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r modelReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Prefill) != 1 || len(r.Decode) != 2 || r.Long == nil || r.ReadBW <= 0 || r.FMAPeak <= 0 ||
		r.Prefill[0].TokPerSec <= 0 || r.Decode[1].BytesTok <= r.Decode[0].BytesTok || r.Long.PeakRSS <= 0 {
		t.Errorf("incomplete report: %+v", r)
	}
}

// TestBenchProfile checks bench -profile gives one profile per measured
// point (and the first prefill after load), each a prefill or decode profile whose parts (shares of the
// measured step) do not exceed the step and whose GEMM rows have ratios to
// a limit.
func TestBenchProfile(t *testing.T) {
	out, stderr, code := runCLI(t, "bench", "-preset", "tiny", "-prefill", "64", "-decode-ctx", "0", "-decode-n", "2", "-chunk", "32", "-profile", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r modelReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// The first prefill after load, the same prefill warm, then decode.
	if len(r.Profiles) != 3 || r.Profiles[0].Phase != "prefill" || r.Profiles[0].Steps != 2 || r.Profiles[1].Steps != 2 || r.Profiles[2].Phase != "decode" || r.Profiles[2].Steps != 2 {
		t.Fatalf("profiles %+v", r.Profiles)
	}
	if f := r.FirstPrefill; f == nil || f.Tokens != 64 || f.Ratio <= 0 || r.LoadSecs <= 0 || (runtime.GOOS == "linux" && f.MinorFaults <= 0) {
		t.Errorf("first prefill %+v, load %v s", f, r.LoadSecs)
	}
	for _, sp := range r.Profiles {
		var share float64
		gemms := 0
		for _, o := range sp.Ops {
			share += o.Share
			if strings.HasPrefix(o.Op, "gemm ") && o.Limit != "" && o.Ratio > 0 {
				gemms++
			}
		}
		if share > 1+1e-9 || sp.PartsMs > sp.StepMs*(1+1e-9) || gemms < 5 {
			t.Errorf("%s: parts %.3f of a %.3f ms step (shares sum to %.3f), %d GEMM rows with a limit", sp.Label, sp.PartsMs, sp.StepMs, share, gemms)
		}
	}
}

// TestBenchDispatchAB checks bench -ab-dispatch: one A/B per decode
// context with both paths' medians, their paired ratio within the rounds'
// range, roofline ratios that follow from bytes/token, tok/s and the read
// bandwidth, and no more dispatches grouped than solo. It runs without
// -prefill and with -profile, which once panicked.
func TestBenchDispatchAB(t *testing.T) {
	out, stderr, code := runCLI(t, "bench", "-preset", "tiny", "-prefill", "", "-decode-ctx", "0,5", "-decode-n", "2", "-ab-dispatch", "3", "-profile", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r modelReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.DispatchAB) != 2 || r.DispatchAB[1].Context != 5 {
		t.Fatalf("A/B points %+v", r.DispatchAB)
	}
	for _, ab := range r.DispatchAB {
		rl := func(tps float64) float64 { return float64(ab.BytesTok) * tps / 1e9 / r.ReadBW }
		if ab.Rounds != 3 || ab.Tokens != 2 || ab.SoloTokPerSec <= 0 || ab.GroupTokPerSec <= 0 ||
			ab.Ratio < ab.RatioMin || ab.Ratio > ab.RatioMax || ab.RatioMin <= 0 ||
			math.Abs(ab.SoloRoofline-rl(ab.SoloTokPerSec)) > 1e-9*ab.SoloRoofline ||
			math.Abs(ab.GroupRoofline-rl(ab.GroupTokPerSec)) > 1e-9*ab.GroupRoofline ||
			ab.DispatchCostNs <= 0 || len(ab.SoloPerLayer) != 2 || len(ab.GroupPerLayer) != 2 {
			t.Errorf("inconsistent A/B %+v", ab)
		}
		// Grouping need not dispatch less here: the tiny preset's products are
		// mostly below the serial threshold on their own and above it grouped,
		// so only the accounting is checked: the layers' dispatches are part of
		// the step's.
		for _, c := range []struct {
			total    float64
			perLayer []layerDispatches
		}{{ab.SoloDispatches, ab.SoloPerLayer}, {ab.GroupDispatches, ab.GroupPerLayer}} {
			sum := 0.0
			for _, l := range c.perLayer {
				sum += float64(l.Layers) * l.Dispatches
			}
			if sum > c.total+1e-9 {
				t.Errorf("per-layer dispatches add up to %g, more than the step's %g: %+v", sum, c.total, ab)
			}
		}
	}
}

// TestBenchPrefillAB checks bench -ab-prefill: one A/B per prefill length
// with both paths' medians, their paired ratio within the rounds' range,
// FMA-peak ratios that follow from tok/s and the run's peak, and fewer
// pool dispatches after than before where the experts get enough tokens
// to split them by tokens (512 tokens of the tiny preset: about 256 rows
// per expert), the same where they do not (8 tokens: 16 rows in all, fewer
// than any path's SplitMinRows times the experts used).
func TestBenchPrefillAB(t *testing.T) {
	out, stderr, code := runCLI(t, "bench", "-preset", "tiny", "-prefill", "8,512", "-decode-ctx", "", "-ab-prefill", "3", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r modelReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.PrefillAB) != 2 || r.PrefillAB[0].Tokens != 8 || r.PrefillAB[1].Tokens != 512 {
		t.Fatalf("A/B points %+v", r.PrefillAB)
	}
	c, err := minimax01.PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	for _, ab := range r.PrefillAB {
		fma := func(tps float64) float64 {
			return (r.FlopsPerTok + attentionFlops(c, 0, ab.Tokens)/float64(ab.Tokens)) * tps / 1e9 / r.FMAPeak
		}
		if ab.Rounds != 3 || ab.OldTokPerSec <= 0 || ab.NewTokPerSec <= 0 ||
			ab.Ratio < ab.RatioMin || ab.Ratio > ab.RatioMax || ab.RatioMin <= 0 ||
			math.Abs(ab.OldFMARatio-fma(ab.OldTokPerSec)) > 1e-9*ab.OldFMARatio ||
			math.Abs(ab.NewFMARatio-fma(ab.NewTokPerSec)) > 1e-9*ab.NewFMARatio ||
			!(ab.OldExpertShare > 0 && ab.OldExpertShare < 1 && ab.NewExpertShare > 0 && ab.NewExpertShare < 1) {
			t.Errorf("inconsistent A/B %+v", ab)
		}
	}
	if short, long := r.PrefillAB[0], r.PrefillAB[1]; short.NewDispatches != short.OldDispatches || long.NewDispatches >= long.OldDispatches {
		t.Errorf("pool dispatches per step: 8 tokens %.1f after, %.1f before; 512 tokens %.1f after, %.1f before",
			short.NewDispatches, short.OldDispatches, long.NewDispatches, long.OldDispatches)
	}
}

// TestBenchTrainMode runs bench's training mode on the tiny preset with a
// short sequence and checks the JSON report is complete and consistent: the
// step time is the sum of its parts, and tokens/s and MFU follow from it.
func TestBenchTrainMode(t *testing.T) {
	out, stderr, code := runCLI(t, "bench", "-train", "-preset", "tiny", "-seq-len", "64", "-steps", "1", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r trainReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Runs) != 1 || r.FMAPeak <= 0 {
		t.Fatalf("incomplete report: %+v", r)
	}
	p := r.Runs[0]
	sum := p.ForwardSec + p.HeadSec + p.BackwardSec + p.OptimizerSec
	if p.Preset != "tiny" || p.Tokens != 64 || p.ForwardSec <= 0 || p.HeadSec <= 0 || p.BackwardSec <= 0 || p.OptimizerSec <= 0 ||
		math.Abs(sum-p.StepSec) > 1e-9*sum || math.Abs(p.TokPerSec*p.StepSec-64) > 1e-6 ||
		math.Abs(p.MFU*r.FMAPeak*1e9*p.StepSec-p.FlopsPerStep) > 1e-6*p.FlopsPerStep || !(p.Loss > 0) {
		t.Errorf("inconsistent run: %+v", p)
	}
}

// TestInspectRealShape checks inspect's figures for the real MiniMax-Text-01
// configuration against the spec (§1.5, §4.2): 456,089,655,296 parameters,
// 45,944,920,064 active per token, 912,210,767,872 bytes as BF16 with F32
// router gates, 40,960 B/token of bf16 KV cache and 293.6 MB of fp32
// lightning state per sequence.
func TestInspectRealShape(t *testing.T) {
	out, stderr, code := runCLI(t, "inspect", "-preset", "minimax-text-01", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r inspectReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	total := r.BytesByDType["BF16"] + r.BytesByDType["F32"]
	if r.Params != 456_089_655_296 || r.ActiveParams != 45_944_920_064 || total != 912_210_767_872 ||
		r.KVPerTokenBF16 != 40_960 || r.StateBytesF32 != 293_601_280 || r.LayerPlan != "([L]*7+[S])*10" {
		t.Errorf("report %+v", r)
	}
	if got := r.PerSequence[2]; got.Tokens != 1<<20 || got.KVBF16 != 40_960<<20 {
		t.Errorf("1M row %+v", got)
	}
}
