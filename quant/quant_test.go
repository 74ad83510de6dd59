package quant

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestSizes pins the storage layout of every format (ggml's static_assert
// of block sizes): quant bytes per row, scales per row and bits per weight
// with F16 scales (F32 for q8), for a 4096-wide row.
func TestSizes(t *testing.T) {
	const n = 4096
	cases := []struct {
		typ      Type
		rowBytes int
		scales   int
		bits     float64
	}{
		{F32, 4 * n, 0, 32}, {BF16, 2 * n, 0, 16}, {F16, 2 * n, 0, 16},
		{Q8, n, 1, 8 + 32.0/n},
		{Q8B32, n, n / 32, 8.5},
		{Q4G32, n / 2, n / 32, 4.5}, {Q4G64, n / 2, n / 64, 4.25}, {Q4G128, n / 2, n / 128, 4.125},
		{Q4G32M, n / 2, n / 32, 5}, {Q4G64M, n / 2, n / 64, 4.5}, {Q4G128M, n / 2, n / 128, 4.25},
	}
	for _, c := range cases {
		st := F16
		if c.typ == Q8 {
			st = F32
		}
		rb, err := c.typ.RowBytes(n)
		if err != nil || rb != c.rowBytes {
			t.Errorf("%s: RowBytes(%d) = %d, %v; want %d", c.typ, n, rb, err, c.rowBytes)
		}
		if got := c.typ.ScalesPerRow(n); got != c.scales {
			t.Errorf("%s: ScalesPerRow = %d, want %d", c.typ, got, c.scales)
		}
		if got := c.typ.BitsPerWeight(n, st); math.Abs(got-c.bits) > 1e-12 {
			t.Errorf("%s: BitsPerWeight = %g, want %g", c.typ, got, c.bits)
		}
		if got, ok := ByName(c.typ.String()); !ok || got != c.typ {
			t.Errorf("ByName(%q) = %v, %v", c.typ.String(), got, ok)
		}
	}
	for _, c := range []struct {
		typ Type
		n   int
	}{{Q8B32, 48}, {Q4G32, 96}, {Q4G64, 32}, {Q4G128, 192}} {
		if _, err := c.typ.RowBytes(c.n); err == nil {
			t.Errorf("%s: RowBytes(%d) accepted a row that is not a whole number of blocks/chunks", c.typ, c.n)
		}
	}
}

func gaussRow(n int, r *rand.Rand) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * 0.02
	}
	return x
}

// quantRoundTrip quantizes x with format typ and scale type st and returns
// the dequantized row and the float scales.
func quantRoundTrip(t *testing.T, typ Type, st Type, x []float32) []float32 {
	t.Helper()
	rb, err := typ.RowBytes(len(x))
	if err != nil {
		t.Fatal(err)
	}
	ns := typ.ScalesPerRow(len(x))
	q := make([]byte, rb)
	sc := make([]byte, ns*st.Info().BlockBytes)
	var mn []byte
	if typ.Info().Mins {
		mn = make([]byte, len(sc))
	}
	if err := typ.QuantizeRow(q, sc, mn, st, x); err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(x))
	typ.DequantRow(y, q, sc, mn, st)
	return y
}

func nmse(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return num / den
}

// TestRoundTripNMSE checks the quantization error of a Gaussian row
// against the uniform-quantizer estimate: a step of s gives a mean squared
// error of s²/12. The estimate is computed from the data with plain absmax
// steps (amax/127 for int8, amax/8 for symmetric int4, (max−min)/15 with
// mins) and allowed 20% for the rounding of the scales and the clamp; the
// int4 search has to beat it outright.
func TestRoundTripNMSE(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	x := gaussRow(4096, r)
	est := func(group int, step func(xs []float32) float64) float64 {
		var num, den float64
		for g := 0; g < len(x); g += group {
			s := step(x[g : g+group])
			num += s * s / 12 * float64(group)
		}
		for _, v := range x {
			den += float64(v) * float64(v)
		}
		return num / den
	}
	absmax := func(levels float64) func([]float32) float64 {
		return func(xs []float32) float64 { return float64(maxAbs(xs)) / levels }
	}
	span := func(xs []float32) float64 {
		lo, hi := xs[0], xs[0]
		for _, v := range xs {
			lo, hi = min(lo, v), max(hi, v)
		}
		return float64(hi-lo) / 15
	}
	cases := []struct {
		typ   Type
		st    Type
		bound float64
	}{
		{Q8, F32, 1.2 * est(4096, absmax(127))},
		{Q8B32, F16, 1.2 * est(32, absmax(127))},
		{Q8B32, BF16, 1.2 * est(32, absmax(127))},
		{Q4G32, F16, est(32, absmax(8))},
		{Q4G64, F16, est(64, absmax(8))},
		{Q4G128, F16, est(128, absmax(8))},
		{Q4G32M, F16, est(32, span)},
		{Q4G64M, F16, est(64, span)},
		{Q4G128M, BF16, est(128, span)},
	}
	for _, c := range cases {
		y := quantRoundTrip(t, c.typ, c.st, x)
		e := nmse(y, x)
		t.Logf("%-8s %-4s NMSE %.3g (bound %.3g)", c.typ, c.st, e, c.bound)
		if e > c.bound {
			t.Errorf("%s with %s scales: NMSE %.3g > %.3g", c.typ, c.st, e, c.bound)
		}
	}
}

// TestInt8Exact checks the int8 formats element by element: every error is
// at most half a step of its (rounded) scale, since nothing is clamped.
func TestInt8Exact(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	x := gaussRow(256, r)
	for _, typ := range []Type{Q8, Q8B32} {
		st := F16
		if typ == Q8 {
			st = F32
		}
		q := make([]byte, 256)
		sc := make([]byte, typ.ScalesPerRow(256)*st.Info().BlockBytes)
		if err := typ.QuantizeRow(q, sc, nil, st, x); err != nil {
			t.Fatal(err)
		}
		s := make([]float32, typ.ScalesPerRow(256))
		for i := range s {
			s[i] = scaleAt(sc, i, st)
		}
		g := 256 / len(s)
		for i, v := range x {
			qi := int8(q[i])
			if qi < -127 {
				t.Fatalf("%s: quant %d out of range", typ, qi)
			}
			if d := math.Abs(float64(v) - float64(s[i/g])*float64(qi)); d > float64(s[i/g])*0.5001 {
				t.Errorf("%s: element %d error %g > s/2 = %g", typ, i, d, s[i/g]/2)
			}
		}
	}
}

// TestQuantizeSpecial covers zero groups, constant groups (with mins) and
// the errors: non-finite input, a scale F16 cannot hold, a wrong scale type.
func TestQuantizeSpecial(t *testing.T) {
	for _, typ := range []Type{Q8, Q8B32, Q4G64, Q4G64M} {
		st := F16
		if typ == Q8 {
			st = F32
		}
		zero := make([]float32, 128)
		if y := quantRoundTrip(t, typ, st, zero); nmse(y, zero) != 0 && !math.IsNaN(nmse(y, zero)) {
			t.Errorf("%s: zero row does not round-trip: %v", typ, y[:4])
		}
		c := make([]float32, 128)
		for i := range c {
			c[i] = 0.25
		}
		// Exact but for the scale's rounding: F16 keeps 11 bits.
		if y := quantRoundTrip(t, typ, st, c); nmse(y, c) > 1e-6 {
			t.Errorf("%s: constant row round-trips with NMSE %g", typ, nmse(y, c))
		}
		q := make([]byte, 128)
		sc := make([]byte, 64*4)
		mn := make([]byte, 64*4)
		bad := append([]float32{float32(math.NaN())}, zero[1:]...)
		if err := typ.QuantizeRow(q, sc, mn, st, bad); err == nil || !strings.Contains(err.Error(), "NaN") {
			t.Errorf("%s: NaN input: err = %v", typ, err)
		}
		if typ != Q8 {
			big := append([]float32{1e9}, zero[1:]...)
			if err := typ.QuantizeRow(q, sc, mn, F16, big); err == nil || !strings.Contains(err.Error(), "overflows") {
				t.Errorf("%s: F16 scale overflow: err = %v", typ, err)
			}
			if err := typ.QuantizeRow(q, sc, mn, BF16, big); err != nil {
				t.Errorf("%s: BF16 scales should hold 1e9: %v", typ, err)
			}
		}
		if err := typ.QuantizeRow(q, sc, mn, BF16+F32-st, zero); err == nil {
			t.Errorf("%s: accepted scale type %s", typ, BF16+F32-st)
		}
	}
}

// TestMatMulMatchesDequant checks that each format's product (the fast
// kernels, with int8 activations) matches the float64 product of the
// reference dequantized weights and the exact activations, within the
// activation quantization error: each x is off by at most dx_b/2 =
// amax_b/254, so |error| ≤ Σ_k |w_k|·amax_b/254, plus float32 rounding.
func TestMatMulMatchesDequant(t *testing.T) {
	const T, in, out = 3, 256, 9
	r := rand.New(rand.NewPCG(3, 3))
	x := make([]float32, T*in)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	w := gaussRow(out*in, r)
	for _, name := range QuantizedNames() {
		typ, _ := ByName(name)
		st := F16
		if typ == Q8 {
			st = F32
		}
		rb, _ := typ.RowBytes(in)
		ns := typ.ScalesPerRow(in)
		ww := Weights{Q: make([]byte, out*rb), Scales: make([]byte, out*ns*st.Info().BlockBytes), ScaleType: st}
		if typ.Info().Mins {
			ww.Mins = make([]byte, len(ww.Scales))
		}
		sb := ns * st.Info().BlockBytes
		deq := make([]float32, out*in)
		for o := range out {
			var mn []byte
			if ww.Mins != nil {
				mn = ww.Mins[o*sb : (o+1)*sb]
			}
			if err := typ.QuantizeRow(ww.Q[o*rb:(o+1)*rb], ww.Scales[o*sb:(o+1)*sb], mn, st, w[o*in:(o+1)*in]); err != nil {
				t.Fatal(err)
			}
			typ.DequantRow(deq[o*in:(o+1)*in], ww.Q[o*rb:(o+1)*rb], ww.Scales[o*sb:(o+1)*sb], mn, st)
		}
		dst := make([]float32, T*out)
		typ.MatMul(dst, x, T, in, out, ww)
		for tt := range T {
			for o := range out {
				var want, bound float64
				for k := range in {
					xv := x[tt*in+k]
					var amax float32
					for _, v := range x[tt*in+k/32*32 : tt*in+k/32*32+32] {
						amax = max(amax, float32(math.Abs(float64(v))))
					}
					want += float64(deq[o*in+k]) * float64(xv)
					bound += math.Abs(float64(deq[o*in+k])) * (float64(amax)/254 + 4*math.Abs(float64(xv))*1e-7)
				}
				if got := float64(dst[tt*out+o]); math.Abs(got-want) > bound {
					t.Errorf("%s: dst[%d,%d] = %g, want %g ± %g", typ, tt, o, got, want, bound)
				}
			}
		}
	}
}
