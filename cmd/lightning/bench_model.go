package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lightninglm/lightning/attention"
	"github.com/lightninglm/lightning/internal/cpu"
	"github.com/lightninglm/lightning/internal/trace"
	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

// modelBenchOptions are the flags of bench's model mode.
type modelBenchOptions struct {
	dir, preset string
	prefill     []int // prompt lengths to time
	decodeCtx   []int // contexts to decode at
	decodeN     int   // tokens decoded per context
	chunk       int   // prefill chunk (MaxBatchTokens)
	long        int   // one long prefill of this many tokens (0 = off)
	kvType      string
	quant       string // -quant: quantize the weights at load
	bf16Dot     bool
	json        bool
	profile     bool // split each measured step by op class (trace.Profile)
	lazy        bool // minimax01.Options.LazyWeights: do not prefault the weights at load
	abDispatch  int  // rounds of the interleaved solo/grouped dispatch A/B (0 = off)
	abPrefill   int  // rounds of the interleaved expert column/token split A/B (0 = off)
}

// modelReport is what bench's model mode prints (-json gives it verbatim).
type modelReport struct {
	Model       string   `json:"model"`
	Threads     int      `json:"threads"`
	LoadAvg     float64  `json:"load_avg_1m"`
	Warnings    []string `json:"warnings,omitempty"`
	FMAPeak     float64  `json:"fma_peak_gflops"`
	ReadBW      float64  `json:"read_bandwidth_gbs"`
	AMXPeak     float64  `json:"amx_bf16_peak_gflops"` // 0 without AMX-BF16: the bf16 GEMMs then run on FMAs
	WeightBytes int64    `json:"weight_bytes_active_per_token"`
	FlopsPerTok float64  `json:"matmul_flops_per_token"`
	LoadSecs    float64  `json:"load_seconds"`
	LazyWeights bool     `json:"lazy_weights"` // -lazy-weights: not prefaulted at load
	// FirstPrefill is the first -prefill length run right after the load,
	// before anything else, against the same length warm (Prefill).
	FirstPrefill *firstPrefill  `json:"first_prefill,omitempty"`
	Prefill      []prefillPoint `json:"prefill,omitempty"`
	Decode       []decodePoint  `json:"decode,omitempty"`
	Long         *longRun       `json:"long,omitempty"`
	Profiles     []*stepProfile `json:"profiles,omitempty"` // -profile: one per prefill and decode point
	DispatchAB   []dispatchAB   `json:"dispatch_ab,omitempty"`
	PrefillAB    []prefillAB    `json:"prefill_ab,omitempty"`
	ElapsedSecs  float64        `json:"elapsed_seconds"`
}

type prefillPoint struct {
	Tokens    int     `json:"tokens"`
	Seconds   float64 `json:"seconds"`
	TokPerSec float64 `json:"tok_per_s"`
	GFLOPS    float64 `json:"gflops"`     // useful flops (matmuls + attention) per second
	FMARatio  float64 `json:"fma_ratio"`  // GFLOPS ÷ measured FMA peak
	MsPerTok  float64 `json:"ms_per_tok"` // seconds per token × 1000
}

type firstPrefill struct {
	Tokens        int     `json:"tokens"`
	Seconds       float64 `json:"seconds"`
	TokPerSec     float64 `json:"tok_per_s"`
	WarmTokPerSec float64 `json:"warm_tok_per_s"`
	Ratio         float64 `json:"ratio_to_warm"`
	// Minor page faults of the process during the first and the warm run
	// (from /proc/self/stat; 0 where unreadable): unlike the times, they do
	// not depend on what else runs on the machine. Both runs fault in their
	// fresh state (KV cache, lightning state); the excess of the first is
	// what a cold start costs.
	MinorFaults     int64 `json:"minor_faults"`
	WarmMinorFaults int64 `json:"warm_minor_faults"`
}

type decodePoint struct {
	Context   int     `json:"context"`
	Tokens    int     `json:"tokens"`
	TokPerSec float64 `json:"tok_per_s"`
	BytesTok  int64   `json:"bytes_per_token"` // weights + KV + lightning state moved per token
	GBs       float64 `json:"gb_per_s"`
	Roofline  float64 `json:"roofline_ratio"` // GB/s ÷ measured read bandwidth
}

// dispatchAB is the interleaved A/B of one decode context: every product
// with its own pool dispatch (solo, the path before grouping) against
// grouped products (minimax01.Model.SetSoloDispatch).
type dispatchAB struct {
	Context        int     `json:"context"`
	Rounds         int     `json:"rounds"`
	Tokens         int     `json:"tokens_per_round"`
	BytesTok       int64   `json:"bytes_per_token"`
	SoloTokPerSec  float64 `json:"solo_tok_per_s"` // medians over the rounds
	GroupTokPerSec float64 `json:"grouped_tok_per_s"`
	Ratio          float64 `json:"ratio_grouped_to_solo"` // median of the rounds' paired ratios
	RatioMin       float64 `json:"ratio_min"`
	RatioMax       float64 `json:"ratio_max"`
	SoloRoofline   float64 `json:"solo_roofline_ratio"` // bytes/token × median tok/s ÷ read bandwidth
	GroupRoofline  float64 `json:"grouped_roofline_ratio"`
	// Pool dispatches per decode step, and per layer of each kind (from
	// one profiled step of each path after the rounds).
	SoloDispatches      float64           `json:"solo_pool_dispatches"`
	GroupDispatches     float64           `json:"grouped_pool_dispatches"`
	SoloPerLayer        []layerDispatches `json:"solo_pool_dispatches_per_layer"`
	GroupPerLayer       []layerDispatches `json:"grouped_pool_dispatches_per_layer"`
	DispatchCostNs      float64           `json:"dispatch_cost_ns"`     // measured at load (kernels.DispatchCost)
	ThreadReadGBs       float64           `json:"thread_read_gb_per_s"` // one thread's read rate, same
	SerialBytesMeasured int               `json:"serial_bytes"`         // the serial threshold derived from them
}

// runDispatchAB decodes o.decodeN tokens o.abDispatch times at context ctx
// with each path, alternating which goes first, and reports the medians.
func runDispatchAB(m *minimax01.Model, o modelBenchOptions, ctx int, prompt func(int) []int32, r *modelReport, logits []float32, stderr io.Writer) dispatchAB {
	st := m.NewStateCap(ctx + 2*o.abDispatch*(o.decodeN+1) + 4)
	p := prompt(max(ctx, 1))
	for i := 0; i < len(p); i += o.chunk {
		m.Forward([]model.Seq{{State: st, Tokens: p[i:min(i+o.chunk, len(p))]}}, nil)
	}
	tok := []int32{1}
	step := func() { m.Forward([]model.Seq{{State: st, Tokens: tok, Logits: model.LogitsLast}}, logits) }
	moved := m.DecodeBytes(ctx)
	cost, rate, serial := kernels.DispatchCost()
	ab := dispatchAB{Context: ctx, Rounds: o.abDispatch, Tokens: o.decodeN, BytesTok: moved,
		DispatchCostNs: float64(cost.Nanoseconds()), ThreadReadGBs: rate / 1e9, SerialBytesMeasured: serial}
	var tps [2][]float64
	var disp [2]uint64
	var ratios []float64
	for _, solo := range []bool{true, false} { // warm both paths
		m.SetSoloDispatch(solo)
		step()
	}
	bar := newProgress(stderr, fmt.Sprintf("A/B at context %d", ctx), "rounds")
	for round := 0; round < o.abDispatch; round++ {
		var t [2]float64
		for k := range 2 {
			path := (k + round) % 2 // 0 solo, 1 grouped; the first alternates
			m.SetSoloDispatch(path == 0)
			d0 := kernels.PoolDispatches()
			t0 := time.Now()
			for range o.decodeN {
				step()
			}
			t[path] = float64(o.decodeN) / time.Since(t0).Seconds()
			disp[path] += kernels.PoolDispatches() - d0
		}
		tps[0], tps[1] = append(tps[0], t[0]), append(tps[1], t[1])
		ratios = append(ratios, t[1]/t[0])
		bar.update(int64(round+1), int64(o.abDispatch))
	}
	ab.SoloTokPerSec, ab.GroupTokPerSec, ab.Ratio = median(tps[0]), median(tps[1]), median(ratios)
	ab.RatioMin, ab.RatioMax = slices.Min(ratios), slices.Max(ratios)
	ab.SoloRoofline = float64(moved) * ab.SoloTokPerSec / 1e9 / r.ReadBW
	ab.GroupRoofline = float64(moved) * ab.GroupTokPerSec / 1e9 / r.ReadBW
	steps := float64(o.abDispatch * o.decodeN)
	ab.SoloDispatches, ab.GroupDispatches = float64(disp[0])/steps, float64(disp[1])/steps
	for path := range 2 {
		m.SetSoloDispatch(path == 0)
		prof := &trace.Profile{}
		m.SetProfile(prof)
		step()
		ph := m.TakeProfile()
		m.SetProfile(nil)
		if sp := newStepProfile("", trace.Decode, &ph[trace.Decode], 0, r.FMAPeak, r.ReadBW); sp != nil {
			if path == 0 {
				ab.SoloPerLayer = sp.PerLayer
			} else {
				ab.GroupPerLayer = sp.PerLayer
			}
		}
	}
	m.SetSoloDispatch(false)
	return ab
}

// prefillAB is the interleaved A/B of one prefill length between the
// prefill paths before and after issue 17's expert work. Before: the
// experts' products cut between the threads by output columns, each
// packing its activations in a dispatch of its own, and a product's last
// partial row panel computed by the 14-row microkernel. After: all the
// experts of a layer in one dispatch cut by tokens
// (minimax01.Model.SetExpertColumnSplit), and the GEMM's smaller edge
// microkernels (the "matmul.edge" fast path). The results are bitwise the
// same.
type prefillAB struct {
	Tokens       int     `json:"tokens"`
	Rounds       int     `json:"rounds"`
	OldTokPerSec float64 `json:"old_tok_per_s"` // medians over the rounds
	NewTokPerSec float64 `json:"new_tok_per_s"`
	OldFMARatio  float64 `json:"old_fma_ratio"` // useful GFLOP/s at the median ÷ the FMA peak of this run
	NewFMARatio  float64 `json:"new_fma_ratio"`
	Ratio        float64 `json:"ratio_new_to_old"` // median of the rounds' paired ratios
	RatioMin     float64 `json:"ratio_min"`
	RatioMax     float64 `json:"ratio_max"`
	// The experts' share of a prefill (their products, SwiGLU and the pool
	// waits after them) and pool dispatches per step, from one profiled
	// prefill of each path after the rounds.
	OldExpertShare float64 `json:"old_expert_share"`
	NewExpertShare float64 `json:"new_expert_share"`
	OldDispatches  float64 `json:"old_pool_dispatches"`
	NewDispatches  float64 `json:"new_pool_dispatches"`
}

// setPrefillPath switches m and the kernels to the prefill path before
// (old) or after issue 17's expert work (prefillAB).
func setPrefillPath(m *minimax01.Model, old bool) {
	m.SetExpertColumnSplit(old)
	if old {
		cpu.Select("matmul.edge", "")
	} else {
		cpu.Select("matmul.edge", "avx512")
	}
}

// runPrefillAB times prefill(n) o.abPrefill times with each path,
// alternating which goes first, and reports the medians; with -profile the
// two profiled prefills join the report's profiles.
func runPrefillAB(m *minimax01.Model, o modelBenchOptions, n int, prefill func(int) time.Duration, r *modelReport, stderr io.Writer) prefillAB {
	defer cpu.Select("matmul.edge", "avx512") // restores the flag only if it was available
	defer m.SetExpertColumnSplit(false)
	ab := prefillAB{Tokens: n, Rounds: o.abPrefill}
	for _, old := range []bool{true, false} { // warm both paths
		setPrefillPath(m, old)
		prefill(n)
	}
	var tps [2][]float64
	var ratios []float64
	bar := newProgress(stderr, fmt.Sprintf("A/B of prefill %d", n), "rounds")
	for round := 0; round < o.abPrefill; round++ {
		var t [2]float64
		for k := range 2 {
			path := (k + round) % 2 // 0 old, 1 new; the first alternates
			setPrefillPath(m, path == 0)
			t[path] = float64(n) / prefill(n).Seconds()
		}
		tps[0], tps[1] = append(tps[0], t[0]), append(tps[1], t[1])
		ratios = append(ratios, t[1]/t[0])
		bar.update(int64(round+1), int64(o.abPrefill))
	}
	ab.OldTokPerSec, ab.NewTokPerSec, ab.Ratio = median(tps[0]), median(tps[1]), median(ratios)
	ab.RatioMin, ab.RatioMax = slices.Min(ratios), slices.Max(ratios)
	flopsTok := r.FlopsPerTok + attentionFlops(m.Config, 0, n)/float64(n)
	ab.OldFMARatio = flopsTok * ab.OldTokPerSec / 1e9 / r.FMAPeak
	ab.NewFMARatio = flopsTok * ab.NewTokPerSec / 1e9 / r.FMAPeak
	for path := range 2 {
		setPrefillPath(m, path == 0)
		prof := &trace.Profile{}
		m.SetProfile(prof)
		el := prefill(n)
		ph := m.TakeProfile()
		m.SetProfile(nil)
		name := [...]string{"before (experts by columns, no edge kernels)", "after (experts by tokens, edge kernels)"}[path]
		sp := newStepProfile(fmt.Sprintf("A/B prefill %d, %s", n, name), trace.Prefill, &ph[trace.Prefill], el, r.FMAPeak, r.ReadBW)
		if sp == nil {
			continue
		}
		var ms float64
		for _, op := range sp.Ops {
			// Before, SwiGLU was an activation lap of its own; after, it runs
			// inside the experts' dispatch.
			if op.Op == trace.OpExperts.String() || (path == 0 && op.Op == trace.OpAct.String() && op.Kind != "model") {
				ms += op.Ms + op.WaitMs
			}
		}
		share := ms / sp.StepMs
		if path == 0 {
			ab.OldExpertShare, ab.OldDispatches = share, sp.Dispatches
		} else {
			ab.NewExpertShare, ab.NewDispatches = share, sp.Dispatches
		}
		if o.profile {
			r.Profiles = append(r.Profiles, sp)
		}
	}
	return ab
}

// median returns the median of xs (the mean of the middle two for an even
// count); xs is reordered.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// longRun is one long chunked prefill with per-token time at milestones and
// the peak memory against the formula.
type longRun struct {
	Tokens      int             `json:"tokens"`
	Chunk       int             `json:"chunk"`
	WallSeconds float64         `json:"wall_seconds"`
	Milestones  []longMilestone `json:"milestones"`
	// Fit of every chunk's ms/token against its position: a flat part (the
	// weights, lightning layers, MoE) plus a slope (softmax attention reads
	// a KV cache that grows with the position).
	FlatMsPerTok float64 `json:"fit_flat_ms_per_tok"`
	SlopeMsPer1M float64 `json:"fit_slope_ms_per_tok_per_1m_tokens"`
	FitR2        float64 `json:"fit_r2"`
	PeakRSS      int64   `json:"peak_rss_bytes"`
	FormulaBytes int64   `json:"formula_bytes"`
	Formula      string  `json:"formula"`
}

type longMilestone struct {
	Position int     `json:"position"`
	MsPerTok float64 `json:"ms_per_tok"` // of the chunk that ends at or after Position
	// The same time split: softmax attention blocks (projections, RoPE,
	// attention over the KV cache) and everything else (lightning layers,
	// MoE, norms), which should stay flat as the context grows.
	SoftmaxMsPerTok float64 `json:"softmax_ms_per_tok"`
	RestMsPerTok    float64 `json:"rest_ms_per_tok"`
}

// softmaxTimer is a tracer that sums the wall time spent in the softmax
// layers' attention blocks: from each softmax layer's "input_norm" to its
// "attn_out" (golden debug names, internal/trace).
type softmaxTimer struct {
	softmax map[int]bool
	start   time.Time
	total   time.Duration
}

func (s *softmaxTimer) Trace(name string, layer int, _ []float32) {
	if !s.softmax[layer] {
		return
	}
	switch name {
	case "input_norm":
		s.start = time.Now()
	case "attn_out":
		s.total += time.Since(s.start)
	}
}

// benchModelMode runs the model benchmarks and prints the report.
func benchModelMode(w io.Writer, stderr io.Writer, o modelBenchOptions) error {
	start := time.Now()
	baseline := currentRSS() // the Go runtime and binary, before any model data
	kv, err := attention.ParseKVType(o.kvType)
	if err != nil {
		return fmt.Errorf("%w: -kv: %v", errUsage, err)
	}
	dir := o.dir
	if o.preset != "" {
		if dir, err = presetModelDir(o.preset, stderr); err != nil {
			return err
		}
	}
	q, err := quantOption(o.quant)
	if err != nil {
		return err
	}
	t0 := time.Now()
	m, err := loadModel(dir, minimax01.Options{MaxBatchTokens: o.chunk, KVType: kv, Quant: q, BF16Dot: o.bf16Dot, LazyWeights: o.lazy}, stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	r := &modelReport{Model: modelLabel(dir), Threads: kernels.Threads(), LoadAvg: loadAvg(), LoadSecs: time.Since(t0).Seconds(), LazyWeights: o.lazy}
	c := m.Config
	V := c.Vocab
	prompt := func(n int) []int32 { return benchPrompt(n, V) }
	logits := make([]float32, V)
	var prof *trace.Profile
	if o.profile {
		prof = &trace.Profile{}
		m.SetProfile(prof)
	}
	// prefill times one prompt of n tokens in chunks from a fresh state and
	// counts the minor page faults it took.
	var faults int64
	prefill := func(n int) time.Duration {
		st := m.NewStateCap(n)
		p := prompt(n)
		prof.Reset()
		f0 := minorFaults()
		defer func() { faults = minorFaults() - f0 }()
		t0 := time.Now()
		for i := 0; i < n; i += o.chunk {
			j := min(i+o.chunk, n)
			mode := model.LogitsNone
			if j == n {
				mode = model.LogitsLast
			}
			m.Forward([]model.Seq{{State: st, Tokens: p[i:j], Logits: mode}}, logits)
		}
		return time.Since(t0)
	}
	var cold time.Duration
	var coldFaults int64
	if len(o.prefill) > 0 {
		fmt.Fprintf(stderr, "first prefill after load, %d tokens...\n", o.prefill[0])
		cold = prefill(o.prefill[0])
		coldFaults = faults
	}
	var coldProfile *trace.Steps
	if prof != nil && len(o.prefill) > 0 {
		coldProfile = new(trace.Steps)
		*coldProfile = prof.Phases[trace.Prefill]
	}
	if r.LoadAvg > 0.5*float64(runtime.NumCPU()) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("load average %.2f on %d cores: other work shares the machine, numbers are low and noisy", r.LoadAvg, runtime.NumCPU()))
	}
	fmt.Fprintln(stderr, "measuring the machine's limits (read bandwidth, FMA peak)...")
	buf := make([]byte, 1<<30)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	// The best of three probes each: one probe can land on a moment when a
	// neighbour on the host takes the memory bus (single probes of this
	// machine's bandwidth ranged from 25 to 32 GB/s minutes apart).
	r.ReadBW = best3(func() float64 { return kernels.ReadBandwidth(buf, 1) / 1e9 })
	buf = nil
	r.FMAPeak = best3(func() float64 { return kernels.FMAPeak(300*time.Millisecond) / 1e9 })
	r.AMXPeak = best3(func() float64 { return kernels.AMXPeak(300*time.Millisecond) / 1e9 })
	r.WeightBytes = m.Weights.Bytes(c).PerToken
	_, active := c.Params()
	r.FlopsPerTok = 2 * float64(active)
	addProfile := func(label string, ph trace.Phase, st *trace.Steps, measured time.Duration) {
		if sp := newStepProfile(label, ph, st, measured, r.FMAPeak, r.ReadBW); sp != nil {
			r.Profiles = append(r.Profiles, sp)
		}
	}
	if coldProfile != nil {
		addProfile(fmt.Sprintf("first prefill after load, %d", o.prefill[0]), trace.Prefill, coldProfile, cold)
	}
	for _, n := range o.prefill {
		fmt.Fprintf(stderr, "prefill %d tokens...\n", n)
		el := prefill(n)
		sec := el.Seconds()
		if prof != nil {
			addProfile(fmt.Sprintf("prefill %d", n), trace.Prefill, &prof.Phases[trace.Prefill], el)
		}
		if r.FirstPrefill == nil {
			r.FirstPrefill = &firstPrefill{Tokens: n, Seconds: cold.Seconds(), TokPerSec: float64(n) / cold.Seconds(),
				WarmTokPerSec: float64(n) / sec, Ratio: sec / cold.Seconds(), MinorFaults: coldFaults, WarmMinorFaults: faults}
		}
		flops := float64(n)*r.FlopsPerTok + attentionFlops(c, 0, n)
		r.Prefill = append(r.Prefill, prefillPoint{Tokens: n, Seconds: sec, TokPerSec: float64(n) / sec,
			GFLOPS: flops / sec / 1e9, FMARatio: flops / sec / 1e9 / r.FMAPeak, MsPerTok: 1000 * sec / float64(n)})
	}
	for _, ctx := range o.decodeCtx {
		fmt.Fprintf(stderr, "decode at context %d...\n", ctx)
		st := m.NewStateCap(ctx + o.decodeN + 1)
		p := prompt(max(ctx, 1))
		for i := 0; i < len(p); i += o.chunk {
			m.Forward([]model.Seq{{State: st, Tokens: p[i:min(i+o.chunk, len(p))]}}, nil)
		}
		tok := []int32{1}
		m.Forward([]model.Seq{{State: st, Tokens: tok, Logits: model.LogitsLast}}, logits) // warm up
		prof.Reset()
		t0 := time.Now()
		for i := 0; i < o.decodeN; i++ {
			m.Forward([]model.Seq{{State: st, Tokens: tok, Logits: model.LogitsLast}}, logits)
		}
		el := time.Since(t0)
		sec := el.Seconds()
		if prof != nil {
			addProfile(fmt.Sprintf("decode at context %d", ctx), trace.Decode, &prof.Phases[trace.Decode], el)
		}
		tps := float64(o.decodeN) / sec
		moved := m.DecodeBytes(ctx)
		r.Decode = append(r.Decode, decodePoint{Context: ctx, Tokens: o.decodeN, TokPerSec: tps, BytesTok: moved,
			GBs: float64(moved) * tps / 1e9, Roofline: float64(moved) * tps / 1e9 / r.ReadBW})
	}
	m.SetProfile(nil)
	if o.abDispatch > 0 {
		for _, ctx := range o.decodeCtx {
			r.DispatchAB = append(r.DispatchAB, runDispatchAB(m, o, ctx, prompt, r, logits, stderr))
		}
	}
	if o.abPrefill > 0 {
		for _, n := range o.prefill {
			r.PrefillAB = append(r.PrefillAB, runPrefillAB(m, o, n, prefill, r, stderr))
		}
	}
	if o.long > 0 {
		// The long run reloads the model with a timing tracer.
		timer := &softmaxTimer{softmax: map[int]bool{}}
		for l, k := range c.LayerKinds {
			timer.softmax[l] = k == minimax01.Softmax
		}
		lm, err := loadModelAt(dir, minimax01.Options{MaxBatchTokens: o.chunk, KVType: kv, Quant: q, BF16Dot: o.bf16Dot, Tracer: timer})
		if err != nil {
			return err
		}
		r.Long = longPrefill(lm, o, prompt, baseline, timer, stderr)
		lm.Close()
	}
	r.ElapsedSecs = time.Since(start).Seconds()
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printModelReport(w, r)
	return nil
}

// attentionFlops counts the useful attention flops of tokens at positions
// [from, to): softmax layers 4·heads·hd per visible key (q·k and p·v), and
// lightning layers heads·4·hd² per token (the recurrence's update and read).
func attentionFlops(c *minimax01.Config, from, to int) float64 {
	var f float64
	hd := float64(c.HeadDim)
	for _, k := range c.LayerKinds {
		if k == minimax01.Softmax {
			keys := (float64(to)*(float64(to)+1) - float64(from)*(float64(from)+1)) / 2
			f += 4 * float64(c.Heads) * hd * keys
		} else {
			f += float64(to-from) * float64(c.Heads) * 4 * hd * hd
		}
	}
	return f
}

// longPrefill feeds one long prompt in chunks, recording the time per token
// of the chunks at power-of-two-ish milestones and the peak RSS.
func longPrefill(m *minimax01.Model, o modelBenchOptions, prompt func(int) []int32, baseline int64, timer *softmaxTimer, stderr io.Writer) *longRun {
	n := o.long
	st := m.NewStateCap(n)
	p := prompt(n)
	run := &longRun{Tokens: n, Chunk: o.chunk}
	var marks []int
	for _, x := range []int{8 << 10, 32 << 10, 128 << 10, 512 << 10, 1 << 20, 4 << 20} {
		if x <= n {
			marks = append(marks, x)
		}
	}
	marks = append(marks, n)
	// Measure this run's peak alone: give back the bandwidth probe's buffer
	// and reset the kernel's high-water mark (writing 5 to clear_refs).
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	bar := newProgress(stderr, "prefill", "tok")
	t0 := time.Now()
	next := 0
	var xs, ys []float64
	for i := 0; i < n; i += o.chunk {
		j := min(i+o.chunk, n)
		c0 := time.Now()
		sm0 := timer.total
		m.Forward([]model.Seq{{State: st, Tokens: p[i:j]}}, nil)
		dt := time.Since(c0).Seconds()
		sm := (timer.total - sm0).Seconds()
		perTok := func(sec float64) float64 { return 1000 * sec / float64(j-i) }
		xs, ys = append(xs, float64(i+j)/2), append(ys, perTok(dt))
		for next < len(marks) && j >= marks[next] {
			if next == 0 || marks[next] != marks[next-1] {
				run.Milestones = append(run.Milestones, longMilestone{Position: marks[next], MsPerTok: perTok(dt),
					SoftmaxMsPerTok: perTok(sm), RestMsPerTok: perTok(dt - sm)})
			}
			next++
		}
		bar.update(int64(j), int64(n))
	}
	run.WallSeconds = time.Since(t0).Seconds()
	run.PeakRSS = peakRSS()
	a, b, r2 := linearFit(xs, ys)
	run.FlatMsPerTok, run.SlopeMsPer1M, run.FitR2 = a, b*(1<<20), r2
	info := m.Info()
	weights := info.WeightBytes
	kv := info.BytesPerTok * int64(n)
	scratch := m.ScratchBytes()
	run.FormulaBytes = weights + kv + info.StateBytes + scratch + baseline
	run.Formula = fmt.Sprintf("weights %s + KV %s + lightning state %s + scratch %s + runtime before load %s",
		human(float64(weights), "B"), human(float64(kv), "B"), human(float64(info.StateBytes), "B"),
		human(float64(scratch), "B"), human(float64(baseline), "B"))
	return run
}

// minorFaults is the process's count of minor page faults, field 10 of
// /proc/self/stat (0 where it cannot be read).
func minorFaults() int64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses: the fields go on after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 8 {
		return 0
	}
	n, _ := strconv.ParseInt(f[7], 10, 64) // fields from 3 on: state ppid pgrp session tty tpgid flags minflt
	return n
}

// peakRSS reads VmHWM (the peak resident set) from /proc/self/status.
func peakRSS() int64 { return procStatus("VmHWM:") }

// currentRSS reads VmRSS (the resident set now) from /proc/self/status.
func currentRSS() int64 { return procStatus("VmRSS:") }

// procStatus reads one kB figure of /proc/self/status, in bytes (0 if absent).
func procStatus(key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// presetModelDir returns a cached random BF16 model of a preset, writing it
// the first time (into the system temp folder).
func presetModelDir(preset string, stderr io.Writer) (string, error) {
	c, err := minimax01.PresetConfig(preset)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(os.TempDir(), "lightning-bench-"+preset+"-bf16-seed1")
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		return dir, nil
	}
	fmt.Fprintf(stderr, "writing a random %s model to %s (once)\n", preset, dir)
	os.RemoveAll(dir)
	bar := newProgress(stderr, "weights", "B")
	if err := minimax01.WriteRandom(dir, c, minimax01.RandomOptions{DType: quant.BF16, Seed: 1, Progress: bar.update}); err != nil {
		return "", err
	}
	return dir, nil
}

func printModelReport(w io.Writer, r *modelReport) {
	fmt.Fprintf(w, "model %s, %d threads, load average %.2f\n", r.Model, r.Threads, r.LoadAvg)
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", x)
	}
	fmt.Fprintf(w, "machine: read bandwidth %.1f GB/s, FMA peak %.1f GFLOP/s (measured in this run)\n", r.ReadBW, r.FMAPeak)
	if r.AMXPeak > 0 {
		fmt.Fprintf(w, "AMX-BF16 tile peak %.1f GFLOP/s: bf16 products of more than 96 tokens (fewer for wide inputs) run on tiles (exact: three tile products per multiply-add), so bf16 prefill can pass the FMA peak\n", r.AMXPeak)
	}
	fmt.Fprintf(w, "active weights per decoded token: %s; matmul flops per token: %.3g\n", human(float64(r.WeightBytes), "B"), r.FlopsPerTok)
	lazy := "weights prefaulted at load"
	if r.LazyWeights {
		lazy = "weights left to fault in on use (-lazy-weights)"
	}
	fmt.Fprintf(w, "load %.2f s (%s)\n", r.LoadSecs, lazy)
	if f := r.FirstPrefill; f != nil {
		fmt.Fprintf(w, "first prefill after load: %d tokens in %.2f s, %.1f tok/s = %.2f× the warm %.1f tok/s; %d minor page faults against %d warm\n",
			f.Tokens, f.Seconds, f.TokPerSec, f.Ratio, f.WarmTokPerSec, f.MinorFaults, f.WarmMinorFaults)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(r.Prefill) > 0 {
		fmt.Fprintln(tw, "prefill tokens\tseconds\ttok/s\tms/tok\tGFLOP/s\t× FMA peak\t")
		for _, p := range r.Prefill {
			fmt.Fprintf(tw, "%d\t%.2f\t%.1f\t%.3f\t%.1f\t%.2f\t\n", p.Tokens, p.Seconds, p.TokPerSec, p.MsPerTok, p.GFLOPS, p.FMARatio)
		}
		fmt.Fprintln(tw)
	}
	if len(r.Decode) > 0 {
		fmt.Fprintln(tw, "decode context\ttokens\ttok/s\tMB/tok\tGB/s\t× read BW\t")
		for _, d := range r.Decode {
			fmt.Fprintf(tw, "%d\t%d\t%.2f\t%.1f\t%.2f\t%.2f\t\n", d.Context, d.Tokens, d.TokPerSec, float64(d.BytesTok)/1e6, d.GBs, d.Roofline)
		}
	}
	tw.Flush()
	for _, ab := range r.DispatchAB {
		fmt.Fprintf(w, "\nA/B of pool dispatches, decode at context %d: %d interleaved rounds of %d tokens, %.1f MB/token\n",
			ab.Context, ab.Rounds, ab.Tokens, float64(ab.BytesTok)/1e6)
		fmt.Fprintf(w, "  dispatch cost %.0f ns, one thread reads %.1f GB/s: tiny work below %d bytes stays on the calling thread\n",
			ab.DispatchCostNs, ab.ThreadReadGBs, ab.SerialBytesMeasured)
		for _, x := range []struct {
			name     string
			tps, rl  float64
			disp     float64
			perLayer []layerDispatches
		}{{"solo (one dispatch per product)", ab.SoloTokPerSec, ab.SoloRoofline, ab.SoloDispatches, ab.SoloPerLayer},
			{"grouped", ab.GroupTokPerSec, ab.GroupRoofline, ab.GroupDispatches, ab.GroupPerLayer}} {
			fmt.Fprintf(w, "  %-32s %8.2f tok/s  %.2f× read BW  %5.1f dispatches/step", x.name, x.tps, x.rl, x.disp)
			for _, d := range x.perLayer {
				fmt.Fprintf(w, ", %.1f per %s layer", d.Dispatches, d.Kind)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "  grouped ÷ solo tok/s: median of paired rounds %.3f (range %.3f … %.3f)\n", ab.Ratio, ab.RatioMin, ab.RatioMax)
	}
	for _, ab := range r.PrefillAB {
		fmt.Fprintf(w, "\nA/B of the prefill paths, %d tokens: %d interleaved rounds\n", ab.Tokens, ab.Rounds)
		for _, x := range []struct {
			name              string
			tps, fma, sh, dsp float64
		}{{"before (experts by columns)", ab.OldTokPerSec, ab.OldFMARatio, ab.OldExpertShare, ab.OldDispatches},
			{"after (experts by tokens)", ab.NewTokPerSec, ab.NewFMARatio, ab.NewExpertShare, ab.NewDispatches}} {
			fmt.Fprintf(w, "  %-28s %8.1f tok/s  %.2f× FMA peak  experts %4.1f%% of the step  %5.1f dispatches/step\n", x.name, x.tps, x.fma, 100*x.sh, x.dsp)
		}
		fmt.Fprintf(w, "  after ÷ before tok/s: median of paired rounds %.3f (range %.3f … %.3f)\n", ab.Ratio, ab.RatioMin, ab.RatioMax)
	}
	for _, sp := range r.Profiles {
		sp.print(w)
	}
	if l := r.Long; l != nil {
		fmt.Fprintf(w, "\nlong prefill: %d tokens in chunks of %d, %.1f s wall\n", l.Tokens, l.Chunk, l.WallSeconds)
		for _, m := range l.Milestones {
			fmt.Fprintf(w, "  at %8d tokens: %.4f ms/token = softmax attention %.4f + everything else %.4f\n", m.Position, m.MsPerTok, m.SoftmaxMsPerTok, m.RestMsPerTok)
		}
		fmt.Fprintf(w, "  fit over all chunks: ms/token = %.4f + %.4f × (position / 1M)   (R² %.3f): the first term stays flat, the second is softmax attention over the growing KV cache\n",
			l.FlatMsPerTok, l.SlopeMsPer1M, l.FitR2)
		fmt.Fprintf(w, "  peak RSS %s; formula %s = %s (ratio %.3f)\n", human(float64(l.PeakRSS), "B"), l.Formula,
			human(float64(l.FormulaBytes), "B"), float64(l.PeakRSS)/float64(l.FormulaBytes))
	}
	fmt.Fprintf(w, "\n(%.0f s)\n", r.ElapsedSecs)
}

// parseCounts reads a comma-separated list of positive token counts; "K"
// and "M" suffixes multiply by 1024 and 1024².
func parseCounts(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mul := 1
		switch {
		case strings.HasSuffix(f, "K"), strings.HasSuffix(f, "k"):
			mul, f = 1<<10, f[:len(f)-1]
		case strings.HasSuffix(f, "M"), strings.HasSuffix(f, "m"):
			mul, f = 1<<20, f[:len(f)-1]
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%w: %s: %q is not a token count", errUsage, flagName, f)
		}
		out = append(out, v*mul)
	}
	return out, nil
}

// linearFit returns the least-squares line y = a + b·x and its R².
func linearFit(xs, ys []float64) (a, b, r2 float64) {
	n := float64(len(xs))
	if n < 2 {
		if n == 1 {
			return ys[0], 0, 1
		}
		return 0, 0, 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return sy / n, 0, 0
	}
	b = (n*sxy - sx*sy) / den
	a = (sy - b*sx) / n
	var ssRes, ssTot float64
	mean := sy / n
	for i := range xs {
		e := ys[i] - (a + b*xs[i])
		ssRes += e * e
		ssTot += (ys[i] - mean) * (ys[i] - mean)
	}
	if ssTot > 0 {
		r2 = 1 - ssRes/ssTot
	}
	return a, b, r2
}
