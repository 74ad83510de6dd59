package minimax01

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/moe"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/tensor"
)

// Part is the slice of a model that one process holds when a model is served
// across processes (package dist): the ends (embedding, final norm, LM head),
// a range of layers, and in those layers either the attention side (norms,
// attention, router) or not, plus a range of each MoE layer's experts. The
// zero Part holds nothing; a nil *Part in Options means the whole model.
type Part struct {
	Ends               bool // model.embed_tokens, model.norm, lm_head
	First, Last        int  // layers [First, Last)
	Attention          bool // norms, attention and router of those layers
	ExpertLo, ExpertHi int  // experts [ExpertLo, ExpertHi) of those layers
}

// String describes p, e.g. "layers [0,4) attention experts [0,2)".
func (p Part) String() string {
	var s []string
	if p.Ends {
		s = append(s, "ends")
	}
	if p.Last > p.First {
		s = append(s, fmt.Sprintf("layers [%d,%d)", p.First, p.Last))
		if p.Attention {
			s = append(s, "attention")
		}
		if p.ExpertHi > p.ExpertLo {
			s = append(s, fmt.Sprintf("experts [%d,%d)", p.ExpertLo, p.ExpertHi))
		}
	}
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, " ")
}

// Validate checks p against c.
func (p Part) Validate(c *Config) error {
	if p.First < 0 || p.Last > c.Layers || p.First > p.Last {
		return fmt.Errorf("minimax01: part layers [%d,%d) outside [0,%d)", p.First, p.Last, c.Layers)
	}
	if p.ExpertLo < 0 || p.ExpertHi > c.Experts || p.ExpertLo > p.ExpertHi {
		return fmt.Errorf("minimax01: part experts [%d,%d) outside [0,%d)", p.ExpertLo, p.ExpertHi, c.Experts)
	}
	return nil
}

// holdsLayer reports whether p holds anything of layer l.
func (p *Part) holdsLayer(l int) bool { return l >= p.First && l < p.Last }

// holdsExpert reports whether p holds expert e of layer l. A nil p holds
// everything.
func (p *Part) holdsExpert(l, e int) bool {
	return p == nil || p.holdsLayer(l) && e >= p.ExpertLo && e < p.ExpertHi
}

// holdsExpertsOf reports whether p holds any expert of layer l.
func (p *Part) holdsExpertsOf(l int) bool {
	return p == nil || p.holdsLayer(l) && p.ExpertHi > p.ExpertLo
}

// holdsRouter reports whether p holds the attention side (norms, attention
// and router) of layer l.
func (p *Part) holdsRouter(l int) bool {
	return p == nil || p.holdsLayer(l) && p.Attention
}

// HoldsParam reports whether p holds the parameter-table entry prm: the
// ends, the attention side of its layers, or its experts of those layers.
// A nil p holds everything.
func (p *Part) HoldsParam(prm Param) bool {
	switch {
	case p == nil:
		return true
	case prm.Layer < 0:
		return p.Ends
	case prm.Expert >= 0:
		return p.holdsExpert(prm.Layer, prm.Expert)
	}
	return p.holdsRouter(prm.Layer)
}

// Holds reports whether p holds the checkpoint tensor name (official or
// fused-expert layout, spec §3.1, §3.4; quantized parts "_scale" and "_min"
// follow their matrix). A nil p holds everything.
func (p *Part) Holds(name string) bool {
	if p == nil {
		return true
	}
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if !ok {
		return p.Ends
	}
	num, rest, _ := strings.Cut(rest, ".")
	l, err := strconv.Atoi(num)
	if err != nil || !p.holdsLayer(l) {
		return false
	}
	if ex, ok := strings.CutPrefix(rest, "block_sparse_moe.experts."); ok {
		num, _, _ := strings.Cut(ex, ".")
		e, err := strconv.Atoi(num)
		return err == nil && p.holdsExpert(l, e)
	}
	if strings.HasPrefix(rest, "mlp.experts.") { // fused: every expert in one tensor
		return p.ExpertHi > p.ExpertLo
	}
	return p.Attention
}

// PartBytes returns the weight bytes part p holds of a checkpoint of c
// stored in dtype (F32, BF16 or F16, router gates F32), quantized by q when q
// is not nil: the one place that turns the parameter list into bytes for
// `inspect -plan` and the workers' memory reports.
func (c *Config) PartBytes(p *Part, dtype quant.Type, q *QuantSpec) int64 {
	var b int64
	for _, t := range c.plan(dtype) {
		name := t.spec.Name
		if !p.HoldsParam(t.param) {
			continue
		}
		specs := []safetensors.TensorSpec{t.spec}
		if q != nil && len(t.spec.Shape) == 2 {
			rows, cols := t.spec.Shape[0], t.spec.Shape[1]
			if qt := q.typeFor(t.param.Role, c.TieEmbeddings, cols); qt != quant.Invalid {
				specs = quantTensorSpecs(name, rows, cols, qt, q.scaleTypeFor(qt))
			}
		}
		for _, s := range specs {
			b += int64(numel(s.Shape)) * int64(s.DType.Size())
		}
	}
	return b
}

// Rows is one sequence's share of a hidden-state step run by RunLayers: its
// state and how many consecutive rows (tokens) it has.
type Rows struct {
	State *State
	N     int
}

// ExpertPeers computes the experts a process does not hold (expert
// parallelism). Send starts layer l's remote experts on the T rows of h with
// their top-k ids and weights; Recv then adds their weighted sum into out
// ([T, dim]). The slices stay valid until Recv returns.
type ExpertPeers interface {
	Send(l int, h []float32, T int, ids []int32, wts []float32)
	Recv(out []float32)
}

// Embed writes the embedding rows of tokens into x ([len(tokens), dim]).
func (m *Model) Embed(x []float32, tokens []int32) {
	dim := m.Config.Dim
	for r, id := range tokens {
		tensor.Row(x[r*dim:(r+1)*dim], m.Weights.Embed, int(id))
	}
}

// Head writes the logits of the R rows of x ([R, dim]) into logits
// ([R, vocab]): final norm, then the LM head in fp32 (spec §2.7).
func (m *Model) Head(logits, x []float32, R int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, dim := m.Config, m.Config.Dim
	for r0 := 0; r0 < R; r0 += m.maxT {
		n := min(R-r0, m.maxT)
		f := m.s.final[:n*dim]
		rmsNormRows(f, x[r0*dim:(r0+n)*dim], m.Weights.Norm, dim, c.NormEps)
		tensor.MatMul(logits[r0*c.Vocab:(r0+n)*c.Vocab], f, n, m.Weights.LMHead)
	}
}

// MaxBatchTokens is the most rows one RunLayers call takes.
func (m *Model) MaxBatchTokens() int { return m.maxT }

// RunLayers runs layers [first, last) on the hidden states x ([T, dim], T =
// the sum of rows' N ≤ MaxBatchTokens) in place, for the sequences' rows in
// order, and advances each state by its N. The model must hold those layers'
// attention side; experts it does not hold are computed by peers (nil when
// it holds them all). A state appears at most once.
func (m *Model) RunLayers(x []float32, rows []Rows, first, last int, peers ExpertPeers) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.s
	s.spans = s.spans[:0]
	T := 0
	for _, r := range rows {
		if r.State.m != m {
			panic("minimax01: RunLayers got a state that was not made by this model")
		}
		if T+r.N > m.maxT {
			panic("minimax01: RunLayers step exceeds MaxBatchTokens")
		}
		// The layers read only the count of a span's tokens, not the ids.
		s.spans = append(s.spans, span{st: r.State, start: T, pos: r.State.n, tokens: s.rowToks[T : T+r.N]})
		r.State.n += r.N
		T += r.N
	}
	copy(s.x[:T*m.Config.Dim], x)
	p := m.prof
	if p != nil {
		p.Begin(stepPhase(s.spans, T))
	}
	m.layers(s, first, last, T, peers)
	p.End(T)
	copy(x, s.x[:T*m.Config.Dim])
}

// ExpertsForward writes into out ([T, dim]) the weighted sum of the experts
// of layer l that the model holds, for the T rows of h with top-k ids and
// weights ([T, topK]); experts held elsewhere are skipped.
func (m *Model) ExpertsForward(out, h []float32, T, l int, ids []int32, wts []float32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.Config
	for r0 := 0; r0 < T; r0 += m.maxT {
		n := min(T-r0, m.maxT)
		moe.Forward(out[r0*c.Dim:], h[r0*c.Dim:], n, c.Dim, m.Weights.Layers[l].Experts, ids[r0*c.TopK:], wts[r0*c.TopK:], c.TopK, m.s.moe)
	}
}
