//go:build !purego

package kernels

import (
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
