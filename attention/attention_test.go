package attention

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func randVec(r *rand.Rand, n int, scale float64) ([]float32, []float64) {
	f := make([]float32, n)
	g := make([]float64, n)
	for i := range f {
		f[i] = float32((r.Float64()*2 - 1) * scale)
		g[i] = float64(f[i])
	}
	return f, g
}

// relErr is max|got − want| / max|want|.
func relErr(got []float32, want []float64) float64 {
	var e, m float64
	for i := range want {
		e = max(e, math.Abs(float64(got[i])-want[i]))
		m = max(m, math.Abs(want[i]))
	}
	return e / m
}

// TestLightningBlockEqualsRecurrence checks the block algorithm (spec §2.5.4)
// against the float64 recurrence for lengths around block boundaries, block
// lengths 1, 3 and 256, several decay rates, and a zero or random incoming
// state (style.md G9 rung 3). fp32 accumulation over ≤ 600 tokens of values
// in [-1, 1] with d = 16 stays within ~1e-6 relative; 2e-5 leaves margin.
func TestLightningBlockEqualsRecurrence(t *testing.T) {
	const d = 16
	r := rand.New(rand.NewPCG(1, 2))
	for _, block := range []int{1, 3, 256} {
		for _, n := range []int{1, 2, 255, 256, 257, 600} {
			for _, slope := range []float32{0.917, 0.3, 0.004} {
				for _, withState := range []bool{false, true} {
					q, q64 := randVec(r, n*d, 1)
					k, k64 := randVec(r, n*d, 1)
					v, v64 := randVec(r, n*d, 1)
					s := make([]float32, d*d)
					s64 := make([]float64, d*d)
					if withState {
						s, s64 = randVec(r, d*d, 5)
					}
					wantO, states := lightningRecurrence(q64, k64, v64, n, d, s64, float64(slope))
					wantS := states[(n-1)*d*d:]
					o := make([]float32, n*d)
					LightningPrefill(o, d, q, k, v, d, n, d, s, slope, block, NewLightningScratch(block, d))
					if e := relErr(o, wantO); e > 2e-5 {
						t.Errorf("block %d n %d slope %v state %v: output rel err %.3g", block, n, slope, withState, e)
					}
					if e := relErr(s, wantS); e > 2e-5 {
						t.Errorf("block %d n %d slope %v state %v: state rel err %.3g", block, n, slope, withState, e)
					}
				}
			}
		}
	}
}

// TestLightningStepEqualsRecurrence feeds tokens one at a time.
func TestLightningStepEqualsRecurrence(t *testing.T) {
	const d, n = 16, 300
	r := rand.New(rand.NewPCG(3, 4))
	for _, slope := range []float32{0.917, 0.004} {
		q, q64 := randVec(r, n*d, 1)
		k, k64 := randVec(r, n*d, 1)
		v, v64 := randVec(r, n*d, 1)
		wantO, states := lightningRecurrence(q64, k64, v64, n, d, nil, float64(slope))
		wantS := states[(n-1)*d*d:]
		s := make([]float32, d*d)
		o := make([]float32, n*d)
		for t := 0; t < n; t++ {
			LightningStep(o[t*d:], q[t*d:], k[t*d:], v[t*d:], s, d, slope)
		}
		if e := relErr(o, wantO); e > 2e-5 {
			t.Errorf("slope %v: output rel err %.3g", slope, e)
		}
		if e := relErr(s, wantS); e > 2e-5 {
			t.Errorf("slope %v: state rel err %.3g", slope, e)
		}
	}
}

// TestALiBiSlopes checks the slope rule against the spec's values: 2^(-(h+1)/8)
// for 64 heads, and the non-power-of-two rule for 6 heads (golden README §9).
func TestALiBiSlopes(t *testing.T) {
	s := ALiBiSlopes(64)
	for h, v := range s {
		if want := float32(math.Pow(2, -float64(h+1)/8)); v != want {
			t.Errorf("64 heads: slope %d = %v, want %v", h, v, want)
		}
	}
	want6 := []float32{0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125}
	for h, v := range ALiBiSlopes(6) {
		if v != want6[h] {
			t.Errorf("6 heads: slope %d = %v, want %v", h, v, want6[h])
		}
	}
	// Spec §2.5.2 table (fp64 values to 9 digits), 80 layers.
	for _, c := range []struct {
		l      int
		s0, s1 float64 // heads 0 and 63
	}{{0, 0.917013213, 0.003906289}, {1, 0.905405567, 0.003856843}, {70, 0.104477985, 0.000445055}, {78, 0.011616816, 0.0000494853}} {
		ls := LayerSlopes(s, c.l, 80)
		if math.Abs(float64(ls[0])-c.s0) > 1e-6*c.s0 || math.Abs(float64(ls[63])-c.s1) > 1e-6*c.s1 {
			t.Errorf("layer %d: slopes %v, %v; want %v, %v", c.l, ls[0], ls[63], c.s0, c.s1)
		}
	}
}

// TestSoftmaxAttend compares the tiled online softmax with a float64 direct
// computation over 300 keys (crossing tile boundaries).
func TestSoftmaxAttend(t *testing.T) {
	const d, kv, n = 16, 2, 300
	r := rand.New(rand.NewPCG(5, 6))
	c := NewKVCache(KVFloat32, kv, d, 0)
	k, k64 := randVec(r, n*kv*d, 3)
	v, v64 := randVec(r, n*kv*d, 1)
	c.Append(k, v, kv*d, n)
	q, q64 := randVec(r, d, 3)
	scale := float32(1 / math.Sqrt(d))
	for _, g := range []int{0, 1} {
		for _, nKeys := range []int{1, 127, 128, 129, 300} {
			sc := make([]float64, nKeys)
			mx := math.Inf(-1)
			for s := range sc {
				var dot float64
				for i := 0; i < d; i++ {
					dot += q64[i] * k64[s*kv*d+g*d+i]
				}
				sc[s] = dot * float64(scale)
				mx = max(mx, sc[s])
			}
			var z float64
			want := make([]float64, d)
			for s := range sc {
				p := math.Exp(sc[s] - mx)
				z += p
				for i := 0; i < d; i++ {
					want[i] += p * v64[s*kv*d+g*d+i]
				}
			}
			for i := range want {
				want[i] /= z
			}
			got := make([]float32, d)
			SoftmaxAttend(got, q, &c, g, d, nKeys, scale)
			if e := relErr(got, want); e > 1e-5 {
				t.Errorf("group %d keys %d: rel err %.3g", g, nKeys, e)
			}
		}
	}
}

// TestRoPE checks the partial NeoX rotation: dims ≥ rotary_dim untouched,
// pairs (i, i+R/2) rotated by p·θ^(−2i/R) (spec §9 suggested test).
func TestRoPE(t *testing.T) {
	const R, d = 8, 16
	rp := NewRoPE(R, 1e7)
	for _, p := range []int{0, 1, 1000000} {
		x := make([]float32, d)
		for i := range x {
			x[i] = float32(i + 1)
		}
		cos, sin := make([]float32, R/2), make([]float32, R/2)
		rp.Angles(cos, sin, p)
		y := append([]float32(nil), x...)
		rp.Rotate(y, 1, d, cos, sin)
		for i := R; i < d; i++ {
			if y[i] != x[i] {
				t.Errorf("p %d: dim %d changed", p, i)
			}
		}
		for i := 0; i < R/2; i++ {
			ang := float64(float32(p) * rp.InvFreq[i])
			a, b := float64(x[i]), float64(x[i+R/2])
			wa, wb := a*math.Cos(ang)-b*math.Sin(ang), b*math.Cos(ang)+a*math.Sin(ang)
			if math.Abs(float64(y[i])-wa) > 1e-5*(1+math.Abs(wa)) || math.Abs(float64(y[i+R/2])-wb) > 1e-5*(1+math.Abs(wb)) {
				t.Errorf("p %d pair %d: got (%v, %v), want (%v, %v)", p, i, y[i], y[i+R/2], wa, wb)
			}
			if wantF := math.Pow(1e7, -float64(2*i)/R); math.Abs(float64(rp.InvFreq[i])-wantF) > 1e-6*wantF {
				t.Errorf("inv_freq[%d] = %v, want %v", i, rp.InvFreq[i], wantF)
			}
		}
	}
}

// TestFlashAttend compares the tiled GQA flash attention with a float64
// direct computation: chunks that start mid-sequence (pos0 > 0), lengths
// that cross query and key tiles, GQA groups 1, 3 and 8. fp32 GEMM sums
// over ≤ 400 keys with |q·k·scale| ≲ 10 stay within ~1e-6 relative.
func TestFlashAttend(t *testing.T) {
	const d = 16
	r := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct{ group, kvHeads, pos0, n int }{{1, 2, 0, 1}, {3, 2, 0, 70}, {8, 1, 100, 300}, {2, 2, 250, 1}, {3, 1, 5, 33}} {
		heads := c.group * c.kvHeads
		total := c.pos0 + c.n
		cache := NewKVCache(KVFloat32, c.kvHeads, d, 0)
		k, k64 := randVec(r, total*c.kvHeads*d, 2)
		v, v64 := randVec(r, total*c.kvHeads*d, 1)
		cache.Append(k, v, c.kvHeads*d, total)
		q, q64 := randVec(r, c.n*heads*d, 2)
		scale := float32(1 / math.Sqrt(d))
		got := make([]float32, c.n*heads*d)
		ws := NewFlashScratch(c.group, d)
		for g := 0; g < c.kvHeads; g++ {
			for tile := 0; tile < FlashTiles(c.n, c.group); tile++ {
				FlashAttend(got, heads*d, q, heads*d, &cache, g, c.group, d, c.pos0, c.n, tile, scale, ws)
			}
		}
		want := make([]float64, len(got))
		for tq := 0; tq < c.n; tq++ {
			for h := 0; h < heads; h++ {
				g := h / c.group
				nk := c.pos0 + tq + 1
				sc := make([]float64, nk)
				mx := math.Inf(-1)
				for s := range sc {
					var dot float64
					for i := 0; i < d; i++ {
						dot += q64[(tq*heads+h)*d+i] * k64[(s*c.kvHeads+g)*d+i]
					}
					sc[s] = dot * float64(scale)
					mx = max(mx, sc[s])
				}
				var z float64
				for s := range sc {
					sc[s] = math.Exp(sc[s] - mx)
					z += sc[s]
				}
				for s := range sc {
					for i := 0; i < d; i++ {
						want[(tq*heads+h)*d+i] += sc[s] / z * v64[(s*c.kvHeads+g)*d+i]
					}
				}
			}
		}
		if e := relErr(got, want); e > 1e-5 {
			t.Errorf("%+v: rel err %.3g", c, e)
		}
	}
}

// TestKVCacheTypes checks each storage type: values read back within the
// type's rounding (bf16: 2^-8 relative; int8: half a step, max|x|/254 per
// head vector), Save/Load restores the exact storage, Truncate and Clone.
func TestKVCacheTypes(t *testing.T) {
	const heads, d, n = 2, 16, 150
	r := rand.New(rand.NewPCG(11, 12))
	k, _ := randVec(r, n*heads*d, 3)
	v, _ := randVec(r, n*heads*d, 1)
	for _, typ := range []KVType{KVFloat32, KVBFloat16, KVInt8} {
		c := NewKVCache(typ, heads, d, 0)
		c.Append(k[:40*heads*d], v[:40*heads*d], heads*d, 40)
		c.Append(k[40*heads*d:], v[40*heads*d:], heads*d, n-40)
		if c.Len != n || c.Bytes() < int64(n)*typ.BytesPerToken(heads, d) {
			t.Fatalf("%v: len %d bytes %d", typ, c.Len, c.Bytes())
		}
		buf := make([]float32, n*d)
		for g := 0; g < heads; g++ {
			for which, src := range [][]float32{k, v} {
				var tile []float32
				var ld int
				if which == 0 {
					tile, ld = c.Keys(buf, 0, n, g)
				} else {
					tile, ld = c.Values(buf, 0, n, g)
				}
				for s := 0; s < n; s++ {
					want := src[(s*heads+g)*d : (s*heads+g+1)*d]
					var amax float64
					for _, x := range want {
						amax = max(amax, math.Abs(float64(x)))
					}
					for e, x := range want {
						got := tile[s*ld+e]
						var tol float64
						switch typ {
						case KVBFloat16:
							tol = math.Abs(float64(x)) / 256
						case KVInt8:
							tol = amax/254*1.0001 + 1e-7
						}
						if math.Abs(float64(got-x)) > tol {
							t.Fatalf("%v head %d token %d dim %d: %v, want %v ± %g", typ, g, s, e, got, x, tol)
						}
					}
				}
			}
		}
		var sb strings.Builder
		if err := c.Save(&sb); err != nil {
			t.Fatal(err)
		}
		back := KVCache{Heads: heads, Dim: d}
		if err := back.Load(strings.NewReader(sb.String()), n); err != nil {
			t.Fatal(err)
		}
		var sb2 strings.Builder
		back.Save(&sb2)
		if sb2.String() != sb.String() || back.Type != typ {
			t.Errorf("%v: Save/Load round trip differs", typ)
		}
		if err := (&KVCache{Heads: heads, Dim: d}).Load(strings.NewReader(sb.String()), n-1); err == nil {
			t.Errorf("%v: Load accepted more tokens than maxLen", typ)
		}
		cl := c.Clone()
		c.Truncate(10)
		if c.Len != 10 || cl.Len != n {
			t.Errorf("%v: truncate/clone lengths %d %d", typ, c.Len, cl.Len)
		}
	}
}
