package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lightninglm/lightning/internal/trace"
	"github.com/lightninglm/lightning/kernels"
)

// stepProfile is the mean op-by-op profile of the steps of one measured
// run (a prefill or a decode point), as bench -profile and run/serve
// -profile report it.
type stepProfile struct {
	Label         string  `json:"label"`
	Phase         string  `json:"phase"` // prefill or decode
	Steps         int     `json:"steps"`
	TokensPerStep float64 `json:"tokens_per_step"`
	// StepMs is the measured wall time per step (bench: the Forward calls
	// timed from outside; run/serve: the model's own step clock); PartsMs
	// is the sum of the parts below, Unattributed the difference.
	StepMs            float64 `json:"step_ms"`
	PartsMs           float64 `json:"parts_ms"`
	UnattributedMs    float64 `json:"unattributed_ms"`
	UnattributedShare float64 `json:"unattributed_share"`
	// Dispatches is the kernel pool's dispatches per step (each wakes the
	// workers and ends in a barrier); PerLayer splits them by layer kind.
	Dispatches float64           `json:"pool_dispatches"`
	PerLayer   []layerDispatches `json:"pool_dispatches_per_layer,omitempty"`
	Ops        []profileOp       `json:"ops"`
}

// layerDispatches is the pool dispatches of one layer of a kind, per step.
type layerDispatches struct {
	Kind       string  `json:"kind"`
	Layers     int     `json:"layers"`
	Dispatches float64 `json:"dispatches"`
}

// profileOp is one op class of one layer kind, per step.
type profileOp struct {
	Kind   string  `json:"kind"` // lightning, softmax (layers) or model (embedding, final norm, LM head)
	Op     string  `json:"op"`
	Ms     float64 `json:"ms"`
	WaitMs float64 `json:"pool_wait_ms"` // pool waits after this op (counted in the pool wait row, not in Ms)
	// Dispatches is the op's kernel pool dispatches per step.
	Dispatches float64 `json:"pool_dispatches"`
	Share      float64 `json:"share"` // of StepMs
	GFLOPS     float64 `json:"gflops"`
	GBs        float64 `json:"gb_per_s"`
	// Limit is the binding limit of the op's work, "fma" (flops ÷ FMA peak)
	// or "read" (bytes ÷ read bandwidth), whichever takes longer; Ratio is
	// that limit's time over the op's wall time, Ms + WaitMs (1 = at the
	// machine's limit); GFLOPS and GBs are over the same time.
	// Activations that stay in cache can beat the read bandwidth (> 1).
	Limit string  `json:"limit,omitempty"`
	Ratio float64 `json:"ratio,omitempty"`
}

// newStepProfile turns accumulated steps into a per-step profile. measured
// is the wall time of all steps measured by the caller (0 = use the
// model's own step clock); fmaPeak (GFLOP/s) and readBW (GB/s) are the
// machine's limits.
func newStepProfile(label string, ph trace.Phase, st *trace.Steps, measured time.Duration, fmaPeak, readBW float64) *stepProfile {
	if st.Steps == 0 {
		return nil
	}
	if measured <= 0 {
		measured = st.Wall
	}
	n := float64(st.Steps)
	sp := &stepProfile{Label: label, Phase: [...]string{"prefill", "decode"}[ph], Steps: st.Steps,
		TokensPerStep: float64(st.Tokens) / n, StepMs: 1e3 * measured.Seconds() / n}
	for k := trace.Kind(0); k < trace.NumKinds; k++ {
		var kindDisp uint64
		for op := trace.Op(0); op < trace.NumOps; op++ {
			c := st.Cells[k][op]
			kindDisp += c.Dispatches
			if c.Time <= 0 && c.Flops == 0 {
				continue
			}
			sec := (c.Time + c.Wait).Seconds() // the op's wall time: its work, then its workers' stragglers
			o := profileOp{Kind: k.String(), Op: op.String(), Ms: 1e3 * c.Time.Seconds() / n, WaitMs: 1e3 * c.Wait.Seconds() / n,
				Dispatches: float64(c.Dispatches) / n}
			sp.PartsMs += o.Ms
			if sec > 0 {
				o.GFLOPS, o.GBs = c.Flops/sec/1e9, c.Bytes/sec/1e9
				tf, tb := c.Flops/(fmaPeak*1e9), c.Bytes/(readBW*1e9)
				switch {
				case fmaPeak > 0 && c.Flops > 0 && tf >= tb:
					o.Limit, o.Ratio = "fma", tf/sec
				case readBW > 0 && c.Bytes > 0:
					o.Limit, o.Ratio = "read", tb/sec
				}
			}
			sp.Ops = append(sp.Ops, o)
		}
		sp.Dispatches += float64(kindDisp) / n
		if l := st.Layers[k]; l > 0 {
			sp.PerLayer = append(sp.PerLayer, layerDispatches{Kind: k.String(), Layers: l, Dispatches: float64(kindDisp) / n / float64(l)})
		}
	}
	for i := range sp.Ops {
		sp.Ops[i].Share = sp.Ops[i].Ms / sp.StepMs
	}
	sp.UnattributedMs = sp.StepMs - sp.PartsMs
	sp.UnattributedShare = sp.UnattributedMs / sp.StepMs
	return sp
}

// print writes the profile as a table, ops below 0.1% of the step left out
// of the rows (but not of the sums).
func (sp *stepProfile) print(w io.Writer) {
	fmt.Fprintf(w, "\nprofile of %s: %d %s step(s) of %.0f tokens, %.3f ms/step measured = parts %.3f + unattributed %.3f (%.1f%%)\n",
		sp.Label, sp.Steps, sp.Phase, sp.TokensPerStep, sp.StepMs, sp.PartsMs, sp.UnattributedMs, 100*sp.UnattributedShare)
	fmt.Fprintf(w, "pool dispatches: %.1f per step", sp.Dispatches)
	for _, d := range sp.PerLayer {
		fmt.Fprintf(w, "; %.2f per %s layer (%d layers)", d.Dispatches, d.Kind, d.Layers)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer kind\top\tms/step\tshare\tGFLOP/s\tGB/s\t× limit\tthen pool wait ms\tdispatches\t")
	var kindMs float64
	for i, o := range sp.Ops {
		if o.Share >= 0.001 {
			ratio := "-"
			if o.Limit != "" {
				ratio = fmt.Sprintf("%.2f %s", o.Ratio, o.Limit)
			}
			wait := "-"
			if o.WaitMs > 0 {
				wait = fmt.Sprintf("%.3f", o.WaitMs)
			}
			disp := "-"
			if o.Dispatches > 0 {
				disp = fmt.Sprintf("%.2f", o.Dispatches)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.1f%%\t%s\t%s\t%s\t%s\t%s\t\n", o.Kind, o.Op, o.Ms, 100*o.Share, fmtRate(o.GFLOPS), fmtRate(o.GBs), ratio, wait, disp)
		}
		kindMs += o.Ms
		if i == len(sp.Ops)-1 || sp.Ops[i+1].Kind != o.Kind {
			fmt.Fprintf(tw, "%s\tall\t%.3f\t%.1f%%\t\t\t\t\t\t\n", o.Kind, kindMs, 100*kindMs/sp.StepMs)
			kindMs = 0
		}
	}
	tw.Flush()
}

// summary is the profile in one line for logs: the step time and the five
// largest parts.
func (sp *stepProfile) summary() string {
	top := slices.Clone(sp.Ops)
	slices.SortFunc(top, func(a, b profileOp) int { return cmp.Compare(b.Ms, a.Ms) })
	top = top[:min(5, len(top))]
	var b strings.Builder
	for i, o := range top {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s %.1f%%", o.Kind, o.Op, 100*o.Share)
		if o.Limit != "" {
			fmt.Fprintf(&b, " (%.2f× %s)", o.Ratio, o.Limit)
		}
	}
	return b.String()
}

// quickLimits measures the FMA peak (GFLOP/s) and read bandwidth (GB/s)
// briefly, for run and serve -profile: 0.2 s of FMAs and 256 MiB streamed
// twice.
func quickLimits() (fmaPeak, readBW float64) {
	buf := make([]byte, 256<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	readBW = kernels.ReadBandwidth(buf, 2) / 1e9
	fmaPeak = kernels.FMAPeak(200*time.Millisecond) / 1e9
	return fmaPeak, readBW
}
