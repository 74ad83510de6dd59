package quant

import "math"

// int8 formats: symmetric absmax quantization, q = RNE(x/s) with s =
// amax/127 rounded to the scale type first, clamped to [−127, 127].

// quantizeQ8Row quantizes a row with one scale (q8).
func quantizeQ8Row(q []byte, s, _ []float32, x []float32, round func(float32) float32) {
	s[0] = quantizeI8(q, x, round)
}

// quantizeQ8Blocks quantizes a row with one scale per 32 elements (q8b32).
func quantizeQ8Blocks(q []byte, s, _ []float32, x []float32, round func(float32) float32) {
	for b := range s {
		s[b] = quantizeI8(q[32*b:32*b+32], x[32*b:32*b+32], round)
	}
}

// quantizeI8 quantizes x into q with one scale and returns it.
func quantizeI8(q []byte, x []float32, round func(float32) float32) float32 {
	s := round(maxAbs(x) / 127)
	if s == 0 || math.IsInf(float64(s), 0) {
		clear(q[:len(x)])
		return s
	}
	for i, v := range x {
		q[i] = byte(int8(roundClamp(v/s, -127, 127)))
	}
	return s
}

// roundClamp rounds v to the nearest integer, ties to even, and clamps it
// to [lo, hi]. Adding and subtracting 1.5·2²³ rounds exactly for |v| < 2²²;
// larger |v| stay beyond the clamp on their side.
func roundClamp(v, lo, hi float32) float32 {
	const magic = 1.5 * (1 << 23)
	r := float32(v+magic) - magic
	if r < lo {
		return lo
	}
	if r > hi {
		return hi
	}
	return r
}

// dequantQ8 is the reference of both int8 formats: w = s·q, one scale per
// row (q8) or per 32 elements (q8b32).
func dequantQ8(dst []float32, q, sc, _ []byte, st Type) {
	g := len(dst)
	if st != F32 {
		g = 32
	}
	for i := range dst {
		dst[i] = scaleAt(sc, i/g, st) * float32(int8(q[i]))
	}
}
