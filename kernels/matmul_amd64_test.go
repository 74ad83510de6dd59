//go:build !purego

package kernels

import (
	"fmt"
	"math"
	"testing"
	"unsafe"

	"github.com/lightninglm/lightning/internal/numtest"
)

func BenchmarkKernF32(b *testing.B) {
	var a [256 * 14]float32
	var bb [256 * 32]float32
	var c [14 * 32]float32
	for b.Loop() {
		gemmKernF32AVX512(256, unsafe.Pointer(&a[0]), 56, unsafe.Pointer(&bb[0]), 128, &c[0], 128, 1)
	}
	b.ReportMetric(2*256*14*32*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkKernBF16Dot(b *testing.B) {
	var a [128 * 14]float32
	var bb [128 * 32]float32
	var c [14 * 32]float32
	for b.Loop() {
		gemmKernBF16DotAVX512(128, unsafe.Pointer(&a[0]), 56, unsafe.Pointer(&bb[0]), 128, &c[0], 128, 1)
	}
	b.ReportMetric(2*256*14*32*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkPackB(b *testing.B) {
	w := make([]uint16, 32*6144)
	j := &mmJob{kind: wBF16, wh: w, in: 6144}
	buf := new(panelBuf)
	for b.Loop() {
		packBGather(j, buf, 0, 32, 0, 256)
	}
	b.ReportMetric(256*32*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
}

// TestGEMMEdgeKernels checks that a product whose last row panel is
// partial, computed by the 4-, 7- or 10-row edge microkernels, gives
// bitwise the rows the 14-row kernel gives them: the same product with x
// padded to whole panels, for every remainder mod 14, f32, bf16 and
// (where the CPU has it) the bf16 dot path, with outputs not a multiple
// of 32 so edge columns meet edge rows.
func TestGEMMEdgeKernels(t *testing.T) {
	if !useMatMulAVX512 || !useGEMMEdge {
		t.Skip("no AVX-512")
	}
	const in, out, padded = 96, 80, 154 // 154 = 11 whole panels, T > every skinny limit
	x := make([]float32, padded*in)
	for i := range x {
		x[i] = float32(i%13)*0.37 - 2.1
	}
	wf := make([]float32, out*in)
	wh := make([]uint16, out*in)
	for i := range wf {
		wf[i] = float32(i%11)*0.123 - 0.6
		wh[i] = RoundBF16(wf[i])
	}
	mul := map[string]func(dst, x []float32, T int){
		"f32":     func(dst, x []float32, T int) { MatMulF32(dst, x, wf, T, in, out) },
		"bf16":    func(dst, x []float32, T int) { MatMulBF16(dst, x, wh, T, in, out) },
		"bf16dot": func(dst, x []float32, T int) { MatMulBF16Dot(dst, x, wh, T, in, out) },
	}
	for name, f := range mul {
		want := make([]float32, padded*out)
		f(want, x, padded)
		for T := padded - 14; T < padded; T++ {
			got := make([]float32, T*out)
			f(got, x[:T*in], T)
			for i, v := range got {
				if math.Float32bits(v) != math.Float32bits(want[i]) {
					t.Fatalf("%s, T = %d: dst[%d][%d] = %v, want %v (the 14-row kernel's)", name, T, i/out, i%out, v, want[i])
				}
			}
		}
	}
}

// TestSkinnyRowsApartBitwise checks that the skinny path (and the q8 and
// q8b32 kernels) gives a row bitwise the same result whether its kernel call met
// the rows beside it or rows a page apart (rowsPerPage): the same products
// over the rows from an offset on, which moves every row into another
// group, and over fewer rows than one group of rows a page apart.
func TestSkinnyRowsApartBitwise(t *testing.T) {
	if !useMatMulAVX512 {
		t.Skip("no AVX-512 skinny kernels on this CPU")
	}
	for _, in := range []int{512, 1024} {
		for _, T := range []int{1, 2, 3, 4, 5, 8} {
			const out = 205
			x := numtest.Rand(T*in, uint64(T))
			wf := numtest.Rand(out*in, uint64(in))
			wh := make([]uint16, len(wf))
			for i, v := range wf {
				wh[i] = RoundBF16(v)
			}
			full32, full16 := make([]float32, T*out), make([]float32, T*out)
			MatMulF32(full32, x, wf, T, in, out)
			MatMulBF16(full16, x, wh, T, in, out)
			for _, off := range []int{1, 7, 190} {
				n := out - off
				part32, part16 := make([]float32, T*n), make([]float32, T*n)
				MatMulF32(part32, x, wf[off*in:], T, in, n)
				MatMulBF16(part16, x, wh[off*in:], T, in, n)
				sameRows(t, "f32", in, T, off, full32, part32, out, n)
				sameRows(t, "bf16", in, T, off, full16, part16, out, n)
			}
			// q8b32: rows in multiples of the kernels' 4, since a last
			// partial group runs on the Go twin, which rounds differently.
			const out8 = 204
			q, sc := make([]byte, out8*in), make([]uint16, out8*in/32)
			for i := range q {
				q[i] = byte(int8(wf[i] * 127))
			}
			for i := range sc {
				sc[i] = FloatToHalf(wf[i] / 64)
			}
			rs := wf[:out8]
			full8, fullRow := make([]float32, T*out8), make([]float32, T*out8)
			MatMulQ8B32(full8, x, q, sc, false, T, in, out8)
			MatMulQ8(fullRow, x, q, rs, T, in, out8)
			for _, off := range []int{4, 8, 192} {
				n := out8 - off
				part8, partRow := make([]float32, T*n), make([]float32, T*n)
				MatMulQ8B32(part8, x, q[off*in:], sc[off*in/32:], false, T, in, n)
				MatMulQ8(partRow, x, q[off*in:], rs[off:], T, in, n)
				sameRows(t, "q8b32", in, T, off, full8, part8, out8, n)
				sameRows(t, "q8", in, T, off, fullRow, partRow, out8, n)
			}
		}
	}
}

// sameRows fails t unless rows [off, out) of full[T, out] are bitwise
// part[T, n].
func sameRows(t *testing.T, kind string, in, T, off int, full, part []float32, out, n int) {
	t.Helper()
	for tt := range T {
		for r := range n {
			if a, b := full[tt*out+off+r], part[tt*n+r]; math.Float32bits(a) != math.Float32bits(b) {
				t.Fatalf("%s in=%d T=%d rows from %d: row %d token %d: %g vs %g", kind, in, T, off, off+r, tt, a, b)
			}
		}
	}
}

// TestPackTrans checks the transposing panel packers bitwise against the
// gather packers they replace, for rows of several strides (2 and 4 KB
// among them, where the gathers' lines share L1 sets) and lengths.
func TestPackTrans(t *testing.T) {
	if !useMatMulAVX512 {
		t.Skip("no AVX-512")
	}
	for _, c := range []struct{ ld, n int }{{64, 16}, {4096, 256}, {2048, 128}, {1000 * 4, 48}, {6144 * 2, 512}} {
		src := make([]uint32, 32*c.ld/4)
		for i := range src {
			src[i] = uint32(i)*2654435761 ^ 0x9e3779b9
		}
		var idx [32]int32
		for r := range idx {
			idx[r] = int32(r * c.ld)
		}
		for _, mode := range []string{"d", "bf16"} {
			rows := c.n
			if mode == "bf16" {
				rows = 2 * c.n
			}
			want := make([]float32, rows*32)
			got := make([]float32, rows*32)
			for i := range got {
				got[i] = -1
			}
			p := unsafe.Pointer(&src[0])
			if mode == "d" {
				packGatherDAVX512(&want[0], p, &idx, c.n, 4, 128, ^uint32(0), ^uint32(0))
				packTransDAVX512(&got[0], p, c.ld, c.n, 128)
			} else {
				packGatherBF16AVX512(&want[0], p, &idx, c.n, 4, 128, ^uint32(0), ^uint32(0))
				packTransBF16AVX512(&got[0], p, c.ld, c.n, 128)
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s ld=%d n=%d: dst[%d] (row %d, lane %d) = %#x, want %#x", mode, c.ld, c.n, i, i/32, i%32, math.Float32bits(got[i]), math.Float32bits(want[i]))
				}
			}
		}
		// 14 rows into 14 lanes (the GEMM's activation panels); the rows
		// past 14 must not be read into the result, nor lanes past 14 written
		want := make([]float32, c.n*gemmMR+8)
		got := make([]float32, c.n*gemmMR+8)
		for i := range got {
			got[i], want[i] = -1, -1
		}
		p := unsafe.Pointer(&src[0])
		packGatherDAVX512(&want[0], p, &idx, c.n, 4, gemmMR*4, 1<<gemmMR-1, 1<<gemmMR-1)
		packTrans14DAVX512(&got[0], p, c.ld, c.n, gemmMR*4)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("14 rows ld=%d n=%d: dst[%d] = %#x, want %#x", c.ld, c.n, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
			}
		}
	}
}

func BenchmarkPackPanel(b *testing.B) {
	for _, ld := range []int{2048, 4096} {
		w := make([]uint16, 32*ld/2)
		var idx [32]int32
		for r := range idx {
			idx[r] = int32(r * ld)
		}
		buf := new(panelBuf)
		n := 256 // kc = 512 bf16: the AMX panel
		b.Run(fmt.Sprintf("gather/ld=%d", ld), func(b *testing.B) {
			for b.Loop() {
				packGatherDAVX512(&buf.b[0], unsafe.Pointer(&w[0]), &idx, n, 4, 128, ^uint32(0), ^uint32(0))
			}
		})
		b.Run(fmt.Sprintf("trans/ld=%d", ld), func(b *testing.B) {
			for b.Loop() {
				packTransDAVX512(&buf.b[0], unsafe.Pointer(&w[0]), ld, n, 128)
			}
		})
	}
}
