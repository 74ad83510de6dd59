package minimax01

import (
	"fmt"

	"github.com/lightninglm/lightning/internal/trace"
	"github.com/lightninglm/lightning/model"
)

// LocateNonFinite implements model.NonFiniteLocator: it feeds s again with
// every named intermediate checked (the tracer hook, so Forward itself
// carries no check) and describes the first one holding a NaN or infinity.
func (m *Model) LocateNonFinite(s model.Seq) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := &finiteTracer{}
	saved := m.tracer
	m.tracer = f
	defer func() { m.tracer = saved }()
	s.Logits = model.LogitsLast
	m.forward([]model.Seq{s}, make([]float32, m.Config.Vocab))
	switch {
	case f.name == "":
		return ""
	case f.layer >= 0:
		kind := "lightning"
		if m.Config.LayerKinds[f.layer] == Softmax {
			kind = "softmax"
		}
		return fmt.Sprintf("layer %d of %d (%s), at %s", f.layer, m.Config.Layers, kind, f.name)
	case f.name == "embed":
		return "the token embedding (model.embed_tokens.weight)"
	default:
		return fmt.Sprintf("the output head, at %s", f.name)
	}
}

// finiteTracer records the first traced intermediate that is not finite.
type finiteTracer struct {
	name  string // "" while every value seen was finite
	layer int
}

var _ trace.Tracer = (*finiteTracer)(nil)

func (f *finiteTracer) Trace(name string, layer int, v []float32) {
	if f.name == "" && !model.AllFinite(v) {
		f.name, f.layer = name, layer
	}
}
