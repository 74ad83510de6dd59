package train

import (
	"math"
	"sort"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model/minimax01"
)

// AdamW is torch.optim.AdamW (decoupled weight decay) over fp32 slabs laid
// out by minimax01.ParamTable. One Step, with t the step count after it:
//
//	p ← p − lr·wd·p                 (only where Param.Decay)
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g²
//	p ← p − lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)
//
// Each element is updated in float64 from its fp32 values and stored back
// as fp32 (kernels.AdamW, vectorised, split across the kernel pool). M, V
// and T are the whole state: saving and restoring them resumes the
// optimizer exactly.
type AdamW struct {
	LR          float64 // peak learning rate (the loop's schedule scales it; Step takes the current one)
	Beta1       float64
	Beta2       float64
	Eps         float64
	WeightDecay float64

	M, V []float32 // first and second moments, slabs in ParamTable layout
	T    int       // steps taken

	spans []decaySpan // the slab cut into runs of equal Decay
}

// decaySpan is a run [lo, hi) of the slab whose parameters all decay or all
// do not.
type decaySpan struct {
	lo, hi int
	decay  bool
}

// NewAdamW returns the optimizer for a model of configuration c with the
// issue's defaults (β1 0.9, β2 0.95, eps 1e-8, weight decay 0.1, lr 3e-4),
// zero moments and T = 0.
func NewAdamW(c *minimax01.Config) *AdamW {
	table := minimax01.ParamTable(c)
	n := minimax01.SlabSize(table)
	o := &AdamW{LR: 3e-4, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1,
		M: make([]float32, n), V: make([]float32, n)}
	for _, p := range table {
		if k := len(o.spans) - 1; k >= 0 && o.spans[k].hi != p.Offset {
			panic("train: ParamTable offsets are not back to back") // Step's chunks walk the spans in order
		}
		if k := len(o.spans) - 1; k >= 0 && o.spans[k].decay == p.Decay && o.spans[k].hi == p.Offset {
			o.spans[k].hi = p.Offset + p.Size
			continue
		}
		o.spans = append(o.spans, decaySpan{p.Offset, p.Offset + p.Size, p.Decay})
	}
	return o
}

// adamChunk is how many elements one work item of Step updates (one
// ParallelFor covers the whole slab; a chunk may cross spans).
const adamChunk = 1 << 14

// Step applies one AdamW update with learning rate lr to params from grads
// (both slabs of the optimizer's layout) and increments T. The update of
// each element is independent of the others, so the result does not depend
// on the thread count.
func (o *AdamW) Step(params, grads []float32, lr float64) {
	if len(params) != len(o.M) || len(grads) != len(o.M) {
		panic("train: AdamW.Step slabs differ in length from the optimizer's")
	}
	o.T++
	st := kernels.AdamWStep{
		Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps,
		Step:  lr / (1 - math.Pow(o.Beta1, float64(o.T))),
		RBC2:  1 / math.Sqrt(1-math.Pow(o.Beta2, float64(o.T))),
		Decay: 1 - lr*o.WeightDecay,
	}
	n := len(params)
	kernels.ParallelFor((n+adamChunk-1)/adamChunk, 1, func(lo, hi int) {
		a, b := lo*adamChunk, min(hi*adamChunk, n)
		k := sort.Search(len(o.spans), func(k int) bool { return o.spans[k].hi > a })
		for ; a < b; k++ { // the spans cover the slab in order
			sp, st := o.spans[k], st
			if !sp.decay {
				st.Decay = 1
			}
			e := min(b, sp.hi)
			kernels.AdamW(params[a:e], grads[a:e], o.M[a:e], o.V[a:e], st)
			a = e
		}
	})
}
