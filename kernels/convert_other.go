//go:build !amd64 || purego

package kernels

func bf16ToF32s(dst []float32, src []uint16) { bf16ToF32Generic(dst, src) }
func f32ToBF16s(dst []uint16, src []float32) { f32ToBF16Generic(dst, src) }
func f16ToF32s(dst []float32, src []uint16)  { f16ToF32Generic(dst, src) }
