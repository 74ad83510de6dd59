package kernels

import (
	"math"
	"sync"
)

// Quantized matrix products (issue 7). The weights are int8 or int4 with
// float scales; the activations are quantized on the fly, per token, to int8
// in blocks of 32 (q8Block), so every product is an int8 × int8 dot product
// accumulated exactly in int32 within a block, then scaled and summed in
// float32. The activation quantization is the only loss these kernels add to
// the weights' own:
//
//	xq[k] = RNE(x[k] · 127/amax_b)   amax_b = max |x| over block b = k/32
//	dx_b  = amax_b / 127             (xq = 0, dx = 0 for an all-zero block)
//
// Weight layouts (rows of w are output features, as in nn.Linear):
//
//	Q8    int8 q[out][in], one float32 scale per row:      w[o][k] = s[o]·q[o][k]
//	Q8B32 int8 q[out][in], one f16/bf16 scale per 32:      w[o][k] = s[o][k/32]·q[o][k]
//	Q4    4-bit q ∈ [0,15], one f16/bf16 scale per group of G (32, 64, 128),
//	      symmetric w = s·(q−8), or with a f16/bf16 min per group w = s·q + m.
//	      Packed two per byte in chunks of 64 elements: byte 32c+j of a row
//	      holds element 64c+j in its low nibble and 64c+32+j in its high
//	      nibble (j < 32), so in must be a multiple of 64.
//
// The fast paths compute the same sums reorganised (weights offset to
// unsigned bytes for VPDPBUSD, the offset taken out through per-group sums
// of the activations), so they equal the twins up to float32 rounding.

// q8Block is the activation quantization block (elements per scale).
const q8Block = 32

// q8Kind is the weight layout of a quantized product.
type q8Kind uint8

const (
	q8Row q8Kind = iota // int8, one float32 scale per output row
	q8Blk               // int8, one 16-bit float scale per 32 inputs
	q4Grp               // packed int4, 16-bit float scale (and min) per group
)

// MatMulQ8 computes dst[T, out] ≈ x[T, in] · wᵀ for int8 weights with one
// scale per output row: w[o][k] = scale[o]·int8(q[o·in+k]). q holds out·in
// bytes, scale out values. x is quantized as described above.
func MatMulQ8(dst, x []float32, q []byte, scale []float32, T, in, out int) {
	checkQ(len(dst), len(x), T, in, out)
	if len(q) < out*in || len(scale) < out {
		panic("kernels: MatMulQ8 weights too short")
	}
	j := getQ8Job(dst, x, T, in, out)
	j.kind, j.w, j.rs, j.group = q8Row, q, scale, in
	q8MatMul(j)
	putQ8Job(j)
}

// MatMulQ8B32 computes dst[T, out] ≈ x[T, in] · wᵀ for int8 weights with one
// scale per block of 32 inputs: w[o][k] = scale[o·in/32 + k/32]·int8(q[o·in+k]),
// the scales being IEEE binary16 (or bfloat16 when bf16). in must be a
// multiple of 32.
func MatMulQ8B32(dst, x []float32, q []byte, scale []uint16, bf16 bool, T, in, out int) {
	checkQ(len(dst), len(x), T, in, out)
	if in%32 != 0 {
		panic("kernels: MatMulQ8B32 needs in to be a multiple of 32")
	}
	if len(q) < out*in || len(scale) < out*in/32 {
		panic("kernels: MatMulQ8B32 weights too short")
	}
	j := getQ8Job(dst, x, T, in, out)
	j.kind, j.w, j.sc, j.group, j.bf16 = q8Blk, q, scale, 32, bf16
	q8MatMul(j)
	putQ8Job(j)
}

// MatMulQ4 computes dst[T, out] ≈ x[T, in] · wᵀ for 4-bit weights packed as
// described in the package comment, with one scale per group of group inputs
// (32, 64 or 128): w[o][k] = s·(q−8), or s·q + m when min is not nil, where
// s = scale[o·in/group + k/group] and m = min[same index] are binary16 (or
// bfloat16 when bf16). in must be a multiple of 64.
func MatMulQ4(dst, x []float32, q []byte, scale, min []uint16, group int, bf16 bool, T, in, out int) {
	checkQ(len(dst), len(x), T, in, out)
	if group != 32 && group != 64 && group != 128 {
		panic("kernels: MatMulQ4 group must be 32, 64 or 128")
	}
	if in%64 != 0 || in%group != 0 {
		panic("kernels: MatMulQ4 needs in to be a multiple of 64 and of the group")
	}
	if len(q) < out*in/2 || len(scale) < out*in/group || (min != nil && len(min) < out*in/group) {
		panic("kernels: MatMulQ4 weights too short")
	}
	j := getQ8Job(dst, x, T, in, out)
	j.kind, j.w, j.sc, j.mn, j.group, j.bf16 = q4Grp, q, scale, min, group, bf16
	q8MatMul(j)
	putQ8Job(j)
}

func checkQ(nd, nx, T, in, out int) {
	if T < 0 || in < 0 || out < 0 {
		panic("kernels: negative matmul size")
	}
	if nd < T*out || nx < T*in {
		panic("kernels: matmul slice too short")
	}
}

// q8Job carries one quantized product through the worker pool. Jobs are
// pooled, with their activation buffers, so a product allocates nothing
// once warm.
type q8Job struct {
	dst, x     []float32 // [T, out], [T, in]
	T, in, out int
	kind       q8Kind
	w          []byte    // quants, [out, in] bytes (int8) or [out, in/2] (int4)
	rs         []float32 // q8Row: [out] scales
	sc, mn     []uint16  // q8Blk, q4Grp: [out, in/group] scales and mins (mn nil when symmetric)
	group      int       // inputs per weight scale (in for q8Row)
	bf16       bool      // sc and mn are bfloat16 rather than binary16

	// The quantized activations, shared by every output row.
	inPad int       // in rounded up to a multiple of 64
	ng16  int       // groups per token, rounded up to a multiple of 16
	xq    []int8    // [T, inPad] int8 activations, zero past in
	dx    []float32 // [T, inPad/32, 8] block scales, each repeated 8 times (the SIMD lane layout)
	eg    []float32 // [T, ng16] Σ_{b∈g} dx_b·Σ_{k∈b} xq[k] per weight group, zero past the last

	actRange, genericRange func(lo, hi int)
	q8arch
}

var q8Jobs = sync.Pool{New: func() any {
	j := new(q8Job)
	j.actRange = j.quantizeActs
	j.genericRange = j.runGeneric
	j.q8arch.bind(j)
	return j
}}

func getQ8Job(dst, x []float32, T, in, out int) *q8Job {
	j := q8Jobs.Get().(*q8Job)
	j.dst, j.x, j.T, j.in, j.out = dst, x, T, in, out
	j.rs, j.sc, j.mn, j.bf16 = nil, nil, nil, false
	return j
}

func putQ8Job(j *q8Job) {
	j.dst, j.x, j.w, j.rs, j.sc, j.mn = nil, nil, nil, nil, nil, nil
	q8Jobs.Put(j)
}

// q8MatMul quantizes the activations, then runs a fast path if one takes
// the job, else the twins.
func q8MatMul(j *q8Job) {
	if j.T == 0 || j.out == 0 {
		return
	}
	if j.in == 0 {
		clear(j.dst[:j.T*j.out])
		return
	}
	j.inPad = (j.in + 63) &^ 63
	ng := (j.in + j.group - 1) / j.group
	j.ng16 = (ng + 15) &^ 15
	j.xq = grow(j.xq, j.T*j.inPad)
	j.dx = grow(j.dx, j.T*j.inPad/q8Block*8)
	j.eg = grow(j.eg, j.T*j.ng16)
	if j.T*j.in < serialWork/16 {
		j.quantizeActs(0, j.T)
	} else {
		ParallelFor(j.T, 1, j.actRange)
	}
	if q8MatMulArch(j) {
		return
	}
	if j.T*j.in*j.out < serialWork {
		j.runGeneric(0, j.out)
		return
	}
	ParallelFor(j.out, 4, j.genericRange)
}

// quantizeActs quantizes tokens [lo, hi) of x into xq, dx and eg.
func (j *q8Job) quantizeActs(lo, hi int) {
	nb := j.inPad / q8Block
	for t := lo; t < hi; t++ {
		xq := j.xq[t*j.inPad : (t+1)*j.inPad]
		dx := j.dx[t*nb*8 : (t+1)*nb*8]
		eg := j.eg[t*j.ng16 : (t+1)*j.ng16]
		clear(eg)
		quantizeActRow(xq, dx, eg, j.x[t*j.in:(t+1)*j.in], j.group)
	}
}

// quantizeActRow quantizes one row x (len n ≤ len(xq)) in blocks of 32 and
// adds each block's dx_b·Σxq to eg[b·32/group]; xq and dx past n are zeroed.
func quantizeActRow(xq []int8, dx, eg []float32, x []float32, group int) {
	n := len(x)
	for b := 0; b*q8Block < len(xq); b++ {
		k0 := b * q8Block
		k1 := min(k0+q8Block, n)
		var amax float32
		for k := k0; k < k1; k++ {
			amax = max(amax, abs32(x[k]))
		}
		q := xq[k0 : k0+q8Block]
		d := amax / 127
		if amax == 0 || k0 >= n || d != d { // empty, zero or NaN block
			clear(q)
			d = 0
		} else {
			id := 127 / amax
			var s int32
			for k := k0; k < k0+q8Block; k++ {
				var v int8
				if k < k1 {
					v = int8(math.RoundToEven(float64(x[k] * id)))
				}
				q[k-k0] = v
				s += int32(v)
			}
			eg[k0/group] += d * float32(s)
		}
		for i := range 8 {
			dx[b*8+i] = d
		}
	}
}

func abs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

// scaleAt widens the 16-bit scale s (bfloat16 when bf16, else binary16).
func scaleAt(s uint16, bf16 bool) float32 {
	if bf16 {
		return bf16ToF32(s)
	}
	return HalfToFloat(s)
}

// runGeneric computes outputs [lo, hi) with the twin.
func (j *q8Job) runGeneric(lo, hi int) {
	for o := lo; o < hi; o++ {
		for t := 0; t < j.T; t++ {
			j.dst[t*j.out+o] = q8DotGeneric(j, o, t)
		}
	}
}

// q8DotGeneric is the reference for one output: row o of the weights
// against token t's quantized activations, with signed quants and exact
// int32 block sums:
//
//	Q8:    s[o] · Σ_b dx_b · Σ_{k∈b} q[k]·xq[k]
//	Q8B32: Σ_b (s_b·dx_b) · Σ_{k∈b} q[k]·xq[k]
//	Q4:    Σ_g Σ_{b∈g} (s_g·dx_b) · Σ_{k∈b} (q[k]−8)·xq[k]            symmetric
//	       Σ_g [Σ_{b∈g} (s_g·dx_b) · Σ_{k∈b} q[k]·xq[k] + m_g·eg_g]  with mins
func q8DotGeneric(j *q8Job, o, t int) float32 {
	in := j.in
	xq := j.xq[t*j.inPad:]
	dx := j.dx[t*j.inPad/q8Block*8:]
	var acc float32
	switch j.kind {
	case q8Row:
		w := j.w[o*in : (o+1)*in]
		for k0 := 0; k0 < in; k0 += q8Block {
			var dp int32
			for k := k0; k < min(k0+q8Block, in); k++ {
				dp += int32(int8(w[k])) * int32(xq[k])
			}
			acc += dx[k0/q8Block*8] * float32(dp)
		}
		return j.rs[o] * acc
	case q8Blk:
		w := j.w[o*in : (o+1)*in]
		sc := j.sc[o*in/32:]
		for b := 0; b < in/32; b++ {
			var dp int32
			for k := 32 * b; k < 32*b+32; k++ {
				dp += int32(int8(w[k])) * int32(xq[k])
			}
			acc += scaleAt(sc[b], j.bf16) * dx[b*8] * float32(dp)
		}
		return acc
	default: // q4Grp
		w := j.w[o*in/2 : (o+1)*in/2]
		G, ng := j.group, in/j.group
		sc := j.sc[o*ng : (o+1)*ng]
		off := int32(8)
		if j.mn != nil {
			off = 0
		}
		for g := range ng {
			s := scaleAt(sc[g], j.bf16)
			for k0 := g * G; k0 < (g+1)*G; k0 += q8Block {
				var dp int32
				for k := k0; k < k0+q8Block; k++ {
					dp += (int32(q4At(w, k)) - off) * int32(xq[k])
				}
				acc += s * dx[k0/q8Block*8] * float32(dp)
			}
			if j.mn != nil {
				acc += scaleAt(j.mn[o*ng+g], j.bf16) * j.eg[t*j.ng16+g]
			}
		}
		return acc
	}
}

// q4At returns element k ∈ [0, 15] of a packed int4 row (package comment).
func q4At(row []byte, k int) byte {
	c, i := k/64, k%64
	b := row[32*c+i%32]
	if i < 32 {
		return b & 15
	}
	return b >> 4
}
