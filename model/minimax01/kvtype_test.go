package minimax01

import (
	"path/filepath"
	"testing"

	"github.com/lightninglm/lightning/attention"
)

// TestKVCacheTypeAccuracy measures what a bf16 or int8 KV cache costs
// against the fp32 reference logits on the golden p700 prompt (teacher
// forced, so errors do not compound through sampling), and bounds it:
// bf16 rounds keys/values by ≤ 2^-9 relative, int8 by ≤ max|x|/254 per head
// vector. A small KV error can flip a near-tie router choice and move a
// logit discretely (tiny-b: bf16 0.22), so the bounds are ~3× the worst
// errors measured when the test was written (logged with -v), and argmax
// agreement must stay ≥ 98%.
func TestKVCacheTypeAccuracy(t *testing.T) {
	bounds := map[attention.KVType]struct{ maxAbs, minArgmax float64 }{
		attention.KVBFloat16: {0.7, 0.98},  // measured: tiny-a 0.0036 / 1.0, tiny-b 0.22 / 0.9986
		attention.KVInt8:     {0.75, 0.98}, // measured: tiny-a 0.25 / 0.9971, tiny-b 0.17 / 0.9986
	}
	for _, name := range []string{"tiny-a", "tiny-b"} {
		for _, typ := range []attention.KVType{attention.KVBFloat16, attention.KVInt8} {
			g := openGolden(t, filepath.Join("testdata/golden", name), Options{KVType: typ})
			prompt := g.man.Prompts["p700"]
			want := g.prefillLogits(t, "p700")
			got := run(g.m, prompt, []int{300, 1, 1, 398}, 0)
			V := g.m.Config.Vocab
			agree := 0
			for r := 0; r < len(prompt); r++ {
				if argmax(got[r*V:(r+1)*V]) == argmax(want[r*V:(r+1)*V]) {
					agree++
				}
			}
			e, frac := maxAbsDiff(got, want), float64(agree)/float64(len(prompt))
			t.Logf("%s KV %v: max |Δlogit| %.3g, argmax agreement %.4f over %d positions", name, typ, e, frac, len(prompt))
			if b := bounds[typ]; e > b.maxAbs || frac < b.minArgmax {
				t.Errorf("%s KV %v: max |Δ| %.3g (bound %g), argmax agreement %.4f (bound %g)", name, typ, e, b.maxAbs, frac, b.minArgmax)
			}
		}
	}
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
