package kernels

import (
	"math"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
)

type mmCase struct{ T, in, out int }

// mmCases covers the skinny path (T ≤ 16), the GEMM path, edge tiles in
// every dimension (T not a multiple of 14, out not a multiple of 32 or 4,
// in not a multiple of 32 or of the 256-wide k block, odd in), zero sizes,
// and row block boundaries (T > 630 is two blocks on both ISAs).
var mmCases = []mmCase{
	{0, 5, 7}, {3, 0, 5}, {2, 5, 0},
	{1, 1, 1}, {1, 31, 3}, {1, 32, 4}, {1, 33, 5}, {1, 100, 70}, {1, 530, 64},
	{2, 64, 9}, {3, 97, 13}, {4, 256, 8}, {5, 257, 17}, {15, 96, 33}, {16, 64, 40},
	{17, 33, 33}, {14, 300, 32}, {29, 530, 70}, {40, 600, 100}, {64, 31, 65},
	{520, 40, 40}, {700, 40, 40}, {130, 64, 40}, {300, 1056, 33}, // the last two: AMX's whole and partial panels and k blocks
}

// mmKind is one weight type of the matrix products under test.
type mmKind struct {
	name string
	run  func(dst, x []float32, w []float32, wh []uint16, c mmCase)
	half func(float32) uint16 // rounds a weight to the 16-bit format; nil for f32
	to   func(uint16) float32
}

var mmKinds = []mmKind{
	{"f32", func(dst, x, w []float32, _ []uint16, c mmCase) { MatMulF32(dst, x, w, c.T, c.in, c.out) }, nil, nil},
	{"bf16", func(dst, x, _ []float32, wh []uint16, c mmCase) { MatMulBF16(dst, x, wh, c.T, c.in, c.out) }, RoundBF16, bf16ToF32},
	{"f16", func(dst, x, _ []float32, wh []uint16, c mmCase) { MatMulF16(dst, x, wh, c.T, c.in, c.out) }, FloatToHalf, HalfToFloat},
	{"bf16dot", func(dst, x, _ []float32, wh []uint16, c mmCase) { MatMulBF16Dot(dst, x, wh, c.T, c.in, c.out) }, RoundBF16, bf16ToF32},
}

// checkMM runs one product of kind k on random data (activations and
// weights at unaligned offsets, dst between guard bands) and compares it
// with the float64 product.
func checkMM(t *testing.T, k mmKind, c mmCase, seed int) {
	t.Helper()
	x := numtest.Offset(numtest.Rand(c.T*c.in, uint64(seed)), 1+seed%3)
	wf := numtest.Rand(c.out*c.in, uint64(100+seed))
	var wh []uint16
	if k.half != nil {
		wh = make([]uint16, len(wf)+1)[1:] // odd offset
		for i, v := range wf {
			wh[i] = k.half(v)
			wf[i] = k.to(wh[i])
		}
	}
	wf = numtest.Offset(wf, 3)
	dst, check := numtest.Guarded(t, c.T*c.out, 37)
	for i := range dst {
		dst[i] = float32(math.NaN()) // must be overwritten
	}
	k.run(dst, x, wf, wh, c)
	check()
	bad := 0
	for tt := 0; tt < c.T; tt++ {
		for o := 0; o < c.out; o++ {
			var want, abs float64
			for i := 0; i < c.in; i++ {
				p := float64(x[tt*c.in+i]) * float64(wf[o*c.in+i])
				want += p
				abs += math.Abs(p)
			}
			// Reordered float32 sum of in exact (or once-rounded)
			// products: DotTol. The lossy bf16dot path also rounds
			// each x to bf16, a relative error ≤ 2⁻⁹ per product.
			tol := numtest.DotTol(c.in, abs)
			if k.name == "bf16dot" {
				tol += abs / 512
			}
			got := float64(dst[tt*c.out+o])
			if !(math.Abs(got-want) <= tol) && bad < 5 {
				bad++
				t.Errorf("%s T=%d in=%d out=%d: dst[%d,%d] = %g, want %g ± %g", k.name, c.T, c.in, c.out, tt, o, got, want, tol)
			}
		}
	}
}

func TestMatMul(t *testing.T) {
	for _, kernel := range []string{"matmul", "matmul.bf16dot", "matmul.amx", "matmul.packtrans"} {
		numtest.EachImpl(t, kernel, func(t *testing.T) {
			for _, k := range mmKinds {
				if kernel != "matmul.packtrans" && ((kernel == "matmul.bf16dot") != (k.name == "bf16dot") || (kernel == "matmul.amx" && k.name != "bf16")) {
					continue
				}
				for ci, c := range mmCases {
					checkMM(t, k, c, ci)
				}
			}
		})
	}
}

// TestMatMulSmallT covers every T of the skinny kernels and the switch to
// the GEMM: token blocks of 1–8 and their remainders (blocks of 8 for
// in ≤ 1024, of 4 above), output counts below, at and past each kernel's
// row count (the shifted last group), and k tails shorter than a 32-wide
// chunk.
func TestMatMulSmallT(t *testing.T) {
	shapes := []struct{ in, out, maxT int }{
		{64, 37, 130}, {97, 11, 72}, {1031, 12, 40}, {1090, 4, 12},
		{31, 5, 20}, {160, 3, 20}, {33, 2, 20}, {40, 1, 20},
		{512, 173, 9}, {1024, 47, 9}, // rows a page apart, then the rest beside each other
	}
	numtest.EachImpl(t, "matmul", func(t *testing.T) {
		for _, k := range mmKinds[:3] {
			for si, s := range shapes {
				for T := 1; T <= s.maxT; T++ {
					checkMM(t, k, mmCase{T, s.in, s.out}, T*7+si)
				}
			}
		}
	})
}

func TestMatMulNoAlloc(t *testing.T) {
	const T, in, out = 40, 96, 64
	x, w := numtest.Rand(T*in, 1), numtest.Rand(in*out, 2)
	wh := make([]uint16, in*out)
	F32ToBF16(wh, w)
	dst := make([]float32, T*out)
	for _, T := range []int{1, 16, 40} {
		if n := testing.AllocsPerRun(20, func() {
			MatMulF32(dst, x, w, T, in, out)
			MatMulBF16(dst, x, wh, T, in, out)
			MatMulBF16Dot(dst, x, wh, T, in, out)
		}); n != 0 {
			t.Errorf("T=%d: %v allocations per call, want 0", T, n)
		}
	}
}
