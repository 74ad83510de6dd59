package minimax01

import (
	"testing"

	"github.com/lightninglm/lightning/quant"
)

// TestPartLoadsOnlyItsTensors loads a slice of tiny-a and checks that the
// weights outside it stay empty, those inside are loaded, and nothing is
// reported unused.
func TestPartLoadsOnlyItsTensors(t *testing.T) {
	p := &Part{First: 2, Last: 4, ExpertLo: 1, ExpertHi: 3}
	m, err := Load("testdata/golden/tiny-a", Options{Part: p})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(m.Warnings) > 0 {
		t.Errorf("warnings %v", m.Warnings)
	}
	w := m.Weights
	if w.Embed.Rows != 0 || w.Norm != nil || w.LMHead.Rows != 0 {
		t.Error("ends loaded outside the part")
	}
	for l, lw := range w.Layers {
		if lw.QKV.Rows != 0 || lw.Q.Rows != 0 || lw.Router != nil || lw.InputNorm != nil {
			t.Errorf("layer %d: attention side loaded without Part.Attention", l)
		}
		for e, ex := range lw.Experts {
			if held := p.holdsExpert(l, e); held != (ex.W1.Rows > 0 && ex.W2.Rows > 0 && ex.W3.Rows > 0) {
				t.Errorf("layer %d expert %d: loaded %v, held %v", l, e, ex.W1.Rows > 0, held)
			}
		}
	}
	if got, want := m.Info().WeightBytes, m.Config.PartBytes(p, quant.F32, nil); got <= 0 || got != want {
		t.Errorf("weight bytes %d, PartBytes %d", got, want)
	}
	if err := (Part{First: 0, Last: 9}).Validate(m.Config); err == nil {
		t.Error("layers [0,9) of 8 accepted")
	}
}
