package minimax01

import (
	"fmt"
	"math"
	"testing"

	"github.com/lightninglm/lightning/internal/trace"
	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/quant"
)

// TestGroupedDispatchBitwise checks that grouping the products of a layer
// (kernels.Group, the default) gives bitwise the logits of one dispatch per
// product (SetSoloDispatch) through a prefill, single decode steps and a
// two-sequence decode step, for bf16 and q8b32 weights and 1–3 threads, and
// that it makes fewer pool dispatches per decode step. The shape is large
// enough for the groups to be split over the pool.
func TestGroupedDispatchBitwise(t *testing.T) {
	c, err := PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	c.Vocab, c.Dim, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.RopeDim = 512, 256, 2, 4, 2, 64, 32
	c.FFN, c.Experts, c.LayerKinds = 512, 4, []int{Lightning, Softmax}
	dir := t.TempDir()
	if err := WriteRandom(dir, c, RandomOptions{DType: quant.BF16, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	old := kernels.Threads()
	defer kernels.SetThreads(old)
	for _, q := range []string{"bf16", "q8b32"} {
		opt := Options{}
		if q != "bf16" {
			spec := DefaultQuantSpec(quant.Q8B32)
			opt.Quant = &spec
		}
		m, err := Load(dir, opt)
		if err != nil {
			t.Fatal(err)
		}
		for threads := 1; threads <= 3; threads++ {
			kernels.SetThreads(threads)
			var logits [2][]float32
			var disp [2]uint64
			for i, solo := range []bool{true, false} {
				m.SetSoloDispatch(solo)
				prof := &trace.Profile{}
				logits[i], disp[i] = decodeRun(m, prof)
			}
			name := fmt.Sprintf("%s, %d threads", q, threads)
			for k := range logits[0] {
				if math.Float32bits(logits[0][k]) != math.Float32bits(logits[1][k]) {
					t.Fatalf("%s: logit %d grouped %v, solo %v", name, k, logits[1][k], logits[0][k])
				}
			}
			t.Logf("%s: pool dispatches per decode step: solo %d, grouped %d", name, disp[0], disp[1])
			if threads > 1 && disp[1] >= disp[0] {
				t.Errorf("%s: grouped decode makes %d pool dispatches per step, solo %d", name, disp[1], disp[0])
			}
		}
		m.SetSoloDispatch(false)
		m.Close()
	}
}

// decodeRun prefills two sequences, decodes each alone for three steps
// and then both in one step, returning every logit; it also returns the
// pool dispatches of the last single-sequence decode step.
func decodeRun(m *Model, prof *trace.Profile) ([]float32, uint64) {
	V := m.Config.Vocab
	var all []float32
	a, b := m.NewState(), m.NewState()
	buf := make([]float32, 2*V)
	m.Forward([]model.Seq{{State: a, Tokens: []int32{1, 2, 3, 4, 5, 6, 7}, Logits: model.LogitsLast}}, buf)
	all = append(all, buf[:V]...)
	m.Forward([]model.Seq{{State: b, Tokens: []int32{9, 8, 7}, Logits: model.LogitsLast}}, buf)
	all = append(all, buf[:V]...)
	var disp uint64
	for i := range 3 {
		m.SetProfile(prof)
		m.Forward([]model.Seq{{State: a, Tokens: []int32{int32(10 + i)}, Logits: model.LogitsLast}}, buf)
		ph := m.TakeProfile()
		m.SetProfile(nil)
		disp = 0
		for k := range ph[trace.Decode].Cells {
			for _, c := range ph[trace.Decode].Cells[k] {
				disp += c.Dispatches
			}
		}
		all = append(all, buf[:V]...)
	}
	m.Forward([]model.Seq{{State: a, Tokens: []int32{20}, Logits: model.LogitsLast}, {State: b, Tokens: []int32{21}, Logits: model.LogitsLast}}, buf)
	return append(all, buf...), disp
}

// TestExpertTokenSplitBitwise checks that a prefill whose experts run in
// one dispatch split by tokens (the default for enough tokens) gives
// bitwise the logits at every position of the column split
// (SetExpertColumnSplit), for f32 and bf16 weights and 1–3 threads, and
// that it makes fewer pool dispatches. 300 tokens top-2 over 4 experts
// give each expert about 150 rows, above the 129 (f32) and 97 (bf16) rows
// from which the products take the packed GEMM on AVX-512.
func TestExpertTokenSplitBitwise(t *testing.T) {
	c, err := PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	c.Vocab, c.Dim, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.RopeDim = 512, 256, 2, 4, 2, 64, 32
	c.FFN, c.Experts, c.LayerKinds = 512, 4, []int{Lightning, Softmax}
	old := kernels.Threads()
	defer kernels.SetThreads(old)
	const T = 300
	prompt := make([]int32, T)
	for i := range prompt {
		prompt[i] = int32((i*37 + 5) % c.Vocab)
	}
	for _, dt := range []quant.Type{quant.F32, quant.BF16} {
		dir := t.TempDir()
		if err := WriteRandom(dir, c, RandomOptions{DType: dt, Seed: 4}); err != nil {
			t.Fatal(err)
		}
		m, err := Load(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for threads := 1; threads <= 3; threads++ {
			kernels.SetThreads(threads)
			kernels.SerialBytes() // calibrate for this thread count now: its empty dispatches are not the step's
			var logits [2][]float32
			var disp [2]uint64
			for i, column := range []bool{true, false} {
				m.SetExpertColumnSplit(column)
				logits[i] = make([]float32, T*c.Vocab)
				d0 := kernels.PoolDispatches()
				m.Forward([]model.Seq{{State: m.NewState(), Tokens: prompt, Logits: model.LogitsAll}}, logits[i])
				disp[i] = kernels.PoolDispatches() - d0
			}
			name := fmt.Sprintf("%s, %d threads", dt, threads)
			for k := range logits[0] {
				if math.Float32bits(logits[0][k]) != math.Float32bits(logits[1][k]) {
					t.Fatalf("%s: logit %d (position %d) by tokens %v, by columns %v", name, k, k/c.Vocab, logits[1][k], logits[0][k])
				}
			}
			t.Logf("%s: pool dispatches per prefill: by columns %d, by tokens %d", name, disp[0], disp[1])
			if threads > 1 && disp[1] >= disp[0] {
				t.Errorf("%s: the token split makes %d pool dispatches, the column split %d", name, disp[1], disp[0])
			}
		}
		m.SetExpertColumnSplit(false)
		m.Close()
	}
}
