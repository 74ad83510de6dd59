package minimax01

import (
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/gguf"
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

// TestPartHoldsParam checks that the table-driven selection (HoldsParam,
// which the loader walks) and the name-driven one (Holds, which sizes the
// unused-tensor warning and dist's checks) agree on every parameter of a
// configuration with both layer kinds, for parts of each shape.
func TestPartHoldsParam(t *testing.T) {
	c, err := PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	parts := []*Part{nil, {}, {Ends: true}, {First: 1, Last: 3, Attention: true},
		{First: 0, Last: c.Layers, ExpertLo: 2, ExpertHi: 3}, {Ends: true, First: 2, Last: 4, Attention: true, ExpertLo: 0, ExpertHi: 1}}
	for _, p := range parts {
		held := 0
		for _, prm := range ParamTable(c) {
			if a, b := p.HoldsParam(prm), p.Holds(prm.Name); a != b {
				t.Errorf("part %v: %s: HoldsParam %v, Holds %v", p, prm.Name, a, b)
			}
			if p.HoldsParam(prm) {
				held++
			}
		}
		if p == nil && held != len(ParamTable(c)) {
			t.Errorf("nil part holds %d of %d parameters", held, len(ParamTable(c)))
		}
	}
}

// TestPartGGUFRefused checks that a GGUF file, which cannot be loaded in
// parts yet, is refused with a part rather than loaded whole.
func TestPartGGUFRefused(t *testing.T) {
	path := exportGolden(t, "testdata/golden/tiny-a", gguf.F32)
	_, err := Load(path, Options{Part: &Part{Ends: true}})
	if err == nil || !strings.Contains(err.Error(), "cannot be loaded in parts") {
		t.Errorf("error %v, want a GGUF part refused", err)
	}
}
