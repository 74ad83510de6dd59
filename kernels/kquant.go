package kernels

import (
	"encoding/binary"
	"math"
	"sync"
	"unsafe"
)

// K-quant products: ggml's Q4_K, Q5_K and Q6_K blocks (the types of the
// popular Q4_K_M, Q5_K_M and Q6_K GGUF files) multiplied in place, without
// widening the weights. As llama.cpp does (its Q8_K), the activations are
// quantized per token to int8 in blocks of 256 with one float32 scale, and
// every block product is an exact integer sum scaled once in float32:
//
//	xq[k] = RNE(x[k] · 127/amax)   dx = amax/127   (amax: max |x| over the 256)
//	bs[j] = Σ_{i<16} xq[16j+i]      (int16, j < 16)
//
// Block layouts (ggml-common.h; d and dmin are IEEE binary16):
//
//	Q4_K  144 bytes  d, dmin, scales[12], qs[128]         w = d·sc·q − dmin·m, q ∈ [0, 15]
//	Q5_K  176 bytes  d, dmin, scales[12], qh[32], qs[128] w = d·sc·q − dmin·m, q ∈ [0, 31]
//	Q6_K  210 bytes  ql[128], qh[64], sc[16] int8, d      w = d·sc·(q − 32), q ∈ [0, 63]
//
// Q4_K and Q5_K have 8 sub-blocks of 32 with 6-bit scales sc and mins m
// packed in 12 bytes (kqScalesMins); byte 32c+l of qs holds element 64c+l in
// its low nibble and 64c+32+l in its high one, and Q5_K's fifth bits are bit
// 2c (element 64c+l) and 2c+1 (element 64c+32+l) of qh[l]. Q6_K has 16
// sub-blocks of 16; half h of the block (elements 128h…128h+127) reads
// ql[64h…] and qh[32h…]: for l < 32, elements l, l+32, l+64, l+96 of the
// half take the low nibbles of ql[l], ql[l+32], their high nibbles, and
// bits 0–1, 2–3, 4–5, 6–7 of qh[l] as bits 4–5.
//
// The product of one block with one token's record is then
//
//	Q4_K, Q5_K: dx·(d·Σ_s sc_s·Σ_{k∈s} q[k]·xq[k] − dmin·Σ_s m_s·(bs[2s]+bs[2s+1]))
//	Q6_K:       dx·d·(Σ_j sc_j·Σ_{k∈j} q[k]·xq[k] − 32·Σ_j sc_j·bs[j])
//
// with the two sums exact in int32, and a row's blocks are summed in
// float32. The fast paths compute the integer sums lane by lane and convert
// each lane, so they equal the twin up to float32 rounding. With several
// tokens (prefill) they unpack each block once for 4 tokens (AVX-512) or 2
// (AVX2) and run every token's instructions as for one token, so the
// results are bit for bit those of one token per call.

// KQuant is a ggml K-quant block layout.
type KQuant uint8

// The K-quant layouts.
const (
	Q4K KQuant = iota + 1
	Q5K
	Q6K
)

// BlockBytes returns the bytes of one block of 256 weights.
func (k KQuant) BlockBytes() int {
	switch k {
	case Q4K:
		return 144
	case Q5K:
		return 176
	case Q6K:
		return 210
	}
	panic("kernels: unknown K-quant layout")
}

// kqBlock is the elements of a K-quant block and of an activation record.
const kqBlock = 256

// kqRecBytes is the size of one activation record of 256 inputs: xq
// [256]int8 at 0, bs [16]int16 at 256, dx float32 at 288, padding to five
// cache lines (kernels/_gen/q8 kquant.go reads the same offsets).
const kqRecBytes = 320

// MatMulKQuant computes dst[T, out] ≈ x[T, in] · wᵀ for weights [out, in]
// stored as blocks of layout k, row after row (in/256 blocks of
// k.BlockBytes() per row). in must be a multiple of 256. x is quantized as
// described above: an error of at most dx/2 per activation.
func MatMulKQuant(dst, x []float32, w []byte, k KQuant, T, in, out int) {
	(*Group)(nil).MatMulKQuant(dst, x, w, k, T, in, out)
}

// MatMulKQuant adds MatMulKQuant's product to the group.
func (g *Group) MatMulKQuant(dst, x []float32, w []byte, k KQuant, T, in, out int) {
	checkQ(len(dst), len(x), T, in, out)
	if in%kqBlock != 0 {
		panic("kernels: MatMulKQuant needs in to be a multiple of 256")
	}
	nb := in / kqBlock
	rb := nb * k.BlockBytes()
	if len(w) < out*rb {
		panic("kernels: MatMulKQuant weights too short")
	}
	if T == 0 || out == 0 {
		return
	}
	j := ggmlJobs.Get().(*ggmlJob)
	j.dst, j.x, j.w, j.k, j.b32, j.T, j.in, j.out = dst, x, w, k, 0, T, in, out
	j.run(g, rb, nb*kqRecBytes)
}

// ggmlJob carries one product of ggml blocks used in place (a K-quant
// layout k, or a layout of blocks of 32, b32) through the worker pool;
// pooled with its activation records so a warm product allocates nothing.
type ggmlJob struct {
	dst, x     []float32 // [T, out], [T, in]
	w          []byte    // [out, rowBytes]
	k          KQuant    // the K-quant layout, or 0
	b32        Block32   // the layout of blocks of 32, or 0
	T, in, out int
	rowBytes   int       // weight bytes per row
	recBytes   int       // activation record bytes per token
	rec        []float32 // [T, recBytes/4]

	quantizeRange, rowsRange func(lo, hi int)
}

var ggmlJobs = sync.Pool{New: func() any {
	j := new(ggmlJob)
	j.quantizeRange = j.quantize
	j.rowsRange = j.rows
	return j
}}

// run quantizes the activations into records of recBytes per token, then
// computes the outputs, or queues that last stage in g (non-nil).
func (j *ggmlJob) run(g *Group, rowBytes, recBytes int) {
	j.rowBytes, j.recBytes = rowBytes, recBytes
	j.rec = grow(j.rec, j.T*recBytes/4)
	if j.T*j.in < serialWork/16 {
		j.quantize(0, j.T)
	} else {
		ParallelFor(j.T, 1, j.quantizeRange)
	}
	if !g.add(groupItem{n: j.out, align: 1, rowWork: j.T * j.in, rowBytes: rowBytes, run: j.rowsRange, job: j}) {
		j.release()
	}
}

// release returns the job to its pool.
func (j *ggmlJob) release() {
	j.dst, j.x, j.w = nil, nil, nil
	ggmlJobs.Put(j)
}

// quantize writes the records of tokens [lo, hi).
func (j *ggmlJob) quantize(lo, hi int) {
	for t := lo; t < hi; t++ {
		rec := recBytes(j.rec[t*j.recBytes/4 : (t+1)*j.recBytes/4])
		x := j.x[t*j.in : (t+1)*j.in]
		if j.b32 != 0 {
			quantizeB32Act(rec, x)
			continue
		}
		for b := range j.in / kqBlock {
			quantizeKQAct(rec[b*kqRecBytes:(b+1)*kqRecBytes], x[b*kqBlock:(b+1)*kqBlock])
		}
	}
}

// ggmlMaxTokens bounds the tokens one multi-token kernel call takes.
const ggmlMaxTokens = 4

// rows computes outputs [lo, hi) for every token, several tokens per
// kernel call where the path has multi-token kernels.
func (j *ggmlJob) rows(lo, hi int) {
	nt := kqTokens()
	if j.b32 != 0 {
		nt = b32Tokens()
	}
	var res [ggmlMaxTokens]float32
	for o := lo; o < hi; o++ {
		row := j.w[o*j.rowBytes : (o+1)*j.rowBytes]
		for t := 0; t < j.T; t += nt {
			n := min(nt, j.T-t)
			rec := recBytes(j.rec[t*j.recBytes/4 : (t+n)*j.recBytes/4])
			if j.b32 != 0 {
				b32Dots(j.b32, row, rec, j.in/b32Block, res[:n])
			} else {
				kqDots(j.k, row, rec, j.in/kqBlock, res[:n])
			}
			for i, v := range res[:n] {
				j.dst[(t+i)*j.out+o] = v
			}
		}
	}
}

// quantizeKQAct writes the record of 256 activations x into rec
// (kqRecBytes). An all-zero block gets dx = 0 and xq = 0; NaN and Inf give
// a NaN or Inf dx, which reaches the outputs.
func quantizeKQAct(rec []byte, x []float32) {
	const magic = 1.5 * (1 << 23) // adding and subtracting it rounds |v| ≤ 2²² to nearest even
	var amaxBits uint32
	for _, v := range x[:kqBlock] {
		amaxBits = max(amaxBits, math.Float32bits(v)&^(1<<31))
	}
	amax := math.Float32frombits(amaxBits)
	d := amax / 127
	var id float32
	if amax != 0 {
		id = 127 / amax
	}
	for j := range kqBlock / 16 {
		var s int32
		for i := range 16 {
			k := 16*j + i
			q := int32(float32(float32(x[k]*id)+magic) - magic)
			if amax == 0 || !isFinite32(amax) {
				q = 0
			}
			rec[k] = byte(int8(q))
			s += q
		}
		binary.LittleEndian.PutUint16(rec[256+2*j:], uint16(int16(s)))
	}
	binary.LittleEndian.PutUint32(rec[288:], math.Float32bits(d))
}

func isFinite32(v float32) bool { return math.Float32bits(v)&0x7f800000 != 0x7f800000 }

// kqScalesMins unpacks the 6-bit scales and mins of the 8 sub-blocks of a
// Q4_K or Q5_K block from its 12 scale bytes p, as three little-endian
// words a, b, c: sub-blocks 0–3 keep theirs in the low six bits of bytes
// 0–3 (scales, a) and 4–7 (mins, b); sub-blocks 4–7 keep their low four
// bits in the nibbles of bytes 8–11 (c; scales low, mins high) and their
// top two bits in the top bits of a (scales) and b (mins).
func kqScalesMins(p []byte) (sc, m [8]uint8) {
	a := binary.LittleEndian.Uint32(p)
	b := binary.LittleEndian.Uint32(p[4:])
	c := binary.LittleEndian.Uint32(p[8:])
	lo := uint64(a&0x3f3f3f3f) | uint64(c&0x0f0f0f0f|(a>>6&0x03030303)<<4)<<32
	lm := uint64(b&0x3f3f3f3f) | uint64(c>>4&0x0f0f0f0f|(b>>6&0x03030303)<<4)<<32
	for s := range 8 {
		sc[s], m[s] = uint8(lo>>(8*s)), uint8(lm>>(8*s))
	}
	return sc, m
}

// kqDotGeneric is the reference product of one row (nb blocks of layout
// k) with one token's records (nb · kqRecBytes bytes).
func kqDotGeneric(k KQuant, w, rec []byte, nb int) float32 {
	bb := k.BlockBytes()
	var acc float32
	for b := range nb {
		blk, r := w[b*bb:(b+1)*bb], rec[b*kqRecBytes:(b+1)*kqRecBytes]
		xq := unsafe.Slice((*int8)(unsafe.Pointer(&r[0])), kqBlock)
		dx := math.Float32frombits(binary.LittleEndian.Uint32(r[288:]))
		bs := func(j int) int32 { return int32(int16(binary.LittleEndian.Uint16(r[256+2*j:]))) }
		if k == Q6K {
			d := HalfToFloat(binary.LittleEndian.Uint16(blk[208:]))
			var isum int32
			for h := range 2 {
				ql, qh := blk[64*h:], blk[128+32*h:]
				for e := range 128 {
					l, part := e%32, e/32
					q := int32(ql[l+32*(part%2)]>>(4*(part/2))&15 | (qh[l]>>(2*part)&3)<<4)
					j := (128*h + e) / 16
					isum += int32(int8(blk[192+j])) * q * int32(xq[128*h+e])
				}
			}
			for j := range 16 {
				isum -= 32 * int32(int8(blk[192+j])) * bs(j)
			}
			acc += dx * d * float32(isum)
			continue
		}
		d := HalfToFloat(binary.LittleEndian.Uint16(blk))
		dmin := HalfToFloat(binary.LittleEndian.Uint16(blk[2:]))
		sc, m := kqScalesMins(blk[4:16])
		qs, qh := blk[16:], []byte(nil)
		if k == Q5K {
			qh, qs = blk[16:48], blk[48:]
		}
		var isum, msum int32
		for s := range 8 {
			c, hi := s/2, s%2
			var dp int32
			for l := range 32 {
				q := int32(qs[32*c+l] >> (4 * hi) & 15)
				if qh != nil {
					q |= int32(qh[l]>>s&1) << 4
				}
				dp += q * int32(xq[32*s+l])
			}
			isum += int32(sc[s]) * dp
			msum += int32(m[s]) * (bs(2*s) + bs(2*s+1))
		}
		acc += dx * (d*float32(isum) - dmin*float32(msum))
	}
	return acc
}
