package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lightninglm/lightning/dist"
	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

func init() {
	register(&command{
		name:    "inspect",
		summary: "show a model's layer plan, parameter counts, bytes per dtype and memory per sequence",
		usage:   "(-model DIR | -preset NAME) [-plan PLAN [-quant FMT]] [-json]",
		help: `Reads config.json (and, when present, the safetensors headers; no weights are loaded) and prints:
the layer plan, total parameters and parameters active per token, bytes per dtype, and the memory one
sequence needs at 8K/128K/1M/4M tokens of context (fixed lightning states + the softmax layers' KV cache).
Works from config.json alone, so a checkpoint can be sized before it is downloaded.

With -plan (pp=N, ep=N or pp=N,ep=M; see 'lightning worker') it also prints the weight memory of the hub
and of every worker, and the sequence state each keeps, for the checkpoint's dtype (BF16 for a preset) or,
with -quant, quantized at load as 'lightning quantize' would.`,
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
	Plan           string           `json:"plan,omitempty"`
	PlanMemory     []planRow        `json:"plan_memory,omitempty"`
}

// planRow is one process of a plan.
type planRow struct {
	Process         string `json:"process"`
	Holds           string `json:"holds"`
	WeightBytes     int64  `json:"weight_bytes"`
	StateBytes      int64  `json:"state_bytes_per_sequence"`
	KVBytesPerToken int64  `json:"kv_bytes_per_token_fp32"`
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
	planFlag := fs.String("plan", "", "also print the memory per process of this plan (pp=N, ep=N, pp=N,ep=M)")
	quantFmt := fs.String("quant", "", "with -plan: size the weights quantized at load to this format (q8, q4g64, …)")
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
	} else {
		c, err = minimax01.LoadConfig(*dir)
	}
	if err != nil {
		return err
	}
	r := buildReport(c, name, *dir)
	if *planFlag != "" {
		if err := addPlan(r, c, *dir, *planFlag, *quantFmt); err != nil {
			return err
		}
	} else if *quantFmt != "" {
		return fmt.Errorf("%w: -quant needs -plan", errUsage)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printReport(stdout, r)
	if r.Plan != "" {
		printPlan(stdout, r)
	}
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
	total, _ := c.Params()
	router := int64(c.Layers * c.Experts * c.Dim)
	return map[string]int64{"BF16": (total - router) * 2, "F32": router * 4}, "estimate (BF16 weights, F32 router gates)"
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
}

// addPlan fills the plan rows of r.
func addPlan(r *inspectReport, c *minimax01.Config, dir, planStr, quantFmt string) error {
	plan, err := dist.ParsePlan(planStr)
	if err != nil {
		return fmt.Errorf("%w: -plan: %v", errUsage, err)
	}
	q, err := quantOption(quantFmt)
	if err != nil {
		return err
	}
	if q != nil && c.Quant != nil {
		return fmt.Errorf("%w: the checkpoint is already quantized (%s); drop -quant", errUsage, c.Quant)
	}
	if q == nil {
		q = c.Quant
	}
	mem, err := plan.Memory(c, storedDType(dir), q)
	if err != nil {
		return err
	}
	r.Plan = plan.String()
	for _, m := range mem {
		r.PlanMemory = append(r.PlanMemory, planRow{Process: m.Role, Holds: m.Part.String(), WeightBytes: m.WeightBytes,
			StateBytes: m.StateBytes, KVBytesPerToken: m.KVBytesPerToken})
	}
	return nil
}

// storedDType is the float type of a checkpoint's embedding (BF16 when there
// is no checkpoint, as for a preset: the released layout).
func storedDType(dir string) quant.Type {
	if dir != "" {
		if ck, err := safetensors.OpenCheckpoint(dir); err == nil {
			defer ck.Close()
			if t, err := ck.Tensor("model.embed_tokens.weight"); err == nil {
				switch t.DType {
				case safetensors.F32:
					return quant.F32
				case safetensors.F16:
					return quant.F16
				}
			}
		}
	}
	return quant.BF16
}

func printPlan(w io.Writer, r *inspectReport) {
	fmt.Fprintf(w, "plan         %s: %d workers\n", r.Plan, len(r.PlanMemory)-1)
	fmt.Fprintf(w, "             %-9s %-44s %12s %14s %12s\n", "process", "holds", "weights", "state/seq", "KV/token")
	var sum int64
	for _, m := range r.PlanMemory {
		fmt.Fprintf(w, "             %-9s %-44s %12s %14s %12s\n", m.Process, m.Holds, gb(m.WeightBytes),
			human(float64(m.StateBytes), "B"), human(float64(m.KVBytesPerToken), "B"))
		sum += m.WeightBytes
	}
	fmt.Fprintf(w, "             %-9s %-44s %12s\n", "total", "", gb(sum))
}

func gb(b int64) string { return fmt.Sprintf("%.3f GB", float64(b)/1e9) }
