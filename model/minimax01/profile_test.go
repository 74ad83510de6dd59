package minimax01

import (
	"testing"

	"github.com/lightninglm/lightning/internal/trace"
	"github.com/lightninglm/lightning/model"
)

// TestProfile checks that profiling leaves the logits bit-identical, that
// the laps of a step add up to its wall time exactly, and that the GEMM
// flops of each role are the ones the shapes give (2·T·rows·cols per
// matrix).
func TestProfile(t *testing.T) {
	g := openGolden(t, "testdata/golden/tiny-b", Options{MaxBatchTokens: 64})
	m, c := g.m, g.m.Config
	prompt := []int32{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4}
	want := run(m, prompt, []int{len(prompt)}, 0)
	p := &trace.Profile{}
	m.SetProfile(p)
	defer m.SetProfile(nil)
	got := run(m, prompt, []int{len(prompt)}, 0)
	if d := maxAbsDiff(got, want); d != 0 {
		t.Fatalf("profiled logits differ from unprofiled by %g", d)
	}
	st := m.NewState()
	logits := make([]float32, c.Vocab)
	m.Forward([]model.Seq{{State: st, Tokens: []int32{7}, Logits: model.LogitsLast}}, logits)
	phases := m.TakeProfile()
	pre, dec := &phases[trace.Prefill], &phases[trace.Decode]
	if pre.Steps != 1 || pre.Tokens != len(prompt) || dec.Steps != 1 || dec.Tokens != 1 {
		t.Fatalf("prefill %d steps / %d tokens, decode %d / %d; want 1/%d and 1/1", pre.Steps, pre.Tokens, dec.Steps, dec.Tokens, len(prompt))
	}
	for _, ph := range []*trace.Steps{pre, dec} {
		var sum int64
		for k := range ph.Cells {
			for _, cell := range ph.Cells[k] {
				sum += int64(cell.Time)
			}
		}
		if sum != int64(ph.Wall) {
			t.Errorf("parts add up to %d ns, step wall %d ns", sum, ph.Wall)
		}
	}
	T := float64(len(prompt))
	hd, kvd := float64(c.Heads*c.HeadDim), float64(c.KVHeads*c.HeadDim)
	dim := float64(c.Dim)
	nLin, nSm := float64(c.Count(Lightning)), float64(c.Count(Softmax))
	for _, tc := range []struct {
		kind trace.Kind
		op   trace.Op
		want float64
	}{
		{trace.KindLightning, trace.OpQKV, nLin * 2 * T * dim * 3 * hd},
		{trace.KindLightning, trace.OpGate, nLin * 2 * T * dim * hd},
		{trace.KindLightning, trace.OpOut, nLin * 2 * T * hd * dim},
		{trace.KindSoftmax, trace.OpK, nSm * 2 * T * dim * kvd},
		{trace.KindSoftmax, trace.OpO, nSm * 2 * T * hd * dim},
		{trace.KindModel, trace.OpLMHead, 2 * T * dim * float64(c.Vocab)}, // run asks for every row's logits
		// Every token goes through topK experts of 3 matrices [ffn, dim].
		{trace.KindLightning, trace.OpExperts, nLin * 2 * T * float64(c.TopK) * 3 * dim * float64(c.FFN)},
		{trace.KindSoftmax, trace.OpExperts, nSm * 2 * T * float64(c.TopK) * 3 * dim * float64(c.FFN)},
	} {
		if got := pre.Cells[tc.kind][tc.op].Flops; got != tc.want {
			t.Errorf("%s %s: %g flops, want %g", tc.kind, tc.op, got, tc.want)
		}
	}
}
