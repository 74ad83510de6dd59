package gguf

import "fmt"

// Type is a ggml tensor element type, numbered as in ggml.h (enum ggml_type).
// Numbers missing from the table were retired by ggml and are rejected.
type Type uint32

// The ggml types this package knows by name (their layouts; the arithmetic
// of the quantized ones is in package quant).
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

// TypeInfo is one row of the type table: the block layout of ggml-common.h.
// A block of BlockLen consecutive elements of a row is stored in BlockBytes
// bytes; a row's element count must be a multiple of BlockLen.
type TypeInfo struct {
	Name       string
	BlockLen   int
	BlockBytes int
}

// Block layouts (ggml-common.h). d, dmin, m are IEEE binary16 unless noted;
// package quant's ggml.go describes how the quants are packed.
//
//	type   elems  bytes  layout
//	Q4_0   32     18     d, qs[16]
//	Q4_1   32     20     d, m, qs[16]
//	Q5_0   32     22     d, qh[4], qs[16]
//	Q5_1   32     24     d, m, qh[4], qs[16]
//	Q8_0   32     34     d, qs[32] int8
//	Q8_1   32     36     d, s, qs[32] int8
//	Q2_K   256    84     scales[16], qs[64], d, dmin
//	Q3_K   256    110    hmask[32], qs[64], scales[12], d
//	Q4_K   256    144    d, dmin, scales[12], qs[128]
//	Q5_K   256    176    d, dmin, scales[12], qh[32], qs[128]
//	Q6_K   256    210    ql[128], qh[64], scales[16] int8, d
//	Q8_K   256    292    d (F32), qs[256] int8, bsums[16] int16
var types = map[Type]TypeInfo{
	F32:     {"F32", 1, 4},
	F16:     {"F16", 1, 2},
	BF16:    {"BF16", 1, 2},
	F64:     {"F64", 1, 8},
	I8:      {"I8", 1, 1},
	I16:     {"I16", 1, 2},
	I32:     {"I32", 1, 4},
	I64:     {"I64", 1, 8},
	Q4_0:    {"Q4_0", 32, 18},
	Q4_1:    {"Q4_1", 32, 20},
	Q5_0:    {"Q5_0", 32, 22},
	Q5_1:    {"Q5_1", 32, 24},
	Q8_0:    {"Q8_0", 32, 34},
	Q8_1:    {"Q8_1", 32, 36},
	Q2_K:    {"Q2_K", 256, 84},
	Q3_K:    {"Q3_K", 256, 110},
	Q4_K:    {"Q4_K", 256, 144},
	Q5_K:    {"Q5_K", 256, 176},
	Q6_K:    {"Q6_K", 256, 210},
	Q8_K:    {"Q8_K", 256, 292},
	IQ2_XXS: {"IQ2_XXS", 256, 66},
	IQ2_XS:  {"IQ2_XS", 256, 74},
	IQ3_XXS: {"IQ3_XXS", 256, 98},
	IQ1_S:   {"IQ1_S", 256, 50},
	IQ4_NL:  {"IQ4_NL", 32, 18},
	IQ3_S:   {"IQ3_S", 256, 110},
	IQ2_S:   {"IQ2_S", 256, 82},
	IQ4_XS:  {"IQ4_XS", 256, 136},
	IQ1_M:   {"IQ1_M", 256, 56},
	TQ1_0:   {"TQ1_0", 256, 54},
	TQ2_0:   {"TQ2_0", 256, 66},
	MXFP4:   {"MXFP4", 32, 17},
}

// Info returns the table row of t, and whether t is a known type.
func (t Type) Info() (TypeInfo, bool) {
	i, ok := types[t]
	return i, ok
}

// String returns the ggml name of t ("Q4_K"), or "type(N)" for an unknown
// number.
func (t Type) String() string {
	if i, ok := types[t]; ok {
		return i.Name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// TypeByName returns the type called name (case as in ggml: "Q8_0").
func TypeByName(name string) (Type, bool) {
	for t, i := range types {
		if i.Name == name {
			return t, true
		}
	}
	return 0, false
}

// RowBytes returns the bytes of a row of n elements, or an error when n is
// not a whole number of blocks or t is unknown.
func (t Type) RowBytes(n int) (int, error) {
	i, ok := types[t]
	if !ok {
		return 0, fmt.Errorf("unknown ggml type %d", uint32(t))
	}
	if n%i.BlockLen != 0 {
		return 0, fmt.Errorf("%s rows must be a multiple of %d elements, got %d", i.Name, i.BlockLen, n)
	}
	return n / i.BlockLen * i.BlockBytes, nil
}
