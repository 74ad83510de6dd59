// Package tensor holds typed views of weight matrices and the matrix product
// that dispatches on their format. A Mat never owns a copy of a checkpoint's
// data: Data is normally a view into a memory-mapped file.
package tensor

import (
	"fmt"
	"unsafe"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/quant"
)

// Mat is a weight matrix [Rows, Cols] stored row-major in format Type, as a
// PyTorch nn.Linear keeps it: Rows = output features, Cols = input features.
type Mat struct {
	Rows, Cols int
	Type       quant.Type
	Data       []byte // Rows · RowBytes(Cols) bytes
}

// NewMat checks that data holds exactly a [rows, cols] matrix of type t and
// returns the view. Data whose address is not aligned to the element size is
// copied once into an aligned buffer (safetensors does not promise alignment).
func NewMat(rows, cols int, t quant.Type, data []byte) (Mat, error) {
	rb, err := t.RowBytes(cols)
	if err != nil {
		return Mat{}, err
	}
	if rows < 0 || cols < 0 || len(data) != rows*rb {
		return Mat{}, fmt.Errorf("tensor: %s [%d, %d] needs %d bytes, have %d", t, rows, cols, rows*rb, len(data))
	}
	if align := t.Info().BlockBytes; align > 1 && len(data) > 0 && uintptr(unsafe.Pointer(&data[0]))%uintptr(min(align, 8)) != 0 {
		buf := make([]uint64, (len(data)+7)/8)
		aligned := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(data))
		copy(aligned, data)
		data = aligned
	}
	return Mat{Rows: rows, Cols: cols, Type: t, Data: data}, nil
}

// Bytes is the size of the matrix data.
func (m Mat) Bytes() int { return len(m.Data) }

// F32 views the data of an F32 matrix as float32s.
func (m Mat) F32() []float32 {
	if m.Type != quant.F32 {
		panic("tensor: F32 view of a non-F32 matrix")
	}
	if len(m.Data) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&m.Data[0])), len(m.Data)/4)
}

// U16 views the data of a BF16 or F16 matrix as raw 16-bit words.
func (m Mat) U16() []uint16 {
	if m.Type != quant.BF16 && m.Type != quant.F16 {
		panic("tensor: 16-bit view of a matrix that is not BF16/F16")
	}
	if len(m.Data) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&m.Data[0])), len(m.Data)/2)
}

// MatMul computes dst[T, m.Rows] = x[T, m.Cols] · mᵀ, accumulating in float32
// whatever the weight format.
func MatMul(dst, x []float32, T int, m Mat) {
	switch m.Type {
	case quant.F32:
		kernels.MatMulF32(dst, x, m.F32(), T, m.Cols, m.Rows)
	case quant.BF16:
		kernels.MatMulBF16(dst, x, m.U16(), T, m.Cols, m.Rows)
	case quant.F16:
		kernels.MatMulF16(dst, x, m.U16(), T, m.Cols, m.Rows)
	default:
		panic("tensor: MatMul on unsupported format " + m.Type.String())
	}
}

// Row writes row i of m, widened to float32, into dst (len m.Cols).
func Row(dst []float32, m Mat, i int) {
	rb := len(m.Data) / max(m.Rows, 1)
	m.Type.Info().Dequant(dst[:m.Cols], m.Data[i*rb:(i+1)*rb])
}
