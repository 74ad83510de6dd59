// Package tensor holds typed views of weight matrices and the matrix product
// that dispatches on their format. A Mat loaded from a checkpoint never owns
// a copy of its data: Data (and Scales, Mins) are normally views into a
// memory-mapped file. Quantize makes an owned quantized copy (on-the-fly
// quantization at load).
package tensor

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/quant"
)

// Mat is a weight matrix [Rows, Cols] stored row-major in format Type, as a
// PyTorch nn.Linear keeps it: Rows = output features, Cols = input features.
// A quantized matrix keeps its scales (and mins) apart from its quants
// (quant's package comment has the layouts).
type Mat struct {
	Rows, Cols int
	Type       quant.Type
	Data       []byte     // Rows · RowBytes(Cols) bytes: elements, or quants
	Scales     []byte     // quantized types: Rows · ScalesPerRow(Cols) scales of ScaleType
	Mins       []byte     // formats with mins: like Scales; else nil
	ScaleType  quant.Type // quantized types: F32 (q8) or F16/BF16
}

// NewMat checks that data holds exactly a [rows, cols] matrix of float type
// t and returns the view. Data whose address is not aligned to the element
// size is copied once into an aligned buffer (safetensors does not promise
// alignment).
func NewMat(rows, cols int, t quant.Type, data []byte) (Mat, error) {
	if t.Quantized() {
		return Mat{}, fmt.Errorf("tensor: %s [%d, %d] is quantized: it needs its scales (NewQMat)", t, rows, cols)
	}
	rb, err := t.RowBytes(cols)
	if err != nil {
		return Mat{}, err
	}
	if rows < 0 || cols < 0 || len(data) != rows*rb {
		return Mat{}, fmt.Errorf("tensor: %s [%d, %d] needs %d bytes, have %d", t, rows, cols, rows*rb, len(data))
	}
	return Mat{Rows: rows, Cols: cols, Type: t, Data: aligned(data, t.Info().BlockBytes)}, nil
}

// NewQMat checks that q, scales and mins hold exactly a [rows, cols] matrix
// of quantized type t with scales of type st, and returns the view. The
// errors name what is wrong (quant bytes, scale count, missing or extra
// mins, scale type) so a corrupted checkpoint fails at load.
func NewQMat(rows, cols int, t quant.Type, q, scales, mins []byte, st quant.Type) (Mat, error) {
	if !t.Quantized() {
		return Mat{}, fmt.Errorf("tensor: %s is not a quantized type", t)
	}
	if !t.ScaleTypeOK(st) {
		return Mat{}, fmt.Errorf("tensor: %s scales cannot be %s (q8 takes F32, the block formats F16 or BF16, the ggml formats none)", t, st)
	}
	if rows < 0 || cols < 0 {
		return Mat{}, fmt.Errorf("tensor: %s shape [%d, %d]", t, rows, cols)
	}
	rb, err := t.RowBytes(cols)
	if err != nil {
		return Mat{}, err
	}
	if len(q) != rows*rb {
		return Mat{}, fmt.Errorf("tensor: %s [%d, %d] needs %d bytes of quants, have %d", t, rows, cols, rows*rb, len(q))
	}
	if t.Info().Inline { // ggml blocks carry their scales: the bytes are the whole matrix
		if scales != nil || mins != nil {
			return Mat{}, fmt.Errorf("tensor: %s keeps its scales inside its blocks; none can be given apart", t)
		}
		return Mat{Rows: rows, Cols: cols, Type: t, Data: q}, nil
	}
	ns := rows * t.ScalesPerRow(cols)
	esz := st.Info().BlockBytes
	if len(scales) != ns*esz {
		return Mat{}, fmt.Errorf("tensor: %s [%d, %d] needs %d scales (%d per row), have %d", t, rows, cols, ns, t.ScalesPerRow(cols), len(scales)/esz)
	}
	if t.Info().Mins != (mins != nil) {
		if mins == nil {
			return Mat{}, fmt.Errorf("tensor: %s needs mins, have none", t)
		}
		return Mat{}, fmt.Errorf("tensor: %s has no mins, but %d bytes were given", t, len(mins))
	}
	if mins != nil && len(mins) != len(scales) {
		return Mat{}, fmt.Errorf("tensor: %s [%d, %d] needs %d mins, have %d", t, rows, cols, ns, len(mins)/esz)
	}
	m := Mat{Rows: rows, Cols: cols, Type: t, Data: q, Scales: aligned(scales, esz), ScaleType: st}
	if mins != nil {
		m.Mins = aligned(mins, esz)
	}
	return m, nil
}

// aligned returns data, or an aligned copy when its address is not a
// multiple of min(align, 8).
func aligned(data []byte, align int) []byte {
	if align <= 1 || len(data) == 0 || uintptr(unsafe.Pointer(&data[0]))%uintptr(min(align, 8)) == 0 {
		return data
	}
	buf := make([]uint64, (len(data)+7)/8)
	out := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(data))
	copy(out, data)
	return out
}

// Quantize returns a quantized copy of the float matrix m in format t with
// scales of type st, quantizing rows in parallel on the kernels' pool. The
// result is identical, byte for byte, to quantizing each row with
// quant.Type.QuantizeRow, whatever the thread count.
func Quantize(m Mat, t quant.Type, st quant.Type) (Mat, error) {
	if m.Type.Quantized() {
		return Mat{}, fmt.Errorf("tensor: quantize %s to %s: already quantized", m.Type, t)
	}
	if !t.Quantized() || !t.ScaleTypeOK(st) {
		return Mat{}, fmt.Errorf("tensor: cannot quantize to %s with %s scales", t, st)
	}
	rb, err := t.RowBytes(m.Cols)
	if err != nil {
		return Mat{}, err
	}
	ns := t.ScalesPerRow(m.Cols)
	sb := ns * st.Info().BlockBytes
	out := Mat{Rows: m.Rows, Cols: m.Cols, Type: t, ScaleType: st,
		Data: make([]byte, m.Rows*rb), Scales: aligned8(m.Rows * sb)}
	if t.Info().Mins {
		out.Mins = aligned8(m.Rows * sb)
	}
	var mu sync.Mutex
	var firstErr error
	kernels.ParallelFor(m.Rows, 1, func(lo, hi int) {
		buf := make([]float32, m.Cols)
		for r := lo; r < hi; r++ {
			Row(buf, m, r)
			var mn []byte
			if out.Mins != nil {
				mn = out.Mins[r*sb : (r+1)*sb]
			}
			if err := t.QuantizeRow(out.Data[r*rb:(r+1)*rb], out.Scales[r*sb:(r+1)*sb], mn, st, buf); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("row %d: %w", r, err)
				}
				mu.Unlock()
				return
			}
		}
	})
	if firstErr != nil {
		return Mat{}, firstErr
	}
	return out, nil
}

func aligned8(n int) []byte {
	if n == 0 {
		return nil
	}
	buf := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), n)
}

// Bytes is the size of the matrix data, scales and mins included: what a
// product reads.
func (m Mat) Bytes() int { return len(m.Data) + len(m.Scales) + len(m.Mins) }

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
	if m.Type != quant.BF16 && m.Type != quant.F16 && m.Type != quant.BF16Dot {
		panic("tensor: 16-bit view of a matrix that is not BF16/F16")
	}
	if len(m.Data) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&m.Data[0])), len(m.Data)/2)
}

// MatMul computes dst[T, m.Rows] = x[T, m.Cols] · mᵀ, accumulating in float32
// whatever the weight format (Lightning's quantized formats quantize x to
// int8 blocks on the fly, the ggml block formats dequantize weight rows:
// quant.Type.MatMul).
func MatMul(dst, x []float32, T int, m Mat) {
	m.Type.MatMul(dst, x, T, m.Cols, m.Rows, quant.Weights{Q: m.Data, Scales: m.Scales, Mins: m.Mins, ScaleType: m.ScaleType})
}

// MatMulGroup is MatMul with the product added to g, computed by g.Run
// (kernels.Group); a nil g runs it at once.
func MatMulGroup(g *kernels.Group, dst, x []float32, T int, m Mat) {
	m.Type.MatMulGroup(g, dst, x, T, m.Cols, m.Rows, quant.Weights{Q: m.Data, Scales: m.Scales, Mins: m.Mins, ScaleType: m.ScaleType})
}

// SplitMinRows is the fewest rows each piece must have when the rows of a
// product with m are cut into pieces computed as separate products that
// must give bitwise the whole product's rows (kernels.SplitMinRows); 0 means
// the product must not be cut (the quantized formats choose their kernels
// by the number of rows without that promise).
func (m Mat) SplitMinRows() int {
	switch m.Type {
	case quant.F32:
		return kernels.SplitMinRows(4, m.Cols)
	case quant.BF16, quant.F16, quant.BF16Dot:
		return kernels.SplitMinRows(2, m.Cols)
	}
	return 0
}

// Row writes row i of m, widened (or dequantized) to float32, into dst
// (len m.Cols).
func Row(dst []float32, m Mat, i int) {
	rb := len(m.Data) / max(m.Rows, 1)
	q := m.Data[i*rb : (i+1)*rb]
	if !m.Type.Quantized() {
		m.Type.Info().Dequant(dst[:m.Cols], q)
		return
	}
	sb := len(m.Scales) / max(m.Rows, 1)
	var mn []byte
	if m.Mins != nil {
		mn = m.Mins[i*sb : (i+1)*sb]
	}
	m.Type.DequantRow(dst[:m.Cols], q, m.Scales[i*sb:(i+1)*sb], mn, m.ScaleType)
}
