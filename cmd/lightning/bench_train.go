package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/train"
)

// trainBenchOptions are the flags of bench -train.
type trainBenchOptions struct {
	presets []string
	seqLen  int
	steps   int
	json    bool
}

// trainReport is what bench -train prints (-json gives it verbatim).
type trainReport struct {
	Threads     int          `json:"threads"`
	LoadAvg     float64      `json:"load_avg_1m"`
	Warnings    []string     `json:"warnings,omitempty"`
	FMAPeak     float64      `json:"fma_peak_gflops"`
	Runs        []trainPoint `json:"runs"`
	ElapsedSecs float64      `json:"elapsed_seconds"`
}

// trainPoint is one preset's training step, timed as the best of the steps.
type trainPoint struct {
	Preset       string  `json:"preset"`
	Params       int64   `json:"params"`
	Tokens       int     `json:"tokens"`           // per step: one packed sequence of -seq-len
	FlopsPerStep float64 `json:"flops_per_step"`   // forward + backward useful FLOPs
	ForwardSec   float64 `json:"forward_seconds"`  // the layers
	HeadSec      float64 `json:"head_seconds"`     // LM head and cross-entropy, forward and backward fused
	BackwardSec  float64 `json:"backward_seconds"` // the layers
	OptimizerSec float64 `json:"optimizer_seconds"`
	StepSec      float64 `json:"step_seconds"`
	TokPerSec    float64 `json:"tok_per_s"`
	GFLOPS       float64 `json:"gflops"`
	MFU          float64 `json:"mfu"` // GFLOPS ÷ FMA peak
	Loss         float64 `json:"loss"`
}

// trainFlops is the useful FLOPs of one training step on a sequence of T
// tokens: the forward's matrix products (2 per active weight and token,
// including the LM head, which the inference count leaves out) and
// attention (attentionFlops), and the backward's twice that (a gradient
// for the input and one for the weight per product).
func trainFlops(c *minimax01.Config, T int) float64 {
	_, active := c.Params()
	fwd := 2*float64(T)*float64(active+int64(c.Vocab*c.Dim)) + attentionFlops(c, 0, T)
	return 3 * fwd
}

// benchTrain times training steps of random presets, split as the model's
// Timings (layers forward, LM head and loss, layers backward) plus the
// AdamW step; the step with the shortest total of o.steps (after one
// warm-up step) is reported.
func benchTrain(w, stderr io.Writer, o trainBenchOptions) error {
	start := time.Now()
	r := &trainReport{Threads: kernels.Threads(), LoadAvg: loadAvg()}
	if r.LoadAvg > 0.5*float64(runtime.NumCPU()) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("load average %.2f on %d cores: other work shares the machine, numbers are low and noisy", r.LoadAvg, runtime.NumCPU()))
	}
	for _, name := range o.presets {
		c, err := minimax01.PresetConfig(name)
		if err != nil {
			return err
		}
		total, _ := c.Params()
		// fp32 weights, gradients and AdamW's two moments: 16 bytes a parameter.
		if need, avail := 16*total, memAvailable(); avail > 0 && need > avail {
			return fmt.Errorf("bench -train: %s needs %s for its fp32 weights, gradients and AdamW state; %s of memory is available",
				name, human(float64(need), "B"), human(float64(avail), "B"))
		}
	}
	fmt.Fprintln(stderr, "measuring the FMA peak...")
	r.FMAPeak = kernels.FMAPeak(500*time.Millisecond) / 1e9
	for _, name := range o.presets {
		c, err := minimax01.PresetConfig(name)
		if err != nil {
			return err
		}
		total, _ := c.Params()
		fmt.Fprintf(stderr, "%s: initialising fp32 weights, gradients and AdamW state...\n", name)
		wts, slab := minimax01.NewF32Weights(c)
		minimax01.InitWeights(c, slab, 1)
		m := train.NewModel(c, wts, slab, o.seqLen)
		opt := train.NewAdamW(c)
		b := train.Batch{Tokens: make([]int32, o.seqLen), DocStarts: []int{0}}
		for i := range b.Tokens {
			b.Tokens[i] = int32((i*7919 + 13) % c.Vocab)
		}
		p := trainPoint{Preset: name, Params: total, Tokens: o.seqLen, FlopsPerStep: trainFlops(c, o.seqLen)}
		p.StepSec = math.Inf(1)
		for s := 0; s <= o.steps; s++ { // step 0 warms up
			fmt.Fprintf(stderr, "%s: step %d of %d\n", name, s, o.steps)
			m.Timings = struct{ Forward, Head, Backward time.Duration }{}
			m.ZeroGrads()
			l := m.ForwardBackward(b, 1)
			t0 := time.Now()
			opt.Step(m.Params, m.Grads, opt.LR)
			optSec := time.Since(t0).Seconds()
			tm := m.Timings
			total := tm.Forward.Seconds() + tm.Head.Seconds() + tm.Backward.Seconds() + optSec
			if s > 0 && total < p.StepSec {
				p.ForwardSec, p.HeadSec, p.BackwardSec, p.OptimizerSec = tm.Forward.Seconds(), tm.Head.Seconds(), tm.Backward.Seconds(), optSec
				p.StepSec, p.Loss = total, l.Total
			}
		}
		p.TokPerSec = float64(o.seqLen) / p.StepSec
		p.GFLOPS = p.FlopsPerStep / p.StepSec / 1e9
		p.MFU = p.GFLOPS / r.FMAPeak
		r.Runs = append(r.Runs, p)
		m, opt, wts, slab = nil, nil, nil, nil
		runtime.GC()
	}
	r.ElapsedSecs = time.Since(start).Seconds()
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "training step, %d threads, load average %.2f; FMA peak %.1f GFLOP/s (measured in this run)\n", r.Threads, r.LoadAvg, r.FMAPeak)
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", x)
	}
	fmt.Fprintf(w, "one packed sequence per step, fastest of %d steps; forward and backward are the layers', head is the LM head with the loss (both directions)\n\n", o.steps)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "preset\tparams\ttokens\tforward s\thead s\tbackward s\toptimizer s\tstep s\ttok/s\tGFLOP/s\tMFU\tloss\t")
	for _, p := range r.Runs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f%%\t%.4f\t\n", p.Preset, human(float64(p.Params), ""), p.Tokens,
			p.ForwardSec, p.HeadSec, p.BackwardSec, p.OptimizerSec, p.StepSec, p.TokPerSec, p.GFLOPS, 100*p.MFU, p.Loss)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n(%.0f s)\n", r.ElapsedSecs)
	return nil
}

// memAvailable is MemAvailable of /proc/meminfo in bytes, or 0 when it
// cannot be read.
func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// parsePresets splits a comma-separated list of preset names.
func parsePresets(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			if _, err := minimax01.PresetConfig(f); err != nil {
				return nil, fmt.Errorf("%w: %v", errUsage, err)
			}
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: -preset: no preset named", errUsage)
	}
	return out, nil
}
