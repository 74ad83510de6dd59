package train

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
)

// TestCurveMerges adds 5000 steps whose loss is the step number: each
// point must be the mean of the steps it covers, i.e. the mean of an
// arithmetic run ending at Step: Step − (Steps−1)/2.
func TestCurveMerges(t *testing.T) {
	var c Curve
	for s := 1; s <= 5000; s++ {
		r := Record{Step: s, Tokens: int64(10 * s), Loss: float64(s)}
		if s%1000 == 0 {
			e := float64(-s)
			r.EvalLoss = &e
		}
		c.Add(r)
	}
	if c.Stride != 4 || len(c.Train) != 1250 || c.Pending.Steps != 0 {
		t.Fatalf("stride %d, %d points, %d pending", c.Stride, len(c.Train), c.Pending.Steps)
	}
	covered := 0
	for _, p := range c.Train {
		covered += p.Steps
		if want := float64(p.Step) - float64(p.Steps-1)/2; math.Abs(p.Loss-want) > 1e-9*want || p.Tokens != int64(10*p.Step) {
			t.Fatalf("point %+v: want loss %v", p, want)
		}
	}
	if covered != 5000 || len(c.Eval) != 5 || c.Eval[4].Loss != -5000 {
		t.Errorf("%d steps covered, eval points %+v", covered, c.Eval)
	}
	// The curve survives JSON (trainer_state.json) with its pending steps.
	c.Add(Record{Step: 5001, Tokens: 50010, Loss: 1})
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var back Curve
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Pending != c.Pending || len(back.Train) != len(c.Train) || back.Stride != c.Stride {
		t.Errorf("curve after JSON: stride %d, pending %+v", back.Stride, back.Pending)
	}
}

func TestCurveSVG(t *testing.T) {
	var c Curve
	for s := 1; s <= 30; s++ {
		r := Record{Step: s, Tokens: int64(2048 * s), Loss: 6 / math.Sqrt(float64(s))}
		if s%10 == 0 {
			e := 6.5 / math.Sqrt(float64(s))
			r.EvalLoss = &e
		}
		c.Add(r)
	}
	var buf bytes.Buffer
	if err := c.WriteSVG(&buf, "tiny <test> run"); err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	dec := xml.NewDecoder(strings.NewReader(svg))
	polylines := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
		}
	}
	for _, want := range []string{"training tokens", "loss (cross-entropy", "eval loss", "tiny &lt;test&gt; run", ">60K<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if polylines != 2 {
		t.Errorf("%d polylines, want train and eval", polylines)
	}
	buf.Reset()
	if err := (&Curve{}).WriteSVG(&buf, "empty"); err != nil || !strings.Contains(buf.String(), "no steps yet") {
		t.Errorf("empty curve: %v", err)
	}
}

func TestNiceTicks(t *testing.T) {
	// Worked by hand: the step is the first of 1, 2, 2.5, 5, 10 × a power
	// of ten at least (hi − lo)/n.
	for _, tc := range []struct {
		lo, hi float64
		n      int
		cover  bool
		want   string
	}{
		{1.1, 6, 6, true, "[1 2 3 4 5 6]"},                               // step 1 ≥ 0.82
		{0, 61440, 7, false, "[0 10000 20000 30000 40000 50000 60000]"},  // 10000 ≥ 8777
		{0, 61440, 6, true, "[0 20000 40000 60000 80000]"},               // 20000 ≥ 10240, then past 61440
		{2.31, 2.34, 6, true, "[2.31 2.315 2.32 2.325 2.33 2.335 2.34]"}, // 0.005 ≥ 0.005
	} {
		if got := fmtFloats(niceTicks(tc.lo, tc.hi, tc.n, tc.cover)); got != tc.want {
			t.Errorf("ticks(%v, %v, %d) = %s, want %s", tc.lo, tc.hi, tc.n, got, tc.want)
		}
	}
}

func fmtFloats(v []float64) string {
	var b strings.Builder
	b.WriteString("[")
	for i, f := range v {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	}
	return b.String() + "]"
}
