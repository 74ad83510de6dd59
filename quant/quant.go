// Package quant is the table of weight element formats Lightning can compute
// with: their block layout, their reference dequantisation, and their names in
// checkpoint files. It is a table, not a type hierarchy (ggml's type_traits,
// gemma's Type enum): a new format is one more row.
package quant

import (
	"encoding/binary"
	"fmt"
	"math"

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
)

// Format describes one weight format.
type Format struct {
	Name       string // checkpoint spelling, e.g. "BF16"
	BlockLen   int    // elements per block
	BlockBytes int    // bytes per block
	// Dequant widens whole blocks: len(dst) elements (a multiple of BlockLen)
	// from len(dst)/BlockLen·BlockBytes bytes of src. It is the reference
	// semantics every fast path is tested against.
	Dequant func(dst []float32, src []byte)
}

var formats = [...]Format{
	F32:  {Name: "F32", BlockLen: 1, BlockBytes: 4, Dequant: dequantF32},
	BF16: {Name: "BF16", BlockLen: 1, BlockBytes: 2, Dequant: dequantBF16},
	F16:  {Name: "F16", BlockLen: 1, BlockBytes: 2, Dequant: dequantF16},
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

// RowBytes returns the bytes of one row of n elements, or an error when n is
// not a whole number of blocks.
func (t Type) RowBytes(n int) (int, error) {
	f := t.Info()
	if n%f.BlockLen != 0 {
		return 0, fmt.Errorf("quant: %s rows must be a multiple of %d elements, got %d", f.Name, f.BlockLen, n)
	}
	return n / f.BlockLen * f.BlockBytes, nil
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
