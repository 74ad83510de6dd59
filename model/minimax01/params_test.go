package minimax01

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/lightninglm/lightning/format/safetensors"
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

// TestParamTableTied checks that a tied head has no entry of its own and
// that loading binds it to the embedding.
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
