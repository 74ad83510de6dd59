//go:build !purego

package kernels

import (
	"math"
	"testing"
	"unsafe"
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
