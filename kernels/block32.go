package kernels

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// Products with ggml's blocks of 32 weights (Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0) multiplied in place, without widening the weights. As llama.cpp
// does (its Q8_0 and Q8_1 activations), the activations are quantized per
// token to int8 in blocks of 32 with one float32 scale, and every block
// product is an exact integer sum scaled once in float32:
//
//	xq[k] = RNE(x[k] · 127/amax)   dx = amax/127   (amax: max |x| over the 32)
//	sx    = dx · Σ_{k<32} xq[k]    (float32; the mins' term)
//
// Block layouts (ggml-common.h; d and m are IEEE binary16, qh a
// little-endian uint32 whose bit i is the fifth bit of element i; byte j of
// qs holds element j in its low nibble and element 16+j in its high one):
//
//	Q4_0  18 bytes  d, qs[16]          w = d·(q − 8),  q ∈ [0, 15]
//	Q4_1  20 bytes  d, m, qs[16]       w = d·q + m,    q ∈ [0, 15]
//	Q5_0  22 bytes  d, qh, qs[16]      w = d·(q − 16), q ∈ [0, 31]
//	Q5_1  24 bytes  d, m, qh, qs[16]   w = d·q + m,    q ∈ [0, 31]
//	Q8_0  34 bytes  d, qs[32] int8     w = d·q,        q ∈ [−128, 127]
//
// The product of one block with one token's activations is then
//
//	dx·d·Σ_k c[k]·xq[k]  (+ m·sx for Q4_1 and Q5_1)
//
// with c the signed quant q − 8, q − 16 or q (Q4_0, Q5_0, Q8_0) or the
// unsigned one (Q4_1, Q5_1), the integer sum exact in int32, and a row's
// blocks summed in float32. The fast paths compute the integer sum lane by
// lane and convert each lane, so they equal the twin up to float32
// rounding; with several tokens they take 4 (AVX-512) or 2 (AVX2) per pass
// over a row, bit for bit as one per call (kquant.go). An activation errs
// by at most dx/2 = amax/254, amax being its own block of 32's largest
// |x|.

// Block32 is a ggml layout of blocks of 32 weights.
type Block32 uint8

// The layouts of blocks of 32.
const (
	Q4_0 Block32 = iota + 1
	Q4_1
	Q5_0
	Q5_1
	Q8_0
)

// BlockBytes returns the bytes of one block of 32 weights.
func (k Block32) BlockBytes() int {
	switch k {
	case Q4_0:
		return 18
	case Q4_1:
		return 20
	case Q5_0:
		return 22
	case Q5_1:
		return 24
	case Q8_0:
		return 34
	}
	panic("kernels: unknown block-of-32 layout")
}

// mins reports whether the layout has a min per block (w = d·q + m).
func (k Block32) mins() bool { return k == Q4_1 || k == Q5_1 }

// b32Block is the weights of a block and the activations of a record block.
const b32Block = 32

// b32RecBytes is the bytes of one token's activation record for nb blocks:
// xq [32·nb]int8, then nb pairs (dx, sx) of float32 (kernels/_gen/q8
// block32.go reads the same layout).
func b32RecBytes(nb int) int { return 40 * nb }

// MatMulBlock32 computes dst[T, out] ≈ x[T, in] · wᵀ for weights [out, in]
// stored as ggml blocks of layout k, row after row (in/32 blocks of
// k.BlockBytes() per row). in must be a multiple of 32. x is quantized as
// described above.
func MatMulBlock32(dst, x []float32, w []byte, k Block32, T, in, out int) {
	(*Group)(nil).MatMulBlock32(dst, x, w, k, T, in, out)
}

// MatMulBlock32 adds MatMulBlock32's product to the group.
func (g *Group) MatMulBlock32(dst, x []float32, w []byte, k Block32, T, in, out int) {
	checkQ(len(dst), len(x), T, in, out)
	if in%b32Block != 0 {
		panic("kernels: MatMulBlock32 needs in to be a multiple of 32")
	}
	nb := in / b32Block
	if len(w) < out*nb*k.BlockBytes() {
		panic("kernels: MatMulBlock32 weights too short")
	}
	if T == 0 || out == 0 {
		return
	}
	j := ggmlJobs.Get().(*ggmlJob)
	j.dst, j.x, j.w, j.k, j.b32, j.T, j.in, j.out = dst, x, w, 0, k, T, in, out
	j.run(g, nb*k.BlockBytes(), b32RecBytes(nb))
}

// quantizeB32Act writes the record of the activations x (32·nb of them)
// into rec (b32RecBytes(nb) bytes), as quantizeKQAct does per 256: an
// all-zero block gets dx = 0 and xq = 0; NaN and Inf give a NaN or Inf dx,
// which reaches the outputs.
func quantizeB32Act(rec []byte, x []float32) {
	const magic = 1.5 * (1 << 23) // adding and subtracting it rounds |v| ≤ 2²² to nearest even
	nb := len(x) / b32Block
	for b := range nb {
		xs := x[b32Block*b : b32Block*(b+1)]
		var amaxBits uint32
		for _, v := range xs {
			amaxBits = max(amaxBits, math.Float32bits(v)&^(1<<31))
		}
		amax := math.Float32frombits(amaxBits)
		d := amax / 127
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		var s int32
		for i, v := range xs {
			q := int32(float32(float32(v*id)+magic) - magic)
			if amax == 0 || !isFinite32(amax) {
				q = 0
			}
			rec[b32Block*b+i] = byte(int8(q))
			s += q
		}
		p := rec[b32Block*nb+8*b:]
		binary.LittleEndian.PutUint32(p, math.Float32bits(d))
		binary.LittleEndian.PutUint32(p[4:], math.Float32bits(d*float32(s)))
	}
}

// b32Quant returns quant c[i] of block blk of layout k (i < 32): signed for
// Q4_0, Q5_0 and Q8_0, unsigned for Q4_1 and Q5_1 (see above).
func b32Quant(k Block32, blk []byte, i int) int32 {
	if k == Q8_0 {
		return int32(int8(blk[2+i]))
	}
	var qh uint32
	qs := blk[2:]
	switch k {
	case Q4_1:
		qs = blk[4:]
	case Q5_0:
		qh, qs = binary.LittleEndian.Uint32(blk[2:]), blk[6:]
	case Q5_1:
		qh, qs = binary.LittleEndian.Uint32(blk[4:]), blk[8:]
	}
	q := int32(qs[i%16]>>(4*(i/16))&15) | int32(qh>>i&1)<<4
	switch k {
	case Q4_0:
		q -= 8
	case Q5_0:
		q -= 16
	}
	return q
}

// b32DotGeneric is the reference product of one row (nb blocks of layout
// k) with one token's record (b32RecBytes(nb) bytes).
func b32DotGeneric(k Block32, w, rec []byte, nb int) float32 {
	bb := k.BlockBytes()
	var acc float32
	for b := range nb {
		blk := w[b*bb : (b+1)*bb]
		xq := unsafe.Slice((*int8)(unsafe.Pointer(&rec[b32Block*b])), b32Block)
		p := rec[b32Block*nb+8*b:]
		dx := math.Float32frombits(binary.LittleEndian.Uint32(p))
		var isum int32
		for i, x := range xq {
			isum += b32Quant(k, blk, i) * int32(x)
		}
		acc += HalfToFloat(binary.LittleEndian.Uint16(blk)) * dx * float32(isum)
		if k.mins() {
			acc += HalfToFloat(binary.LittleEndian.Uint16(blk[2:])) * math.Float32frombits(binary.LittleEndian.Uint32(p[4:]))
		}
	}
	return acc
}
