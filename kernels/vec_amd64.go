//go:build !purego

package kernels

import (
	"unsafe"

	"github.com/lightninglm/lightning/internal/cpu"
)

// One switch per kernel, all on the AVX-512 code generated into
// vec_amd64.s (each function's comment there names its twin).
var (
	useDotAVX512, useAxpyAVX512, useScaleAVX512, useMulAVX512 bool
	useRMSNormAVX512, useExpAVX512, useSiLUAVX512             bool
	useSigmoidAVX512, useSiLUMulAVX512, useSoftmaxAVX512      bool
	useArgmaxAVX512                                           bool
)

func init() {
	ok := cpu.X86.AVX512F && cpu.X86.AVX512DQ && cpu.X86.AVX512VL
	for _, r := range []struct {
		kernel string
		flag   *bool
	}{
		{"dot", &useDotAVX512}, {"axpy", &useAxpyAVX512}, {"scale", &useScaleAVX512},
		{"mul", &useMulAVX512}, {"rmsnorm", &useRMSNormAVX512}, {"exp", &useExpAVX512},
		{"silu", &useSiLUAVX512}, {"sigmoid", &useSigmoidAVX512}, {"silumul", &useSiLUMulAVX512},
		{"softmax", &useSoftmaxAVX512}, {"argmax", &useArgmaxAVX512},
	} {
		cpu.Register(r.kernel, "avx512", r.flag, ok)
	}
}

//go:noescape
func expAVX512(dst, x *float32, n int)

//go:noescape
func sigmoidAVX512(dst, x *float32, n int)

//go:noescape
func siluAVX512(dst, x *float32, n int)

//go:noescape
func siluMulAVX512(dst, x, y *float32, n int)

//go:noescape
func mulAVX512(dst, x, y *float32, n int)

//go:noescape
func axpyAVX512(dst, x *float32, n int, a float32)

//go:noescape
func scaleAVX512(dst, x *float32, n int, a float32)

//go:noescape
func normMulAVX512(dst, x, y *float32, n int, a float32)

//go:noescape
func dotAVX512(x, y *float32, n int) float32

//go:noescape
func sumSqAVX512(x *float32, n int) float32

//go:noescape
func maxAVX512(x *float32, n int) float32

//go:noescape
func expSubSumAVX512(x *float32, n int, m float32) float32

//go:noescape
func argmaxAVX512(x *float32, n int) int

// ptr returns the address of s's first element (nil for a nil slice; the
// kernels read nothing when n is 0).
func ptr(s []float32) *float32 { return unsafe.SliceData(s) }

func dot(a, b []float32) float32 {
	if useDotAVX512 {
		return dotAVX512(ptr(a), ptr(b), len(a))
	}
	return dotGeneric(a, b)
}

func axpy(dst []float32, a float32, x []float32) {
	if useAxpyAVX512 {
		axpyAVX512(ptr(dst), ptr(x), len(dst), a)
		return
	}
	axpyGeneric(dst, a, x)
}

func scale(dst []float32, a float32) {
	if useScaleAVX512 {
		scaleAVX512(ptr(dst), ptr(dst), len(dst), a)
		return
	}
	scaleGeneric(dst, a)
}

func mul(dst, x []float32) {
	if useMulAVX512 {
		mulAVX512(ptr(dst), ptr(dst), ptr(x), len(dst))
		return
	}
	mulGeneric(dst, x)
}

func rmsNorm(dst, x, w []float32, eps float32) {
	if useRMSNormAVX512 {
		n := len(x)
		r := rmsScale(float64(sumSqAVX512(ptr(x), n)), n, eps)
		normMulAVX512(ptr(dst), ptr(x), ptr(w), n, r)
		return
	}
	rmsNormGeneric(dst, x, w, eps)
}

func exp(dst, x []float32) {
	if useExpAVX512 {
		expAVX512(ptr(dst), ptr(x), len(dst))
		return
	}
	expGeneric(dst, x)
}

func silu(dst, x []float32) {
	if useSiLUAVX512 {
		siluAVX512(ptr(dst), ptr(x), len(dst))
		return
	}
	siluGeneric(dst, x)
}

func sigmoid(dst, x []float32) {
	if useSigmoidAVX512 {
		sigmoidAVX512(ptr(dst), ptr(x), len(dst))
		return
	}
	sigmoidGeneric(dst, x)
}

func siluMul(dst, gate, up []float32) {
	if useSiLUMulAVX512 {
		siluMulAVX512(ptr(dst), ptr(gate), ptr(up), len(dst))
		return
	}
	siluMulGeneric(dst, gate, up)
}

func softmax(x []float32) {
	if useSoftmaxAVX512 {
		n := len(x)
		m := maxAVX512(ptr(x), n)
		s := expSubSumAVX512(ptr(x), n, m)
		scaleAVX512(ptr(x), ptr(x), n, float32(1/float64(s)))
		return
	}
	softmaxGeneric(x)
}

func argmax(x []float32) int {
	if useArgmaxAVX512 && x[0] == x[0] { // x[0] not NaN: the twin's answer is a non-NaN maximum
		return argmaxAVX512(ptr(x), len(x))
	}
	return argmaxGeneric(x)
}
