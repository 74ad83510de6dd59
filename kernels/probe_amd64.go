//go:build !purego

package kernels

import (
	"unsafe"

	"github.com/lightninglm/lightning/internal/cpu"
)

//go:noescape
func fmaLoopAVX512(n int)

//go:noescape
func fmaLoopAVX2(n int)

//go:noescape
func bf16DotLoopAVX512(n int)

//go:noescape
func readLoopAVX512(p unsafe.Pointer, stride, n int) uint64

const probeIters = 1 << 14

var bf16DotChunk func() float64

func init() {
	if cpu.X86.AVX512F && cpu.X86.AVX512BF16 {
		bf16DotChunk = func() float64 {
			bf16DotLoopAVX512(probeIters)
			return probeIters * 24 * 16 * 4
		}
	}
}

func fmaChunk() float64 {
	switch {
	case cpu.X86.AVX512F:
		fmaLoopAVX512(probeIters)
		return probeIters * 24 * 16 * 2
	case cpu.X86.AVX2 && cpu.X86.FMA:
		fmaLoopAVX2(probeIters)
		return probeIters * 12 * 8 * 2
	}
	return fmaChunkGeneric()
}

// readSum reads buf as 8 interleaved streams (the bytes past 8 whole
// 64-byte-multiple parts are read by the twin).
func readSum(buf []byte) uint64 {
	part := len(buf) / 8 &^ 63
	if cpu.X86.AVX512F && part > 0 {
		return readLoopAVX512(unsafe.Pointer(&buf[0]), part, part/64) ^ readSumGeneric(buf[8*part:])
	}
	return readSumGeneric(buf)
}
