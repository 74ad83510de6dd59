//go:build !amd64 || purego

package kernels

var bf16DotChunk func() float64

func fmaChunk() float64 { return fmaChunkGeneric() }

func readSum(buf []byte) uint64 { return readSumGeneric(buf) }
