package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
)

// convInputs mixes random bit patterns (all classes: subnormals, NaNs,
// infinities) with values on rounding ties.
func convInputs() []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	var xs []float32
	for range 5000 {
		xs = append(xs, math.Float32frombits(r.Uint32()))
	}
	for _, b := range []uint32{0x3f808000, 0x3f818000, 0x7f7f8000, 0x7f800000, 0xff800000, 0x7f800001, 0xffc00000, 0x00008000, 0x80018000, 0} {
		xs = append(xs, math.Float32frombits(b))
	}
	return xs
}

func TestConvert(t *testing.T) {
	xs := convInputs()
	numtest.EachImpl(t, "convert", func(t *testing.T) {
		for _, n := range []int{0, 1, 15, 16, 17, 33, len(xs)} {
			src := xs[:n]
			// F32ToBF16 must equal RoundBF16 bit for bit.
			h := make([]uint16, n+2)
			F32ToBF16(h[1:n+1], numtest.Offset(src, 1))
			if h[0] != 0 || h[n+1] != 0 {
				t.Fatalf("n=%d: F32ToBF16 wrote outside dst", n)
			}
			for i, v := range src {
				if h[1+i] != RoundBF16(v) {
					t.Fatalf("F32ToBF16(%#x) = %#x, want %#x", math.Float32bits(v), h[1+i], RoundBF16(v))
				}
			}
			// BF16ToF32 is exact; F16ToF32 equals HalfToFloat except
			// that signalling NaNs may come back quiet.
			back, check := numtest.Guarded(t, n, 5)
			BF16ToF32(back, h[1:n+1])
			check()
			for i := range n {
				if math.Float32bits(back[i]) != uint32(h[1+i])<<16 {
					t.Fatalf("BF16ToF32(%#x) = %#x", h[1+i], math.Float32bits(back[i]))
				}
			}
			F16ToF32(back, h[1:n+1])
			check()
			for i := range n {
				want := HalfToFloat(h[1+i])
				if want != want {
					if back[i] == back[i] {
						t.Fatalf("F16ToF32(%#x) = %g, want NaN", h[1+i], back[i])
					}
					continue
				}
				if math.Float32bits(back[i]) != math.Float32bits(want) {
					t.Fatalf("F16ToF32(%#x) = %g, want %g", h[1+i], back[i], want)
				}
			}
		}
	})
}
