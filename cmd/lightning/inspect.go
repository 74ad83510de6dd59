package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lightninglm/lightning/format/gguf"
	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model/minimax01"
)

func init() {
	register(&command{
		name:    "inspect",
		summary: "show a model's layer plan, parameter counts, bytes per dtype and memory per sequence",
		usage:   "(-model DIR|FILE.gguf | -preset NAME) [-json]",
		help: `Reads config.json (and, when present, the safetensors headers; no weights are loaded) and prints:
the layer plan, total parameters and parameters active per token, bytes per dtype, and the memory one
sequence needs at 8K/128K/1M/4M tokens of context (fixed lightning states + the softmax layers' KV cache).
Works from config.json alone, so a checkpoint can be sized before it is downloaded.`,
		run: runInspect,
	})
}

// inspectReport is what inspect prints (-json gives it verbatim).
type inspectReport struct {
	Model          string           `json:"model"`
	ModelType      string           `json:"model_type"`
	Layers         int              `json:"layers"`
	LayerPlan      string           `json:"layer_plan"`
	Lightning      int              `json:"lightning_layers"`
	Softmax        int              `json:"softmax_layers"`
	Shape          map[string]int   `json:"shape"`
	Params         int64            `json:"params_total"`
	ActiveParams   int64            `json:"params_active_per_token"`
	ActiveWithHead int64            `json:"params_active_incl_lm_head"`
	BytesByDType   map[string]int64 `json:"bytes_by_dtype"`
	BytesSource    string           `json:"bytes_source"`
	StateBytesF32  int64            `json:"lightning_state_bytes_fp32"`
	KVPerTokenBF16 int64            `json:"kv_bytes_per_token_bf16"`
	KVPerTokenF32  int64            `json:"kv_bytes_per_token_fp32"`
	PerSequence    []memRow         `json:"per_sequence"`
	GGUF           *ggufReport      `json:"gguf,omitempty"`
}

// ggufReport says how a GGUF file maps onto Lightning: the fixed remarks
// and, per stored type, what its matrices become at load.
type ggufReport struct {
	Version  uint32            `json:"version"`
	Parts    int               `json:"parts"`
	Notes    []string          `json:"notes"`
	LoadPlan map[string]string `json:"load_plan"`        // ggml type → Lightning format
	Errors   []string          `json:"errors,omitempty"` // types Lightning cannot read
}

type memRow struct {
	Tokens   int64 `json:"tokens"`
	KVBF16   int64 `json:"kv_bytes_bf16"`
	KVF32    int64 `json:"kv_bytes_fp32"`
	TotalF32 int64 `json:"total_bytes_fp32"`
}

func runInspect(fs *flag.FlagSet, args []string) error {
	dir := fs.String("model", "", "model folder (config.json is enough)")
	preset := fs.String("preset", "", "inspect a built-in shape instead (see 'lightning random-model -help')")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if (*dir == "") == (*preset == "") {
		return fmt.Errorf("%w: give exactly one of -model DIR or -preset NAME", errUsage)
	}
	var c *minimax01.Config
	var err error
	name := *dir
	if *preset != "" {
		c, err = minimax01.PresetConfig(*preset)
		name = "preset " + *preset
	} else if minimax01.IsGGUF(*dir) {
		return inspectGGUF(*dir, *asJSON)
	} else {
		c, err = minimax01.LoadConfig(*dir)
	}
	if err != nil {
		return err
	}
	r := buildReport(c, name, *dir)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printReport(stdout, r)
	return nil
}

func buildReport(c *minimax01.Config, name, dir string) *inspectReport {
	total, active := c.Params()
	mem := c.Memory()
	r := &inspectReport{
		Model: name, ModelType: c.ModelType, Layers: c.Layers, LayerPlan: layerPlan(c.LayerKinds),
		Lightning: c.Count(minimax01.Lightning), Softmax: c.Count(minimax01.Softmax),
		Shape: map[string]int{"hidden": c.Dim, "heads": c.Heads, "kv_heads": c.KVHeads, "head_dim": c.HeadDim,
			"rotary_dim": c.RopeDim, "experts": c.Experts, "top_k": c.TopK, "ffn": c.FFN, "vocab": c.Vocab},
		Params: total, ActiveParams: active, ActiveWithHead: active + int64(c.Vocab*c.Dim),
		StateBytesF32:  mem.StateBytes,
		KVPerTokenF32:  mem.KVBytesPerToken,
		KVPerTokenBF16: mem.KVBytesPerToken / 2,
	}
	r.BytesByDType, r.BytesSource = dtypeBytes(c, dir)
	for _, n := range []int64{8 << 10, 128 << 10, 1 << 20, 4 << 20} {
		r.PerSequence = append(r.PerSequence, memRow{Tokens: n, KVBF16: n * r.KVPerTokenBF16, KVF32: n * r.KVPerTokenF32,
			TotalF32: n*r.KVPerTokenF32 + r.StateBytesF32})
	}
	return r
}

// dtypeBytes sums tensor bytes per dtype from the safetensors headers when
// they are present; otherwise it estimates a BF16 checkpoint with F32
// router gates (the released layout, spec §1.5).
func dtypeBytes(c *minimax01.Config, dir string) (map[string]int64, string) {
	if dir != "" {
		var files []string
		for _, pat := range []string{"model.safetensors", "model-*.safetensors"} {
			m, _ := filepath.Glob(filepath.Join(dir, pat))
			files = append(files, m...)
		}
		if len(files) > 0 {
			out := map[string]int64{}
			for _, f := range files {
				sf, err := safetensors.Open(f)
				if err != nil {
					continue
				}
				for _, n := range sf.Names() {
					t, _ := sf.Tensor(n)
					out[string(t.DType)] += int64(len(t.Data))
				}
				sf.Close()
			}
			return out, "safetensors headers"
		}
	}
	out := map[string]int64{}
	for _, p := range minimax01.ParamTable(c) {
		if p.Role == minimax01.RoleRouter {
			out["F32"] += int64(p.Size) * 4
		} else {
			out["BF16"] += int64(p.Size) * 2
		}
	}
	return out, "estimate (BF16 weights, F32 router gates)"
}

// layerPlan compresses a layer-kind list: "([L]*7+[S])*10" when a pattern
// repeats, else a run-length listing.
func layerPlan(kinds []int) string {
	sym := func(k int) string {
		if k == minimax01.Lightning {
			return "L"
		}
		return "S"
	}
	var runs []string
	for i := 0; i < len(kinds); {
		j := i
		for j < len(kinds) && kinds[j] == kinds[i] {
			j++
		}
		if j-i == 1 {
			runs = append(runs, "["+sym(kinds[i])+"]")
		} else {
			runs = append(runs, fmt.Sprintf("[%s]*%d", sym(kinds[i]), j-i))
		}
		i = j
	}
	for p := 1; p <= len(runs)/2; p++ {
		if len(runs)%p != 0 {
			continue
		}
		ok := true
		for i := p; i < len(runs) && ok; i++ {
			ok = runs[i] == runs[i%p]
		}
		if ok {
			return fmt.Sprintf("(%s)*%d", strings.Join(runs[:p], "+"), len(runs)/p)
		}
	}
	return strings.Join(runs, "+")
}

// inspectGGUF reports on a minimax-01 GGUF file from its header alone.
func inspectGGUF(path string, asJSON bool) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := minimax01.ConfigFromGGUF(f)
	if err != nil {
		return err
	}
	r := buildReport(c, path, "")
	r.BytesByDType, r.BytesSource = map[string]int64{}, "GGUF tensor directory"
	g := &ggufReport{Version: f.Version, Parts: len(f.Parts()), Notes: minimax01.GGUFNotes, LoadPlan: map[string]string{}}
	for _, t := range f.Tensors() {
		r.BytesByDType[t.Type.String()] += int64(len(t.Data))
		if len(t.Shape) < 2 {
			continue
		}
		_, how, err := minimax01.GGUFLoadPlan(t.Type, t.Shape[len(t.Shape)-1], false)
		if err != nil {
			g.Errors = append(g.Errors, fmt.Sprintf("%s: %v", t.Name, err))
			continue
		}
		g.LoadPlan[t.Type.String()] = how
	}
	r.GGUF = g
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printReport(stdout, r)
	return nil
}

func printReport(w io.Writer, r *inspectReport) {
	fmt.Fprintf(w, "model        %s (%s)\n", r.Model, r.ModelType)
	fmt.Fprintf(w, "layers       %d: %s  (L = lightning, S = softmax; %d + %d)\n", r.Layers, r.LayerPlan, r.Lightning, r.Softmax)
	s := r.Shape
	fmt.Fprintf(w, "shape        hidden %d, %d heads × %d (kv %d, rotary %d), %d experts top-%d, ffn %d, vocab %d\n",
		s["hidden"], s["heads"], s["head_dim"], s["kv_heads"], s["rotary_dim"], s["experts"], s["top_k"], s["ffn"], s["vocab"])
	fmt.Fprintf(w, "parameters   %d total (%s)\n", r.Params, human(float64(r.Params), ""))
	fmt.Fprintf(w, "active/token %d (%s) without embeddings and LM head; %s with the LM head\n", r.ActiveParams, human(float64(r.ActiveParams), ""), human(float64(r.ActiveWithHead), ""))
	keys := make([]string, 0, len(r.BytesByDType))
	for k := range r.BytesByDType {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	var sum int64
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d B (%s)", k, r.BytesByDType[k], human(float64(r.BytesByDType[k]), "B")))
		sum += r.BytesByDType[k]
	}
	fmt.Fprintf(w, "weights      %s; total %d B  [%s]\n", strings.Join(parts, ", "), sum, r.BytesSource)
	fmt.Fprintf(w, "state        lightning %d B per sequence (%.1f MB fp32); KV cache %d B/token bf16, %d B/token fp32\n",
		r.StateBytesF32, float64(r.StateBytesF32)/1e6, r.KVPerTokenBF16, r.KVPerTokenF32)
	fmt.Fprintf(w, "per sequence %10s %14s %14s %16s\n", "context", "KV bf16", "KV fp32", "state+KV fp32")
	for _, m := range r.PerSequence {
		fmt.Fprintf(w, "             %10d %14s %14s %16s\n", m.Tokens, gb(m.KVBF16), gb(m.KVF32), gb(m.TotalF32))
	}
	if g := r.GGUF; g != nil {
		fmt.Fprintf(w, "gguf         version %d, %d part(s)\n", g.Version, g.Parts)
		types := make([]string, 0, len(g.LoadPlan))
		for t := range g.LoadPlan {
			types = append(types, t)
		}
		sort.Strings(types)
		for _, t := range types {
			fmt.Fprintf(w, "  load       %s matrices → %s\n", t, g.LoadPlan[t])
		}
		for _, n := range g.Notes {
			fmt.Fprintf(w, "  note       %s\n", n)
		}
		for _, e := range g.Errors {
			fmt.Fprintf(w, "  cannot     %s\n", e)
		}
	}
}

func gb(b int64) string { return fmt.Sprintf("%.3f GB", float64(b)/1e9) }
