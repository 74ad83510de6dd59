package quant

import (
	"encoding/binary"
	"math"

	"github.com/lightninglm/lightning/kernels"
)

// ggml block formats (llama.cpp's GGUF types). Their scales (and mins) live
// inside each block next to the quants, so a matrix of these formats is
// just its file bytes, used in place: Weights.Scales and Mins are empty and
// the scale type is Invalid. Lightning multiplies them with SIMD int8
// kernels that read the blocks as they are: kernels.MatMulKQuant for the
// K-quants (Q4_K, Q5_K, Q6_K; activations in int8 blocks of 256) and
// kernels.MatMulBlock32 for the others (activations in int8 blocks of 32).
// Q8_0, Q4_0 and Q4_1 files normally load as q8b32, q4g32 and q4g32m
// instead (model/minimax01), whose kernels also take several rows per call.
//
// Block layouts (ggml-common.h); d, dmin and m are IEEE binary16:
//
//	type   elems  bytes  layout
//	Q4_0   32     18     d, qs[16]
//	Q4_1   32     20     d, m, qs[16]
//	Q5_0   32     22     d, qh[4], qs[16]
//	Q5_1   32     24     d, m, qh[4], qs[16]
//	Q8_0   32     34     d, qs[32] int8
//	Q4_K   256    144    d, dmin, scales[12], qs[128]
//	Q5_K   256    176    d, dmin, scales[12], qh[32], qs[128]
//	Q6_K   256    210    ql[128], qh[64], scales[16] int8, d
//
// Each dequantization is the reference of ggml's dequantize_row_*: fp32
// arithmetic in the same order, so the values are bit-exact
// (testdata/ggml_dequant_ref.json).

// ggmlFormat returns the table row of a ggml block format whose product is
// matMul.
func ggmlFormat(name string, blockLen, blockBytes, bits int, deq func(dst []float32, src []byte), matMul func(g *kernels.Group, dst, x []float32, T, in, out int, w Weights)) Format {
	return Format{
		Name: name, BlockLen: blockLen, BlockBytes: blockBytes, Bits: bits, Inline: true, RowAlign: blockLen,
		dequant: func(dst []float32, q, _, _ []byte, _ Type) { deq(dst, q) },
		matMul:  matMul,
	}
}

// ggmlB32Format is ggmlFormat for a format of blocks of 32, whose product
// is kernels.MatMulBlock32 on the blocks in place.
func ggmlB32Format(name string, blockBytes, bits int, deq func(dst []float32, src []byte), k kernels.Block32) Format {
	return ggmlFormat(name, 32, blockBytes, bits, deq, func(g *kernels.Group, dst, x []float32, T, in, out int, w Weights) {
		g.MatMulBlock32(dst, x, w.Q, k, T, in, out)
	})
}

// ggmlKFormat is ggmlFormat for a K-quant (blocks of 256), whose product
// is kernels.MatMulKQuant on the blocks in place.
func ggmlKFormat(name string, blockBytes, bits int, deq func(dst []float32, src []byte), k kernels.KQuant) Format {
	return ggmlFormat(name, 256, blockBytes, bits, deq, func(g *kernels.Group, dst, x []float32, T, in, out int, w Weights) {
		g.MatMulKQuant(dst, x, w.Q, k, T, in, out)
	})
}

func f16(b []byte) float32 { return kernels.HalfToFloat(binary.LittleEndian.Uint16(b)) }

// dequantQ4_0: element j of the block is d·((qs[j]&15) − 8) and element
// 16+j is d·((qs[j]>>4) − 8), j < 16.
func dequantQ4_0(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk, y := src[18*b:18*b+18], dst[32*b:32*b+32]
		d, qs := f16(blk), blk[2:]
		for j := range 16 {
			y[j] = float32(int(qs[j]&15)-8) * d
			y[j+16] = float32(int(qs[j]>>4)-8) * d
		}
	}
}

// dequantQ4_1: as Q4_0 with unsigned quants and a min: d·q + m.
func dequantQ4_1(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk, y := src[20*b:20*b+20], dst[32*b:32*b+32]
		d, m, qs := f16(blk), f16(blk[2:]), blk[4:]
		for j := range 16 {
			y[j] = float32(qs[j]&15)*d + m
			y[j+16] = float32(qs[j]>>4)*d + m
		}
	}
}

// dequantQ5_0: the fifth bit of element i is bit i of the little-endian
// uint32 qh; the low four bits are packed as in Q4_0; w = d·(q − 16).
func dequantQ5_0(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk, y := src[22*b:22*b+22], dst[32*b:32*b+32]
		d, qh, qs := f16(blk), binary.LittleEndian.Uint32(blk[2:]), blk[6:]
		for j := range 16 {
			h0 := int(qh>>j&1) << 4
			h1 := int(qh>>(j+16)&1) << 4
			y[j] = float32(int(qs[j]&15)|h0-16) * d
			y[j+16] = float32(int(qs[j]>>4)|h1-16) * d
		}
	}
}

// dequantQ5_1: as Q5_0 with unsigned quants and a min: d·q + m.
func dequantQ5_1(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk, y := src[24*b:24*b+24], dst[32*b:32*b+32]
		d, m, qh, qs := f16(blk), f16(blk[2:]), binary.LittleEndian.Uint32(blk[4:]), blk[8:]
		for j := range 16 {
			h0 := uint8(qh>>j&1) << 4
			h1 := uint8(qh>>(j+16)&1) << 4
			y[j] = float32(qs[j]&15|h0)*d + m
			y[j+16] = float32(qs[j]>>4|h1)*d + m
		}
	}
}

// dequantQ8_0: w = d·q, q int8.
func dequantQ8_0(dst []float32, src []byte) {
	for b := 0; b < len(dst)/32; b++ {
		blk, y := src[34*b:34*b+34], dst[32*b:32*b+32]
		d := f16(blk)
		for j := range 32 {
			y[j] = float32(int8(blk[2+j])) * d
		}
	}
}

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j (of 8) from the
// 12 scale bytes of a Q4_K or Q5_K block: sub-blocks 0–3 keep theirs in the
// low six bits of bytes j and j+4; sub-blocks 4–7 keep their low four bits
// in the nibbles of byte j+4 and their top two bits in the top bits of
// bytes j−4 (scale) and j (min).
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&15 | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// dequantQ4_K: 8 sub-blocks of 32 elements; sub-block s has scale d·sc_s
// and min dmin·m_s; w = d·sc·q − dmin·m. The 128 quant bytes hold
// sub-blocks 2c (low nibbles) and 2c+1 (high nibbles) in bytes 32c…32c+31.
func dequantQ4_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/256; b++ {
		blk, y := src[144*b:144*b+144], dst[256*b:256*b+256]
		d, dmin, sc, qs := f16(blk), f16(blk[2:]), blk[4:16], blk[16:]
		for c := range 4 {
			s1, m1 := scaleMinK4(2*c, sc)
			s2, m2 := scaleMinK4(2*c+1, sc)
			d1, o1 := d*float32(s1), dmin*float32(m1)
			d2, o2 := d*float32(s2), dmin*float32(m2)
			q := qs[32*c : 32*c+32]
			for l := range 32 {
				y[64*c+l] = d1*float32(q[l]&15) - o1
				y[64*c+32+l] = d2*float32(q[l]>>4) - o2
			}
		}
	}
}

// dequantQ5_K: Q4_K with a fifth bit per element: bit 2c of qh[l] for
// element 64c+l and bit 2c+1 for element 64c+32+l.
func dequantQ5_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/256; b++ {
		blk, y := src[176*b:176*b+176], dst[256*b:256*b+256]
		d, dmin, sc, qh, qs := f16(blk), f16(blk[2:]), blk[4:16], blk[16:48], blk[48:]
		for c := range 4 {
			s1, m1 := scaleMinK4(2*c, sc)
			s2, m2 := scaleMinK4(2*c+1, sc)
			d1, o1 := d*float32(s1), dmin*float32(m1)
			d2, o2 := d*float32(s2), dmin*float32(m2)
			q := qs[32*c : 32*c+32]
			for l := range 32 {
				h1 := (qh[l] >> (2 * c) & 1) << 4
				h2 := (qh[l] >> (2*c + 1) & 1) << 4
				y[64*c+l] = d1*float32(q[l]&15|h1) - o1
				y[64*c+32+l] = d2*float32(q[l]>>4|h2) - o2
			}
		}
	}
}

// dequantQ6_K: 16 sub-blocks of 16 elements with int8 scales; w =
// d·sc·(q − 32), q six bits. Each half (128 elements) of the block reads 64
// bytes of ql (low nibbles) and 32 of qh (two bits each): for l < 32,
// elements l, l+32, l+64, l+96 of the half take ql[l]&15, ql[l+32]&15,
// ql[l]>>4, ql[l+32]>>4 and bits 0–1, 2–3, 4–5, 6–7 of qh[l].
func dequantQ6_K(dst []float32, src []byte) {
	for b := 0; b < len(dst)/256; b++ {
		blk, y := src[210*b:210*b+210], dst[256*b:256*b+256]
		d := f16(blk[208:])
		for h := range 2 {
			ql, qh := blk[64*h:64*h+64], blk[128+32*h:128+32*h+32]
			sc, yh := blk[192+8*h:192+8*h+8], y[128*h:128*h+128]
			for l := range 32 {
				is := l / 16
				q1 := int(ql[l]&15|(qh[l]&3)<<4) - 32
				q2 := int(ql[l+32]&15|(qh[l]>>2&3)<<4) - 32
				q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				yh[l] = d * float32(int8(sc[is])) * float32(q1)
				yh[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
				yh[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
				yh[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
			}
		}
	}
}

// EncodeQ5_0 writes x (a multiple of 32 elements) as Q5_0 blocks into dst
// (len(x)/32·22 bytes), for GGUF files, with ggml's scheme: per block the
// element of largest |x|, v, sets d = v/−16 (rounded to F16 first), so v
// takes level 0 and the levels d·(q − 16), q ∈ [0, 31], span [−16·d,
// 15·d]; each element takes the nearest level (−v clamps to 31, one step
// short).
func EncodeQ5_0(dst []byte, x []float32) {
	if len(x)%32 != 0 || len(dst) != len(x)/32*22 {
		panic("quant: EncodeQ5_0: x must be whole blocks of 32 and dst 22 bytes per block")
	}
	for b := 0; b < len(x)/32; b++ {
		xs, blk := x[32*b:32*b+32], dst[22*b:22*b+22]
		var v float32
		for _, e := range xs {
			if abs32(e) > abs32(v) {
				v = e
			}
		}
		d := roundHalf(v / -16)
		binary.LittleEndian.PutUint16(blk, kernels.FloatToHalf(d))
		putQ5(blk[2:6], blk[6:], xs, func(e float32) float32 {
			if d == 0 {
				return 16
			}
			return roundClamp(e/d+16, 0, 31)
		})
	}
}

// EncodeQ5_1 writes x (a multiple of 32 elements) as Q5_1 blocks into dst
// (len(x)/32·24 bytes): per block m = min(x) and d = (max(x) − m)/31, both
// rounded to F16, and each element the nearest of the levels d·q + m, q ∈
// [0, 31].
func EncodeQ5_1(dst []byte, x []float32) {
	if len(x)%32 != 0 || len(dst) != len(x)/32*24 {
		panic("quant: EncodeQ5_1: x must be whole blocks of 32 and dst 24 bytes per block")
	}
	for b := 0; b < len(x)/32; b++ {
		xs, blk := x[32*b:32*b+32], dst[24*b:24*b+24]
		lo, hi := xs[0], xs[0]
		for _, e := range xs {
			lo, hi = min(lo, e), max(hi, e)
		}
		d, m := roundHalf((hi-lo)/31), roundHalf(lo)
		binary.LittleEndian.PutUint16(blk, kernels.FloatToHalf(d))
		binary.LittleEndian.PutUint16(blk[2:], kernels.FloatToHalf(m))
		putQ5(blk[4:8], blk[8:], xs, func(e float32) float32 {
			if d == 0 {
				return 0
			}
			return roundClamp((e-m)/d, 0, 31)
		})
	}
}

// putQ5 stores the 5-bit quants q(x[i]) of a block: the fifth bit of
// element i as bit i of the little-endian qh, the low four bits in qs as
// Q4_0 packs them (element j in the low nibble of byte j, element 16+j in
// its high one).
func putQ5(qh, qs []byte, x []float32, q func(float32) float32) {
	var h uint32
	clear(qs[:16])
	for i, e := range x {
		v := uint8(q(e))
		h |= uint32(v>>4) << i
		qs[i%16] |= (v & 15) << (4 * (i / 16))
	}
	binary.LittleEndian.PutUint32(qh, h)
}

// EncodeQ4_K writes x (a multiple of 256 elements) as Q4_K blocks into dst
// (len(x)/256·144 bytes), for GGUF files: per 32-element sub-block the
// range [min(x, 0), max(x)] is split into 15 steps; the sub-blocks' steps
// and offsets are stored as 6-bit multiples of the block's F16 d and dmin
// (their largest value / 63), and each element as the nearest of the 16
// levels d·sc·q − dmin·m. This is ggml's plain min/max scheme without its
// iterative refinement of the scales, so the error is somewhat larger than
// llama-quantize's.
func EncodeQ4_K(dst []byte, x []float32) {
	if len(x)%256 != 0 || len(dst) != len(x)/256*144 {
		panic("quant: EncodeQ4_K: x must be whole blocks of 256 and dst 144 bytes per block")
	}
	encodeK45(dst, x, 144, false)
}

// EncodeQ5_K is EncodeQ4_K for Q5_K (176 bytes per block): 31 steps per
// sub-block, the fifth bit of each quant in qh.
func EncodeQ5_K(dst []byte, x []float32) {
	if len(x)%256 != 0 || len(dst) != len(x)/256*176 {
		panic("quant: EncodeQ5_K: x must be whole blocks of 256 and dst 176 bytes per block")
	}
	encodeK45(dst, x, 176, true)
}

// encodeK45 is the min/max encoder of Q4_K (five = false) and Q5_K.
func encodeK45(dst []byte, x []float32, bb int, five bool) {
	top := float32(15)
	if five {
		top = 31
	}
	for b := 0; b < len(x)/256; b++ {
		xs, blk := x[256*b:256*b+256], dst[bb*b:bb*b+bb]
		var step, off [8]float32
		var maxStep, maxOff float32
		for j := range 8 {
			lo, hi := float32(0), xs[32*j]
			for _, v := range xs[32*j : 32*j+32] {
				lo, hi = min(lo, v), max(hi, v)
			}
			step[j], off[j] = (hi-lo)/top, -lo
			maxStep, maxOff = max(maxStep, step[j]), max(maxOff, off[j])
		}
		d := roundHalf(maxStep / 63)
		dmin := roundHalf(maxOff / 63)
		binary.LittleEndian.PutUint16(blk, kernels.FloatToHalf(d))
		binary.LittleEndian.PutUint16(blk[2:], kernels.FloatToHalf(dmin))
		sc, qh, qs := blk[4:16], []byte(nil), blk[16:]
		if five {
			qh, qs = blk[16:48], blk[48:]
			clear(qh)
		}
		clear(sc)
		for j := range 8 {
			var s, m uint8
			if d > 0 {
				s = uint8(roundClamp(step[j]/d, 0, 63))
			}
			if dmin > 0 {
				m = uint8(roundClamp(off[j]/dmin, 0, 63))
			}
			if j < 4 {
				sc[j], sc[j+4] = s, m
			} else {
				sc[j+4] = s&15 | (m&15)<<4
				sc[j-4] |= (s >> 4) << 6
				sc[j] |= (m >> 4) << 6
			}
			ds, dm := d*float32(s), dmin*float32(m)
			c, high := j/2, j%2 == 1
			for l, v := range xs[32*j : 32*j+32] {
				var q uint8
				if ds > 0 {
					q = uint8(roundClamp((v+dm)/ds, 0, top))
				}
				if five {
					qh[l] |= (q >> 4) << j
					q &= 15
				}
				if high {
					qs[32*c+l] = qs[32*c+l]&0x0f | q<<4
				} else {
					qs[32*c+l] = qs[32*c+l]&0xf0 | q
				}
			}
		}
	}
}

// EncodeQ6_K writes x (a multiple of 256 elements) as Q6_K blocks into dst
// (len(x)/256·210 bytes): per 16-element sub-block the step is amax/32
// (levels −32…31 times the step, the largest |x| taking −32 or the nearest
// below 32), stored as an int8 multiple of the block's F16 d (the largest
// |step| / 127); each element is the nearest level. Plain absmax scales,
// without llama-quantize's search.
func EncodeQ6_K(dst []byte, x []float32) {
	if len(x)%256 != 0 || len(dst) != len(x)/256*210 {
		panic("quant: EncodeQ6_K: x must be whole blocks of 256 and dst 210 bytes per block")
	}
	for b := 0; b < len(x)/256; b++ {
		xs, blk := x[256*b:256*b+256], dst[210*b:210*b+210]
		var step [16]float32
		var maxStep float32
		for j := range 16 {
			var amax float32
			for _, v := range xs[16*j : 16*j+16] {
				amax = max(amax, abs32(v))
			}
			step[j] = amax / 32
			maxStep = max(maxStep, step[j])
		}
		d := roundHalf(maxStep / 127)
		binary.LittleEndian.PutUint16(blk[208:], kernels.FloatToHalf(d))
		clear(blk[:208])
		for j := range 16 {
			var s int8
			if d > 0 {
				s = int8(roundClamp(step[j]/d, -127, 127))
			}
			blk[192+j] = byte(s)
			ds := d * float32(s)
			for i, v := range xs[16*j : 16*j+16] {
				q := uint8(32)
				if ds != 0 {
					q = uint8(roundClamp(v/ds, -32, 31) + 32)
				}
				e := 16*j + i // element e of the block: half h, index l, part p
				h, l, p := e/128, e%32, e%128/32
				ql := &blk[64*h+l+32*(p%2)]
				*ql |= (q & 15) << (4 * (p / 2))
				blk[128+32*h+l] |= (q >> 4) << (2 * p)
			}
		}
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// roundHalf rounds v to the nearest IEEE binary16 value.
func roundHalf(v float32) float32 { return kernels.HalfToFloat(kernels.FloatToHalf(v)) }
