package minimax01

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseConfig checks that no config.json input panics, and that any
// accepted config satisfies the invariants Forward relies on.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(m1Config))
	for _, d := range []string{"tiny-a", "tiny-b"} {
		if b, err := os.ReadFile(filepath.Join("testdata/golden", d, "config.json")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"model_type":"minimax","layer_types":["full_attention"]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if c.Heads%c.KVHeads != 0 || c.RopeDim > c.HeadDim || c.RopeDim%2 != 0 || c.TopK > c.Experts ||
			len(c.LayerKinds) != c.Layers || c.HeadDim > MaxHeadDim || c.BlockLen < 1 {
			t.Fatalf("accepted an inconsistent config: %+v", c)
		}
	})
}
