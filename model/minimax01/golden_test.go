package minimax01

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/internal/cpu"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/moe"
)

// Tolerances, from the golden README §8 (fp32 reference vs fp64 reference):
// the worst fp32-vs-fp64 logit difference over all three models and every
// case is 2.9e-5 (tiny-b, cache path). An fp32 engine with a different
// summation order lands in the same noise, so logits must agree to 2e-4
// absolute (≈ 7× that floor; logits are ~5 in magnitude, so no rtol).
// Greedy tokens must be identical (fp64 argmax margins ≥ 1e-3) and router
// top-k sets identical (fp64 k-th vs (k+1)-th margins ≥ 5e-4).
const (
	logitTol = 2e-4
	// Router logits: atol 1e-4 · max|x| per tensor (golden README §8, the
	// tolerance it gives for intermediates).
	relTol = 1e-4
)

// goldenDirs lists the reference models: testdata/golden/* plus every
// directory in $LIGHTNING_GOLDEN (colon-separated, same format).
func goldenDirs(t *testing.T) []string {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirs)
	for _, d := range strings.Split(os.Getenv("LIGHTNING_GOLDEN"), ":") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

type manifest struct {
	Prompts map[string][]int32 `json:"prompts"`
	Cases   []struct {
		Name         string  `json:"name"`
		Kind         string  `json:"kind"`
		Prompt       string  `json:"prompt"`
		File         string  `json:"file"`
		Tensor       *string `json:"tensor"`
		Schedule     []int   `json:"schedule"`
		PrefillLen   int     `json:"prefill_len"`
		NewTokens    int     `json:"new_tokens"`
		IdsTensor    string  `json:"ids_tensor"`
		LogitsTensor string  `json:"logits_tensor"`
		Generated    []int32 `json:"generated"`
	} `json:"cases"`
	Router *struct {
		File   string `json:"file"`
		Prompt string `json:"prompt"`
	} `json:"router"`
	Batch *struct {
		File         string `json:"file"`
		Lengths      []int  `json:"lengths"`
		LeftGenerate struct {
			NewTokens             int       `json:"new_tokens"`
			UnpaddedSoloGenerated [][]int32 `json:"unpadded_solo_generated"`
		} `json:"left_generate"`
	} `json:"batch"`
}

// goldenModel is one reference model directory, opened.
type goldenModel struct {
	dir   string
	man   manifest
	m     *Model
	files map[string]*safetensors.File
}

func openGolden(t *testing.T, dir string, opt Options) *goldenModel {
	t.Helper()
	g := &goldenModel{dir: dir, files: map[string]*safetensors.File{}}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &g.man); err != nil {
		t.Fatalf("%s: manifest: %v", dir, err)
	}
	g.m, err = Load(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.m.Close()
		for _, f := range g.files {
			f.Close()
		}
	})
	return g
}

// tensor returns a golden tensor. A file the manifest refers to must be
// present: a missing one fails the test instead of skipping its checks.
func (g *goldenModel) tensor(t *testing.T, file, name string) safetensors.Tensor {
	t.Helper()
	f, ok := g.files[file]
	if !ok {
		var err error
		if f, err = safetensors.Open(filepath.Join(g.dir, file)); err != nil {
			t.Fatalf("%s: golden file %s, referred to by the manifest, cannot be read (copy it from the reference): %v", g.dir, file, err)
		}
		g.files[file] = f
	}
	x, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("%s: %s has no tensor %s", g.dir, file, name)
	}
	return x
}

// prefillLogits returns the reference full-prompt logits of prompt, or nil
// when the manifest has no stored prefill case for it.
func (g *goldenModel) prefillLogits(t *testing.T, prompt string) []float32 {
	for _, c := range g.man.Cases {
		if c.Kind == "prefill" && c.Prompt == prompt && c.Tensor != nil {
			return g.tensor(t, c.File, *c.Tensor).F32()
		}
	}
	return nil
}

// run feeds chunks of tokens through one fresh state and returns the logits
// of every token of the chunks after the first skip tokens.
func run(m *Model, tokens []int32, schedule []int, skip int) []float32 {
	st := m.NewState()
	V := m.Config.Vocab
	var out []float32
	fed := 0
	for _, n := range schedule {
		chunk := tokens[fed : fed+n]
		mode := model.LogitsAll
		if fed+n <= skip {
			mode = model.LogitsNone
		}
		seq := []model.Seq{{State: st, Tokens: chunk, Logits: mode}}
		buf := make([]float32, model.LogitRows(seq)*V)
		m.Forward(seq, buf)
		if mode == model.LogitsAll {
			from := max(skip-fed, 0)
			out = append(out, buf[from*V:]...)
		}
		fed += n
	}
	return out
}

// greedy generates n tokens from prompt, returning ids and step logits.
func greedy(m *Model, prompt []int32, n int) ([]int32, []float32) {
	st := m.NewState()
	V := m.Config.Vocab
	logits := make([]float32, V)
	var ids []int32
	var steps []float32
	next := prompt
	for len(ids) < n {
		m.Forward([]model.Seq{{State: st, Tokens: next, Logits: model.LogitsLast}}, logits)
		steps = append(steps, logits...)
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		ids = append(ids, int32(best))
		next = []int32{int32(best)}
	}
	return ids, steps
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var w float64
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		w = max(w, d)
	}
	return w
}

func maxAbs(a []float32) float64 {
	var w float64
	for _, v := range a {
		w = max(w, math.Abs(float64(v)))
	}
	return w
}

// TestGolden checks every case of every reference model against the official
// implementation's outputs, and logs the worst error per case kind.
func TestGolden(t *testing.T) {
	for _, dir := range goldenDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) { checkGoldenModel(t, dir, "") })
	}
}

// TestGoldenEveryPath runs the same checks with the kernels forced onto
// their AVX2 paths and onto the pure-Go twins (style.md G3: the golden tests
// pass on every path the machine can run).
func TestGoldenEveryPath(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs every golden case twice more")
	}
	for _, path := range []string{"avx2", "generic"} {
		t.Run(path, func(t *testing.T) {
			defer forcePath(path)()
			for _, dir := range goldenDirs(t) {
				t.Run(filepath.Base(dir), func(t *testing.T) { checkGoldenModel(t, dir, path) })
			}
		})
	}
}

// forcePath switches every registered kernel to its path named path, or to
// the Go twin when it has none ("generic" turns all fast paths off).
func forcePath(path string) (restore func()) {
	if path == "generic" {
		return cpu.DisableAll()
	}
	var restores []func()
	seen := map[string]bool{}
	for _, im := range cpu.Impls("") {
		if !seen[im.Kernel] {
			seen[im.Kernel] = true
			restores = append(restores, cpu.Select(im.Kernel, path))
		}
	}
	return func() {
		for i := len(restores) - 1; i >= 0; i-- {
			restores[i]()
		}
	}
}

// checkGoldenModel checks every case of one reference model and logs the
// worst error per case kind; path names the kernel path for the log.
func checkGoldenModel(t *testing.T, dir, path string) {
	g := openGolden(t, dir, Options{})
	worst := map[string]float64{}
	note := func(kind string, e float64) { worst[kind] = max(worst[kind], e) }
	V := g.m.Config.Vocab
	for _, c := range g.man.Cases {
		prompt := g.man.Prompts[c.Prompt]
		switch c.Kind {
		case "prefill":
			want := g.tensor(t, c.File, *c.Tensor)
			got := run(g.m, prompt, []int{len(prompt)}, 0)
			e := maxAbsDiff(got, want.F32())
			note("prefill", e)
			if e > logitTol {
				t.Errorf("%s: max |Δlogit| = %.3g > %.0e", c.Name, e, logitTol)
			}
		case "cached":
			got := run(g.m, prompt, c.Schedule, c.PrefillLen)
			var want []float32
			if c.Tensor != nil {
				want = g.tensor(t, c.File, *c.Tensor).F32()
				note("cached (own logits)", maxAbsDiff(got, want))
			} else { // the manifest stores none: compare with the prefill rows (README §3)
				full := g.prefillLogits(t, c.Prompt)
				if full == nil {
					t.Fatalf("%s: no stored logits and no prefill logits of %s", c.Name, c.Prompt)
				}
				want = full[c.PrefillLen*V:]
				note("cached (prefill rows)", maxAbsDiff(got, want))
			}
			if e := maxAbsDiff(got, want); e > logitTol {
				t.Errorf("%s: max |Δlogit| = %.3g > %.0e", c.Name, e, logitTol)
			}
		case "greedy":
			ids, steps := greedy(g.m, prompt, c.NewTokens)
			if !slices.Equal(ids, c.Generated) {
				t.Errorf("%s: generated %v, want %v", c.Name, ids, c.Generated)
			}
			e := maxAbsDiff(steps, g.tensor(t, c.File, c.LogitsTensor).F32())
			note("greedy step logits", e)
			if e > logitTol {
				t.Errorf("%s: step logits max |Δ| = %.3g > %.0e", c.Name, e, logitTol)
			}
		default:
			t.Errorf("unknown case kind %q", c.Kind)
		}
	}
	if g.man.Router != nil {
		note("router logits (rel)", checkRouter(t, dir, g))
	}
	if g.man.Router == nil {
		t.Logf("golden %s: the manifest has no router section; router decisions not checked", dir)
	}
	if g.man.Batch != nil {
		note("batch (unpadded)", checkBatch(t, g))
	} else {
		t.Logf("golden %s: the manifest has no batch section; batch prompts not checked", dir)
	}
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range worst {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%s %.2g", k, worst[k]))
	}
	if path != "" {
		dir += " [" + path + " kernels]"
	}
	t.Logf("golden %s: worst max|Δ|: %s (tolerance %.0e abs on logits)", dir, strings.Join(parts, ", "), logitTol)
}

// routerTracer records router logits per layer.
type routerTracer struct{ logits map[int][]float32 }

func (r *routerTracer) Trace(name string, layer int, v []float32) {
	if name == "router_logits" {
		r.logits[layer] = append(r.logits[layer], v...)
	}
}

// checkRouter compares every layer's router decisions on the router prompt:
// top-k sets must be identical; logits within relTol·max|x|. It returns the
// worst logit error relative to the tensor's max.
func checkRouter(t *testing.T, dir string, g *goldenModel) float64 {
	tr := &routerTracer{logits: map[int][]float32{}}
	m, err := Load(dir, Options{Tracer: tr, MaxBatchTokens: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompt := g.man.Prompts[g.man.Router.Prompt]
	run(m, prompt, []int{len(prompt)}, len(prompt))
	c := m.Config
	var worst float64
	for l := 0; l < c.Layers; l++ {
		wantL := g.tensor(t, g.man.Router.File, fmt.Sprintf("router.L%d.logits", l))
		wantIDs := g.tensor(t, g.man.Router.File, fmt.Sprintf("router.L%d.topk_ids", l))
		got := tr.logits[l]
		e := maxAbsDiff(got, wantL.F32()) / maxAbs(wantL.F32())
		worst = max(worst, e)
		if e > relTol {
			t.Errorf("router layer %d: logits rel err %.3g > %.0e", l, e, relTol)
		}
		ids := make([]int32, len(prompt)*c.TopK)
		wts := make([]float32, len(prompt)*c.TopK)
		probs := append([]float32(nil), got...)
		moe.Route(probs, len(prompt), c.Experts, c.TopK, ids, wts)
		want := wantIDs.I32()
		for p := 0; p < len(prompt); p++ {
			a := slices.Sorted(slices.Values(ids[p*c.TopK : (p+1)*c.TopK]))
			b := slices.Sorted(slices.Values(want[p*c.TopK : (p+1)*c.TopK]))
			if !slices.Equal(a, b) {
				t.Errorf("router layer %d position %d: experts %v, want %v", l, p, a, b)
			}
		}
	}
	return worst
}

// checkBatch runs the batch prompts unpadded (the README's §10 test): each
// against right.logits.b{i}, and 8 greedy tokens against
// unpadded_solo_generated. It returns the worst logit error.
func checkBatch(t *testing.T, g *goldenModel) float64 {
	var worst float64
	for i := range g.man.Batch.Lengths {
		x := g.tensor(t, g.man.Batch.File, fmt.Sprintf("right.logits.b%d", i))
		prompt := g.man.Prompts[fmt.Sprintf("b%d", i)]
		got := run(g.m, prompt, []int{len(prompt)}, 0)
		e := maxAbsDiff(got, x.F32())
		worst = max(worst, e)
		if e > logitTol {
			t.Errorf("batch b%d: max |Δlogit| = %.3g", i, e)
		}
		ids, _ := greedy(g.m, prompt, g.man.Batch.LeftGenerate.NewTokens)
		if want := g.man.Batch.LeftGenerate.UnpaddedSoloGenerated[i]; !slices.Equal(ids, want) {
			t.Errorf("batch b%d: solo greedy %v, want %v", i, ids, want)
		}
	}
	return worst
}
