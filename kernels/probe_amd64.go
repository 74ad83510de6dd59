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
func readLoopAVX512(p unsafe.Pointer, n int) uint64

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

func readSum(buf []byte) uint64 {
	if cpu.X86.AVX512F && len(buf) >= 256 {
		n := len(buf) / 256
		return readLoopAVX512(unsafe.Pointer(&buf[0]), n) ^ readSumGeneric(buf[n*256:])
	}
	return readSumGeneric(buf)
}
