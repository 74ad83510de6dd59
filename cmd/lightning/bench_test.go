package main

import (
	"encoding/json"
	"fmt"
	"math"
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

// TestBenchPlan runs bench -plan end to end with worker processes on the
// tiny preset (no timing is checked): for sp=2 and pp=2 the bytes per
// prompt and per generated token it reports, measured and analytic, equal
// the wire layout worked out here (a step message: 5-byte gRPC frame, round
// and ring fields, op count and 20 B per state operation, row count and 16
// B per row, float count and 4·dim B per row; its reply: frame, float
// count, the floats and four uint64 counters; a ring message: 33 B besides
// its floats). sp=2 cuts the 300-token prompt into two chunks of 150 in one
// round and passes 7 lightning states of 4×16×16 floats and one softmax
// layer's keys and values of the first chunk (150 × 2 × 2 × 16 floats), in
// 8 messages; pp=2 with steps of 128 cuts it into micro-batches of 128,
// 128 and 44 rows, each through both stages. Decode steps are one token
// through every stage (sp: the rank that holds the sequence).
func TestBenchPlan(t *testing.T) {
	t.Setenv(childEnv, "1")
	const dim, n, decodeN = 64, 300, 4
	step := func(T int) float64 { return float64((5 + 8 + 4 + 4 + 4 + 16 + 4 + 4*T*dim) + (5 + 4 + 4*T*dim + 32)) }
	for _, tc := range []struct {
		plan, workers, chunk string
		prefill, ring        float64 // bytes of the prompt
		decode               float64 // bytes per decode step
	}{
		{"sp=2", "2", "1024", 2 * step(150), 7*4*16*16*4 + 150*2*2*16*4 + 8*33, step(1)},
		{"pp=2", "2", "128", 2 * (2*step(128) + step(44)), 0, 2 * step(1)},
	} {
		out, stderr, code := runCLI(t, "bench", "-preset", "tiny", "-plan", tc.plan, "-local-workers", tc.workers, "-chunk", tc.chunk,
			"-prefill", fmt.Sprint(n), "-decode-ctx", "0", "-decode-n", fmt.Sprint(decodeN), "-rounds", "1", "-json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.plan, code, stderr)
		}
		var r planReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%s: %v\n%s", tc.plan, err, out)
		}
		if r.Plan != tc.plan || len(r.Prefill) != 1 || len(r.Decode) != 1 {
			t.Fatalf("%s: report of plan %s with %d prefill and %d decode points", tc.plan, r.Plan, len(r.Prefill), len(r.Decode))
		}
		check := func(what string, b planBytes, hub, peers, tokens float64) {
			hub += 20 * float64(b.StateOps)
			want := (hub + peers) / tokens
			close := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*y }
			if !b.Exact || !close(b.Measured, want) || !close(b.Analytic, want) || !close(b.HubMeasured, hub/tokens) ||
				!close(b.HubAnalytic, hub/tokens) || !close(b.PeersMeasured, peers/tokens) || !close(b.PeersAnalytic, peers/tokens) {
				t.Errorf("%s %s: %+v; want %.3f B per token (hub %.3f, peers %.3f), exact", tc.plan, what, b, want, hub/tokens, peers/tokens)
			}
		}
		p, d := r.Prefill[0], r.Decode[0]
		check("prefill", p.Bytes, tc.prefill, tc.ring, n)
		check("decode", d.Bytes, decodeN*tc.decode, 0, decodeN)
		if p.SingleTokPerSec <= 0 || p.DistTokPerSec <= 0 || d.SingleTokPerSec <= 0 || d.DistTokPerSec <= 0 || p.NetworkShare < 0 || p.NetworkShare > 1 {
			t.Errorf("%s: prefill %+v, decode %+v", tc.plan, p, d)
		}
		if pr := p.Projection; (pr != nil) != (tc.plan == "sp=2") {
			t.Errorf("%s: projection %+v", tc.plan, pr)
		} else if pr != nil {
			transfer := float64(pr.RingBytes+pr.HubBytes) * 8 / 25e9
			if pr.Machines != 2 || pr.RingBytes != uint64(tc.ring) || pr.HubBytes != uint64(tc.prefill)+20*uint64(p.Bytes.StateOps) ||
				math.Abs(pr.TransferSeconds-transfer) > 1e-12 || pr.SlowestRankSeconds <= 0 || pr.SlowestRankSeconds > pr.AllRanksSeconds ||
				math.Abs(pr.SpeedUp-pr.SingleSeconds/(pr.HubSeconds+pr.SlowestRankSeconds+transfer)) > 1e-9*pr.SpeedUp {
				t.Errorf("%s: projection %+v; want ring %.0f B and hub %.0f B at 25 Gb/s", tc.plan, pr, tc.ring, tc.prefill)
			}
		}
	}
	// The text report.
	out, stderr, code := runCLI(t, "bench", "-preset", "tiny", "-plan", "sp=2", "-local-workers", "2", "-prefill", "200", "-decode-ctx", "", "-rounds", "1")
	if code != 0 || !strings.Contains(out, "prefill tokens") || !strings.Contains(out, "projected, 200 tokens on 2 machines at 25 Gb/s") {
		t.Errorf("exit %d; stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-plan", "sp=2", "-local-workers", "2", "-profile"}, "-profile is not available with -plan"},
		{[]string{"-plan", "sp=2"}, "-plan needs -workers"},
		{[]string{"-rounds", "2"}, "-rounds needs -plan"},
		{[]string{"-plan", "sp=2", "-local-workers", "2", "-rounds", "0"}, "-rounds must be"},
	} {
		_, stderr, code := runCLI(t, append([]string{"bench", "-preset", "tiny"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.msg) {
			t.Errorf("bench %v: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.msg)
		}
	}
}
