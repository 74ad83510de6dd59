package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"os"
	"slices"

	"github.com/lightninglm/lightning/format/internal/filemap"
)

// TensorInfo declares one tensor of a file to be written: everything but its
// bytes. Shape is row-major, as in Tensor.
type TensorInfo struct {
	Name  string
	Type  Type
	Shape []int
}

// size returns the data bytes of the tensor.
func (t TensorInfo) size() (int, error) {
	if len(t.Shape) == 0 || len(t.Shape) > maxDims {
		return 0, fmt.Errorf("tensor %q: %d dimensions, want 1…%d", t.Name, len(t.Shape), maxDims)
	}
	for _, d := range t.Shape {
		if d < 0 {
			return 0, fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
		}
	}
	row, err := t.Type.RowBytes(t.Shape[len(t.Shape)-1])
	if err != nil {
		return 0, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	n := uint64(row)
	for _, d := range t.Shape[:len(t.Shape)-1] {
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt {
			return 0, fmt.Errorf("tensor %q: byte size of shape %v overflows", t.Name, t.Shape)
		}
		n = lo
	}
	return int(n), nil
}

// Writer writes a GGUF v3 file whose header is declared up front, then
// receives the tensors' bytes one tensor at a time in declaration order, so a
// large model is never held in memory. It writes to a temporary file beside
// the destination and renames it into place on Close: the destination is
// either absent (or its old version) or complete.
//
//	w, err := gguf.Create(path, meta, infos)
//	if err != nil { ... }
//	defer w.Abort() // no-op after a successful Close
//	for _, t := range infos { if err := w.WriteTensor(t.Name, bytesOf(t)); err != nil { return err } }
//	return w.Close()
type Writer struct {
	path      string
	f         *os.File // nil once closed or aborted
	bw        *bufio.Writer
	infos     []TensorInfo
	sizes     []int
	align     int
	next      int // index of the tensor being written
	written   int // bytes of it written so far
	closedErr error
}

// Create starts a file at path with the metadata meta (general.alignment,
// if set, must be a uint32 power of two; 32 otherwise) and the tensors
// infos, laid out in that order, each at a multiple of the alignment.
func Create(path string, meta *Metadata, infos []TensorInfo) (*Writer, error) {
	w := &Writer{path: path, infos: slices.Clone(infos), sizes: make([]int, len(infos)), align: DefaultAlignment}
	if meta == nil {
		meta = NewMetadata()
	}
	if v, ok := meta.Get("general.alignment"); ok {
		a, ok := v.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("gguf: create %s: general.alignment %v (%T): want a uint32 power of two", path, v, v)
		}
		w.align = int(a)
	}
	var hdr []byte
	hdr = append(hdr, Magic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, 3)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(len(infos)))
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(len(meta.keys)))
	for _, k := range meta.keys {
		hdr = appendString(hdr, k)
		var err error
		if hdr, err = appendValue(hdr, meta.values[k], true); err != nil {
			return nil, fmt.Errorf("gguf: create %s: metadata key %s: %w", path, k, err)
		}
	}
	seen := map[string]bool{}
	off := 0
	for i, t := range infos {
		if t.Name == "" || seen[t.Name] {
			return nil, fmt.Errorf("gguf: create %s: tensor %d: empty or repeated name %q", path, i, t.Name)
		}
		seen[t.Name] = true
		n, err := t.size()
		if err != nil {
			return nil, fmt.Errorf("gguf: create %s: %w", path, err)
		}
		w.sizes[i] = n
		hdr = appendString(hdr, t.Name)
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(t.Shape)))
		for d := len(t.Shape) - 1; d >= 0; d-- {
			hdr = binary.LittleEndian.AppendUint64(hdr, uint64(t.Shape[d]))
		}
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(t.Type))
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(off))
		off += pad(n, w.align)
	}
	hdr = append(hdr, make([]byte, pad(len(hdr), w.align)-len(hdr))...)

	f, err := filemap.CreateTemp(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: create %s: %w", path, err)
	}
	w.f, w.bw = f, bufio.NewWriterSize(f, 1<<20)
	if _, err := w.bw.Write(hdr); err != nil {
		w.Abort()
		return nil, fmt.Errorf("gguf: create %s: %w", path, err)
	}
	return w, nil
}

func pad(n, align int) int { return (n + align - 1) / align * align }

// WriteTensor writes data as the next bytes of the tensor name: the whole
// tensor at once, or in consecutive pieces (a stacked expert tensor one
// expert at a time). Tensors come in declaration order, and a tensor must
// be complete before the next one starts. After an error the writer is
// unusable; Abort it.
func (w *Writer) WriteTensor(name string, data []byte) error {
	if w.f == nil {
		return w.closedErr
	}
	if w.next == len(w.infos) {
		return fmt.Errorf("gguf: write %s: tensor %q: all %d declared tensors are already written", w.path, name, len(w.infos))
	}
	i := w.next
	if name != w.infos[i].Name {
		return fmt.Errorf("gguf: write %s: got tensor %q, want %q (tensors must come in declaration order)", w.path, name, w.infos[i].Name)
	}
	if w.written+len(data) > w.sizes[i] {
		return fmt.Errorf("gguf: write %s: tensor %q: %d bytes, but %s shape %v needs %d", w.path, name, w.written+len(data), w.infos[i].Type, w.infos[i].Shape, w.sizes[i])
	}
	_, err := w.bw.Write(data)
	w.written += len(data)
	if err == nil && w.written == w.sizes[i] {
		_, err = w.bw.Write(make([]byte, pad(w.sizes[i], w.align)-w.sizes[i]))
		w.next, w.written = w.next+1, 0
	}
	if err != nil {
		w.Abort()
		return fmt.Errorf("gguf: write %s: tensor %q: %w", w.path, name, err)
	}
	return nil
}

// Close checks that every declared tensor was written, flushes the file to
// disk and renames it into place. On error the temporary file is removed.
func (w *Writer) Close() error {
	if w.f == nil {
		return w.closedErr
	}
	if w.next != len(w.infos) {
		missing := w.infos[w.next].Name
		w.Abort()
		return fmt.Errorf("gguf: write %s: only %d of %d tensors written (%q incomplete or missing); file discarded", w.path, w.next, len(w.infos), missing)
	}
	if err := w.bw.Flush(); err != nil {
		w.Abort()
		return fmt.Errorf("gguf: write %s: %w", w.path, err)
	}
	f := w.f
	w.f = nil
	w.closedErr = fmt.Errorf("gguf: write %s: writer already closed", w.path)
	if err := filemap.Commit(f, w.path); err != nil {
		return fmt.Errorf("gguf: write %s: %w", w.path, err)
	}
	return nil
}

// Abort discards the temporary file. It is a no-op after Close or a previous
// Abort, so it can be deferred.
func (w *Writer) Abort() {
	if w.f == nil {
		return
	}
	w.f.Close()
	os.Remove(w.f.Name())
	w.f = nil
	w.closedErr = fmt.Errorf("gguf: write %s: writer aborted", w.path)
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue encodes v, with its type tag when tagged.
func appendValue(b []byte, v any, tagged bool) ([]byte, error) {
	vt, err := valueTypeOf(v)
	if err != nil {
		return nil, err
	}
	if tagged {
		b = binary.LittleEndian.AppendUint32(b, uint32(vt))
	}
	le := binary.LittleEndian
	switch x := v.(type) {
	case uint8:
		return append(b, x), nil
	case int8:
		return append(b, byte(x)), nil
	case bool:
		if x {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case uint16:
		return le.AppendUint16(b, x), nil
	case int16:
		return le.AppendUint16(b, uint16(x)), nil
	case uint32:
		return le.AppendUint32(b, x), nil
	case int32:
		return le.AppendUint32(b, uint32(x)), nil
	case float32:
		return le.AppendUint32(b, math.Float32bits(x)), nil
	case uint64:
		return le.AppendUint64(b, x), nil
	case int64:
		return le.AppendUint64(b, uint64(x)), nil
	case float64:
		return le.AppendUint64(b, math.Float64bits(x)), nil
	case string:
		return appendString(b, x), nil
	case Array:
		return appendArray(b, x)
	}
	panic("gguf: appendValue: unhandled type")
}

func appendArray(b []byte, a Array) ([]byte, error) {
	b = binary.LittleEndian.AppendUint32(b, uint32(a.Elem))
	b = binary.LittleEndian.AppendUint64(b, uint64(a.Len()))
	var err error
	each := func(n int, at func(int) any) {
		for i := 0; i < n && err == nil; i++ {
			v := at(i)
			if vt, _ := valueTypeOf(v); vt != a.Elem {
				err = fmt.Errorf("array element %d is %s, array says %s", i, vt, a.Elem)
				return
			}
			b, err = appendValue(b, v, false)
		}
	}
	switch s := a.Values.(type) {
	case []uint8:
		each(len(s), func(i int) any { return s[i] })
	case []int8:
		each(len(s), func(i int) any { return s[i] })
	case []uint16:
		each(len(s), func(i int) any { return s[i] })
	case []int16:
		each(len(s), func(i int) any { return s[i] })
	case []uint32:
		each(len(s), func(i int) any { return s[i] })
	case []int32:
		each(len(s), func(i int) any { return s[i] })
	case []uint64:
		each(len(s), func(i int) any { return s[i] })
	case []int64:
		each(len(s), func(i int) any { return s[i] })
	case []float32:
		each(len(s), func(i int) any { return s[i] })
	case []float64:
		each(len(s), func(i int) any { return s[i] })
	case []bool:
		each(len(s), func(i int) any { return s[i] })
	case []string:
		each(len(s), func(i int) any { return s[i] })
	case []Array:
		each(len(s), func(i int) any { return s[i] })
	default:
		return nil, fmt.Errorf("array values of Go type %T", a.Values)
	}
	return b, err
}
