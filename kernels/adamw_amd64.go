//go:build !purego

package kernels

import "github.com/lightninglm/lightning/internal/cpu"

var useAdamWAVX512 bool

func init() {
	cpu.Register("adamw", "avx512", &useAdamWAVX512, cpu.X86.AVX512F && cpu.X86.AVX512VL)
}

//go:noescape
func adamwAVX512(p, gr, m, v *float32, n int, k *[8]float64)

func adamw(p, g, m, v []float32, s AdamWStep) {
	if useAdamWAVX512 && len(p) > 0 {
		k := adamwConsts(s)
		adamwAVX512(ptr(p), ptr(g), ptr(m), ptr(v), len(p), &k)
		return
	}
	adamwGeneric(p, g, m, v, s)
}
