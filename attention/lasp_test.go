package attention

import (
	"math"
	"math/rand/v2"
	"testing"
)

// lengthsOf returns the chunk lengths of a split of n tokens at the given
// cut points.
func lengthsOf(n int, cuts []int) []int {
	var out []int
	prev := 0
	for _, c := range append(cuts, n) {
		out = append(out, c-prev)
		prev = c
	}
	return out
}

// TestLightningChunksEqualOnePass checks the LASP combination: a sequence
// cut into k chunks, each run from a zero state (LightningPrefill) and then
// given the state before it (LightningCarry for the state passed on,
// LightningPrefixOut for the outputs), equals one LightningPrefill over all
// tokens from the same incoming state. Both sides are fp32 with different
// summation orders over ≤ 600 tokens of values in [-1, 1] at d = 16; the
// block test (TestLightningBlockEqualsRecurrence) bounds each side at ~1e-6
// relative to the float64 recurrence, so 1e-5 leaves margin. Dropping the
// prefix output term must break the equality (the test can fail).
func TestLightningChunksEqualOnePass(t *testing.T) {
	const d, block = 16, 64
	r := rand.New(rand.NewPCG(21, 22))
	for _, c := range []struct {
		n    int
		cuts []int // chunk starts after the first
	}{{7, []int{3}}, {7, []int{2, 4, 6}}, {600, []int{300}}, {600, []int{1, 150, 151, 450}}, {257, []int{64, 128, 192}}} {
		for _, slope := range []float32{0.917, 0.3, 0.004} {
			q, _ := randVec(r, c.n*3*d, 1) // one buffer, rows of q|k|v as in the model
			ld := 3 * d
			qs, ks, vs := q, q[d:], q[2*d:]
			prior, _ := randVec(r, d*d, 5)

			want := make([]float32, c.n*d)
			wantS := append([]float32(nil), prior...)
			LightningPrefill(want, d, qs, ks, vs, ld, c.n, d, wantS, slope, block, NewLightningScratch(block, d))

			for _, dropPrefix := range []bool{false, true} {
				got := make([]float32, c.n*d)
				in := append([]float32(nil), prior...) // the state before the current chunk
				ws := NewLightningScratch(block, d)
				start := 0
				for _, m := range lengthsOf(c.n, c.cuts) {
					st := make([]float32, d*d) // the chunk's own contribution, from zero
					o := got[start*d:]
					LightningPrefill(o, d, qs[start*ld:], ks[start*ld:], vs[start*ld:], ld, m, d, st, slope, block, ws)
					LightningCarry(st, in, d, m, slope)
					if !dropPrefix {
						LightningPrefixOut(o, d, qs[start*ld:], ld, m, d, in, slope, ws)
					}
					in = st
					start += m
				}
				eo, es := relErr(got, f64(want)), relErr(in, f64(wantS))
				if dropPrefix {
					if eo < 1e-3 {
						t.Errorf("n %d cuts %v slope %v: outputs without the prefix term still match (rel err %.3g)", c.n, c.cuts, slope, eo)
					}
					continue
				}
				if eo > 1e-5 || es > 1e-5 {
					t.Errorf("n %d cuts %v slope %v: rel err outputs %.3g, state %.3g", c.n, c.cuts, slope, eo, es)
				}
			}
		}
	}
}

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// TestRingAttentionEqualsOnePass checks ring attention: each chunk's
// queries attend to their own chunk (causal) and to every earlier chunk's
// keys (FlashAttendBlock), merged in the order a ring delivers them
// (nearest earlier chunk first) with MergeAttention; outputs and log-sum-
// exps equal one FlashForward over the whole sequence. Both are fp32 online
// softmaxes over different groupings of the keys (≤ 700 keys, scores of
// size ~4); 1e-5 relative is ~100 ulps of margin over their ~1e-6 error
// against float64 (TestFlashAttend). Skipping one earlier chunk must break
// the equality.
func TestRingAttentionEqualsOnePass(t *testing.T) {
	const d = 16
	r := rand.New(rand.NewPCG(23, 24))
	for _, c := range []struct {
		group, kvHeads, n int
		cuts              []int
	}{{1, 2, 7, []int{3}}, {3, 2, 700, []int{350}}, {3, 2, 700, []int{1, 175, 176, 600}}, {8, 1, 300, []int{100, 200}}} {
		heads := c.group * c.kvHeads
		hd, kvd := heads*d, c.kvHeads*d
		q, _ := randVec(r, c.n*hd, 2)
		k, _ := randVec(r, c.n*kvd, 2)
		v, _ := randVec(r, c.n*kvd, 1)
		want, wantL := make([]float32, c.n*hd), make([]float32, c.n*heads)
		ws := NewFlashScratch(c.group, d)
		for g := 0; g < c.kvHeads; g++ {
			FlashForward(want, hd, wantL, heads, q, hd, k, kvd, v, kvd, g, c.group, d, c.n, ws)
		}
		scale := float32(1 / math.Sqrt(d))
		lens := lengthsOf(c.n, c.cuts)
		var starts []int
		for i, s := 0, 0; i < len(lens); i++ {
			starts = append(starts, s)
			s += lens[i]
		}
		for _, skip := range []bool{false, true} {
			got, gotL := make([]float32, c.n*hd), make([]float32, c.n*heads)
			for ci, m := range lens {
				s := starts[ci]
				o, l := got[s*hd:], gotL[s*heads:]
				attend := func(o, l []float32, kPos, km int) {
					for g := 0; g < c.kvHeads; g++ {
						for tile := 0; tile < FlashTiles(m, c.group); tile++ {
							FlashAttendBlock(o, hd, l, heads, q[s*hd:], hd, k[kPos*kvd:], kvd, v[kPos*kvd:], kvd, g, c.group, d, s, m, kPos, km, tile, scale, ws)
						}
					}
				}
				attend(o, l, s, m) // own chunk, causal
				o2, l2 := make([]float32, m*hd), make([]float32, m*heads)
				for j := ci - 1; j >= 0; j-- {
					if skip && j == 0 {
						continue
					}
					attend(o2, l2, starts[j], lens[j])
					MergeAttention(o, hd, l, heads, o2, hd, l2, heads, m, heads, d)
				}
			}
			eo, el := relErr(got, f64(want)), relErr(gotL, f64(wantL))
			if skip {
				if eo < 1e-3 {
					t.Errorf("%+v: outputs without the first chunk still match (rel err %.3g)", c, eo)
				}
				continue
			}
			if eo > 1e-5 || el > 1e-5 {
				t.Errorf("%+v: rel err outputs %.3g, log-sum-exp %.3g", c, eo, el)
			}
		}
	}
}

// TestKVCacheRead checks that Read returns a token range's rows as they
// were appended (exactly for fp32, within bf16's 2^-8 relative rounding).
func TestKVCacheRead(t *testing.T) {
	const heads, d, n = 3, 8, 40
	r := rand.New(rand.NewPCG(25, 26))
	k, k64 := randVec(r, n*heads*d, 1)
	v, v64 := randVec(r, n*heads*d, 1)
	for _, c := range []struct {
		typ KVType
		tol float64
	}{{KVFloat32, 0}, {KVBFloat16, 1.0 / 256}} {
		cache := NewKVCache(c.typ, heads, d, 0)
		cache.Append(k, v, heads*d, n)
		gk, gv := make([]float32, 10*heads*d), make([]float32, 10*heads*d)
		cache.Read(gk, gv, 25, 10)
		rl := heads * d
		if ek, ev := relErr(gk, k64[25*rl:35*rl]), relErr(gv, v64[25*rl:35*rl]); ek > c.tol || ev > c.tol {
			t.Errorf("%v: rel err keys %.3g, values %.3g", c.typ, ek, ev)
		}
	}
}
