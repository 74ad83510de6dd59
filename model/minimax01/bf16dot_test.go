package minimax01

import (
	"math"
	"testing"
)

// klRows returns the mean and max over rows of KL(softmax(p) ‖ softmax(q))
// and the fraction of rows whose argmax agrees.
func klRows(p, q []float32, V int) (mean, worst, agree float64) {
	rows := len(p) / V
	for r := 0; r < rows; r++ {
		a, b := p[r*V:(r+1)*V], q[r*V:(r+1)*V]
		la, lb := logSumExp(a), logSumExp(b)
		var kl float64
		for i := range a {
			lp := float64(a[i]) - la
			kl += math.Exp(lp) * (lp - (float64(b[i]) - lb))
		}
		mean += kl
		worst = max(worst, kl)
		if argmax(a) == argmax(b) {
			agree++
		}
	}
	return mean / float64(rows), worst, agree / float64(rows)
}

func logSumExp(x []float32) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

// TestBF16DotKL measures what the opt-in VDPBF16PS path (activations rounded
// to bfloat16) costs against the default exact-activation path on the BF16
// golden model's prompts, teacher forced. It is a lossy path with no target;
// the bounds (~3× the values measured when written, logged with -v) only
// catch a broken kernel. For scale: rounding tiny-a's fp32 weights to bf16
// moves its logits by KL 1e-3 (measured with lightning eval).
func TestBF16DotKL(t *testing.T) {
	dir := "testdata/golden/tiny-a-bf16"
	exact := openGolden(t, dir, Options{})
	dot := openGolden(t, dir, Options{BF16Dot: true})
	V := exact.m.Config.Vocab
	var sum, worst, agree float64
	n := 0
	for _, name := range []string{"p255", "p256", "p257", "p700"} {
		prompt := exact.man.Prompts[name]
		a := run(exact.m, prompt, []int{len(prompt)}, 0)
		b := run(dot.m, prompt, []int{len(prompt)}, 0)
		mean, w, ag := klRows(a, b, V)
		sum += mean * float64(len(prompt))
		agree += ag * float64(len(prompt))
		worst = max(worst, w)
		n += len(prompt)
	}
	mean, ag := sum/float64(n), agree/float64(n)
	t.Logf("bf16-dot vs exact over %d positions: KL mean %.3g, max %.3g, top-1 agreement %.4f", n, mean, worst, ag)
	// Measured when written: KL mean 3.9e-4, max 5.5e-2, top-1 0.986.
	if mean > 2e-3 || ag < 0.95 {
		t.Errorf("bf16-dot path: KL mean %.3g (bound 2e-3), top-1 %.3f (bound 0.95)", mean, ag)
	}
}
