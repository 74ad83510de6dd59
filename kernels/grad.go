package kernels

import "math"

// Backward ops of the elementwise and row kernels in vec.go, with the
// forward's argument order (llm.c): backward(dIn, dWeights…, dOut, in,
// weights…). Each has a twin generic over float32 | float64: the float32
// instance is the fallback and oracle of the fast path, the float64 instance
// is what the finite-difference tests differentiate against.

// gradChunk is how many elements the activation backwards run through the
// vectorised Sigmoid at a time (a stack buffer, so nothing allocates).
const gradChunk = 256

// RMSNormBackward is the backward of RMSNorm for one row. With
// r = 1/sqrt(Σx²/n + eps) and y = w ⊙ x·r:
//
//	dx[i]  = r·(w[i]·dy[i] − x[i]·r²·c/n),  c = Σ_j dy[j]·w[j]·x[j]
//	dw[i] += r·x[i]·dy[i]
//
// dx ([n]) is overwritten and may alias dy; dw ([n]) is accumulated. The
// statistic r is computed like the forward's (a sum of squares widened to
// float64), c sums in float64.
func RMSNormBackward(dx, dw, dy, x, w []float32, eps float32) {
	n := len(x)
	dx, dw, dy, w = dx[:n], dw[:n], dy[:n], w[:n]
	r := rmsScale(float64(Dot(x, x)), n, eps)
	var c float64
	for i, v := range x {
		g := dy[i]
		c += float64(g * w[i] * v)
		dw[i] += r * v * g
	}
	k := r * r * r * float32(c/float64(n))
	for i, v := range x {
		dx[i] = r*(w[i]*dy[i]) - k*v
	}
}

func rmsNormBackwardGeneric[F float32 | float64](dx, dw, dy, x, w []F, eps F) {
	n := len(x)
	dx, dw, dy, w = dx[:n], dw[:n], dy[:n], w[:n]
	var ss, c float64
	for i, v := range x {
		ss += float64(v) * float64(v)
		c += float64(dy[i]) * float64(w[i]) * float64(v)
	}
	r := F(1 / math.Sqrt(ss/float64(n)+float64(eps)))
	k := r * r * r * F(c/float64(n))
	for i, v := range x {
		dw[i] += r * v * dy[i]
		dx[i] = r*(w[i]*dy[i]) - k*v
	}
}

// SiLUBackward computes dx[i] = dy[i]·s·(1 + x[i]·(1−s)), s = sigmoid(x[i]),
// the backward of SiLU from its pre-activation x. dx is overwritten and may
// alias dy (each element reads its inputs before it is written).
func SiLUBackward(dx, dy, x []float32) {
	n := len(dx)
	dy, x = dy[:n], x[:n]
	var buf [gradChunk]float32
	for i := 0; i < n; i += gradChunk {
		m := min(gradChunk, n-i)
		s := buf[:m]
		Sigmoid(s, x[i:i+m])
		for j, sj := range s {
			v := x[i+j]
			dx[i+j] = dy[i+j] * sj * (1 + v*(1-sj))
		}
	}
}

func siluBackwardGeneric[F float32 | float64](dx, dy, x []F) {
	n := len(dx)
	dy, x = dy[:n], x[:n]
	for i, v := range x {
		s := 1 / (1 + F(math.Exp(-float64(v))))
		dx[i] = dy[i] * s * (1 + v*(1-s))
	}
}

// SigmoidBackward computes dx[i] = dy[i]·y[i]·(1−y[i]) from the saved output
// y = sigmoid(x). dx is overwritten and may alias dy or y.
func SigmoidBackward(dx, dy, y []float32) {
	sigmoidBackwardGeneric(dx, dy, y)
}

func sigmoidBackwardGeneric[F float32 | float64](dx, dy, y []F) {
	n := len(dx)
	dy, y = dy[:n], y[:n]
	for i, s := range y {
		dx[i] = dy[i] * s * (1 - s)
	}
}

// SiLUMulBackward is the backward of SiLUMul, y = silu(a)·b (SwiGLU): with
// s = sigmoid(a[i]),
//
//	da[i] = dy[i]·b[i]·s·(1 + a[i]·(1−s))
//	db[i] = dy[i]·a[i]·s
//
// da and db are overwritten; each may alias any input (every element reads
// a, b and dy before writing), but not each other.
func SiLUMulBackward(da, db, dy, a, b []float32) {
	n := len(da)
	db, dy, a, b = db[:n], dy[:n], a[:n], b[:n]
	var buf [gradChunk]float32
	for i := 0; i < n; i += gradChunk {
		m := min(gradChunk, n-i)
		s := buf[:m]
		Sigmoid(s, a[i:i+m])
		for j, sj := range s {
			g, av, bv := dy[i+j], a[i+j], b[i+j]
			da[i+j] = g * bv * sj * (1 + av*(1-sj))
			db[i+j] = g * av * sj
		}
	}
}

func siluMulBackwardGeneric[F float32 | float64](da, db, dy, a, b []F) {
	n := len(da)
	db, dy, a, b = db[:n], dy[:n], a[:n], b[:n]
	for i, av := range a {
		g, bv := dy[i], b[i]
		s := 1 / (1 + F(math.Exp(-float64(av))))
		da[i] = g * bv * s * (1 + av*(1-s))
		db[i] = g * av * s
	}
}
