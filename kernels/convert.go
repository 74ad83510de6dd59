package kernels

import "math"

// BF16ToF32 widens bfloat16 values (the top 16 bits of an IEEE float32) to
// float32: dst[i] = float32(src[i]).
func BF16ToF32(dst []float32, src []uint16) {
	src = src[:len(dst)]
	bf16ToF32s(dst, src)
}

func bf16ToF32Generic(dst []float32, src []uint16) {
	for i, v := range src {
		dst[i] = math.Float32frombits(uint32(v) << 16)
	}
}

// F32ToBF16 rounds float32 values to bfloat16 with round-to-nearest-even, as
// PyTorch does; NaNs stay NaN (RoundBF16 per element).
func F32ToBF16(dst []uint16, src []float32) {
	src = src[:len(dst)]
	f32ToBF16s(dst, src)
}

func f32ToBF16Generic(dst []uint16, src []float32) {
	for i, f := range src {
		dst[i] = RoundBF16(f)
	}
}

// RoundBF16 rounds one float32 to bfloat16 (round-to-nearest-even).
func RoundBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and NaN
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16ToF32 widens IEEE binary16 values to float32 (HalfToFloat per element;
// the fast path quiets signalling NaNs).
func F16ToF32(dst []float32, src []uint16) {
	src = src[:len(dst)]
	f16ToF32s(dst, src)
}

func f16ToF32Generic(dst []float32, src []uint16) {
	for i, h := range src {
		dst[i] = HalfToFloat(h)
	}
}

// HalfToFloat converts one IEEE binary16 value to float32 exactly.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0: // ±0
		return math.Float32frombits(sign)
	default: // subnormal: value = man · 2^-24
		f := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
}

// FloatToHalf rounds one float32 to IEEE binary16 (round-to-nearest-even,
// overflow to ±inf).
func FloatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		r := man >> shift
		rem := man & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++
	}
	return sign | uint16(r)
}

// bf16ToF32 widens one bfloat16 value exactly.
func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
