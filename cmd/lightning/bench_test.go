package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEvalSpeedSteps checks that eval -speed N times exactly N decode steps
// per model and that every row's best roofline ratio is at least its median.
func TestEvalSpeedSteps(t *testing.T) {
	out, stderr, code := runCLI(t, "eval", "-model", filepath.Join(goldenDir, "tiny-a"), "-max-prompts", "1", "-speed", "16", "-bw-mb", "8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "16 steps per model") {
		t.Errorf("eval -speed 16 does not time 16 steps per model:\n%s", stderr)
	}
	rows := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 8 || f[0] != "reference" {
			continue
		}
		rows++
		med, err1 := strconv.ParseFloat(f[6], 64)
		best, err2 := strconv.ParseFloat(f[7], 64)
		if err1 != nil || err2 != nil || best < med {
			t.Errorf("roofline median %s, best %s: best must not be below the median", f[6], f[7])
		}
	}
	if rows != 1 {
		t.Errorf("found %d speed rows for the reference in:\n%s", rows, out)
	}
}

// TestSpeedSummary checks the per-round roofline statistics on figures
// where dividing the best rate by the best bandwidth probe would put the
// "best" roofline (11/2 = 5.5) below the median (10/1 = 10): each round's
// rate is compared with that round's own probe instead.
func TestSpeedSummary(t *testing.T) {
	s := summarizeSpeed([]float64{10, 11, 10}, []float64{1, 2, 1}, 1)
	if s.med != 10 || s.best != 11 || s.rooflineMed != 10 || s.rooflineBest != 10 {
		t.Errorf("summary %+v; want tok/s median 10, best 11, roofline median 10, best 10", s)
	}
	for _, c := range []struct{ n, rounds int }{{16, 7}, {1, 7}, {7, 7}, {100, 7}} {
		steps := roundSteps(c.n, c.rounds)
		sum := 0
		for _, s := range steps {
			sum += s
			if s < 1 {
				t.Errorf("roundSteps(%d, %d) = %v: a round without steps", c.n, c.rounds, steps)
			}
		}
		if sum != c.n {
			t.Errorf("roundSteps(%d, %d) = %v, sums to %d", c.n, c.rounds, steps, sum)
		}
	}
}

// TestKernelRatioUsesLimitsAroundIt checks that a kernel's ratio is taken
// against the limit measured just before and after it, not against one
// measured earlier under other load, and that a limit that moved during
// the kernel is flagged. The fake kernel sleeps 2 ms per run for 4e6
// flops, so it runs at 2 GFLOP/s at most.
func TestKernelRatioUsesLimitsAroundIt(t *testing.T) {
	run := func() { time.Sleep(2 * time.Millisecond) }
	probe := func(vals ...float64) func() float64 {
		return func() float64 {
			v := vals[0]
			vals = vals[1:]
			return v
		}
	}
	var r kernelsReport
	// The machine was busy when the global limit was taken (1 GFLOP/s);
	// around the kernel the probe sees 2.5 both times.
	r.add("steady", "", 4e6, 0, "fma", probe(2.5, 2.5), run)
	// The limit fell from 2.5 to 1 while the kernel ran.
	r.add("unsteady", "", 4e6, 0, "fma", probe(2.5, 1), run)
	// The probes saw a busier machine (1 GFLOP/s) than the kernel's best
	// run did: a ratio near 190% must be flagged, not reported as is.
	r.add("beats its limit", "", 4e6, 0, "fma", probe(1, 1), run)
	steady, unsteady, beats := r.Kernels[0], r.Kernels[1], r.Kernels[2]
	if beats.Ratio <= 1 || !beats.Unsteady {
		t.Errorf("kernel above its limit %+v: want a ratio above 1, flagged", beats)
	}
	if steady.Ratio > 0.8+1e-9 || steady.LimitBefore != 2.5 || steady.LimitAfter != 2.5 || steady.Unsteady {
		t.Errorf("steady kernel %+v: want a ratio ≤ 0.8 against the 2.5 GFLOP/s measured around it", steady)
	}
	if !unsteady.Unsteady || unsteady.Ratio > 0.8+1e-9 {
		t.Errorf("unsteady kernel %+v: want it flagged and rated against the higher limit", unsteady)
	}
}
