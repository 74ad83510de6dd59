package kernels

import (
	"sync/atomic"
	"time"
)

// Machine-limit probes for `lightning bench`: the rates a kernel's speed is
// quoted against (style.md G10). Each runs on every thread of the worker pool
// at once (SetThreads picks how many) and returns the combined rate.

// FMAPeak measures the float32 multiply-add throughput of the pool's
// threads, in flop/s (one fused multiply-add counts as 2 flops), running
// independent AVX-512 (or AVX2) FMAs for about d. Without assembly it
// times a scalar Go loop, which says little about the hardware.
func FMAPeak(d time.Duration) float64 { return peak(d, fmaChunk) }

// AMXPeak measures the TDPBF16PS throughput of the pool's threads in flop/s
// (16×16 fp32 tiles from bf16 pairs, as the AMX GEMM runs them), for about
// d. It returns 0 without AMX-BF16. The exact MatMulBF16 spends three tile
// products per useful multiply-add (its limit is AMXPeak/3), MatMulBF16Dot
// one.
func AMXPeak(d time.Duration) float64 {
	if amxChunk == nil {
		return 0
	}
	return peak(d, amxChunk)
}

// amxChunk runs a fixed number of tile products and reports their flops
// (nil without AMX).
var amxChunk func() float64

// BF16DotPeak measures the VDPBF16PS throughput of the pool's threads in
// flop/s (each bf16 pair product and its add count as 2 flops per product),
// for about d. It returns 0 when the CPU lacks AVX512_BF16.
func BF16DotPeak(d time.Duration) float64 {
	if bf16DotChunk == nil {
		return 0
	}
	return peak(d, bf16DotChunk)
}

// ReadBandwidth streams buf passes times, split evenly across the pool's
// threads, and returns the read rate in bytes/s. Every byte is loaded
// (AVX-512 loads folded by XOR where available), each thread reading its part
// as 8 interleaved streams, as the matrix kernels read several weight rows
// at once: one stream per core leaves DRAM idle between misses. buf should
// be much larger than the last-level cache (the machines have 260 MB of L3:
// use ≥1 GB).
func ReadBandwidth(buf []byte, passes int) float64 {
	n := Threads()
	part := len(buf) / n &^ 255
	if part == 0 || passes < 1 {
		return 0
	}
	var sink atomic.Uint64
	start := time.Now()
	ParallelFor(n, 1, func(lo, hi int) {
		var s uint64
		for p := 0; p < passes; p++ {
			for i := lo; i < hi; i++ {
				s ^= readSum(buf[i*part : (i+1)*part])
			}
		}
		sink.Add(s)
	})
	sec := time.Since(start).Seconds()
	_ = sink.Load()
	return float64(n*part*passes) / sec
}

// peak runs chunk on every pool thread until d has passed and returns the
// combined flop/s. chunk does a fixed amount of work and reports its flops.
func peak(d time.Duration, chunk func() float64) float64 {
	n := Threads()
	flops := make([]float64, n)
	start := time.Now()
	ParallelFor(n, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			for time.Since(start) < d {
				flops[i] += chunk()
			}
		}
	})
	sec := time.Since(start).Seconds()
	var total float64
	for _, f := range flops {
		total += f
	}
	return total / sec
}

// fmaChunkGeneric is the portable stand-in for the FMA loop: 8 independent
// multiply-add chains the compiler cannot remove.
func fmaChunkGeneric() float64 {
	const n = 1 << 16
	var a [8]float32
	for i := range n {
		for k := range a {
			a[k] = a[k]*0.999 + float32(i&1)
		}
	}
	if a[0] == 12345 { // keep the result live
		println()
	}
	return 2 * 8 * n
}

// readSumGeneric XORs buf's 64-bit words (the tail shorter than 8 bytes is
// ignored).
func readSumGeneric(buf []byte) uint64 {
	var s uint64
	for i := 0; i+8 <= len(buf); i += 8 {
		s ^= uint64(buf[i]) | uint64(buf[i+1])<<8 | uint64(buf[i+2])<<16 | uint64(buf[i+3])<<24 |
			uint64(buf[i+4])<<32 | uint64(buf[i+5])<<40 | uint64(buf[i+6])<<48 | uint64(buf[i+7])<<56
	}
	return s
}
