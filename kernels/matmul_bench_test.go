package kernels

import (
	"fmt"
	"testing"
)

// benchShapes are the products that dominate MiniMax-01 (style.md G10):
// in → out of qkv_proj, output_gate/q_proj, out_proj, k/v_proj, the expert
// w1/w3 and w2, plus the m300/b2 presets' hidden×ffn shapes.
var benchShapes = []struct {
	name    string
	in, out int
}{
	{"qkv_6144x24576", 6144, 24576},
	{"gate_6144x8192", 6144, 8192},
	{"out_8192x6144", 8192, 6144},
	{"kv_6144x1024", 6144, 1024},
	{"w13_6144x9216", 6144, 9216},
	{"w2_9216x6144", 9216, 6144},
	{"m300_1024x1024", 1024, 1024},
	{"b2_2048x2048", 2048, 2048},
}

// fillPattern fills s with cheap pseudo-random values in [-1, 1) (rand is
// too slow for a billion weights).
func fillPattern(s []float32, seed uint32) {
	v := seed*2654435761 + 1
	for i := range s {
		v ^= v << 13
		v ^= v >> 17
		v ^= v << 5
		s[i] = float32(int32(v))/(1<<31) + 0
	}
}

func fillPatternHalf(s []uint16, seed uint32, round func(float32) uint16) {
	buf := make([]float32, 4096)
	for i := 0; i < len(s); i += len(buf) {
		n := min(len(buf), len(s)-i)
		fillPattern(buf[:n], seed+uint32(i))
		for k := range n {
			s[i+k] = round(buf[k])
		}
	}
}

func benchMatMul(b *testing.B, kind string, T, in, out int) {
	x := make([]float32, T*in)
	fillPattern(x, 1)
	dst := make([]float32, T*out)
	var run func()
	wbytes := 2 * in * out
	switch kind {
	case "f32":
		w := make([]float32, in*out)
		fillPattern(w, 2)
		wbytes = 4 * in * out
		run = func() { MatMulF32(dst, x, w, T, in, out) }
	case "bf16", "bf16dot", "f16":
		w := make([]uint16, in*out)
		round := RoundBF16
		if kind == "f16" {
			round = FloatToHalf
		}
		fillPatternHalf(w, 2, round)
		switch kind {
		case "bf16":
			run = func() { MatMulBF16(dst, x, w, T, in, out) }
		case "bf16dot":
			run = func() { MatMulBF16Dot(dst, x, w, T, in, out) }
		default:
			run = func() { MatMulF16(dst, x, w, T, in, out) }
		}
	}
	run()
	b.SetBytes(int64(wbytes))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		run()
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(2*float64(T)*float64(in)*float64(out)/sec/1e9, "GFLOP/s")
}

// BenchmarkMatMul runs decode (T=1) and prefill (T=512) at the MiniMax
// shapes for each weight type, and the 1024³ product. Use -bench
// 'MatMul/bf16/T=512' and the like to pick.
func BenchmarkMatMul(b *testing.B) {
	for _, kind := range []string{"f32", "bf16", "bf16dot", "f16"} {
		for _, T := range []int{1, 512} {
			for _, s := range benchShapes {
				b.Run(fmt.Sprintf("%s/T=%d/%s", kind, T, s.name), func(b *testing.B) { benchMatMul(b, kind, T, s.in, s.out) })
			}
		}
		b.Run(kind+"/T=1024/1024x1024", func(b *testing.B) { benchMatMul(b, kind, 1024, 1024, 1024) })
	}
}

// BenchmarkMatMulSmallT runs the skinny range (decode batches and small
// expert groups) at the b2 preset's 2048→2048 and the expert w1/w3 shape:
// -bench 'MatMulSmallT/bf16/b2' and the like.
func BenchmarkMatMulSmallT(b *testing.B) {
	for _, kind := range []string{"bf16", "f32", "f16"} {
		for _, s := range []struct {
			name    string
			in, out int
		}{{"b2_2048x2048", 2048, 2048}, {"w13_6144x9216", 6144, 9216}} {
			for _, T := range []int{1, 4, 8, 16, 32, 64} {
				b.Run(fmt.Sprintf("%s/%s/T=%d", kind, s.name, T), func(b *testing.B) { benchMatMul(b, kind, T, s.in, s.out) })
			}
		}
	}
}
