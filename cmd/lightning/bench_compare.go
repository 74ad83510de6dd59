package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lightninglm/lightning/attention"
	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/builtin"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

// bench -compare: several models (or one model in several weight formats)
// timed in one process, in interleaved rounds, against one read-bandwidth
// probe per round.

// compareFlags are the flags of bench's compare mode.
type compareFlags struct {
	specs  *string
	rounds *int
	bwMB   *int
}

// addCompareFlags registers -compare and -bw-mb; -rounds, shared with
// -plan, is registered by runBench and passed in.
func addCompareFlags(fs *flag.FlagSet, rounds *int) compareFlags {
	return compareFlags{
		specs: fs.String("compare", "", "compare models in one run: SPEC,SPEC,… each a model folder, .gguf file, preset or builtin, "+
			"with :FORMAT to quantize it at load (e.g. /tmp/b2:q8,/tmp/b2-q4_k_m.gguf); ratios are to the first"),
		rounds: rounds,
		bwMB:   fs.Int("bw-mb", 1024, "with -compare: MiB streamed by each round's read-bandwidth probe"),
	}
}

// given reports whether a compare flag was set (-bw-mb without -compare is
// an error of runBenchCompare's).
func (cf compareFlags) given(fs *flag.FlagSet) bool {
	return *cf.specs != "" || flagSet(fs, "bw-mb")
}

// runBenchCompare checks the flags of compare mode and runs it.
func runBenchCompare(fs *flag.FlagSet, cf compareFlags, mo modelBenchOptions, threads int) error {
	if *cf.specs == "" {
		return fmt.Errorf("%w: -bw-mb needs -compare", errUsage)
	}
	for _, name := range []string{"kernels", "train", "model", "preset", "long", "profile", "ab-dispatch", "ab-prefill", "lazy-weights", "plan", "workers", "local-workers", "link-gbps", "quant", "wire"} {
		if flagSet(fs, name) {
			return fmt.Errorf("%w: -%s is not available with -compare (name the models in its specs; it times prefill and decode only)", errUsage, name)
		}
	}
	specs, err := parseCompareSpecs(*cf.specs)
	if err != nil {
		return err
	}
	if threads > 0 {
		kernels.SetThreads(threads)
	}
	return benchCompareMode(stdout, fs.Output(), specs, mo, compareOptions{rounds: *cf.rounds, bwMB: *cf.bwMB})
}

// compareOptions are compare mode's own settings.
type compareOptions struct {
	rounds int
	bwMB   int
	// budget is the memory the models may take together to be loaded all
	// at once; 0 means 70% of MemAvailable.
	budget int64
}

// compareSpec is one model of -compare.
type compareSpec struct {
	Spec   string // as given
	Path   string // the model folder or .gguf file; "" for the built-in model
	Preset string // the preset it names, if any (Path is set when it is written)
	Quant  string // Lightning format to quantize to at load ("" = as stored)
}

// parseCompareSpecs reads -compare's list. A spec is MODEL or
// MODEL:FORMAT; MODEL is an existing folder or .gguf file, ORG/REPO pulled
// before, a preset name, or builtin (also the empty name); FORMAT is a
// quantized format of 'lightning quantize'. A path that exists is taken
// whole, colons and all.
func parseCompareSpecs(list string) ([]compareSpec, error) {
	var out []compareSpec
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		s := compareSpec{Spec: item, Path: item}
		if i := strings.LastIndexByte(item, ':'); i >= 0 && !pathExists(item) {
			s.Path, s.Quant = item[:i], item[i+1:]
			if _, err := parseQuantType("-compare "+item+": format", s.Quant, false); err != nil {
				return nil, err
			}
		}
		switch {
		case pathExists(s.Path):
		case s.Path == "" || s.Path == "builtin":
			s.Path = ""
		case isPreset(s.Path):
			s.Preset, s.Path = s.Path, ""
		default:
			p, ok, err := resolvePulled(s.Path)
			if err != nil {
				return nil, fmt.Errorf("-compare %w", err)
			}
			if !ok {
				return nil, fmt.Errorf("%w: -compare %s: %q is not a model folder, .gguf file, pulled ORG/REPO, preset (%s) or builtin",
					errUsage, item, s.Path, strings.Join(presetNames(), ", "))
			}
			s.Path = p
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: -compare: no model named", errUsage)
	}
	return out, nil
}

func pathExists(path string) bool {
	_, err := os.Stat(path)
	return path != "" && err == nil
}

func isPreset(name string) bool { return slices.Contains(presetNames(), name) }

func presetNames() []string {
	var names []string
	for _, p := range minimax01.Presets {
		names = append(names, p.Name)
	}
	return names
}

// compareReport is what bench -compare prints (-json gives it verbatim).
type compareReport struct {
	Threads  int      `json:"threads"`
	LoadAvg  float64  `json:"load_avg_1m"`
	Warnings []string `json:"warnings,omitempty"`
	Rounds   int      `json:"rounds"`
	// AllLoaded says the models stayed loaded together; otherwise each
	// was loaded in its turn of every round, and its decode states
	// prefilled again (they did not fit in FootprintBudget together).
	AllLoaded       bool  `json:"all_loaded_at_once"`
	FootprintBytes  int64 `json:"footprint_bytes"` // estimated weights of all the models as loaded
	FootprintBudget int64 `json:"footprint_budget_bytes"`
	// ReadBW is the median of the rounds' read-bandwidth probes, GB/s.
	ReadBW       float64        `json:"read_bandwidth_gbs"`
	ReadBWRounds []float64      `json:"read_bandwidth_gbs_per_round"`
	Models       []compareModel `json:"models"`
	ElapsedSecs  float64        `json:"elapsed_seconds"`
}

// compareModel is one spec's load and measurements.
type compareModel struct {
	Spec        string           `json:"spec"`
	Model       string           `json:"model"`
	Quant       string           `json:"quant_at_load,omitempty"`
	LoadSecs    float64          `json:"load_seconds"` // the first load
	WeightBytes int64            `json:"weight_bytes"`
	BytesTok    int64            `json:"weight_bytes_per_token"` // read by one decoded token, in the stored formats
	Formats     []formatShare    `json:"weight_formats_per_token"`
	Notes       []string         `json:"load_notes,omitempty"` // GGUF: how each stored type was loaded
	Prefill     []comparePrefill `json:"prefill,omitempty"`
	Decode      []compareDecode  `json:"decode,omitempty"`
}

// formatShare is the part of a token's weight bytes read in one format.
type formatShare struct {
	Format string  `json:"format"`
	Bytes  int64   `json:"bytes"`
	Share  float64 `json:"share"`
}

// compareRatio is a spec's tok/s against the first spec's: the median of
// the rounds' paired ratios, with their range.
type compareRatio struct {
	Ratio    float64 `json:"ratio_to_first"`
	RatioMin float64 `json:"ratio_min"`
	RatioMax float64 `json:"ratio_max"`
}

type comparePrefill struct {
	Tokens          int       `json:"tokens"`
	TokPerSec       float64   `json:"tok_per_s"` // median over the rounds
	TokPerSecRounds []float64 `json:"tok_per_s_per_round"`
	compareRatio
}

type compareDecode struct {
	Context         int       `json:"context"` // of the first round (all loaded at once, each round goes on -decode-n tokens later)
	Tokens          int       `json:"tokens_per_round"`
	TokPerSec       float64   `json:"tok_per_s"` // median over the rounds
	TokPerSecRounds []float64 `json:"tok_per_s_per_round"`
	BytesTok        int64     `json:"bytes_per_token"` // minimax01.Model.DecodeBytes at Context
	// Roofline is the median over the rounds of bytes/token × the round's
	// tok/s ÷ the round's read bandwidth.
	Roofline float64 `json:"roofline_ratio"`
	compareRatio
}

// compareRun is one spec while it runs.
type compareRun struct {
	spec   compareSpec
	q      *minimax01.QuantSpec
	m      *minimax01.Model
	dec    []*minimax01.State // one per -decode-ctx, prefilled to it
	logits []float32
	rep    *compareModel
	loads  int // times loaded so far
	// decodeBytes is DecodeBytes at each -decode-ctx (taken at the first
	// load: in turn the model is closed between its runs).
	decodeBytes []int64
	// tok/s of every round: [point][round]
	prefill, decode [][]float64
}

// benchCompareMode times every spec's prefill and decode points in
// interleaved rounds and prints the comparison.
func benchCompareMode(w, stderr io.Writer, specs []compareSpec, o modelBenchOptions, co compareOptions) error {
	start := time.Now()
	kv, err := attention.ParseKVType(o.kvType)
	if err != nil {
		return fmt.Errorf("%w: -kv: %v", errUsage, err)
	}
	if len(o.prefill) == 0 && len(o.decodeCtx) == 0 {
		return fmt.Errorf("%w: -compare: nothing to measure (-prefill and -decode-ctx are both empty)", errUsage)
	}
	if co.rounds < 1 || co.bwMB < 1 {
		return fmt.Errorf("%w: -rounds and -bw-mb must be ≥ 1", errUsage)
	}
	r := &compareReport{Threads: kernels.Threads(), LoadAvg: loadAvg(), Rounds: co.rounds}
	runs := make([]*compareRun, len(specs))
	for i, s := range specs {
		if s.Preset != "" {
			if s.Path, err = presetModelDir(s.Preset, stderr); err != nil {
				return err
			}
		}
		q, err := quantOption(s.Quant)
		if err != nil {
			return err
		}
		fp, err := footprint(s.Path, q)
		if err != nil {
			return fmt.Errorf("-compare %s: %w", s.Spec, err)
		}
		r.FootprintBytes += fp
		runs[i] = &compareRun{spec: s, q: q, rep: &compareModel{Spec: s.Spec, Model: modelLabel(s.Path), Quant: s.Quant},
			prefill: make([][]float64, len(o.prefill)), decode: make([][]float64, len(o.decodeCtx))}
	}
	r.FootprintBudget = co.budget
	if r.FootprintBudget == 0 {
		r.FootprintBudget = memAvailable() * 7 / 10
	}
	r.AllLoaded = r.FootprintBudget <= 0 || r.FootprintBytes <= r.FootprintBudget
	if r.AllLoaded {
		fmt.Fprintf(stderr, "the %d models take about %s as loaded: loading them all at once\n", len(runs), human(float64(r.FootprintBytes), "B"))
	} else {
		fmt.Fprintf(stderr, "the %d models take about %s as loaded, more than %s (70%% of the memory available): each is loaded in its turn of every round\n",
			len(runs), human(float64(r.FootprintBytes), "B"), human(float64(r.FootprintBudget), "B"))
	}
	if r.LoadAvg > 0.5*float64(runtime.NumCPU()) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("load average %.2f on %d cores: other work shares the machine; the interleaved rounds share it alike, but the numbers are low and noisy", r.LoadAvg, runtime.NumCPU()))
	}
	ld := func(c *compareRun) error {
		if err := c.load(o, kv, co.rounds, stderr); err != nil {
			return err
		}
		for _, x := range c.m.Warnings {
			r.Warnings = appendNew(r.Warnings, c.spec.Spec+": "+x)
		}
		return nil
	}
	defer func() {
		for _, c := range runs {
			c.close()
		}
	}()
	if r.AllLoaded {
		for _, c := range runs {
			if err := ld(c); err != nil {
				return err
			}
		}
	}

	buf := make([]byte, co.bwMB<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	bar := newProgress(stderr, fmt.Sprintf("%d models × %d rounds", len(runs), co.rounds), "runs")
	for round := range co.rounds {
		r.ReadBWRounds = append(r.ReadBWRounds, kernels.ReadBandwidth(buf, 2)/1e9)
		for k := range runs {
			c := runs[(round+k)%len(runs)] // each round starts one model later
			if !r.AllLoaded {
				if err := ld(c); err != nil {
					return err
				}
			}
			c.measure(o)
			if !r.AllLoaded {
				c.close()
			}
			bar.update(int64(round*len(runs)+k+1), int64(co.rounds*len(runs)))
		}
	}
	r.ReadBW = median(slices.Clone(r.ReadBWRounds))
	for _, c := range runs {
		r.Models = append(r.Models, c.summarize(runs[0], o, r.ReadBWRounds))
	}
	r.ElapsedSecs = time.Since(start).Seconds()
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printCompareReport(w, r, o)
	return nil
}

// appendNew appends s unless xs holds it already.
func appendNew(xs []string, s string) []string {
	if slices.Contains(xs, s) {
		return xs
	}
	return append(xs, s)
}

// footprint estimates the memory of the weights of the model at path
// (a folder, a .gguf file or "" for the built-in model) as loaded,
// quantized by q when q is not nil: a GGUF file's size, or the
// checkpoint's parameters in their stored or quantized formats.
func footprint(path string, q *minimax01.QuantSpec) (int64, error) {
	if minimax01.IsGGUF(path) {
		fi, err := os.Stat(path)
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	if path == "" && q == nil {
		return int64(builtin.Size()), nil
	}
	c, err := loadConfig(path)
	if err != nil {
		return 0, err
	}
	if q == nil {
		q = c.Quant
	}
	return c.PartBytes(nil, storedDType(path, true), q), nil
}

// load loads the spec's model, prefills a decode state to every
// -decode-ctx (with room for rounds × -decode-n more tokens) and warms it
// up: one decode step per state and, with -prefill lengths, one prefill of
// the shortest.
func (c *compareRun) load(o modelBenchOptions, kv attention.KVType, rounds int, stderr io.Writer) error {
	fmt.Fprintf(stderr, "loading %s...\n", c.spec.Spec)
	t0 := time.Now()
	m, err := loadModelAt(c.spec.Path, minimax01.Options{MaxBatchTokens: o.chunk, KVType: kv, Quant: c.q, BF16Dot: o.bf16Dot})
	if err != nil {
		return fmt.Errorf("-compare %s: %w", c.spec.Spec, err)
	}
	c.m = m
	if c.loads++; c.loads == 1 {
		c.rep.LoadSecs = time.Since(t0).Seconds()
		wb := m.Weights.Bytes(m.Config)
		c.rep.WeightBytes, c.rep.BytesTok = wb.Total, wb.PerToken
		c.rep.Formats = formatShares(wb.PerTokenByType)
		c.rep.Notes = m.Notes
		for _, ctx := range o.decodeCtx {
			c.decodeBytes = append(c.decodeBytes, m.DecodeBytes(ctx))
		}
	}
	c.logits = make([]float32, m.Config.Vocab)
	c.dec = c.dec[:0]
	for _, ctx := range o.decodeCtx {
		st := m.NewStateCap(ctx + rounds*(o.decodeN+1) + 2)
		p := benchPrompt(max(ctx, 1), m.Config.Vocab)
		for i := 0; i < len(p); i += o.chunk {
			m.Forward([]model.Seq{{State: st, Tokens: p[i:min(i+o.chunk, len(p))]}}, nil)
		}
		m.Forward([]model.Seq{{State: st, Tokens: []int32{1}, Logits: model.LogitsLast}}, c.logits)
		c.dec = append(c.dec, st)
	}
	if len(o.prefill) > 0 {
		c.timePrefill(slices.Min(o.prefill), o.chunk)
	}
	return nil
}

// close drops the model and its states and gives their memory back.
func (c *compareRun) close() {
	if c.m == nil {
		return
	}
	c.m.Close()
	c.m, c.dec = nil, nil
	debug.FreeOSMemory()
}

// measure times every prefill and decode point once.
func (c *compareRun) measure(o modelBenchOptions) {
	for i, n := range o.prefill {
		c.prefill[i] = append(c.prefill[i], c.timePrefill(n, o.chunk))
	}
	for i, st := range c.dec {
		t0 := time.Now()
		for range o.decodeN {
			c.m.Forward([]model.Seq{{State: st, Tokens: []int32{1}, Logits: model.LogitsLast}}, c.logits)
		}
		c.decode[i] = append(c.decode[i], float64(o.decodeN)/time.Since(t0).Seconds())
	}
}

// timePrefill runs a prompt of n tokens from a fresh state, in chunks, and
// returns its tok/s.
func (c *compareRun) timePrefill(n, chunk int) float64 {
	st := c.m.NewStateCap(n)
	p := benchPrompt(n, c.m.Config.Vocab)
	t0 := time.Now()
	for i := 0; i < n; i += chunk {
		j := min(i+chunk, n)
		mode := model.LogitsNone
		if j == n {
			mode = model.LogitsLast
		}
		c.m.Forward([]model.Seq{{State: st, Tokens: p[i:j], Logits: mode}}, c.logits)
	}
	return float64(n) / time.Since(t0).Seconds()
}

// summarize fills the spec's report from its rounds, with ratios paired
// round by round to first's, and roofline ratios against each round's
// bandwidth bws (GB/s).
func (c *compareRun) summarize(first *compareRun, o modelBenchOptions, bws []float64) compareModel {
	rep := *c.rep
	for i, n := range o.prefill {
		tps := c.prefill[i]
		rep.Prefill = append(rep.Prefill, comparePrefill{Tokens: n, TokPerSec: median(slices.Clone(tps)), TokPerSecRounds: tps,
			compareRatio: pairedRatio(tps, first.prefill[i])})
	}
	for i, ctx := range o.decodeCtx {
		tps := c.decode[i]
		d := compareDecode{Context: ctx, Tokens: o.decodeN, TokPerSec: median(slices.Clone(tps)), TokPerSecRounds: tps,
			BytesTok: c.decodeBytes[i], compareRatio: pairedRatio(tps, first.decode[i])}
		roof := make([]float64, len(tps))
		for k, t := range tps {
			roof[k] = float64(d.BytesTok) * t / 1e9 / bws[k]
		}
		d.Roofline = median(roof)
		rep.Decode = append(rep.Decode, d)
	}
	return rep
}

// pairedRatio is the median, minimum and maximum of xs[k] / ref[k].
func pairedRatio(xs, ref []float64) compareRatio {
	rs := make([]float64, len(xs))
	for k := range xs {
		rs[k] = xs[k] / ref[k]
	}
	return compareRatio{Ratio: median(slices.Clone(rs)), RatioMin: slices.Min(rs), RatioMax: slices.Max(rs)}
}

// formatShares lists bytes by format, largest first.
func formatShares(by map[quant.Type]int64) []formatShare {
	var total int64
	for _, n := range by {
		total += n
	}
	var out []formatShare
	for t, n := range by {
		out = append(out, formatShare{Format: t.String(), Bytes: n, Share: float64(n) / float64(max(total, 1))})
	}
	slices.SortFunc(out, func(a, b formatShare) int {
		if a.Bytes != b.Bytes {
			return int(b.Bytes - a.Bytes)
		}
		return strings.Compare(a.Format, b.Format)
	})
	return out
}

func printCompareReport(w io.Writer, r *compareReport, o modelBenchOptions) {
	how := "all loaded at once"
	if !r.AllLoaded {
		how = "each loaded in its turn of every round"
	}
	fmt.Fprintf(w, "%d models, %d interleaved rounds (%s), %d threads, load average %.2f\n", len(r.Models), r.Rounds, how, r.Threads, r.LoadAvg)
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", x)
	}
	fmt.Fprintf(w, "read bandwidth %.1f GB/s (median of the rounds' probes, %.1f … %.1f)\n\n",
		r.ReadBW, slices.Min(r.ReadBWRounds), slices.Max(r.ReadBWRounds))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tweights read per token\tweights loaded\tload s\t")
	for _, m := range r.Models {
		var parts []string
		for _, f := range m.Formats {
			if f.Share >= 0.005 {
				parts = append(parts, fmt.Sprintf("%s %.0f%%", f.Format, 100*f.Share))
			}
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%.1f\t\n", m.Spec, human(float64(m.BytesTok), "B"), strings.Join(parts, ", "), human(float64(m.WeightBytes), "B"), m.LoadSecs)
	}
	tw.Flush()
	ratio := func(x compareRatio, i int) string {
		if i == 0 {
			return "1"
		}
		return fmt.Sprintf("%.3f (%.3f … %.3f)", x.Ratio, x.RatioMin, x.RatioMax)
	}
	for p, n := range o.prefill {
		fmt.Fprintf(w, "\nprefill %d tokens\n", n)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "model\ttok/s\t× first (paired rounds)\t")
		for i, m := range r.Models {
			x := m.Prefill[p]
			fmt.Fprintf(tw, "%s\t%.1f\t%s\t\n", m.Spec, x.TokPerSec, ratio(x.compareRatio, i))
		}
		tw.Flush()
	}
	for p, ctx := range o.decodeCtx {
		fmt.Fprintf(w, "\ndecode at context %d, %d tokens per round\n", ctx, o.decodeN)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "model\ttok/s\tMB/token\t× read BW\t× first (paired rounds)\t")
		for i, m := range r.Models {
			x := m.Decode[p]
			fmt.Fprintf(tw, "%s\t%.2f\t%.1f\t%.2f\t%s\t\n", m.Spec, x.TokPerSec, float64(x.BytesTok)/1e6, x.Roofline, ratio(x.compareRatio, i))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\n(%.0f s)\n", r.ElapsedSecs)
}
