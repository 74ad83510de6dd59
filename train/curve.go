package train

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// curveMaxPoints bounds the training points a Curve keeps: on reaching it
// (an even number), neighbouring points are merged in pairs, so a run of any length keeps a
// picture of a few thousand points and trainer_state.json stays small.
const curveMaxPoints = 2048

// CurvePoint is one point of a loss curve: the mean loss of Steps steps
// ending at step Step, after Tokens training tokens.
type CurvePoint struct {
	Step   int     `json:"step"`
	Tokens int64   `json:"tokens"`
	Loss   float64 `json:"loss"`
	Steps  int     `json:"steps,omitempty"` // steps averaged (1 for eval points and unmerged ones)
}

// Curve is the loss history of a run: training loss (merged into means of
// Stride steps once the run is long) and every eval loss. It is saved in
// trainer_state.json so a resumed run continues the picture.
type Curve struct {
	Stride  int          `json:"stride"` // steps per training point
	Train   []CurvePoint `json:"train"`
	Eval    []CurvePoint `json:"eval"`
	Pending CurvePoint   `json:"pending"` // steps not yet filling a stride
}

// Add records a logged step.
func (c *Curve) Add(r Record) {
	if c.Stride == 0 {
		c.Stride = 1
	}
	if r.EvalLoss != nil {
		c.AddEval(r.Step, r.Tokens, *r.EvalLoss)
	}
	p := &c.Pending
	p.Loss = (p.Loss*float64(p.Steps) + r.Loss) / float64(p.Steps+1)
	p.Steps++
	p.Step, p.Tokens = r.Step, r.Tokens
	if p.Steps < c.Stride {
		return
	}
	c.Train = append(c.Train, *p)
	*p = CurvePoint{}
	if len(c.Train) == curveMaxPoints {
		merged := c.Train[:0]
		for i := 0; i+1 < len(c.Train); i += 2 {
			a, b := c.Train[i], c.Train[i+1]
			n := a.Steps + b.Steps
			merged = append(merged, CurvePoint{Step: b.Step, Tokens: b.Tokens, Steps: n,
				Loss: (a.Loss*float64(a.Steps) + b.Loss*float64(b.Steps)) / float64(n)})
		}
		c.Train = merged
		c.Stride *= 2
	}
}

// AddEval records an eval loss measured outside a step, such as the
// untrained model's before step 1.
func (c *Curve) AddEval(step int, tokens int64, loss float64) {
	c.Eval = append(c.Eval, CurvePoint{Step: step, Tokens: tokens, Loss: loss, Steps: 1})
}

// points returns the training points including the unfinished stride.
func (c *Curve) points() []CurvePoint {
	if c.Pending.Steps == 0 {
		return c.Train
	}
	return append(c.Train[:len(c.Train):len(c.Train)], c.Pending)
}

// WriteSVG draws the curve: training loss (blue) and eval loss (orange,
// with dots) against training tokens, with labelled axes and a legend.
func (c *Curve) WriteSVG(w io.Writer, title string) error {
	return WriteCurvesSVG(w, title, []NamedCurve{{Curve: c}})
}

// NamedCurve is one run of a comparison picture.
type NamedCurve struct {
	Name  string // legend label; empty for a picture of one run
	Curve *Curve
}

// curveColors are the runs' colours in a comparison picture.
var curveColors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// WriteCurvesSVG draws the loss curves of one or more runs against training
// tokens on shared axes. One unnamed run is drawn as WriteSVG describes; with
// several, each run has its own colour, its training loss as a thin line and
// its eval loss as a thick line with dots.
func WriteCurvesSVG(w io.Writer, title string, runs []NamedCurve) error {
	const (
		width, height = 900, 520
		left, right   = 80, 30
		top, bottom   = 50, 70
		plotW, plotH  = width - left - right, height - top - bottom
	)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", left, xmlEscape(title))
	maxTok, lo, hi := int64(0), math.Inf(1), math.Inf(-1)
	for _, r := range runs {
		for _, p := range append(r.Curve.points(), r.Curve.Eval...) {
			if math.IsNaN(p.Loss) || math.IsInf(p.Loss, 0) {
				continue
			}
			maxTok = max(maxTok, p.Tokens)
			lo, hi = min(lo, p.Loss), max(hi, p.Loss)
		}
	}
	if maxTok == 0 || lo > hi {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no steps yet</text>`+"\n", left+plotW/2-40, top+plotH/2)
		b.WriteString("</svg>\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	yTicks := niceTicks(lo, hi, 6, true)
	lo, hi = min(lo, yTicks[0]), max(hi, yTicks[len(yTicks)-1])
	if hi == lo {
		lo, hi = lo-0.5, hi+0.5
	}
	xTicks := niceTicks(0, float64(maxTok), 7, false)
	xMax := max(float64(maxTok), xTicks[len(xTicks)-1])
	x := func(tok int64) float64 { return left + float64(tok)/xMax*plotW }
	y := func(loss float64) float64 { return top + (hi-loss)/(hi-lo)*plotH }

	// Grid, ticks and axis labels.
	for _, v := range yTicks {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e4e4e4"/>`+"\n", left, left+plotW, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-8, y(v), trimFloat(v))
	}
	for _, v := range xTicks {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#e4e4e4"/>`+"\n", x(int64(v)), x(int64(v)), top, top+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(int64(v)), top+plotH+20, humanCount(v))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">training tokens</text>`+"\n", left+plotW/2, height-20)
	fmt.Fprintf(&b, `<text x="20" y="%d" text-anchor="middle" transform="rotate(-90 20 %d)">loss (cross-entropy, nats per token)</text>`+"\n", top+plotH/2, top+plotH/2)

	polyline := func(ps []CurvePoint, color string, width float64, dots bool) {
		var pts strings.Builder
		for _, p := range ps {
			if math.IsNaN(p.Loss) || math.IsInf(p.Loss, 0) {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.Tokens), y(p.Loss))
			if dots {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", x(p.Tokens), y(p.Loss), color)
			}
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="%g" stroke-linejoin="round"/>`+"\n", strings.TrimSpace(pts.String()), color, width)
	}
	// legend holds one line of the legend: a colour sample and its label.
	type legend struct {
		color, label string
		dots         bool
	}
	var legends []legend
	if len(runs) == 1 && runs[0].Name == "" {
		c := runs[0].Curve
		polyline(c.points(), curveColors[0], 2, false)
		polyline(c.Eval, curveColors[1], 2, true)
		trainLabel := "training loss"
		if c.Stride > 1 {
			trainLabel = fmt.Sprintf("training loss (mean of %d steps)", c.Stride)
		}
		legends = []legend{{curveColors[0], trainLabel, false}, {curveColors[1], "eval loss (held out)", true}}
	} else {
		for i, r := range runs {
			color := curveColors[i%len(curveColors)]
			polyline(r.Curve.points(), color, 1, false)
			polyline(r.Curve.Eval, color, 2.5, true)
			legends = append(legends, legend{color, r.Name + ": training (thin), eval (dots)", true})
		}
	}

	// Legend, top right inside the plot.
	lw := 200
	for _, l := range legends {
		lw = max(lw, 50+7*len([]rune(l.label)))
	}
	lx, ly := left+plotW-lw-10, top+12
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="white" fill-opacity="0.85" stroke="#ccc"/>`+"\n", lx, ly, lw, 12+20*len(legends))
	for i, l := range legends {
		ry := ly + 16 + 20*i
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>`, lx+10, lx+34, ry, ry, l.color)
		if l.dots {
			fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="3.5" fill="%s"/>`, lx+22, ry, l.color)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", lx+42, ry, xmlEscape(l.label))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceTicks returns about n round tick values from lo rounded down to
// hi, and one more past hi when cover is set and the last is below it.
func niceTicks(lo, hi float64, n int, cover bool) []float64 {
	if hi <= lo {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, math.Round(v/step)*step)
	}
	if cover && ticks[len(ticks)-1] < hi {
		ticks = append(ticks, ticks[len(ticks)-1]+step)
	}
	return ticks
}

func trimFloat(v float64) string { return fmt.Sprintf("%.4g", v) }

// humanCount writes a token count as 0, 500, 12K, 1.5M, 2G.
func humanCount(v float64) string {
	switch {
	case v >= 1e9:
		return trimFloat(v/1e9) + "G"
	case v >= 1e6:
		return trimFloat(v/1e6) + "M"
	case v >= 1e3:
		return trimFloat(v/1e3) + "K"
	}
	return trimFloat(v)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
