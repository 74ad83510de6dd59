package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// maxArrayDepth bounds nested arrays; ggml writes at most one level.
const maxArrayDepth = 4

// header is a parsed file before its tensors are attached to a File.
type header struct {
	version uint32
	meta    *Metadata
	tensors []Tensor
}

// reader walks the header with every read checked against the bytes left.
type reader struct {
	path string
	b    []byte
	off  int
	what string // what is being read, for error messages
}

func (r *reader) fail(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s: %s (at byte %d)", ErrFormat, r.path, r.what, fmt.Sprintf(format, args...), r.off)
}

func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, r.fail("needs %d bytes, %d left in the file", n, len(r.b)-r.off)
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

func (r *reader) u32() (uint32, error) {
	s, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s), nil
}

func (r *reader) u64() (uint64, error) {
	s, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

// count reads a uint64 count of items of at least minSize bytes each and
// checks that they can fit in what is left.
func (r *reader) count(minSize int) (int, error) {
	n, err := r.u64()
	if err != nil {
		return 0, err
	}
	if left := uint64(len(r.b) - r.off); n > left/uint64(minSize) {
		return 0, r.fail("count %d cannot fit in the %d bytes left", n, left)
	}
	return int(n), nil
}

func (r *reader) str() (string, error) {
	n, err := r.count(1)
	if err != nil {
		return "", err
	}
	s, err := r.take(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(s) {
		return "", r.fail("string is not valid UTF-8")
	}
	return string(s), nil
}

// parse validates a whole file held in data.
func parse(path string, data []byte) (*header, error) {
	r := &reader{path: path, b: data, what: "header"}
	magic, err := r.take(4)
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, r.fail("magic %q, want %q: not a GGUF file", magic, Magic)
	}
	h := &header{}
	if h.version, err = r.u32(); err != nil {
		return nil, err
	}
	switch {
	case h.version == 1:
		return nil, fmt.Errorf("%w: %s: GGUF version 1 (32-bit counts) is not supported; re-convert the model with a current llama.cpp", ErrUnsupported, path)
	case h.version != 2 && h.version != 3:
		if h.version&0xffff == 0 && h.version>>16 != 0 {
			return nil, r.fail("version %#x looks big-endian; only little-endian files are supported", h.version)
		}
		return nil, r.fail("version %d, want 2 or 3", h.version)
	}
	// A tensor record takes at least 8+4+4+8 bytes, a metadata pair 8+4+1.
	r.what = "tensor count"
	nt, err := r.count(24)
	if err != nil {
		return nil, err
	}
	r.what = "metadata count"
	nkv, err := r.count(13)
	if err != nil {
		return nil, err
	}
	h.meta = NewMetadata()
	for i := range nkv {
		r.what = fmt.Sprintf("metadata pair %d", i)
		key, err := r.str()
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, r.fail("empty key")
		}
		r.what = "metadata key " + key
		if _, dup := h.meta.values[key]; dup {
			return nil, r.fail("duplicate key")
		}
		vt, err := r.u32()
		if err != nil {
			return nil, err
		}
		v, err := r.value(ValueType(vt), 0)
		if err != nil {
			return nil, err
		}
		h.meta.keys = append(h.meta.keys, key)
		h.meta.values[key] = v
	}
	align := DefaultAlignment
	if v, ok := h.meta.values["general.alignment"]; ok {
		a, ok := v.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 || a > 1<<20 {
			return nil, fmt.Errorf("%w: %s: general.alignment %v (%T): want a uint32 power of two", ErrFormat, path, v, v)
		}
		align = int(a)
	}

	type rec struct {
		dims   []int // GGUF order: contiguous first
		typ    Type
		offset uint64
	}
	recs := make([]rec, nt)
	names := make([]string, nt)
	seen := make(map[string]bool, nt)
	for i := range nt {
		r.what = fmt.Sprintf("tensor record %d", i)
		name, err := r.str()
		if err != nil {
			return nil, err
		}
		r.what = "tensor " + name
		if seen[name] {
			return nil, r.fail("duplicate tensor name")
		}
		seen[name] = true
		nd, err := r.u32()
		if err != nil {
			return nil, err
		}
		if nd == 0 || nd > maxDims {
			return nil, r.fail("%d dimensions, want 1…%d", nd, maxDims)
		}
		dims := make([]int, nd)
		for d := range dims {
			v, err := r.u64()
			if err != nil {
				return nil, err
			}
			if v > math.MaxInt32*uint64(1<<16) { // 2⁴⁷: far beyond any tensor, keeps products checkable
				return nil, r.fail("dimension %d is %d", d, v)
			}
			dims[d] = int(v)
		}
		t, err := r.u32()
		if err != nil {
			return nil, err
		}
		if _, ok := Type(t).Info(); !ok {
			return nil, r.fail("unknown ggml type %d", t)
		}
		off, err := r.u64()
		if err != nil {
			return nil, err
		}
		recs[i], names[i] = rec{dims, Type(t), off}, name
	}
	dataStart := (r.off + align - 1) / align * align
	if dataStart > len(data) {
		if nt > 0 {
			return nil, fmt.Errorf("%w: %s: the file ends inside the padding before the tensor data (%d bytes, data would start at %d)", ErrFormat, path, len(data), dataStart)
		}
		dataStart = len(data)
	}
	dataLen := uint64(len(data) - dataStart)

	h.tensors = make([]Tensor, nt)
	type span struct {
		lo, hi uint64
		i      int
	}
	spans := make([]span, 0, nt)
	for i, rc := range recs {
		info, _ := rc.typ.Info()
		if rc.dims[0]%info.BlockLen != 0 {
			return nil, fmt.Errorf("%w: %s: tensor %s: row of %d elements is not a whole number of %s blocks of %d", ErrFormat, path, names[i], rc.dims[0], info.Name, info.BlockLen)
		}
		size := uint64(rc.dims[0] / info.BlockLen * info.BlockBytes)
		for _, d := range rc.dims[1:] {
			hi, lo := bits.Mul64(size, uint64(d))
			if hi != 0 || lo > dataLen {
				return nil, fmt.Errorf("%w: %s: tensor %s: %s dims %v need more bytes than the %d of the data section", ErrFormat, path, names[i], info.Name, rc.dims, dataLen)
			}
			size = lo
		}
		if rc.offset%uint64(align) != 0 {
			return nil, fmt.Errorf("%w: %s: tensor %s: offset %d is not a multiple of the alignment %d", ErrFormat, path, names[i], rc.offset, align)
		}
		if rc.offset > dataLen || size > dataLen-rc.offset {
			return nil, fmt.Errorf("%w: %s: tensor %s: bytes [%d, %d) of the data section run past its end (%d bytes): truncated file?", ErrFormat, path, names[i], rc.offset, rc.offset+size, dataLen)
		}
		shape := slices.Clone(rc.dims)
		slices.Reverse(shape)
		lo, hi := dataStart+int(rc.offset), dataStart+int(rc.offset+size)
		h.tensors[i] = Tensor{Name: names[i], Type: rc.typ, Shape: shape, Data: data[lo:hi:hi], File: path}
		if size > 0 {
			spans = append(spans, span{rc.offset, rc.offset + size, i})
		}
	}
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	for k := 1; k < len(spans); k++ {
		if spans[k].lo < spans[k-1].hi {
			return nil, fmt.Errorf("%w: %s: tensors %s and %s overlap in the data section", ErrFormat, path, names[spans[k-1].i], names[spans[k].i])
		}
	}
	return h, nil
}

// value reads one metadata value of type vt.
func (r *reader) value(vt ValueType, depth int) (any, error) {
	switch vt {
	case TypeString:
		return r.str()
	case TypeArray:
		if depth >= maxArrayDepth {
			return nil, r.fail("arrays nested deeper than %d", maxArrayDepth)
		}
		et, err := r.u32()
		if err != nil {
			return nil, err
		}
		return r.array(ValueType(et), depth+1)
	}
	size := vt.scalarSize()
	if size == 0 {
		return nil, r.fail("unknown value type %d", vt)
	}
	s, err := r.take(size)
	if err != nil {
		return nil, err
	}
	v, err := decodeScalar(vt, s)
	if err != nil {
		return nil, r.fail("%v", err)
	}
	return v, nil
}

func decodeScalar(vt ValueType, s []byte) (any, error) {
	le := binary.LittleEndian
	switch vt {
	case TypeUint8:
		return s[0], nil
	case TypeInt8:
		return int8(s[0]), nil
	case TypeBool:
		if s[0] > 1 {
			return nil, fmt.Errorf("bool byte %d, want 0 or 1", s[0])
		}
		return s[0] == 1, nil
	case TypeUint16:
		return le.Uint16(s), nil
	case TypeInt16:
		return int16(le.Uint16(s)), nil
	case TypeUint32:
		return le.Uint32(s), nil
	case TypeInt32:
		return int32(le.Uint32(s)), nil
	case TypeFloat32:
		return math.Float32frombits(le.Uint32(s)), nil
	case TypeUint64:
		return le.Uint64(s), nil
	case TypeInt64:
		return int64(le.Uint64(s)), nil
	case TypeFloat64:
		return math.Float64frombits(le.Uint64(s)), nil
	}
	panic("gguf: decodeScalar: not a scalar type")
}

// array reads the count and elements of an array of et.
func (r *reader) array(et ValueType, depth int) (Array, error) {
	a := Array{Elem: et}
	minSize := et.scalarSize()
	switch et {
	case TypeString:
		minSize = 8
	case TypeArray:
		minSize = 12
	}
	if minSize == 0 {
		return a, r.fail("array of unknown value type %d", et)
	}
	n, err := r.count(minSize)
	if err != nil {
		return a, err
	}
	switch et {
	case TypeString:
		s := make([]string, n)
		for i := range s {
			if s[i], err = r.str(); err != nil {
				return a, err
			}
		}
		a.Values = s
	case TypeArray:
		s := make([]Array, n)
		for i := range s {
			v, err := r.value(TypeArray, depth)
			if err != nil {
				return a, err
			}
			s[i] = v.(Array)
		}
		a.Values = s
	default:
		raw, err := r.take(n * minSize)
		if err != nil {
			return a, err
		}
		if a.Values, err = decodeArray(et, raw, n); err != nil {
			return a, r.fail("%v", err)
		}
	}
	return a, nil
}

func decodeArray(et ValueType, raw []byte, n int) (any, error) {
	le := binary.LittleEndian
	switch et {
	case TypeUint8:
		return slices.Clone(raw), nil
	case TypeInt8:
		return fill(n, func(i int) int8 { return int8(raw[i]) }), nil
	case TypeBool:
		for i, b := range raw {
			if b > 1 {
				return nil, fmt.Errorf("bool element %d is byte %d, want 0 or 1", i, b)
			}
		}
		return fill(n, func(i int) bool { return raw[i] == 1 }), nil
	case TypeUint16:
		return fill(n, func(i int) uint16 { return le.Uint16(raw[2*i:]) }), nil
	case TypeInt16:
		return fill(n, func(i int) int16 { return int16(le.Uint16(raw[2*i:])) }), nil
	case TypeUint32:
		return fill(n, func(i int) uint32 { return le.Uint32(raw[4*i:]) }), nil
	case TypeInt32:
		return fill(n, func(i int) int32 { return int32(le.Uint32(raw[4*i:])) }), nil
	case TypeFloat32:
		return fill(n, func(i int) float32 { return math.Float32frombits(le.Uint32(raw[4*i:])) }), nil
	case TypeUint64:
		return fill(n, func(i int) uint64 { return le.Uint64(raw[8*i:]) }), nil
	case TypeInt64:
		return fill(n, func(i int) int64 { return int64(le.Uint64(raw[8*i:])) }), nil
	case TypeFloat64:
		return fill(n, func(i int) float64 { return math.Float64frombits(le.Uint64(raw[8*i:])) }), nil
	}
	panic("gguf: decodeArray: not a scalar type")
}

func fill[E any](n int, at func(int) E) []E {
	out := make([]E, n)
	for i := range out {
		out[i] = at(i)
	}
	return out
}
