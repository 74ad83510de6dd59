package minimax01

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/quant"
)

// TestParamTableMatchesGolden checks the table against the safetensors
// headers the official code wrote for the golden models: the same names,
// every shape equal, offsets back to back, and the element total equal to
// the file's and to Config.Params.
func TestParamTableMatchesGolden(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "golden", name)
			c, err := LoadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ps := ParamTable(c)
			var names []string
			fileTotal, off := 0, 0
			for _, n := range f.Names() {
				x, _ := f.Tensor(n)
				fileTotal += x.NumElements()
			}
			for _, p := range ps {
				names = append(names, p.Name)
				x, ok := f.Tensor(p.Name)
				if !ok {
					t.Errorf("%s: not in the golden file", p.Name)
					continue
				}
				if !slices.Equal(x.Shape, p.Shape) {
					t.Errorf("%s: shape %v, file has %v", p.Name, p.Shape, x.Shape)
				}
				if p.Size != x.NumElements() || p.Offset != off {
					t.Errorf("%s: offset %d size %d, want %d and %d", p.Name, p.Offset, p.Size, off, x.NumElements())
				}
				if p.Decay != (len(x.Shape) >= 2) {
					t.Errorf("%s: Decay %v for shape %v", p.Name, p.Decay, x.Shape)
				}
				off += p.Size
			}
			slices.Sort(names)
			if fn := f.Names(); !slices.Equal(names, fn) {
				t.Errorf("table has %d names, file %d", len(names), len(fn))
			}
			total, _ := c.Params()
			if SlabSize(ps) != fileTotal || int64(fileTotal) != total {
				t.Errorf("slab %d elements, file %d, Config.Params %d", SlabSize(ps), fileTotal, total)
			}
		})
	}
}

// TestParamTableTied checks that a tied head has no entry of its own
// (TestF32WeightsAliasSlab checks that it binds to the embedding).
func TestParamTableTied(t *testing.T) {
	c, err := PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	untied := SlabSize(ParamTable(c))
	c.TieEmbeddings = true
	ps := ParamTable(c)
	if d := untied - SlabSize(ps); d != c.Vocab*c.Dim {
		t.Errorf("tying saves %d elements, want vocab·dim = %d", d, c.Vocab*c.Dim)
	}
	for _, p := range ps {
		if p.Role == RoleLMHead {
			t.Errorf("tied table lists %s", p.Name)
		}
	}
}

// TestF32WeightsAliasSlab checks that every matrix and vector of
// NewF32Weights is the slab's memory at the table's offset.
func TestF32WeightsAliasSlab(t *testing.T) {
	c, err := PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	for _, tied := range []bool{false, true} {
		c.TieEmbeddings = tied
		w, slab := NewF32Weights(c)
		ps := ParamTable(c)
		if len(slab) != SlabSize(ps) {
			t.Fatalf("slab %d, table %d", len(slab), SlabSize(ps))
		}
		for i, p := range ps {
			slab[p.Offset] = float32(i + 1)
			slab[p.Offset+p.Size-1] = -float32(i + 1)
			var got []float32
			if m, v := w.Bind(p); m != nil {
				if m.Rows != p.Shape[0] || m.Cols != p.Shape[1] || m.Type != quant.F32 {
					t.Fatalf("%s: Mat [%d, %d] %s", p.Name, m.Rows, m.Cols, m.Type)
				}
				got = m.F32()
			} else {
				got = *v
			}
			if len(got) != p.Size || got[0] != float32(i+1) || got[p.Size-1] != -float32(i+1) {
				t.Fatalf("%s: the view is not the slab at offset %d", p.Name, p.Offset)
			}
		}
		if &w.LMHead.Data[0] != &w.Embed.Data[0] && tied {
			t.Error("tied LM head is not the embedding")
		}
	}
}

// TestInitWeights checks the init's distribution (norms exactly one, every
// other tensor N(0, initializer_range²)) and that an F32 random model holds
// exactly the slab InitWeights fills, so both give the same logits.
func TestInitWeights(t *testing.T) {
	c, err := PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	w, slab := NewF32Weights(c)
	InitWeights(c, slab, 7)
	for _, p := range ParamTable(c) {
		v := slab[p.Offset : p.Offset+p.Size]
		if p.Role.Norm() {
			for _, x := range v {
				if x != 1 {
					t.Fatalf("%s: norm weight %v, want 1", p.Name, x)
				}
			}
			continue
		}
		var s, ss float64
		for _, x := range v {
			s += float64(x)
			ss += float64(x) * float64(x)
		}
		n := float64(len(v))
		mean, std := s/n, math.Sqrt(ss/n)
		// Sampling error of N(0, σ²) estimates: the mean's sd is σ/√n and the
		// rms's relative sd is 1/√(2n); allow 6 of each.
		if math.Abs(mean) > 6*c.InitRange/math.Sqrt(n) || math.Abs(std/c.InitRange-1) > 6/math.Sqrt(2*n) {
			t.Errorf("%s: mean %.3g rms %.4g over %d values, want N(0, %g²)", p.Name, mean, std, len(v), c.InitRange)
		}
	}
	dir := writeTiny(t, RandomOptions{DType: quant.F32, Seed: 7})
	loaded, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	toks := []int32{1, 2, 3, 4, 5}
	want := run(loaded, toks, []int{5}, 0)
	got := run(New(c, w, Options{}), toks, []int{5}, 0)
	if d := maxAbsDiff(got, want); d != 0 {
		t.Errorf("slab model and random-model checkpoint differ by %g", d)
	}
}

// TestWeightBytes checks Weights.Bytes on fp32 weights against the sizes
// worked out from the config by hand.
func TestWeightBytes(t *testing.T) {
	for _, tied := range []bool{false, true} {
		c, _ := PresetConfig("tiny")
		c.TieEmbeddings = tied
		w, slab := NewF32Weights(c)
		got := w.Bytes(c)
		hd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
		lightning := 3*hd*c.Dim + hd*c.Dim + hd + c.Dim*hd
		softmax := hd*c.Dim + 2*kvd*c.Dim + c.Dim*hd
		perLayer := 2*c.Dim + c.Experts*c.Dim // norms and router
		want := c.Dim + c.Vocab*c.Dim + c.Dim // embedding row, LM head, final norm
		for _, k := range c.LayerKinds {
			want += perLayer + c.TopK*3*c.FFN*c.Dim
			if k == Lightning {
				want += lightning
			} else {
				want += softmax
			}
		}
		if got.Total != int64(4*len(slab)) || got.PerToken != int64(4*want) {
			t.Errorf("tied=%v: %+v, want total %d and per token %d", tied, got, 4*len(slab), 4*want)
		}
	}
}
