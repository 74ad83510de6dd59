package train

import "math"

// Reference twins of this package's fast paths: whole-array, loop-by-loop,
// generic over the float type so finite differences run in float64 and the
// fast float32 paths are checked against the same code at float32.

// lmHeadLossRef is lmHeadLoss's twin and oracle: the whole [T, vocab]
// logits at once, in F arithmetic (float64 for finite differences, float32
// to check the fast path), exp and log through float64. It returns the loss
// sum, scale·∂L/∂x and scale·∂L/∂w.
func lmHeadLossRef[F float32 | float64](x, w []F, targets []int32, T, dim, vocab int, scale F) (loss F, dX, dW []F) {
	dX, dW = make([]F, T*dim), make([]F, vocab*dim)
	logits := make([]F, vocab)
	for t := 0; t < T; t++ {
		if targets[t] == noTarget {
			continue
		}
		xt := x[t*dim : (t+1)*dim]
		mx := F(math.Inf(-1))
		for v := range logits {
			var z F
			for i, xi := range xt {
				z += xi * w[v*dim+i]
			}
			logits[v] = z
			mx = max(mx, z)
		}
		var s F
		for _, z := range logits {
			s += F(math.Exp(float64(z - mx)))
		}
		lse := mx + F(math.Log(float64(s)))
		loss += lse - logits[targets[t]]
		for v, z := range logits {
			g := F(math.Exp(float64(z-lse))) * scale
			if v == int(targets[t]) {
				g -= scale
			}
			for i, xi := range xt {
				dX[t*dim+i] += g * w[v*dim+i]
				dW[v*dim+i] += g * xi
			}
		}
	}
	return loss, dX, dW
}

// linearRef is linearForward and linearBackward's twin: out = in·Wᵀ,
// dIn = dOut·W, dW = dOutᵀ·in.
func linearRef[F float32 | float64](in, w, dOut []F, T, nIn, nOut int) (out, dIn, dW []F) {
	out, dIn, dW = make([]F, T*nOut), make([]F, T*nIn), make([]F, nOut*nIn)
	for t := 0; t < T; t++ {
		for o := 0; o < nOut; o++ {
			var s F
			for i := 0; i < nIn; i++ {
				s += in[t*nIn+i] * w[o*nIn+i]
				dIn[t*nIn+i] += dOut[t*nOut+o] * w[o*nIn+i]
				dW[o*nIn+i] += dOut[t*nOut+o] * in[t*nIn+i]
			}
			out[t*nOut+o] = s
		}
	}
	return out, dIn, dW
}

// finiteDiff returns the central difference (f(x+h) − f(x−h)) / 2h of f at
// every element of x, restoring x afterwards.
func finiteDiff(f func() float64, x []float64, h float64) []float64 {
	g := make([]float64, len(x))
	for i, v := range x {
		x[i] = v + h
		fp := f()
		x[i] = v - h
		fm := f()
		x[i] = v
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

func to64(s []float32) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

func to32(s []float64) []float32 {
	out := make([]float32, len(s))
	for i, v := range s {
		out[i] = float32(v)
	}
	return out
}
