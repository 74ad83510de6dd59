package attention

import "math"

// RoPE is the partial rotary embedding of the softmax layers (spec §2.4.1):
// NeoX "half-split" pairing inside the first Dim dims of each head (dim i
// with i+Dim/2), frequencies θ^(−2i/Dim), the other head dims untouched.
type RoPE struct {
	Dim     int       // rotary_dim
	InvFreq []float32 // [Dim/2], fp32 as the reference computes it
}

// NewRoPE builds the inverse frequencies 1/θ^(2i/dim) as the reference does:
// exponent in fp32, power and reciprocal rounded to fp32.
func NewRoPE(dim int, theta float64) *RoPE {
	inv := make([]float32, dim/2)
	for i := range inv {
		e := float32(2*i) / float32(dim)
		inv[i] = float32(1 / float64(float32(math.Pow(theta, float64(e)))))
	}
	return &RoPE{Dim: dim, InvFreq: inv}
}

// Angles fills cos and sin ([Dim/2] each) for position pos; the angle is the
// fp32 product pos·invFreq, as in the reference tables.
func (r *RoPE) Angles(cos, sin []float32, pos int) {
	p := float32(pos)
	for i, f := range r.InvFreq {
		a := float64(p * f)
		cos[i] = float32(math.Cos(a))
		sin[i] = float32(math.Sin(a))
	}
}

// Rotate applies the rotation to each of the heads vectors in x (head h at
// x[h·stride : h·stride+Dim]) with cos/sin from Angles.
func (r *RoPE) Rotate(x []float32, heads, stride int, cos, sin []float32) {
	half := r.Dim / 2
	for h := 0; h < heads; h++ {
		v := x[h*stride : h*stride+r.Dim]
		for i := 0; i < half; i++ {
			a, b := v[i], v[i+half]
			v[i] = a*cos[i] - b*sin[i]
			v[i+half] = b*cos[i] + a*sin[i]
		}
	}
}

// RotateBack applies the transpose of Rotate, the rotation by the negative
// angle, to the same dims of each head: the backward of Rotate, turning
// ∂L/∂(rotated x) into ∂L/∂x in place. Dims from Dim on pass through, as in
// Rotate.
func (r *RoPE) RotateBack(x []float32, heads, stride int, cos, sin []float32) {
	half := r.Dim / 2
	for h := 0; h < heads; h++ {
		v := x[h*stride : h*stride+r.Dim]
		for i := 0; i < half; i++ {
			a, b := v[i], v[i+half]
			v[i] = a*cos[i] + b*sin[i]
			v[i+half] = b*cos[i] - a*sin[i]
		}
	}
}
