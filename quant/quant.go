// Package quant is the table of weight element formats Lightning can compute
// with: their block layout, their reference quantisation and dequantisation,
// their matrix product, and their names in checkpoint files. It is a table,
// not a type hierarchy (ggml's type_traits, gemma's Type enum): a new format
// is one more row.
//
// # Quantized formats
//
// A quantized matrix [rows, cols] is stored as two or three arrays: the
// quants, the scales, and for the formats with mins the mins. Values are
// w = s·q (int8), w = s·(q−8) (symmetric int4) or w = s·q + m (int4 with
// mins), s and m being the scale and min of the element's group:
//
//	format  quants               scale per         scale type    bits/weight
//	q8      int8 [rows, cols]    row               F32           8 (+32/cols)
//	q8b32   int8 [rows, cols]    32 elements       F16 or BF16   8.5
//	q4gG    uint8 [rows, cols/2] G = 32, 64, 128   F16 or BF16   4 + 16/G
//	q4gGm   uint8 [rows, cols/2] G, plus a min     F16 or BF16   4 + 32/G
//
// int8 quants lie in [−127, 127]; int4 quants in [0, 15], packed two per
// byte in chunks of 64 elements: byte 32c+j of a row holds element 64c+j in
// its low nibble and element 64c+32+j in its high nibble (j < 32), so int4
// rows are a multiple of 64 elements (the SIMD kernels unpack a chunk with
// one shift and two masks).
//
// The ggml block formats of GGUF files (Q4_0 … Q6_K, ggml.go) keep their
// scales inside each block instead; Lightning reads and computes with them
// but does not produce them.
//
// # Checkpoint naming
//
// A quantized checkpoint (written by `lightning quantize`) keeps every
// tensor name of its source. A quantized weight NAME becomes:
//
//	NAME        the quants: I8 [rows, cols] (q8, q8b32) or U8 [rows, cols/2] (q4*)
//	NAME_scale  the scales: F32 [rows] (q8) or F16/BF16 [rows, cols/G]
//	NAME_min    the mins (q4gGm only): same dtype and shape as NAME_scale
//
// Leading dimensions of stacked tensors (fused experts [E, rows, cols]) are
// kept on all three. config.json records the choice in
// "quantization_config" (see model/minimax01).
package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/lightninglm/lightning/kernels"
)

// Type identifies a weight format.
type Type uint8

// The formats. The zero value is invalid so a forgotten field is caught.
const (
	Invalid Type = iota
	F32          // IEEE binary32
	BF16         // bfloat16: the top half of a binary32
	F16          // IEEE binary16
	Q8           // int8, one F32 scale per row (per output channel), symmetric
	Q8B32        // int8 in blocks of 32, one F16/BF16 scale each (like llama.cpp Q8_0)
	Q4G32        // int4 in groups of 32, symmetric, F16/BF16 scales
	Q4G64        // int4 in groups of 64, symmetric
	Q4G128       // int4 in groups of 128, symmetric
	Q4G32M       // int4 in groups of 32 with a scale and a min each
	Q4G64M       // int4 in groups of 64 with mins
	Q4G128M      // int4 in groups of 128 with mins
	// BF16Dot is BF16 weights multiplied by the opt-in lossy path: the
	// activations are rounded to bfloat16 too and products use VDPBF16PS
	// (kernels.MatMulBF16Dot). It is a compute choice, never a file dtype.
	BF16Dot
	// ggml block formats, read from GGUF files and used in place (ggml.go).
	GQ4_0
	GQ4_1
	GQ5_0
	GQ5_1
	GQ8_0
	GQ4_K
	GQ5_K
	GQ6_K
)

// Format describes one weight format.
type Format struct {
	Name       string // checkpoint spelling: "F32", "BF16", "F16"; "q8", "q8b32", "q4g64", … for quantized formats
	BlockLen   int    // elements per block (per scale, for block-quantized formats; 1 for q8)
	BlockBytes int    // bytes of one block's elements or quants (scales are stored apart)
	// Dequant widens whole blocks of a float format: len(dst) elements from
	// len(dst)·BlockBytes/BlockLen bytes of src. It is nil for quantized
	// formats, which need their scales: see Type.DequantRow.
	Dequant func(dst []float32, src []byte)

	// Quantized formats only.
	Bits     int  // bits per quant: 8, 6, 5 or 4; 0 for float formats
	PerRow   bool // one scale per row instead of per block
	Inline   bool // ggml block format: scales (and mins) inside each block, none stored apart
	Mins     bool // a min per block: w = s·q + m
	RowAlign int  // a row's element count must be a multiple of this
	// quantize fills one row's quants and its float scales (and mins) from
	// x, rounding every scale with round (to the stored scale type) before
	// quantizing with it. dequant is its reference inverse, reading the
	// scales (and mins, nil if none) stored as st.
	quantize func(q []byte, s, m []float32, x []float32, round func(float32) float32)
	dequant  func(dst []float32, q, sc, mn []byte, st Type)

	// matMul is the product dst[T, out] = x[T, in] · wᵀ; for quantized
	// formats the activations are quantized to int8 on the fly (kernels).
	matMul func(g *kernels.Group, dst, x []float32, T, in, out int, w Weights)
}

// Weights are the bytes of a matrix in some format, as the product reads
// them: the elements (or quants), and for quantized formats the scales and
// mins, whose element type is ScaleType.
type Weights struct {
	Q         []byte
	Scales    []byte
	Mins      []byte
	ScaleType Type // F32, F16 or BF16
}

var formats = [...]Format{
	F32:  {Name: "F32", BlockLen: 1, BlockBytes: 4, Dequant: dequantF32, matMul: matMulF32},
	BF16: {Name: "BF16", BlockLen: 1, BlockBytes: 2, Dequant: dequantBF16, matMul: matMulBF16},
	F16:  {Name: "F16", BlockLen: 1, BlockBytes: 2, Dequant: dequantF16, matMul: matMulF16},

	Q8:    {Name: "q8", BlockLen: 1, BlockBytes: 1, Bits: 8, PerRow: true, RowAlign: 1, quantize: quantizeQ8Row, dequant: dequantQ8, matMul: matMulQ8},
	Q8B32: {Name: "q8b32", BlockLen: 32, BlockBytes: 32, Bits: 8, RowAlign: 32, quantize: quantizeQ8Blocks, dequant: dequantQ8, matMul: matMulQ8B32},

	Q4G32:   {Name: "q4g32", BlockLen: 32, BlockBytes: 16, Bits: 4, RowAlign: 64, quantize: quantizeQ4Sym, dequant: dequantQ4(32), matMul: matMulQ4(32, false)},
	Q4G64:   {Name: "q4g64", BlockLen: 64, BlockBytes: 32, Bits: 4, RowAlign: 64, quantize: quantizeQ4Sym, dequant: dequantQ4(64), matMul: matMulQ4(64, false)},
	Q4G128:  {Name: "q4g128", BlockLen: 128, BlockBytes: 64, Bits: 4, RowAlign: 128, quantize: quantizeQ4Sym, dequant: dequantQ4(128), matMul: matMulQ4(128, false)},
	Q4G32M:  {Name: "q4g32m", BlockLen: 32, BlockBytes: 16, Bits: 4, Mins: true, RowAlign: 64, quantize: quantizeQ4Min, dequant: dequantQ4(32), matMul: matMulQ4(32, true)},
	Q4G64M:  {Name: "q4g64m", BlockLen: 64, BlockBytes: 32, Bits: 4, Mins: true, RowAlign: 64, quantize: quantizeQ4Min, dequant: dequantQ4(64), matMul: matMulQ4(64, true)},
	BF16Dot: {Name: "BF16dot", BlockLen: 1, BlockBytes: 2, Dequant: dequantBF16, matMul: matMulBF16Dot},
	Q4G128M: {Name: "q4g128m", BlockLen: 128, BlockBytes: 64, Bits: 4, Mins: true, RowAlign: 128, quantize: quantizeQ4Min, dequant: dequantQ4(128), matMul: matMulQ4(128, true)},

	GQ4_0: ggmlB32Format("Q4_0", 18, 4, dequantQ4_0, kernels.Q4_0),
	GQ4_1: ggmlB32Format("Q4_1", 20, 4, dequantQ4_1, kernels.Q4_1),
	GQ5_0: ggmlB32Format("Q5_0", 22, 5, dequantQ5_0, kernels.Q5_0),
	GQ5_1: ggmlB32Format("Q5_1", 24, 5, dequantQ5_1, kernels.Q5_1),
	GQ8_0: ggmlB32Format("Q8_0", 34, 8, dequantQ8_0, kernels.Q8_0),
	GQ4_K: ggmlKFormat("Q4_K", 144, 4, dequantQ4_K, kernels.Q4K),
	GQ5_K: ggmlKFormat("Q5_K", 176, 5, dequantQ5_K, kernels.Q5K),
	GQ6_K: ggmlKFormat("Q6_K", 210, 6, dequantQ6_K, kernels.Q6K),
}

// Info returns the format table row of t; it panics for an unknown type.
func (t Type) Info() *Format {
	if t == Invalid || int(t) >= len(formats) || formats[t].Name == "" {
		panic(fmt.Sprintf("quant: unknown type %d", t))
	}
	return &formats[t]
}

// String returns the format's name.
func (t Type) String() string {
	if t == Invalid || int(t) >= len(formats) || formats[t].Name == "" {
		return fmt.Sprintf("Type(%d)", t)
	}
	return formats[t].Name
}

// Quantized reports whether t is a quantized (integer) format.
func (t Type) Quantized() bool { return t.Info().Bits != 0 }

// CanQuantize reports whether Lightning can produce t (QuantizeRow): the
// quantized formats except the ggml block formats, which it only reads.
func (t Type) CanQuantize() bool { return t.Info().quantize != nil }

// RowBytes returns the bytes of one row of n elements (the quants only, for
// quantized formats), or an error when n is not a whole number of blocks.
func (t Type) RowBytes(n int) (int, error) {
	f := t.Info()
	align := max(f.BlockLen, f.RowAlign)
	if n%align != 0 {
		return 0, fmt.Errorf("quant: %s rows must be a multiple of %d elements, got %d", f.Name, align, n)
	}
	return n / f.BlockLen * f.BlockBytes, nil
}

// ScalesPerRow returns the number of scales (and of mins, for formats with
// mins) of one row of n elements: 0 for float formats.
func (t Type) ScalesPerRow(n int) int {
	f := t.Info()
	switch {
	case f.Bits == 0 || f.Inline:
		return 0
	case f.PerRow:
		return 1
	}
	return n / f.BlockLen
}

// ScaleTypeOK reports whether st can hold t's scales: F32 for q8, F16 or
// BF16 for the block formats, Invalid (none) for the ggml block formats.
func (t Type) ScaleTypeOK(st Type) bool {
	f := t.Info()
	if f.Inline {
		return st == Invalid
	}
	if f.PerRow {
		return st == F32
	}
	return f.Bits != 0 && (st == F16 || st == BF16)
}

// BitsPerWeight returns the storage cost of a row of n elements in bits per
// element, scales and mins included (st is the scale type).
func (t Type) BitsPerWeight(n int, st Type) float64 {
	rb, err := t.RowBytes(n)
	if err != nil || n == 0 {
		return math.NaN()
	}
	sc := t.ScalesPerRow(n)
	if t.Info().Mins {
		sc *= 2
	}
	if sc > 0 && st != Invalid {
		rb += sc * st.Info().BlockBytes
	}
	return 8 * float64(rb) / float64(n)
}

// ByName returns the type whose checkpoint spelling is name.
func ByName(name string) (Type, bool) {
	for i, f := range formats {
		if f.Name == name && f.Name != "" {
			return Type(i), true
		}
	}
	return Invalid, false
}

// QuantizedNames lists the names of the quantized formats Lightning
// produces, in table order.
func QuantizedNames() []string {
	var out []string
	for _, f := range formats {
		if f.quantize != nil {
			out = append(out, f.Name)
		}
	}
	return out
}

// QuantizeRow quantizes one row x (n elements) into q (RowBytes(n) bytes)
// and its scales and mins (ScalesPerRow(n) values of st each; mn is nil
// for formats without mins). It fails on non-finite input or on a scale
// the scale type cannot hold.
func (t Type) QuantizeRow(q, sc, mn []byte, st Type, x []float32) error {
	f := t.Info()
	if f.quantize == nil {
		return fmt.Errorf("quant: cannot quantize to %s: Lightning reads it from GGUF files but does not produce it", t)
	}
	if !t.ScaleTypeOK(st) {
		return fmt.Errorf("quant: cannot quantize to %s with %s scales", t, st)
	}
	ns := t.ScalesPerRow(len(x))
	var buf [2 * 256]float32
	var s, m []float32
	if ns <= len(buf)/2 {
		s, m = buf[:ns], buf[ns:2*ns]
	} else {
		s, m = make([]float32, ns), make([]float32, ns)
	}
	if !f.Mins {
		m = nil
	}
	if !isFinite(maxAbs(x)) {
		for i, v := range x {
			if !isFinite(v) {
				return fmt.Errorf("quant: %s: element %d is %v", t, i, v)
			}
		}
	}
	f.quantize(q, s, m, x, roundTo(st))
	for i := range s {
		if !isFinite(s[i]) || (m != nil && !isFinite(m[i])) {
			return fmt.Errorf("quant: %s: scale %d overflows %s (values up to %g); use BF16 scales", t, i, st, maxAbs(x))
		}
	}
	putScales(sc, s, st)
	if m != nil {
		putScales(mn, m, st)
	}
	return nil
}

// DequantRow widens one quantized row (or a row of a float format, whose
// sc, mn and st are ignored) into dst: the reference semantics of the
// format.
func (t Type) DequantRow(dst []float32, q, sc, mn []byte, st Type) {
	f := t.Info()
	if f.Bits == 0 {
		f.Dequant(dst, q)
		return
	}
	if !f.Mins {
		mn = nil
	}
	f.dequant(dst, q, sc, mn, st)
}

// MatMul computes dst[T, out] = x[T, in] · wᵀ for a weight matrix [out, in]
// of format t, accumulating in float32. For the quantized formats it
// quantizes the activations per token to int8 first, in blocks of 32
// (kernels.MatMulQ8 and friends, and kernels.MatMulBlock32 for ggml's Q4_0,
// Q4_1, Q5_0, Q5_1 and Q8_0), 64 (Lightning's int4 with groups of 64 or
// more) or 256 (kernels.MatMulKQuant for ggml's Q4_K, Q5_K and Q6_K): an
// error of at most amax/254 per activation, amax being its block's largest
// |x|.
func (t Type) MatMul(dst, x []float32, T, in, out int, w Weights) {
	t.Info().matMul(nil, dst, x, T, in, out, w)
}

// MatMulGroup is MatMul with the product added to g, computed by g.Run
// (kernels.Group): several independent products then share one pool
// dispatch. A nil g runs it at once, as MatMul does.
func (t Type) MatMulGroup(g *kernels.Group, dst, x []float32, T, in, out int, w Weights) {
	t.Info().matMul(g, dst, x, T, in, out, w)
}

func roundTo(st Type) func(float32) float32 {
	switch st {
	case F16:
		return func(v float32) float32 { return kernels.HalfToFloat(kernels.FloatToHalf(v)) }
	case BF16:
		return func(v float32) float32 { return math.Float32frombits(uint32(kernels.RoundBF16(v)) << 16) }
	}
	return func(v float32) float32 { return v }
}

func putScales(dst []byte, s []float32, st Type) {
	for i, v := range s {
		switch st {
		case F32:
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		case F16:
			binary.LittleEndian.PutUint16(dst[2*i:], kernels.FloatToHalf(v))
		case BF16:
			binary.LittleEndian.PutUint16(dst[2*i:], kernels.RoundBF16(v))
		}
	}
}

// scaleAt widens scale i of sc, stored as st.
func scaleAt(sc []byte, i int, st Type) float32 {
	switch st {
	case F32:
		return math.Float32frombits(binary.LittleEndian.Uint32(sc[4*i:]))
	case BF16:
		return math.Float32frombits(uint32(binary.LittleEndian.Uint16(sc[2*i:])) << 16)
	}
	return kernels.HalfToFloat(binary.LittleEndian.Uint16(sc[2*i:]))
}

// maxAbs returns the largest |x| (NaN if x holds one): compared as bit
// patterns with the sign cleared, whose order is the order of |x|.
func maxAbs(x []float32) float32 {
	var m uint32
	for _, v := range x {
		m = max(m, math.Float32bits(v)&^(1<<31))
	}
	return math.Float32frombits(m)
}

func isFinite(v float32) bool { return math.Float32bits(v)&0x7f800000 != 0x7f800000 }

func dequantF32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func dequantBF16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

func dequantF16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = kernels.HalfToFloat(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// f32s and u16s view little-endian bytes as elements (the caller
// guarantees alignment: tensor.NewMat and NewQMat copy unaligned data).
func f32s(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func u16s(b []byte) []uint16 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}

func matMulF32(g *kernels.Group, dst, x []float32, T, in, out int, w Weights) {
	g.MatMulF32(dst, x, f32s(w.Q), T, in, out)
}

func matMulBF16(g *kernels.Group, dst, x []float32, T, in, out int, w Weights) {
	g.MatMulBF16(dst, x, u16s(w.Q), T, in, out)
}

func matMulBF16Dot(g *kernels.Group, dst, x []float32, T, in, out int, w Weights) {
	g.MatMulBF16Dot(dst, x, u16s(w.Q), T, in, out)
}

func matMulF16(g *kernels.Group, dst, x []float32, T, in, out int, w Weights) {
	g.MatMulF16(dst, x, u16s(w.Q), T, in, out)
}

func matMulQ8(g *kernels.Group, dst, x []float32, T, in, out int, w Weights) {
	g.MatMulQ8(dst, x, w.Q, f32s(w.Scales), T, in, out)
}

func matMulQ8B32(g *kernels.Group, dst, x []float32, T, in, out int, w Weights) {
	g.MatMulQ8B32(dst, x, w.Q, u16s(w.Scales), w.ScaleType == BF16, T, in, out)
}

// matMulQ4 returns the product of the int4 format with groups of group
// elements (and mins when mins).
func matMulQ4(group int, mins bool) func(g *kernels.Group, dst, x []float32, T, in, out int, w Weights) {
	return func(g *kernels.Group, dst, x []float32, T, in, out int, w Weights) {
		var mn []uint16
		if mins {
			mn = u16s(w.Mins)
		}
		g.MatMulQ4(dst, x, w.Q, u16s(w.Scales), mn, group, w.ScaleType == BF16, T, in, out)
	}
}
