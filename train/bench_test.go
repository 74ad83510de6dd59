package train

import (
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
	"github.com/lightninglm/lightning/model/minimax01"
)

// BenchmarkTrainStep times one forward + backward + AdamW step of a
// two-layer (lightning, softmax) model of m300's widths on 512 tokens.
func BenchmarkTrainStep(b *testing.B) {
	c, err := minimax01.PresetConfig("m300")
	if err != nil {
		b.Fatal(err)
	}
	c.Layers, c.LayerKinds = 2, []int{minimax01.Lightning, minimax01.Softmax}
	w, slab := minimax01.NewF32Weights(c)
	r := numtest.Rand(len(slab), 1)
	for i := range slab {
		slab[i] = 0.02 * r[i]
	}
	const T = 512
	m := NewModel(c, w, slab, T)
	opt := NewAdamW(c)
	batch := Batch{Tokens: make([]int32, T), DocStarts: []int{0}}
	for i := range batch.Tokens {
		batch.Tokens[i] = int32((i*7919 + 13) % c.Vocab)
	}
	b.ResetTimer()
	for range b.N {
		m.ZeroGrads()
		m.ForwardBackward(batch, 1)
		opt.Step(m.Params, m.Grads, 1e-4)
	}
	b.ReportMetric(float64(T*b.N)/b.Elapsed().Seconds(), "tok/s")
}
