package safetensors

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// unsafePointer returns the address of b's first byte.
func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func TestDTypeSize(t *testing.T) {
	for d, want := range map[DType]int{
		F64: 8, F32: 4, F16: 2, BF16: 2, F8E4M3: 1, F8E5M2: 1, F8E8M0: 1, I64: 8, I32: 4, I16: 2, I8: 1,
		U64: 8, U32: 4, U16: 2, U8: 1, Bool: 1, "F4": 0, "": 0, "f32": 0,
	} {
		if got := d.Size(); got != want {
			t.Errorf("%q.Size() = %d, want %d", d, got, want)
		}
	}
	if F8E4M3 != "F8_E4M3" || F8E5M2 != "F8_E5M2" || Bool != "BOOL" {
		t.Error("header spellings of F8_E4M3, F8_E5M2 or BOOL are wrong")
	}
}

func TestTypedViews(t *testing.T) {
	// Values chosen with distinct bytes so a byte-order or offset slip shows.
	f32 := []float32{1.5, -2.25, float32(math.Inf(1)), 3.0e-39}
	i64 := []int64{-1, 1 << 40, 0x0102030405060708}
	i32 := []int32{-7, 1 << 30, 0x01020304}
	u16 := []uint16{0x3f80, 0xbf80, 0x0102}

	// Place each tensor at offset 1 of a buffer as well, to take the copying
	// path for misaligned data.
	for _, misalign := range []int{0, 1} {
		mk := func(d DType, shape []int, b []byte) Tensor {
			buf := make([]byte, misalign+len(b))
			copy(buf[misalign:], b)
			return Tensor{Name: "t", DType: d, Shape: shape, Data: buf[misalign:]}
		}
		var b []byte
		for _, v := range f32 {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		if got := mk(F32, []int{2, 2}, b).F32(); !slices.Equal(got, f32) {
			t.Errorf("misalign %d: F32 = %v, want %v", misalign, got, f32)
		}
		b = nil
		for _, v := range i64 {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
		if got := mk(I64, []int{3}, b).I64(); !slices.Equal(got, i64) {
			t.Errorf("misalign %d: I64 = %v, want %v", misalign, got, i64)
		}
		b = nil
		for _, v := range i32 {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		}
		if got := mk(I32, []int{3}, b).I32(); !slices.Equal(got, i32) {
			t.Errorf("misalign %d: I32 = %v, want %v", misalign, got, i32)
		}
		b = nil
		for _, v := range u16 {
			b = binary.LittleEndian.AppendUint16(b, v)
		}
		for _, d := range []DType{BF16, F16, U16} {
			if got := mk(d, []int{3}, b).U16(); !slices.Equal(got, u16) {
				t.Errorf("misalign %d: %s U16 = %v, want %v", misalign, d, got, u16)
			}
		}
	}

	aligned := make([]float32, 4)
	tn := Tensor{DType: F32, Shape: []int{4}, Data: unsafe.Slice((*byte)(unsafe.Pointer(&aligned[0])), 16)}
	if v := tn.F32(); &v[0] != &aligned[0] {
		t.Error("F32 of aligned data copied it; want a view")
	}
	if v := (Tensor{DType: F32, Shape: []int{0}}).F32(); len(v) != 0 {
		t.Errorf("empty tensor: F32 = %v, want empty", v)
	}
}

func TestTypedViewPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func()
		want string
	}{
		{"F32 of BF16", func() { Tensor{Name: "w", DType: BF16, Shape: []int{1}, Data: make([]byte, 2), File: "f"}.F32() }, `tensor "w" (f) has dtype BF16`},
		{"U16 of F32", func() { Tensor{Name: "w", DType: F32, Shape: []int{1}, Data: make([]byte, 4)}.U16() }, "has dtype F32"},
		{"I64 of I32", func() { Tensor{Name: "w", DType: I32, Shape: []int{1}, Data: make([]byte, 4)}.I64() }, "has dtype I32"},
		{"I32 of U32", func() { Tensor{Name: "w", DType: U32, Shape: []int{1}, Data: make([]byte, 4)}.I32() }, "has dtype U32"},
		{"short data", func() { Tensor{Name: "w", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}.F32() }, "4 data bytes for shape [2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if msg, _ := r.(string); !strings.Contains(msg, tc.want) {
					t.Errorf("panic %v, want one containing %q", r, tc.want)
				}
			}()
			tc.call()
		})
	}
}

func TestNumElements(t *testing.T) {
	for _, tc := range []struct {
		shape []int
		want  int
	}{{nil, 1}, {[]int{}, 1}, {[]int{3}, 3}, {[]int{2, 0, 5}, 0}, {[]int{2, 3, 4}, 24}} {
		if got := (Tensor{Shape: tc.shape}).NumElements(); got != tc.want {
			t.Errorf("NumElements of %v = %d, want %d", tc.shape, got, tc.want)
		}
	}
}
