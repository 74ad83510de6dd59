package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lightninglm/lightning/dist"
	"github.com/lightninglm/lightning/format/gguf"
	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model/builtin"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

func init() {
	register(&command{
		name:    "inspect",
		summary: "show a model's layer plan, parameter counts, bytes per dtype and memory per sequence",
		usage:   "[-model DIR|FILE.gguf | -preset NAME] [-plan PLAN [-quant FMT]] [-json] [-check] [-tensors]",
		help: `Reads config.json and, when present, the safetensors headers (no weights are loaded; every tensor the config
calls for must be there with the dtype and shape the config implies, so a wrong field or a missing shard is an
error rather than a wrong size), and prints:
the layer plan, total parameters and parameters active per token, bytes per dtype, and the memory one
sequence needs at 8K/128K/1M/4M tokens of context (fixed lightning states + the softmax layers' KV cache).
Works from config.json alone, so a checkpoint can be sized before it is downloaded.

With -plan (pp=N, ep=N, pp=N,ep=M or sp=N; see 'lightning worker') it also prints the weight memory of the
hub and of every worker, and the sequence state each keeps, for the checkpoint's dtype (BF16 for a preset)
or, with -quant, quantized at load as 'lightning quantize' would; for sp=N also what a chunked prefill
sends between the ranks.

With -check it also reads every weight and reports, by tensor name, the tensors that hold NaN or infinite
values (a damaged download), exiting 1 if any do. Integer and packed (quantized) tensors are not checked
element by element.

Without -model or -preset it reports on the built-in model mini, embedded in this binary, and names it
with its size and the SHA-256 of its weights.

With -tensors, for a GGUF file, it also lists every tensor with its ggml type and shape, to see the
per-tensor types of a mix such as Q4_K_M (lightning inspect -model m-q4_k_m.gguf -tensors).`,
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
	Ring           *ringReport      `json:"sp_ring,omitempty"`
	Check          *weightCheck     `json:"check,omitempty"`
	GGUF           *ggufReport      `json:"gguf,omitempty"`
}

// ringReport is what a sequence-parallel (sp) prefill sends between ranks.
type ringReport struct {
	StateBytesPerBoundary int64   `json:"state_bytes_per_boundary"` // every lightning layer's fp32 state, per round
	KVBytesPerTokenHop    int64   `json:"kv_bytes_per_token_hop"`   // one token's fp32 keys and values, per rank it passes
	PromptTokens          int     `json:"example_prompt_tokens"`
	BytesPerPromptToken   float64 `json:"example_bytes_per_prompt_token"` // that prompt in one round from position 0
}

// ringExample is the prompt length inspect sizes the ring traffic for.
const ringExample = 65536

// planRow is one process of a plan.
type planRow struct {
	Process         string `json:"process"`
	Holds           string `json:"holds"`
	WeightBytes     int64  `json:"weight_bytes"`
	StateBytes      int64  `json:"state_bytes_per_sequence"`
	KVBytesPerToken int64  `json:"kv_bytes_per_token_fp32"`
}

// weightCheck is what -check found.
type weightCheck struct {
	Tensors   int               `json:"tensors"`
	Bytes     int64             `json:"bytes"`
	Unchecked int               `json:"unchecked_tensors"` // integer or packed dtypes
	NonFinite []nonFiniteTensor `json:"non_finite"`
}

type nonFiniteTensor struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Count int64  `json:"count"`
	Of    int64  `json:"of"`
	First int64  `json:"first_index"`
}

// ggufReport says how a GGUF file maps onto Lightning: the fixed remarks
// and, per stored type, what its matrices become at load.
type ggufReport struct {
	Version  uint32            `json:"version"`
	Parts    int               `json:"parts"`
	Notes    []string          `json:"notes"`
	LoadPlan map[string]string `json:"load_plan"`         // ggml type → Lightning format
	Errors   []string          `json:"errors,omitempty"`  // types Lightning cannot read
	FileType uint32            `json:"file_type"`         // general.file_type (llama_ftype: 15 = Q4_K_M, 17 = Q5_K_M, 18 = Q6_K, …)
	Tensors  []ggufTensorRow   `json:"tensors,omitempty"` // with -tensors
}

// ggufTensorRow is one tensor of a GGUF file (inspect -tensors).
type ggufTensorRow struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Shape []int  `json:"shape"`
}

type memRow struct {
	Tokens   int64 `json:"tokens"`
	KVBF16   int64 `json:"kv_bytes_bf16"`
	KVF32    int64 `json:"kv_bytes_fp32"`
	TotalF32 int64 `json:"total_bytes_fp32"`
}

func runInspect(fs *flag.FlagSet, args []string) error {
	dir := fs.String("model", "", "model folder (config.json is enough) or .gguf file (default: the built-in model)")
	preset := fs.String("preset", "", "inspect a built-in shape instead (see 'lightning random-model -help')")
	asJSON := fs.Bool("json", false, "print JSON")
	planFlag := fs.String("plan", "", "also print the memory per process of this plan (pp=N, ep=N, pp=N,ep=M, sp=N)")
	quantFmt := fs.String("quant", "", "with -plan: size the weights quantized at load to this format (q8, q4g64, …)")
	check := fs.Bool("check", false, "read every weight and report tensors holding NaN or infinite values")
	tensors := fs.Bool("tensors", false, "GGUF files: list every tensor's type and shape")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *dir != "" && *preset != "" {
		return fmt.Errorf("%w: give -model DIR or -preset NAME, not both", errUsage)
	}
	if *tensors && !minimax01.IsGGUF(*dir) {
		return fmt.Errorf("%w: -tensors needs -model FILE.gguf", errUsage)
	}
	if *check && *preset != "" {
		return fmt.Errorf("%w: -check needs a checkpoint: -model DIR, or neither flag for the built-in model", errUsage)
	}
	var c *minimax01.Config
	var err error
	name, checkpoint := *dir, false // checkpoint: there are safetensors weights to read
	switch {
	case *preset != "":
		c, err = minimax01.PresetConfig(*preset)
		name = "preset " + *preset
	case minimax01.IsGGUF(*dir):
		if *planFlag != "" {
			return fmt.Errorf("%w: -plan needs a safetensors checkpoint: a GGUF file cannot be loaded in parts yet", errUsage)
		}
		return inspectGGUF(*dir, *asJSON, *tensors)
	case *dir == "":
		c, err = builtin.Config()
		name, checkpoint = builtin.Describe(), true
	default:
		c, err = minimax01.LoadConfig(*dir)
		checkpoint = hasCheckpoint(*dir)
	}
	if err != nil {
		return err
	}
	r, err := buildReport(c, name, *dir, checkpoint)
	if err != nil {
		return err
	}
	if *planFlag != "" {
		if err := addPlan(r, c, *dir, checkpoint, *planFlag, *quantFmt); err != nil {
			return err
		}
	} else if *quantFmt != "" {
		return fmt.Errorf("%w: -quant needs -plan", errUsage)
	}
	if *check {
		if r.Check, err = checkWeights(*dir, fs.Output()); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		printReport(stdout, r)
		if r.Plan != "" {
			printPlan(stdout, r)
		}
	}
	if r.Check != nil && len(r.Check.NonFinite) > 0 {
		return fmt.Errorf("%d of %d tensors hold NaN or infinite values (first: %s); the checkpoint is damaged",
			len(r.Check.NonFinite), r.Check.Tensors, r.Check.NonFinite[0].Name)
	}
	return nil
}

// checkWeights reads every tensor of the checkpoint in dir (the built-in
// model's for "") and counts its
// NaN and infinite elements, with a progress bar on stderr for checkpoints
// that take a while to read.
func checkWeights(dir string, stderr io.Writer) (*weightCheck, error) {
	ck, err := openCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	names := ck.Names()
	wc := &weightCheck{Tensors: len(names), NonFinite: []nonFiniteTensor{}}
	for _, n := range names {
		t, err := ck.Tensor(n)
		if err != nil {
			return nil, err
		}
		wc.Bytes += int64(len(t.Data))
	}
	var prog *progress
	if wc.Bytes >= 256<<20 {
		prog = newProgress(stderr, "checking weights", "B")
	}
	var done int64
	for _, n := range names {
		t, _ := ck.Tensor(n)
		count, first, ok := countNonFinite(t)
		switch {
		case !ok:
			wc.Unchecked++
		case count > 0:
			wc.NonFinite = append(wc.NonFinite, nonFiniteTensor{Name: n, DType: string(t.DType), Count: count,
				Of: int64(t.NumElements()), First: first})
		}
		done += int64(len(t.Data))
		if prog != nil {
			prog.update(done, wc.Bytes)
		}
	}
	return wc, nil
}

// countNonFinite counts the NaN and infinite elements of a floating-point
// tensor (an all-ones exponent field) and returns the first one's index;
// ok=false for dtypes without such values (integers, packed blocks).
func countNonFinite(t safetensors.Tensor) (count, first int64, ok bool) {
	var size int
	var mask uint64
	switch t.DType {
	case safetensors.F64:
		size, mask = 8, 0x7FF0_0000_0000_0000
	case safetensors.F32:
		size, mask = 4, 0x7F80_0000
	case safetensors.BF16:
		size, mask = 2, 0x7F80
	case safetensors.F16:
		size, mask = 2, 0x7C00
	case safetensors.F8E5M2:
		size, mask = 1, 0x7C
	case safetensors.F8E4M3: // no infinities; NaN is S.1111.111
		size, mask = 1, 0x7F
	default:
		return 0, 0, false
	}
	first = -1
	for i := 0; i+size <= len(t.Data); i += size {
		var bits uint64
		for j := size - 1; j >= 0; j-- { // little-endian
			bits = bits<<8 | uint64(t.Data[i+j])
		}
		if bits&mask == mask {
			if count == 0 {
				first = int64(i / size)
			}
			count++
		}
	}
	return count, first, true
}

// buildReport describes the model of config c called name; with checkpoint,
// its bytes come from the safetensors weights of dir (the built-in model's
// for "").
func buildReport(c *minimax01.Config, name, dir string, checkpoint bool) (*inspectReport, error) {
	total, active := c.Params()
	mem := c.Memory()
	r := &inspectReport{
		Model: name, ModelType: c.ModelType, Layers: c.Layers, LayerPlan: layerPlan(c.LayerKinds),
		Lightning: c.Count(minimax01.Lightning), Softmax: c.Count(minimax01.Softmax),
		Shape: map[string]int{"hidden": c.Dim, "heads": c.Heads, "kv_heads": c.KVHeads, "head_dim": c.HeadDim,
			"rotary_dim": c.RopeDim, "experts": c.Experts, "top_k": c.TopK, "ffn": c.FFN, "vocab": c.Vocab},
		Params: total, ActiveParams: active, ActiveWithHead: active + int64(c.Vocab)*int64(c.Dim),
		StateBytesF32:  mem.StateBytes,
		KVPerTokenF32:  mem.KVBytesPerToken,
		KVPerTokenBF16: mem.KVBytesPerToken / 2,
	}
	var err error
	if r.BytesByDType, r.BytesSource, err = dtypeBytes(c, dir, checkpoint); err != nil {
		return nil, err
	}
	for _, n := range []int64{8 << 10, 128 << 10, 1 << 20, 4 << 20} {
		kv, ok := mulInt64(n, r.KVPerTokenF32)
		if !ok || kv > math.MaxInt64-r.StateBytesF32 {
			return nil, fmt.Errorf("the KV cache of %d tokens (%d bytes per token) is too large to count in 64 bits; check num_key_value_heads and head_dim in config.json", n, r.KVPerTokenF32)
		}
		r.PerSequence = append(r.PerSequence, memRow{Tokens: n, KVBF16: n * r.KVPerTokenBF16, KVF32: kv,
			TotalF32: kv + r.StateBytesF32})
	}
	return r, nil
}

// mulInt64 returns a·b for non-negative a and b, and ok=false if it
// overflows an int64.
func mulInt64(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// dtypeBytes sums tensor bytes per dtype from the safetensors headers of
// dir's checkpoint (the built-in model's for ""), after checking its tensors against the
// config (names, dtypes and shapes, as loading would; a missing shard is an
// error); without a checkpoint it estimates a BF16 checkpoint with F32 router gates
// (the released layout, spec §1.5).
func dtypeBytes(c *minimax01.Config, dir string, checkpoint bool) (map[string]int64, string, error) {
	if checkpoint {
		ck, err := openCheckpoint(dir)
		if err != nil {
			return nil, "", err
		}
		defer ck.Close()
		if err := minimax01.CheckCheckpoint(c, ck); err != nil {
			return nil, "", fmt.Errorf("config.json disagrees with the checkpoint: %w", err)
		}
		out := map[string]int64{}
		for _, n := range ck.Names() {
			t, err := ck.Tensor(n)
			if err != nil {
				return nil, "", err
			}
			out[string(t.DType)] += int64(len(t.Data))
		}
		return out, "safetensors headers", nil
	}
	out := map[string]int64{}
	for _, p := range minimax01.ParamTable(c) {
		if p.Role == minimax01.RoleRouter {
			out["F32"] += int64(p.Size) * 4
		} else {
			out["BF16"] += int64(p.Size) * 2
		}
	}
	return out, "estimate (BF16 weights, F32 router gates)", nil
}

// hasCheckpoint reports whether dir holds safetensors weights or an index
// of them.
func hasCheckpoint(dir string) bool {
	for _, pat := range []string{"*.safetensors", "*.safetensors.index.json"} {
		if m, _ := filepath.Glob(filepath.Join(dir, pat)); len(m) > 0 {
			return true
		}
	}
	return false
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
func inspectGGUF(path string, asJSON, tensors bool) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := minimax01.ConfigFromGGUF(f)
	if err != nil {
		return err
	}
	r, err := buildReport(c, path, path, false)
	if err != nil {
		return err
	}
	r.BytesByDType, r.BytesSource = map[string]int64{}, "GGUF tensor directory"
	g := &ggufReport{Version: f.Version, Parts: len(f.Parts()), Notes: minimax01.GGUFNotes, LoadPlan: map[string]string{}}
	if v, ok := f.Metadata().Get("general.file_type"); ok {
		g.FileType, _ = v.(uint32)
	}
	for _, t := range f.Tensors() {
		r.BytesByDType[t.Type.String()] += int64(len(t.Data))
		if tensors {
			g.Tensors = append(g.Tensors, ggufTensorRow{Name: t.Name, Type: t.Type.String(), Shape: t.Shape})
		}
		if len(t.Shape) < 2 {
			continue
		}
		_, how, err := minimax01.GGUFLoadPlan(t.Type, t.Shape[len(t.Shape)-1])
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
		fmt.Fprintf(w, "gguf         version %d, %d part(s), file type %d\n", g.Version, g.Parts, g.FileType)
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
		for _, t := range g.Tensors {
			fmt.Fprintf(w, "  tensor     %-32s %-5s %v\n", t.Name, t.Type, t.Shape)
		}
	}
	if c := r.Check; c != nil {
		skipped := ""
		if c.Unchecked > 0 {
			skipped = fmt.Sprintf(" (%d integer or packed tensors not checked element by element)", c.Unchecked)
		}
		if len(c.NonFinite) == 0 {
			fmt.Fprintf(w, "check        %d tensors, %s read: all finite%s\n", c.Tensors, human(float64(c.Bytes), "B"), skipped)
			return
		}
		fmt.Fprintf(w, "check        %d tensors, %s read: %d hold NaN or infinite values%s\n", c.Tensors, human(float64(c.Bytes), "B"), len(c.NonFinite), skipped)
		for _, t := range c.NonFinite {
			fmt.Fprintf(w, "  non-finite %s (%s): %d of %d elements, first at index %d\n", t.Name, t.DType, t.Count, t.Of, t.First)
		}
	}
}

// addPlan fills the plan rows of r.
func addPlan(r *inspectReport, c *minimax01.Config, dir string, checkpoint bool, planStr, quantFmt string) error {
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
	mem, err := plan.Memory(c, storedDType(dir, checkpoint), q)
	if err != nil {
		return err
	}
	r.Plan = plan.String()
	if plan.SP > 1 {
		m := c.Memory()
		r.Ring = &ringReport{StateBytesPerBoundary: m.StateBytes, KVBytesPerTokenHop: m.KVBytesPerToken, PromptTokens: ringExample,
			BytesPerPromptToken: float64(plan.RingBytes(c, 0, ringExample)) / ringExample}
	}
	for _, m := range mem {
		r.PlanMemory = append(r.PlanMemory, planRow{Process: m.Role, Holds: m.Part.String(), WeightBytes: m.WeightBytes,
			StateBytes: m.StateBytes, KVBytesPerToken: m.KVBytesPerToken})
	}
	return nil
}

// storedDType is the float type of the embedding of dir's checkpoint (BF16
// when there is no checkpoint, as for a preset: the released layout).
func storedDType(dir string, checkpoint bool) quant.Type {
	if checkpoint {
		if ck, err := openCheckpoint(dir); err == nil {
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
	if g := r.Ring; g != nil {
		fmt.Fprintf(w, "ring         each rank holds every layer; a sequence's state and KV cache are on one rank at a time\n")
		fmt.Fprintf(w, "             a chunked prefill sends %s of lightning states per rank boundary and round, and %s of\n",
			human(float64(g.StateBytesPerBoundary), "B"), human(float64(g.KVBytesPerTokenHop), "B"))
		fmt.Fprintf(w, "             softmax keys and values per token for each later rank; a %d-token prompt: %s per prompt token\n",
			g.PromptTokens, human(g.BytesPerPromptToken, "B"))
	}
}

func gb(b int64) string { return fmt.Sprintf("%.3f GB", float64(b)/1e9) }
