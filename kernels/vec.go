package kernels

import "math"

// The fast paths of these kernels (vec_amd64.go) equal the twins below up to
// summation order for the reductions and up to the few-ulp error of the
// vectorized exp for the activations; vec_test.go states the bounds.

// Dot returns Σ a[i]·b[i] over len(a) elements; b must be at least as long.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	return dot(a, b)
}

func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Axpy computes dst[i] += a·x[i] for i < len(dst).
func Axpy(dst []float32, a float32, x []float32) {
	x = x[:len(dst)]
	axpy(dst, a, x)
}

func axpyGeneric(dst []float32, a float32, x []float32) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += a * x[i]
	}
}

// Scale computes dst[i] *= a.
func Scale(dst []float32, a float32) { scale(dst, a) }

func scaleGeneric(dst []float32, a float32) {
	for i := range dst {
		dst[i] *= a
	}
}

// Mul computes dst[i] *= x[i].
func Mul(dst, x []float32) {
	x = x[:len(dst)]
	mul(dst, x)
}

func mulGeneric(dst, x []float32) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] *= x[i]
	}
}

// RMSNorm computes dst = w ⊙ (x / sqrt(mean(x²) + eps)) for one row. The
// twin accumulates the statistic in float64 (spec §2.2 normalises in fp32;
// the wider sum only removes rounding); the fast path sums in 64 float32
// lanes. dst may alias x.
func RMSNorm(dst, x, w []float32, eps float32) {
	n := len(x)
	dst, w = dst[:n], w[:n]
	rmsNorm(dst, x, w, eps)
}

func rmsNormGeneric(dst, x, w []float32, eps float32) {
	n := len(x)
	dst, w = dst[:n], w[:n]
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	r := rmsScale(ss, n, eps)
	for i, v := range x {
		dst[i] = w[i] * (v * r)
	}
}

// rmsScale returns 1/sqrt(ss/n + eps), computed in float64.
func rmsScale(ss float64, n int, eps float32) float32 {
	return float32(1 / math.Sqrt(ss/float64(n)+float64(eps)))
}

// Exp computes dst[i] = exp(x[i]) for i < len(dst). The twin rounds the
// float64 exponential (error ≤ ½ ulp); the fast path is within 2 ulp, with
// +Inf above 88.72, subnormals and then 0 below −87.3, and NaN kept.
func Exp(dst, x []float32) {
	x = x[:len(dst)]
	exp(dst, x)
}

func expGeneric(dst, x []float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = float32(math.Exp(float64(v)))
	}
}

// SiLU computes dst[i] = x[i]·sigmoid(x[i]). dst may alias x.
func SiLU(dst, x []float32) {
	x = x[:len(dst)]
	silu(dst, x)
}

func siluGeneric(dst, x []float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = v / (1 + float32(math.Exp(float64(-v))))
	}
}

// Sigmoid computes dst[i] = 1/(1+exp(-x[i])). dst may alias x.
func Sigmoid(dst, x []float32) {
	x = x[:len(dst)]
	sigmoid(dst, x)
}

func sigmoidGeneric(dst, x []float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = 1 / (1 + float32(math.Exp(float64(-v))))
	}
}

// SiLUMul computes dst[i] = silu(gate[i])·up[i] (the SwiGLU inner product).
// dst may alias gate or up.
func SiLUMul(dst, gate, up []float32) {
	gate, up = gate[:len(dst)], up[:len(dst)]
	siluMul(dst, gate, up)
}

func siluMulGeneric(dst, gate, up []float32) {
	gate, up = gate[:len(dst)], up[:len(dst)]
	for i, g := range gate {
		dst[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
	}
}

// Softmax replaces x with exp(x - max)/Σ exp(x - max). The twin sums in
// float64; the fast path sums in 16 float32 lanes.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	softmax(x)
}

func softmaxGeneric(x []float32) {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	var s float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		s += float64(e)
	}
	inv := float32(1 / s)
	for i := range x {
		x[i] *= inv
	}
}

// Argmax returns the index of the largest element of x, the lowest among
// equal ones. NaNs are skipped, except that a NaN x[0] is returned (the
// twin's loop never finds anything larger than it). It panics if x is empty.
func Argmax(x []float32) int {
	if len(x) == 0 {
		panic("kernels: Argmax of an empty slice")
	}
	return argmax(x)
}

func argmaxGeneric(x []float32) int {
	best, bi := x[0], 0
	for i, v := range x {
		if v > best {
			best, bi = v, i
		}
	}
	return bi
}
