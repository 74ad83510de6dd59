package kernels

import (
	"math"
	"math/bits"
	"sync"
	"unsafe"
)

// Quantized matrix products (issue 7). The weights are int8 or int4 with
// float scales; the activations are quantized on the fly, per token, to int8
// in blocks of 32 (q8Block; 64 for the int4 formats with groups of 64 or
// more, whose kernels then add both halves of a group in integers), so
// every product is an int8 × int8 dot product accumulated exactly in int32
// within a block, then scaled and summed in float32. The activation
// quantization is the only loss these kernels add to the weights' own:
//
//	xq[k] = RNE(x[k] · 127/amax_b)   amax_b = max |x| over k's block b
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
// scale per output row: w[o][k] = scale[o]·int8(q[o·in+k]), quants in
// [−127, 127] (−128 is outside the format: the AVX2 path negates quants).
// q holds out·in bytes, scale out values. x is quantized as described
// above.
func MatMulQ8(dst, x []float32, q []byte, scale []float32, T, in, out int) {
	(*Group)(nil).MatMulQ8(dst, x, q, scale, T, in, out)
}

// MatMulQ8 adds MatMulQ8's product to the group.
func (g *Group) MatMulQ8(dst, x []float32, q []byte, scale []float32, T, in, out int) {
	checkQ(len(dst), len(x), T, in, out)
	if len(q) < out*in || len(scale) < out {
		panic("kernels: MatMulQ8 weights too short")
	}
	j := getQ8Job(dst, x, T, in, out)
	j.kind, j.w, j.rs, j.group = q8Row, q, scale, in
	if !q8MatMul(j, g) {
		putQ8Job(j)
	}
}

// MatMulQ8B32 computes dst[T, out] ≈ x[T, in] · wᵀ for int8 weights with one
// scale per block of 32 inputs: w[o][k] = scale[o·in/32 + k/32]·int8(q[o·in+k]),
// the scales being IEEE binary16 (or bfloat16 when bf16), quants in
// [−127, 127]. in must be a multiple of 32.
func MatMulQ8B32(dst, x []float32, q []byte, scale []uint16, bf16 bool, T, in, out int) {
	(*Group)(nil).MatMulQ8B32(dst, x, q, scale, bf16, T, in, out)
}

// MatMulQ8B32 adds MatMulQ8B32's product to the group.
func (g *Group) MatMulQ8B32(dst, x []float32, q []byte, scale []uint16, bf16 bool, T, in, out int) {
	checkQ(len(dst), len(x), T, in, out)
	if in%32 != 0 {
		panic("kernels: MatMulQ8B32 needs in to be a multiple of 32")
	}
	if len(q) < out*in || len(scale) < out*in/32 {
		panic("kernels: MatMulQ8B32 weights too short")
	}
	j := getQ8Job(dst, x, T, in, out)
	j.kind, j.w, j.sc, j.group, j.bf16 = q8Blk, q, scale, 32, bf16
	if !q8MatMul(j, g) {
		putQ8Job(j)
	}
}

// MatMulQ4 computes dst[T, out] ≈ x[T, in] · wᵀ for 4-bit weights packed as
// described in the package comment, with one scale per group of group inputs
// (32, 64 or 128): w[o][k] = s·(q−8), or s·q + m when min is not nil, where
// s = scale[o·in/group + k/group] and m = min[same index] are binary16 (or
// bfloat16 when bf16). in must be a multiple of 64.
func MatMulQ4(dst, x []float32, q []byte, scale, min []uint16, group int, bf16 bool, T, in, out int) {
	(*Group)(nil).MatMulQ4(dst, x, q, scale, min, group, bf16, T, in, out)
}

// MatMulQ4 adds MatMulQ4's product to the group.
func (g *Group) MatMulQ4(dst, x []float32, q []byte, scale, min []uint16, group int, bf16 bool, T, in, out int) {
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
	if !q8MatMul(j, g) {
		putQ8Job(j)
	}
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

	// The quantized activations, shared by every output row: one record
	// per token (see actRecord), laid out for the path that runs.
	lay   actLayout // how the records are laid out for the chosen path
	act   int       // activation quantizer: 0 the twin, else q8ActArch's assembly
	inPad int       // in rounded up to a multiple of 64
	rec   []float32 // [T, 4·inPad bytes]
	fast  q8Kernel  // the chosen fast kernel (id 0: the twin)

	actRange, genericRange, fastRange func(lo, hi int)
}

var q8Jobs = sync.Pool{New: func() any {
	j := new(q8Job)
	j.actRange = j.quantizeActs
	j.genericRange = j.runGeneric
	j.fastRange = j.runFast
	return j
}}

func getQ8Job(dst, x []float32, T, in, out int) *q8Job {
	j := q8Jobs.Get().(*q8Job)
	j.dst, j.x, j.T, j.in, j.out = dst, x, T, in, out
	j.rs, j.sc, j.mn, j.bf16 = nil, nil, nil, false
	return j
}

// release returns a job whose output stage a Group ran.
func (j *q8Job) release() { putQ8Job(j) }

func putQ8Job(j *q8Job) {
	j.dst, j.x, j.w, j.rs, j.sc, j.mn = nil, nil, nil, nil, nil, nil
	q8Jobs.Put(j)
}

// q8MatMul picks a path, quantizes the activations into its record layout,
// then runs it (or the twins), or queues that last stage in g (non-nil);
// it reports whether it was queued.
func q8MatMul(j *q8Job, g *Group) bool {
	if j.T == 0 || j.out == 0 {
		return false
	}
	if j.in == 0 {
		clear(j.dst[:j.T*j.out])
		return false
	}
	j.lay = actLayout{U: 64, pair: j.kind == q4Grp && j.group >= 64}
	j.fast, j.act = q8Kernel{}, 0
	q8Choose(j)
	j.inPad = (j.in + 63) &^ 63 // whole units: q8Choose picks 128-input units only when in%128 == 0
	j.rec = grow(j.rec, j.T*j.inPad)
	if j.T*j.in < serialWork/16 {
		j.quantizeActs(0, j.T)
	} else {
		ParallelFor(j.T, 1, j.actRange)
	}
	run, align := j.genericRange, 4
	if j.fast.id != 0 {
		run, align = j.fastRange, j.fast.R
	}
	// Weight bytes per row: quants, and a 16-bit scale (and min) per group
	// or one float32 per row.
	rowBytes := j.in + 4
	switch j.kind {
	case q8Blk:
		rowBytes = j.in + 2*j.in/j.group
	case q4Grp:
		rowBytes = j.in/2 + 2*j.in/j.group
		if j.mn != nil {
			rowBytes += 2 * j.in / j.group
		}
	}
	return g.add(groupItem{n: j.out, align: align, rowWork: j.T * j.in, rowBytes: rowBytes, run: run, job: j})
}

// actLayout says how a product's activation records are laid out and
// filled.
type actLayout struct {
	U    int   // inputs per record unit: 64, 32 for the 256-bit paths, 128 for AVX-512 int4
	perm bool  // 128-input units hold their blocks in the order 0, 2, 1, 3
	o    int32 // the weight offset the L lanes take out
	// pair quantizes activations in blocks of 64 (the int4 formats with
	// groups of 64 or more): blocks 2i and 2i+1 share one scale. With perm
	// as well, the pair's L and ef sums are kept in block 2i's lanes and
	// block 2i+1's are zero, since the AVX-512 int4 kernel adds the two
	// blocks' integer sums lane by lane before converting them.
	pair bool
}

// The activation record of one token, 4·inPad bytes, is a sequence of
// units of U inputs that the SIMD paths read with one pointer:
//
//	xq [U]int8     the quantized activations (zero past in)
//	dx [U/4]f32    lane l: dx of the block holding inputs 4l..4l+3
//	L  [U/4]i32    lane l: −o·Σ_{i<4} xq[4l+i]
//	ef [U/4]f32    lane l: dx·Σ_{i<4} xq[4l+i] (the mins' term)
//
// A lane is the 4 inputs one VPDPBUSD int32 lane sums. Each array holds
// the unit's blocks of 32 inputs (32 bytes each) in order, except that
// perm units hold them in the order 0, 2, 1, 3 (recPos), which is how the
// AVX-512 int4 kernel unpacks nibbles.

// quantizeActs quantizes tokens [lo, hi) of x into their records.
func (j *q8Job) quantizeActs(lo, hi int) {
	step := q8Block
	if j.lay.pair {
		step = 2 * q8Block
	}
	for t := lo; t < hi; t++ {
		rec := recBytes(j.rec[t*j.inPad : (t+1)*j.inPad])
		x := j.x[t*j.in : (t+1)*j.in]
		k0 := q8ActArch(j.act, rec, x, j.lay.o) // whole steps, when a fast path is chosen
		for ; k0 < j.inPad; k0 += step {
			quantizeActBlock(rec, x, k0, j.lay)
		}
	}
}

func recBytes(rec []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(rec))), 4*len(rec))
}

// quantizeActRow writes the whole record of one row x into rec (4·inPad
// bytes, inPad a multiple of 64 and ≥ len(x)), with the twin only.
func quantizeActRow(rec []byte, x []float32, lay actLayout) {
	step := q8Block
	if lay.pair {
		step = 2 * q8Block
	}
	for k0 := 0; k0 < len(rec)/4; k0 += step {
		quantizeActBlock(rec, x, k0, lay)
	}
}

// recPos returns the unit of the record that holds input k's block and the
// byte offset of the block within each of the unit's arrays.
func recPos(k int, lay actLayout) (u, off int) {
	u, b := k/lay.U, (k%lay.U)/q8Block
	if lay.perm {
		b = [4]int{0, 2, 1, 3}[b]
	}
	return u, q8Block * b
}

// quantizeActBlock writes the block of 32 inputs at k0 (64 with lay.pair;
// zero past len(x)) into the record. amax is taken over the |x| bit
// patterns, so NaN and Inf propagate into d and the outputs; an all-zero
// block gets d = 0 and xq = 0 (0·(127/0) is NaN, which converts to the
// integer 0x80000000, whose low byte is 0, exactly as VCVTPS2DQ + VPMOVDB
// give). Rounding to nearest even adds and subtracts 1.5·2²³ (exact for
// |v| ≤ 2²²; here |v| ≤ 127). The assembly versions (kernels/_gen/q8
// actQuant) equal this bit for bit.
func quantizeActBlock(rec []byte, x []float32, k0 int, lay actLayout) {
	const magic = 1.5 * (1 << 23)
	nb := 1
	if lay.pair {
		nb = 2
	}
	inPad := len(rec) / 4
	f32 := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(rec))), inPad)
	i32 := unsafe.Slice((*int32)(unsafe.Pointer(unsafe.SliceData(rec))), inPad)
	var xs []float32
	if k0 < len(x) {
		xs = x[k0:min(k0+nb*q8Block, len(x))]
	}
	var amaxBits uint32
	for _, v := range xs {
		amaxBits = max(amaxBits, math.Float32bits(v)&^(1<<31))
	}
	amax := math.Float32frombits(amaxBits)
	d, id := amax/127, 127/amax
	var sums [2][q8Block / 4]int32
	var base [2]int
	for h := range nb {
		var q [q8Block]int8
		for k := range q8Block {
			if kk := h*q8Block + k; kk < len(xs) {
				r := float32(float32(xs[kk]*id)+magic) - magic
				q[k] = int8(int32(r))
			}
		}
		u, i := recPos(k0+h*q8Block, lay)
		base[h] = 4*lay.U*u + i
		copy(rec[base[h]:base[h]+q8Block], unsafe.Slice((*byte)(unsafe.Pointer(&q[0])), q8Block))
		for l := range q8Block / 4 {
			sums[h][l] = int32(q[4*l]) + int32(q[4*l+1]) + int32(q[4*l+2]) + int32(q[4*l+3])
			f32[(base[h]+lay.U)/4+l] = d
		}
	}
	combine := lay.pair && lay.perm // the pair's sums in the first block's lanes, zeros in the second's
	if combine {
		for l := range q8Block / 4 {
			sums[0][l] += sums[1][l]
		}
	}
	for h := range nb {
		for l, s := range sums[h] {
			if combine && h == 1 {
				i32[(base[h]+2*lay.U)/4+l], f32[(base[h]+3*lay.U)/4+l] = 0, 0
				continue
			}
			i32[(base[h]+2*lay.U)/4+l] = -lay.o * s
			f32[(base[h]+3*lay.U)/4+l] = d * float32(s)
		}
	}
}

func abs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

// xqAt and dxAt read input k's quantized activation and block b's scale
// from token t's record.
func (j *q8Job) xqAt(t, k int) int8 {
	u, off := recPos(k, j.lay)
	return int8(recBytes(j.rec[t*j.inPad:])[4*j.lay.U*u+off+k%q8Block])
}

func (j *q8Job) dxAt(t, b int) float32 {
	u, off := recPos(b*q8Block, j.lay)
	return j.rec[t*j.inPad+(4*j.lay.U*u+j.lay.U+off)/4]
}

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
// int32 block sums, S_b = Σ_{k∈b} xq[k]:
//
//	Q8:    s[o] · Σ_b dx_b · Σ_{k∈b} q[k]·xq[k]
//	Q8B32: Σ_b (s_b·dx_b) · Σ_{k∈b} q[k]·xq[k]
//	Q4:    Σ_g Σ_{b∈g} (s_g·dx_b) · Σ_{k∈b} (q[k]−8)·xq[k]                 symmetric
//	       Σ_g Σ_{b∈g} [(s_g·dx_b) · Σ_{k∈b} q[k]·xq[k] + m_g·dx_b·S_b]   with mins
func q8DotGeneric(j *q8Job, o, t int) float32 {
	in := j.in
	var acc float32
	switch j.kind {
	case q8Row:
		w := j.w[o*in : (o+1)*in]
		for k0 := 0; k0 < in; k0 += q8Block {
			var dp int32
			for k := k0; k < min(k0+q8Block, in); k++ {
				dp += int32(int8(w[k])) * int32(j.xqAt(t, k))
			}
			acc += j.dxAt(t, k0/q8Block) * float32(dp)
		}
		return j.rs[o] * acc
	case q8Blk:
		w := j.w[o*in : (o+1)*in]
		sc := j.sc[o*in/32:]
		for b := 0; b < in/32; b++ {
			var dp int32
			for k := 32 * b; k < 32*b+32; k++ {
				dp += int32(int8(w[k])) * int32(j.xqAt(t, k))
			}
			acc += scaleAt(sc[b], j.bf16) * j.dxAt(t, b) * float32(dp)
		}
		return acc
	default: // q4Grp
		w := j.w[o*in/2 : (o+1)*in/2]
		G, ng := j.group, in/j.group
		off := int32(8)
		if j.mn != nil {
			off = 0
		}
		for g := range ng {
			s := scaleAt(j.sc[o*ng+g], j.bf16)
			for k0 := g * G; k0 < (g+1)*G; k0 += q8Block {
				var dp, sx int32
				for k := k0; k < k0+q8Block; k++ {
					x := int32(j.xqAt(t, k))
					dp += (int32(q4At(w, k)) - off) * x
					sx += x
				}
				dx := j.dxAt(t, k0/q8Block)
				acc += s * dx * float32(dp)
				if j.mn != nil {
					acc += scaleAt(j.mn[o*ng+g], j.bf16) * dx * float32(sx)
				}
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

// q8Args are a fast kernel's arguments (layout shared with
// kernels/_gen/q8: a test checks the offsets).
type q8Args struct {
	w    unsafe.Pointer // row 0's quants
	ldw  int            // bytes between rows' quants
	sc   unsafe.Pointer // row 0's scales: float32 per row (Q8) or 16-bit per group
	lds  int            // bytes between rows' scales (and mins)
	mn   unsafe.Pointer // row 0's mins (int4 with mins)
	act  unsafe.Pointer // token 0's activation record
	ldt  int            // bytes between tokens' records
	dst  unsafe.Pointer // dst[t0][o0]
	ldd  int            // bytes between tokens' dst rows
	n    int            // loop steps
	tail uint64         // byte mask of a last partial 64-input step (AVX-512 int8), else 0
	T    int            // tokens, 1..maxT
	idx  *int32         // q4IdxTable of the group size (AVX-512 int4, one token)

	rsc [4]float32 // the row scales (q8Row) of a call whose rows lie a page apart
}

// q4IdxTable holds, per int4 group size, the VPERMPS indices with which the
// one-token AVX-512 int4 kernel spreads a window of 16 converted scales
// over its steps of 128 inputs (kernels/_gen/q8 bodyQ4ZT1). A step's two
// halves see blocks (0, 2) in lanes 0–7 and 8–15, then (1, 3), so step j
// takes groups:
//
//	G=32:  lo [4j, 4j+2], hi [4j+1, 4j+3]   (4 steps per window)
//	G=64:  [2j, 2j+1] for both halves       (8 steps)
//	G=128: [j, j] for both halves           (16 steps)
var q4IdxTable = func() (t [3][256]int32) {
	for j := range 4 {
		for l := range 16 {
			t[0][32*j+l] = int32(4*j + 2*(l/8))
			t[0][32*j+16+l] = int32(4*j + 1 + 2*(l/8))
		}
	}
	for j := range 8 {
		for l := range 16 {
			t[1][16*j+l] = int32(2*j + l/8)
		}
	}
	for j := range 16 {
		for l := range 16 {
			t[2][16*j+l] = int32(j)
		}
	}
	return t
}()

// q8Kernel is one fast kernel (q8Call's id; 0 = none): R rows × up to
// maxT tokens per call, step inputs per loop step.
type q8Kernel struct {
	id, R, maxT, step int
}

// q8TokenBlock is the activation bytes a thread keeps hot while it sweeps
// its rows (prefill): tokens are taken in blocks of about this size.
const q8TokenBlock = 512 << 10

// runFast computes outputs [lo, hi) with j.fast: row groups of R, tokens in
// groups of maxT, in token blocks so the records stay in cache; leftover
// rows (out not a multiple of R) run on the twin.
func (j *q8Job) runFast(lo, hi int) {
	k := j.fast
	rowBytes := j.in
	if j.kind == q4Grp {
		rowBytes = j.in / 2
	}
	ng := j.in / j.group
	ldt := 4 * j.inPad
	tb := max(q8TokenBlock/ldt/k.maxT, 1) * k.maxT
	var a q8Args
	a.ldw, a.ldt, a.ldd = rowBytes, ldt, 4*j.out
	a.n = j.in / k.step
	if j.kind == q4Grp {
		a.idx = &q4IdxTable[bits.TrailingZeros(uint(j.group))-5][0]
	}
	if rem := j.in % k.step; rem != 0 {
		a.tail = 1<<rem - 1
	}
	rows := lo + (hi-lo)/k.R*k.R
	for t0 := 0; t0 < j.T; t0 += tb {
		t1 := min(t0+tb, j.T)
		o := lo
		if p := rowsPerPage(rowBytes); p > 1 {
			// Rows shorter than a page meet the rows a page apart, as
			// the skinny kernels do (rowsPerPage); the kernels read a
			// call's R float32 row scales (q8Row) side by side, so
			// those are copied together first. 1024-wide q8b32 rows,
			// 128 MiB on 2 cores of a Xeon: 22.2 → 25.5 GB/s.
			ldw, lds := a.ldw, a.lds
			a.ldw, a.lds = p*rowBytes, 2*ng*p
			for ; o+k.R*p <= rows; o += k.R * p {
				for q := range p {
					r := o + q
					a.w = unsafe.Pointer(&j.w[r*rowBytes])
					if j.kind == q8Row {
						for i := range k.R {
							a.rsc[i] = j.rs[r+i*p]
						}
						a.sc = unsafe.Pointer(&a.rsc[0])
					} else {
						a.sc = unsafe.Pointer(&j.sc[r*ng])
					}
					if j.mn != nil {
						a.mn = unsafe.Pointer(&j.mn[r*ng])
					}
					for t := t0; t < t1; t += k.maxT {
						a.T = min(k.maxT, t1-t)
						a.act = unsafe.Pointer(&j.rec[t*j.inPad])
						a.dst = unsafe.Pointer(&j.dst[t*j.out+o+q*k.R])
						q8Call(k.id, &a)
					}
				}
				orderPageApart(j.dst[t0*j.out:], t1-t0, j.out, o, k.R, p)
			}
			a.ldw, a.lds = ldw, lds
		}
		for ; o < rows; o += k.R {
			a.w = unsafe.Pointer(&j.w[o*rowBytes])
			switch j.kind {
			case q8Row:
				a.sc = unsafe.Pointer(&j.rs[o])
			default:
				a.sc, a.lds = unsafe.Pointer(&j.sc[o*ng]), 2*ng
				if j.mn != nil {
					a.mn = unsafe.Pointer(&j.mn[o*ng])
				}
			}
			for t := t0; t < t1; t += k.maxT {
				a.T = min(k.maxT, t1-t)
				a.act = unsafe.Pointer(&j.rec[t*j.inPad])
				a.dst = unsafe.Pointer(&j.dst[t*j.out+o])
				q8Call(k.id, &a)
			}
		}
	}
	if rows < hi {
		j.runGeneric(rows, hi)
	}
}
