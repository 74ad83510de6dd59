package kernels

import "math"

// AdamWStep holds the scalars of one AdamW step (torch.optim.AdamW, decoupled
// weight decay) with t the step count after it.
type AdamWStep struct {
	Beta1, Beta2, Eps float64
	Step              float64 // lr / (1 − β1ᵗ)
	RBC2              float64 // 1 / sqrt(1 − β2ᵗ)
	Decay             float64 // 1 − lr·weight decay, or 1 where no decay applies
}

// AdamW applies one step to a run of parameters p from their gradients g,
// updating the moments m and v, all [n] with n = len(p), in torch's order:
//
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g·g
//	p ← p·decay − step·m / (sqrt(v)·rbc2 + eps)
//
// Every operation is a float64 operation on the widened fp32 values, rounded
// as written (no fused multiply-add), and the results are rounded back to
// fp32; the AVX-512 path (8 float64 lanes) gives adamwGeneric's results bit
// for bit. The elements are independent, so a caller may split a slab
// across threads.
func AdamW(p, g, m, v []float32, s AdamWStep) {
	n := len(p)
	g, m, v = g[:n], m[:n], v[:n]
	adamw(p, g, m, v, s)
}

// adamwConsts are the eight scalars the vector kernel broadcasts, in its
// register order.
func adamwConsts(s AdamWStep) [8]float64 {
	return [8]float64{s.Beta1, 1 - s.Beta1, s.Beta2, 1 - s.Beta2, s.Eps, s.Step, s.RBC2, s.Decay}
}

// adamwGeneric is the spec and twin of the vector kernel. The explicit
// float64 conversions round each product, so the compiler may not fuse it
// into the following addition (the Go spec allows fusion otherwise).
func adamwGeneric(p, g, m, v []float32, s AdamWStep) {
	k := adamwConsts(s)
	b1, omb1, b2, omb2, eps, step, rbc2, decay := k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]
	n := len(p)
	g, m, v = g[:n], m[:n], v[:n]
	for i := range p {
		gi := float64(g[i])
		mi := float64(b1*float64(m[i])) + float64(omb1*gi)
		vi := float64(b2*float64(v[i])) + float64(float64(omb2*gi)*gi)
		den := float64(math.Sqrt(vi)*rbc2) + eps
		pi := float64(float64(p[i])*decay) - float64(step*mi)/den
		p[i], m[i], v[i] = float32(pi), float32(mi), float32(vi)
	}
}
