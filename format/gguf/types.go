package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Type is a ggml tensor element type, numbered as in ggml.h (enum ggml_type).
// Numbers missing from the table were retired by ggml and are rejected.
type Type uint32

// The ggml types this package knows by name. Only those whose Info has a
// Dequant can be read as numbers; the others are named in errors.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

// TypeInfo is one row of the type table: the block layout of ggml-common.h.
// A block of BlockLen consecutive elements of a row is stored in BlockBytes
// bytes; a row's element count must be a multiple of BlockLen.
type TypeInfo struct {
	Name       string
	BlockLen   int
	BlockBytes int
	// Dequant widens whole blocks: len(dst) elements (a multiple of
	// BlockLen) from len(dst)/BlockLen·BlockBytes bytes of src. It is the
	// reference semantics of ggml's dequantize_row_* (fp32 arithmetic in the
	// same order), nil for types Lightning cannot read.
	Dequant func(dst []float32, src []byte)
}

// Block layouts (ggml-common.h). d, dmin, m are IEEE binary16 unless noted;
// quants are packed as the comments of the dequant functions describe.
//
//	type   elems  bytes  layout
//	Q4_0   32     18     d, qs[16]
//	Q4_1   32     20     d, m, qs[16]
//	Q5_0   32     22     d, qh[4], qs[16]
//	Q5_1   32     24     d, m, qh[4], qs[16]
//	Q8_0   32     34     d, qs[32] int8
//	Q8_1   32     36     d, s, qs[32] int8
//	Q2_K   256    84     scales[16], qs[64], d, dmin
//	Q3_K   256    110    hmask[32], qs[64], scales[12], d
//	Q4_K   256    144    d, dmin, scales[12], qs[128]
//	Q5_K   256    176    d, dmin, scales[12], qh[32], qs[128]
//	Q6_K   256    210    ql[128], qh[64], scales[16] int8, d
//	Q8_K   256    292    d (F32), qs[256] int8, bsums[16] int16
var types = map[Type]TypeInfo{
	F32:     {"F32", 1, 4, dequantF32},
	F16:     {"F16", 1, 2, dequantF16},
	BF16:    {"BF16", 1, 2, dequantBF16},
	F64:     {"F64", 1, 8, nil},
	I8:      {"I8", 1, 1, nil},
	I16:     {"I16", 1, 2, nil},
	I32:     {"I32", 1, 4, nil},
	I64:     {"I64", 1, 8, nil},
	Q4_0:    {"Q4_0", 32, 18, dequantQ4_0},
	Q4_1:    {"Q4_1", 32, 20, dequantQ4_1},
	Q5_0:    {"Q5_0", 32, 22, dequantQ5_0},
	Q5_1:    {"Q5_1", 32, 24, dequantQ5_1},
	Q8_0:    {"Q8_0", 32, 34, dequantQ8_0},
	Q8_1:    {"Q8_1", 32, 36, nil},
	Q2_K:    {"Q2_K", 256, 84, nil},
	Q3_K:    {"Q3_K", 256, 110, nil},
	Q4_K:    {"Q4_K", 256, 144, dequantQ4_K},
	Q5_K:    {"Q5_K", 256, 176, dequantQ5_K},
	Q6_K:    {"Q6_K", 256, 210, dequantQ6_K},
	Q8_K:    {"Q8_K", 256, 292, nil},
	IQ2_XXS: {"IQ2_XXS", 256, 66, nil},
	IQ2_XS:  {"IQ2_XS", 256, 74, nil},
	IQ3_XXS: {"IQ3_XXS", 256, 98, nil},
	IQ1_S:   {"IQ1_S", 256, 50, nil},
	IQ4_NL:  {"IQ4_NL", 32, 18, nil},
	IQ3_S:   {"IQ3_S", 256, 110, nil},
	IQ2_S:   {"IQ2_S", 256, 82, nil},
	IQ4_XS:  {"IQ4_XS", 256, 136, nil},
	IQ1_M:   {"IQ1_M", 256, 56, nil},
	TQ1_0:   {"TQ1_0", 256, 54, nil},
	TQ2_0:   {"TQ2_0", 256, 66, nil},
	MXFP4:   {"MXFP4", 32, 17, nil},
}

// Info returns the table row of t, and whether t is a known type.
func (t Type) Info() (TypeInfo, bool) {
	i, ok := types[t]
	return i, ok
}

// String returns the ggml name of t ("Q4_K"), or "type(N)" for an unknown
// number.
func (t Type) String() string {
	if i, ok := types[t]; ok {
		return i.Name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// TypeByName returns the type called name (case as in ggml: "Q8_0").
func TypeByName(name string) (Type, bool) {
	for t, i := range types {
		if i.Name == name {
			return t, true
		}
	}
	return 0, false
}

// CanDequant reports whether Lightning can widen t to fp32.
func (t Type) CanDequant() bool { return types[t].Dequant != nil }

// RowBytes returns the bytes of a row of n elements, or an error when n is
// not a whole number of blocks or t is unknown.
func (t Type) RowBytes(n int) (int, error) {
	i, ok := types[t]
	if !ok {
		return 0, fmt.Errorf("unknown ggml type %d", uint32(t))
	}
	if n%i.BlockLen != 0 {
		return 0, fmt.Errorf("%s rows must be a multiple of %d elements, got %d", i.Name, i.BlockLen, n)
	}
	return n / i.BlockLen * i.BlockBytes, nil
}

// Dequant widens n = len(dst) elements of type t from src into dst. It
// fails, naming the type, when Lightning has no dequantization for t, and
// panics (a caller bug) when src is shorter than RowBytes(n).
func (t Type) Dequant(dst []float32, src []byte) error {
	i, ok := types[t]
	if !ok || i.Dequant == nil {
		return fmt.Errorf("%w: ggml type %s cannot be read (supported: %s)", ErrUnsupported, t, supportedNames())
	}
	nb, err := t.RowBytes(len(dst))
	if err != nil {
		return err
	}
	if len(src) < nb {
		panic("gguf: Dequant: source shorter than its elements need")
	}
	i.Dequant(dst, src[:nb])
	return nil
}

// supportedNames lists the types with a Dequant, in type-number order.
func supportedNames() string {
	s := ""
	for t := Type(0); t < 64; t++ {
		if types[t].Dequant != nil {
			if s != "" {
				s += ", "
			}
			s += types[t].Name
		}
	}
	return s
}

func f16(b []byte) float32 { return HalfToFloat(binary.LittleEndian.Uint16(b)) }

// HalfToFloat widens an IEEE binary16 value exactly.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0 && man == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: man·2⁻²⁴
		v := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}

func dequantF32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func dequantF16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = f16(src[2*i:])
	}
}

func dequantBF16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

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
