// Package gguf reads and writes GGUF, the single-file model format of ggml
// and llama.cpp (versions 2 and 3; ggml docs/gguf.md).
//
// A file is: the magic "GGUF", a uint32 version, a uint64 tensor count, a
// uint64 metadata count; the metadata as (string key, uint32 value type,
// value) triples; one (name, uint32 n_dims, uint64 dims[n_dims], uint32 ggml
// type, uint64 offset) record per tensor; padding to the alignment (the
// uint32 general.alignment, 32 when absent); then the tensor data, each
// tensor at its offset from the start of that section, a multiple of the
// alignment. Everything is little-endian; strings are a uint64 length then
// UTF-8 bytes.
//
// Files are memory-mapped read-only and validated when opened: every count,
// length, size and offset is checked against the bytes that remain before it
// is used, so a malformed file gives an error wrapping ErrFormat that names
// the file (and the tensor or key), never a panic or a huge allocation.
// Tensors stay in their stored type (package quant computes with the ggml
// block types Lightning reads). A model split by gguf-split (NAME-00001-of-00003.gguf …) opens as
// one File from its first part. The package knows nothing about models.
package gguf

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"

	"github.com/lightninglm/lightning/format/internal/filemap"
)

// ErrFormat wraps every error about a malformed file.
var ErrFormat = errors.New("gguf: malformed file")

// ErrUnsupported wraps errors about well-formed content Lightning cannot use
// (a version before 2).
var ErrUnsupported = errors.New("gguf: unsupported")

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// maxDims is ggml's GGML_MAX_DIMS.
const maxDims = 4

// Tensor is one tensor of a file. Data is a read-only view into the mapping,
// invalid once the File is closed.
type Tensor struct {
	Name string
	Type Type
	// Shape is row-major (C order, as safetensors and PyTorch write it): the
	// reverse of GGUF's dims, whose first entry is the contiguous one. A
	// matrix of ggml shape {n_embd, n_vocab} has Shape [n_vocab, n_embd].
	Shape []int
	Data  []byte // the tensor's bytes: rows of Shape[len-1] elements of Type
	File  string // path of the file it came from, for error messages
}

// NumElements returns the product of the shape.
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// File is an opened GGUF model: one file, or every part of a split model.
// It is safe for concurrent reads.
type File struct {
	path     string   // the path it was opened with (the first part)
	parts    []string // every part's path
	Version  uint32   // of the first part
	meta     *Metadata
	tensors  []Tensor // in file order (part by part)
	index    map[string]int
	releases []func() error
}

// splitName matches the parts of a split model: PREFIX-00001-of-00003.gguf.
var splitName = regexp.MustCompile(`^(.*)-(\d{5})-of-(\d{5})\.gguf$`)

// Open maps the file at path and validates it. When path is the first part
// of a split model, every part is opened and their tensors merged; the
// metadata is the first part's.
func Open(path string) (*File, error) {
	f := &File{path: path, index: map[string]int{}}
	p, err := f.openPart(path)
	if err != nil {
		return nil, err
	}
	f.Version, f.meta = p.version, p.meta
	f.add(p)
	count, ok, err := splitCount(path, p.meta)
	if err != nil {
		f.Close()
		return nil, err
	}
	if ok && count > 1 {
		m := splitName.FindStringSubmatch(filepath.Base(path))
		if m == nil || m[2] != "00001" {
			f.Close()
			return nil, fmt.Errorf("%w: %s: part of a %d-part split model; open its first part, NAME-00001-of-%05d.gguf", ErrFormat, path, count, count)
		}
		for i := 2; i <= count; i++ {
			pp := filepath.Join(filepath.Dir(path), fmt.Sprintf("%s-%05d-of-%05d.gguf", m[1], i, count))
			q, err := f.openPart(pp)
			if err != nil {
				f.Close()
				return nil, err
			}
			if n, _, _ := splitCount(pp, q.meta); n != count {
				f.Close()
				return nil, fmt.Errorf("%w: %s: split.count %d, want %d as in %s", ErrFormat, pp, n, count, path)
			}
			if no, err := q.meta.Uint("split.no"); err != nil || no != uint64(i-1) {
				f.Close()
				return nil, fmt.Errorf("%w: %s: split.no is not %d", ErrFormat, pp, i-1)
			}
			if err := f.add(q); err != nil {
				f.Close()
				return nil, err
			}
		}
		if want, err := p.meta.Uint("split.tensors.count"); err == nil && want != uint64(len(f.tensors)) {
			f.Close()
			return nil, fmt.Errorf("%w: %s: split.tensors.count is %d but the %d parts hold %d tensors", ErrFormat, path, want, count, len(f.tensors))
		}
	}
	return f, nil
}

// splitCount returns split.count when the metadata has it.
func splitCount(path string, m *Metadata) (int, bool, error) {
	if _, ok := m.Get("split.count"); !ok {
		return 1, false, nil
	}
	n, err := m.Uint("split.count")
	if err != nil || n == 0 || n > 99999 {
		return 0, false, fmt.Errorf("%w: %s: split.count: want 1…99999", ErrFormat, path)
	}
	return int(n), true, nil
}

type part struct {
	path    string
	version uint32
	meta    *Metadata
	tensors []Tensor
	release func() error
}

func (f *File) openPart(path string) (*part, error) {
	data, release, err := filemap.Map(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	h, err := parse(path, data)
	if err != nil {
		release()
		return nil, err
	}
	return &part{path: path, version: h.version, meta: h.meta, tensors: h.tensors, release: release}, nil
}

func (f *File) add(p *part) error {
	f.parts = append(f.parts, p.path)
	f.releases = append(f.releases, p.release)
	for _, t := range p.tensors {
		if _, dup := f.index[t.Name]; dup {
			return fmt.Errorf("%w: %s: tensor %q is also in %s", ErrFormat, p.path, t.Name, f.tensors[f.index[t.Name]].File)
		}
		f.index[t.Name] = len(f.tensors)
		f.tensors = append(f.tensors, t)
	}
	return nil
}

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Parts returns the paths of every part (one for an unsplit file).
func (f *File) Parts() []string { return slices.Clone(f.parts) }

// Metadata returns the key-value section (of the first part).
func (f *File) Metadata() *Metadata { return f.meta }

// Tensors returns every tensor in file order. Shapes are the caller's to
// keep; Data are read-only views.
func (f *File) Tensors() []Tensor {
	out := slices.Clone(f.tensors)
	for i := range out {
		out[i].Shape = slices.Clone(out[i].Shape)
	}
	return out
}

// Tensor returns the tensor called name, and whether the file has it.
func (f *File) Tensor(name string) (Tensor, bool) {
	i, ok := f.index[name]
	if !ok {
		return Tensor{}, false
	}
	t := f.tensors[i]
	t.Shape = slices.Clone(t.Shape)
	return t, true
}

// Close unmaps every part. Closing twice is a no-op.
func (f *File) Close() error {
	var errs []error
	for _, r := range f.releases {
		if err := r(); err != nil {
			errs = append(errs, err)
		}
	}
	f.releases, f.tensors, f.index = nil, nil, nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gguf: unmap %s: %w", f.path, err)
	}
	return nil
}

// Metadata is the key-value section, in file order. Values are Go values
// of the stored type: uint8, int8, uint16, int16, uint32, int32, uint64,
// int64, float32, float64, bool, string, or an Array.
type Metadata struct {
	keys   []string
	values map[string]any
}

// Array is a metadata array: its element type and its elements as a typed
// slice ([]uint32, []string, …; []Array for an array of arrays).
type Array struct {
	Elem   ValueType
	Values any
}

// Len returns the number of elements.
func (a Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float32:
		return len(v)
	case []float64:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []Array:
		return len(v)
	}
	return 0
}

// NewMetadata returns an empty metadata section, for writing.
func NewMetadata() *Metadata { return &Metadata{values: map[string]any{}} }

// Set adds or replaces key (keeping its first position). v must be one of
// the value types listed on Metadata; Set panics otherwise (a caller bug).
func (m *Metadata) Set(key string, v any) {
	if _, err := valueTypeOf(v); err != nil {
		panic("gguf: Metadata.Set: " + err.Error())
	}
	if _, ok := m.values[key]; !ok {
		m.keys = append(m.keys, key)
	}
	m.values[key] = v
}

// Keys returns the keys in file order.
func (m *Metadata) Keys() []string { return slices.Clone(m.keys) }

// Get returns the value of key.
func (m *Metadata) Get(key string) (any, bool) {
	v, ok := m.values[key]
	return v, ok
}

// Clone returns a deep enough copy to be modified with Set.
func (m *Metadata) Clone() *Metadata {
	return &Metadata{keys: slices.Clone(m.keys), values: maps.Clone(m.values)}
}

// String returns the string value of key.
func (m *Metadata) String(key string) (string, error) {
	v, ok := m.values[key]
	if !ok {
		return "", fmt.Errorf("metadata key %s: missing", key)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("metadata key %s: %T, want a string", key, v)
	}
	return s, nil
}

// Uint returns a non-negative integer value of key, of any integer type.
func (m *Metadata) Uint(key string) (uint64, error) {
	v, ok := m.values[key]
	if !ok {
		return 0, fmt.Errorf("metadata key %s: missing", key)
	}
	n, ok := asInt(v)
	if !ok || n < 0 {
		return 0, fmt.Errorf("metadata key %s: %v (%T), want a non-negative integer", key, v, v)
	}
	return uint64(n), nil
}

// Int returns an integer value of key, of any integer type.
func (m *Metadata) Int(key string) (int64, error) {
	v, ok := m.values[key]
	if !ok {
		return 0, fmt.Errorf("metadata key %s: missing", key)
	}
	n, ok := asInt(v)
	if !ok {
		return 0, fmt.Errorf("metadata key %s: %v (%T), want an integer", key, v, v)
	}
	return n, nil
}

// Float returns a number value of key (float or integer types).
func (m *Metadata) Float(key string) (float64, error) {
	v, ok := m.values[key]
	if !ok {
		return 0, fmt.Errorf("metadata key %s: missing", key)
	}
	switch x := v.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	if n, ok := asInt(v); ok {
		return float64(n), nil
	}
	return 0, fmt.Errorf("metadata key %s: %v (%T), want a number", key, v, v)
}

// Bool returns a bool value of key.
func (m *Metadata) Bool(key string) (bool, error) {
	v, ok := m.values[key]
	if !ok {
		return false, fmt.Errorf("metadata key %s: missing", key)
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("metadata key %s: %T, want a bool", key, v)
	}
	return b, nil
}

// Strings returns a string-array value of key.
func (m *Metadata) Strings(key string) ([]string, error) {
	v, ok := m.values[key]
	if !ok {
		return nil, fmt.Errorf("metadata key %s: missing", key)
	}
	a, ok := v.(Array)
	s, ok2 := a.Values.([]string)
	if !ok || !ok2 {
		return nil, fmt.Errorf("metadata key %s: %T, want an array of strings", key, v)
	}
	return s, nil
}

// Ints returns an integer-array value of key (any integer or bool element
// type), widened to int64.
func (m *Metadata) Ints(key string) ([]int64, error) {
	v, ok := m.values[key]
	if !ok {
		return nil, fmt.Errorf("metadata key %s: missing", key)
	}
	a, ok := v.(Array)
	if !ok {
		return nil, fmt.Errorf("metadata key %s: %T, want an array of integers", key, v)
	}
	out := make([]int64, 0, a.Len())
	switch s := a.Values.(type) {
	case []bool:
		for _, b := range s {
			out = append(out, map[bool]int64{false: 0, true: 1}[b])
		}
		return out, nil
	case []uint8:
		return widen(out, s), nil
	case []int8:
		return widen(out, s), nil
	case []uint16:
		return widen(out, s), nil
	case []int16:
		return widen(out, s), nil
	case []uint32:
		return widen(out, s), nil
	case []int32:
		return widen(out, s), nil
	case []int64:
		return append(out, s...), nil
	case []uint64:
		for _, x := range s {
			if x > math.MaxInt64 {
				return nil, fmt.Errorf("metadata key %s: element %d overflows int64", key, x)
			}
			out = append(out, int64(x))
		}
		return out, nil
	}
	return nil, fmt.Errorf("metadata key %s: array of %s, want integers", key, a.Elem)
}

// Floats returns a number-array value of key, widened to float64.
func (m *Metadata) Floats(key string) ([]float64, error) {
	v, ok := m.values[key]
	if !ok {
		return nil, fmt.Errorf("metadata key %s: missing", key)
	}
	a, _ := v.(Array)
	switch s := a.Values.(type) {
	case []float32:
		out := make([]float64, len(s))
		for i, x := range s {
			out[i] = float64(x)
		}
		return out, nil
	case []float64:
		return slices.Clone(s), nil
	}
	ints, err := m.Ints(key)
	if err != nil {
		return nil, fmt.Errorf("metadata key %s: %v (%T), want an array of numbers", key, v, v)
	}
	out := make([]float64, len(ints))
	for i, x := range ints {
		out[i] = float64(x)
	}
	return out, nil
}

func widen[E uint8 | int8 | uint16 | int16 | uint32 | int32](out []int64, s []E) []int64 {
	for _, x := range s {
		out = append(out, int64(x))
	}
	return out
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// ValueType is the type tag of a metadata value (enum gguf_type).
type ValueType uint32

// The metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (v ValueType) String() string {
	if int(v) < len(valueTypeNames) {
		return valueTypeNames[v]
	}
	return "value_type(" + strconv.Itoa(int(v)) + ")"
}

// scalarSize is the encoded size of a fixed-size value type, 0 otherwise.
func (v ValueType) scalarSize() int {
	switch v {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

func valueTypeOf(v any) (ValueType, error) {
	switch v.(type) {
	case uint8:
		return TypeUint8, nil
	case int8:
		return TypeInt8, nil
	case uint16:
		return TypeUint16, nil
	case int16:
		return TypeInt16, nil
	case uint32:
		return TypeUint32, nil
	case int32:
		return TypeInt32, nil
	case float32:
		return TypeFloat32, nil
	case bool:
		return TypeBool, nil
	case string:
		return TypeString, nil
	case Array:
		return TypeArray, nil
	case uint64:
		return TypeUint64, nil
	case int64:
		return TypeInt64, nil
	case float64:
		return TypeFloat64, nil
	}
	return 0, fmt.Errorf("value of Go type %T has no GGUF type", v)
}
