package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// Tensor is one tensor of a file: its name, dtype, shape and raw little-endian
// bytes. Data is a read-only view into the file's mapping: writing to it
// faults, and it is invalid once the File (or Checkpoint) is closed.
type Tensor struct {
	Name  string
	DType DType
	Shape []int  // row-major (C order); empty for a scalar
	Data  []byte // len = NumElements() * DType.Size()
	File  string // path of the file it came from, for error messages
}

// NumElements returns the product of the shape (1 for a scalar).
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// F32 returns the elements of an F32 tensor. It panics if the dtype is not F32.
func (t Tensor) F32() []float32 {
	t.mustBe("F32", F32)
	return view(t, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) })
}

// U16 returns the raw 16-bit elements of a BF16, F16 or U16 tensor. It panics
// for any other dtype.
func (t Tensor) U16() []uint16 {
	t.mustBe("U16", BF16, F16, U16)
	return view(t, binary.LittleEndian.Uint16)
}

// I64 returns the elements of an I64 tensor. It panics if the dtype is not I64.
func (t Tensor) I64() []int64 {
	t.mustBe("I64", I64)
	return view(t, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) })
}

// I32 returns the elements of an I32 tensor. It panics if the dtype is not I32.
func (t Tensor) I32() []int32 {
	t.mustBe("I32", I32)
	return view(t, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) })
}

// mustBe panics unless t has one of the dtypes and a data length that matches
// its shape. A mismatch is a bug in the caller, which should have checked the
// dtype when it loaded the tensor.
func (t Tensor) mustBe(method string, want ...DType) {
	ok := false
	for _, d := range want {
		ok = ok || t.DType == d
	}
	if !ok {
		panic(fmt.Sprintf("safetensors: %s(): tensor %q (%s) has dtype %s, want one of %v", method, t.Name, t.File, t.DType, want))
	}
	if len(t.Data) != t.NumElements()*t.DType.Size() {
		panic(fmt.Sprintf("safetensors: %s(): tensor %q (%s): %d data bytes for shape %v of %s", method, t.Name, t.File, len(t.Data), t.Shape, t.DType))
	}
}

// littleEndian reports whether the host stores integers little-endian, as the
// file does; only then can the bytes be viewed in place.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// view reinterprets t.Data as a slice of E without copying. Files this package
// writes (and files written by the reference library) place every tensor at a
// multiple of its element size, so the view is normally in place; a tensor
// that is misaligned in its file, or any tensor on a big-endian host, is
// decoded into a fresh slice instead.
func view[E float32 | uint16 | int32 | int64](t Tensor, decode func([]byte) E) []E {
	var zero E
	size := int(unsafe.Sizeof(zero))
	n := len(t.Data) / size
	if n == 0 {
		return nil
	}
	p := unsafe.Pointer(unsafe.SliceData(t.Data))
	if littleEndian && uintptr(p)%unsafe.Alignof(zero) == 0 {
		return unsafe.Slice((*E)(p), n)
	}
	out := make([]E, n)
	for i := range out {
		out[i] = decode(t.Data[i*size:])
	}
	return out
}
