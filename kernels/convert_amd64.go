//go:build !purego

package kernels

import (
	"unsafe"

	"github.com/lightninglm/lightning/internal/cpu"
)

var useConvertAVX512 bool // BF16ToF32, F32ToBF16, F16ToF32

func init() {
	cpu.Register("convert", "avx512", &useConvertAVX512, cpu.X86.AVX512F && cpu.X86.AVX512BW && cpu.X86.AVX512VL)
}

// Generated into vec_amd64.s; the comments there state each loop.

//go:noescape
func f32ToBF16AVX512(dst *uint16, src *float32, n int)

//go:noescape
func bf16ToF32AVX512(dst *float32, src *uint16, n int)

//go:noescape
func f16ToF32AVX512(dst *float32, src *uint16, n int)

func bf16ToF32s(dst []float32, src []uint16) {
	if useConvertAVX512 {
		bf16ToF32AVX512(unsafe.SliceData(dst), unsafe.SliceData(src), len(dst))
		return
	}
	bf16ToF32Generic(dst, src)
}

func f32ToBF16s(dst []uint16, src []float32) {
	if useConvertAVX512 {
		f32ToBF16AVX512(unsafe.SliceData(dst), unsafe.SliceData(src), len(dst))
		return
	}
	f32ToBF16Generic(dst, src)
}

func f16ToF32s(dst []float32, src []uint16) {
	if useConvertAVX512 {
		f16ToF32AVX512(unsafe.SliceData(dst), unsafe.SliceData(src), len(dst))
		return
	}
	f16ToF32Generic(dst, src)
}
