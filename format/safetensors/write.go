package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"

	"github.com/lightninglm/lightning/format/internal/filemap"
)

// TensorSpec declares one tensor of a file to be written: everything but its
// bytes.
type TensorSpec struct {
	Name  string
	DType DType
	Shape []int
}

// byteSize returns the number of data bytes the spec needs.
func (s TensorSpec) byteSize() (int, error) {
	size := s.DType.Size()
	if size == 0 {
		return 0, fmt.Errorf("tensor %q: unknown dtype %q", s.Name, s.DType)
	}
	n := uint64(size)
	for _, d := range s.Shape {
		if d < 0 {
			return 0, fmt.Errorf("tensor %q: negative dimension in shape %v", s.Name, s.Shape)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt {
			return 0, fmt.Errorf("tensor %q: byte size of shape %v of %s overflows", s.Name, s.Shape, s.DType)
		}
		n = lo
	}
	return int(n), nil
}

// StreamWriter writes a safetensors file whose header is declared up front,
// then receives the tensors' bytes one tensor at a time, so a multi-GB file
// never has to be held in memory. It writes to a temporary file beside the
// destination and renames it into place on Close, so the destination is either
// absent (or its old version) or complete.
//
// Usage:
//
//	w, err := safetensors.Create(path, specs, meta)
//	if err != nil { ... }
//	defer w.Abort() // no-op after a successful Close
//	for _, s := range specs { if err := w.WriteTensor(s.Name, bytesOf(s)); err != nil { return err } }
//	return w.Close()
type StreamWriter struct {
	path      string
	f         *os.File // the temporary file; nil once closed or aborted
	specs     []TensorSpec
	offsets   []int // file offset of each spec's data
	sizes     []int // byte size of each spec's data
	next      int   // index of the next spec to write
	closedErr error // the error a call on a finished writer returns
}

// Create starts a new file at path holding the tensors of specs. The data
// layout is fixed here: tensors are ordered by decreasing element size, then
// by name, with no gaps, so that every tensor starts at a multiple of its
// element size (the data section starts at a multiple of 8: the header is
// padded with spaces). This is the layout rule of the reference writer, and
// its readers reject gaps, so it is the only way to both align and stay
// readable by them. metadata may be nil.
func Create(path string, specs []TensorSpec, metadata map[string]string) (*StreamWriter, error) {
	w := &StreamWriter{
		path:    path,
		specs:   specs,
		offsets: make([]int, len(specs)),
		sizes:   make([]int, len(specs)),
	}
	seen := make(map[string]bool, len(specs))
	for i, s := range specs {
		switch {
		case s.Name == "":
			return nil, fmt.Errorf("safetensors: create %s: tensor %d has an empty name", path, i)
		case s.Name == metadataKey:
			return nil, fmt.Errorf("safetensors: create %s: %q is reserved", path, metadataKey)
		case seen[s.Name]:
			return nil, fmt.Errorf("safetensors: create %s: tensor %q declared twice", path, s.Name)
		}
		seen[s.Name] = true
		n, err := s.byteSize()
		if err != nil {
			return nil, fmt.Errorf("safetensors: create %s: %w", path, err)
		}
		w.sizes[i] = n
	}

	order := make([]int, len(specs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(specs[b].DType.Size(), specs[a].DType.Size()); c != 0 {
			return c
		}
		return cmp.Compare(specs[a].Name, specs[b].Name)
	})
	type jsonEntry struct {
		DType   DType  `json:"dtype"`
		Shape   []int  `json:"shape"`
		Offsets [2]int `json:"data_offsets"`
	}
	hdr := make(map[string]any, len(specs)+1)
	if len(metadata) > 0 {
		hdr[metadataKey] = metadata
	}
	end := 0
	for _, i := range order {
		shape := specs[i].Shape
		if shape == nil {
			shape = []int{} // a scalar: the reference needs [], not null
		}
		hdr[specs[i].Name] = jsonEntry{specs[i].DType, shape, [2]int{end, end + w.sizes[i]}}
		w.offsets[i] = end
		end += w.sizes[i]
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(hdr); err != nil {
		return nil, fmt.Errorf("safetensors: create %s: %w", path, err)
	}
	js.Truncate(js.Len() - 1) // Encode's newline
	for js.Len()%8 != 0 {
		js.WriteByte(' ')
	}
	dataStart := 8 + js.Len()
	for i := range w.offsets {
		w.offsets[i] += dataStart
	}

	f, err := filemap.CreateTemp(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: create %s: %w", path, err)
	}
	w.f = f
	prefix := binary.LittleEndian.AppendUint64(nil, uint64(js.Len()))
	if _, err := f.Write(append(prefix, js.Bytes()...)); err != nil {
		w.Abort()
		return nil, fmt.Errorf("safetensors: create %s: %w", path, err)
	}
	if err := f.Truncate(int64(dataStart + end)); err != nil {
		w.Abort()
		return nil, fmt.Errorf("safetensors: create %s: %w", path, err)
	}
	return w, nil
}

// WriteTensor writes the bytes of the next tensor. Tensors must come in the
// order of the specs given to Create, and data must be exactly the declared
// size. After an error the writer is unusable; Abort it.
func (w *StreamWriter) WriteTensor(name string, data []byte) error {
	if w.f == nil {
		return w.closedErr
	}
	if w.next == len(w.specs) {
		return fmt.Errorf("safetensors: write %s: tensor %q: all %d declared tensors are already written", w.path, name, len(w.specs))
	}
	i := w.next
	if name != w.specs[i].Name {
		return fmt.Errorf("safetensors: write %s: got tensor %q, want %q (tensors must come in spec order)", w.path, name, w.specs[i].Name)
	}
	if len(data) != w.sizes[i] {
		return fmt.Errorf("safetensors: write %s: tensor %q: %d bytes, but shape %v of %s needs %d",
			w.path, name, len(data), w.specs[i].Shape, w.specs[i].DType, w.sizes[i])
	}
	if _, err := w.f.WriteAt(data, int64(w.offsets[i])); err != nil {
		w.Abort()
		return fmt.Errorf("safetensors: write %s: tensor %q: %w", w.path, name, err)
	}
	w.next++
	return nil
}

// Close checks that every declared tensor was written, flushes the file to
// disk and renames it into place. On error the temporary file is removed.
func (w *StreamWriter) Close() error {
	if w.f == nil {
		return w.closedErr
	}
	if w.next != len(w.specs) {
		missing := w.specs[w.next].Name
		w.Abort()
		return fmt.Errorf("safetensors: write %s: only %d of %d tensors written (next was %q); file discarded",
			w.path, w.next, len(w.specs), missing)
	}
	f := w.f
	w.f = nil
	w.closedErr = fmt.Errorf("safetensors: write %s: writer already closed", w.path)
	if err := filemap.Commit(f, w.path); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", w.path, err)
	}
	return nil
}

// Abort discards the temporary file. It is a no-op after Close or a previous
// Abort, so it can be deferred.
func (w *StreamWriter) Abort() {
	if w.f == nil {
		return
	}
	w.f.Close()
	os.Remove(w.f.Name())
	w.f = nil
	w.closedErr = fmt.Errorf("safetensors: write %s: writer aborted", w.path)
}

// Write writes tensors to a new file at path, atomically (see Create for the
// layout). The tensors' Shape, DType and Data must agree. metadata may be nil.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	specs := make([]TensorSpec, len(tensors))
	for i, t := range tensors {
		specs[i] = TensorSpec{Name: t.Name, DType: t.DType, Shape: t.Shape}
	}
	w, err := Create(path, specs, metadata)
	if err != nil {
		return err
	}
	defer w.Abort()
	for _, t := range tensors {
		if err := w.WriteTensor(t.Name, t.Data); err != nil {
			return err
		}
	}
	return w.Close()
}

// WriteIndex writes dir/model.safetensors.index.json for a sharded checkpoint,
// atomically. weightMap maps each tensor name to the plain file name of its
// shard; totalSize is the sum of the tensors' data bytes.
func WriteIndex(dir string, weightMap map[string]string, totalSize int64) error {
	path := filepath.Join(dir, IndexFileName)
	if len(weightMap) == 0 {
		return fmt.Errorf("safetensors: write %s: empty weight map", path)
	}
	if totalSize < 0 {
		return fmt.Errorf("safetensors: write %s: negative total size %d", path, totalSize)
	}
	for name, shard := range weightMap {
		if err := checkShardName(shard); err != nil {
			return fmt.Errorf("safetensors: write %s: tensor %q: %w", path, name, err)
		}
	}
	index := struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]int64{"total_size": totalSize}, weightMap}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(index); err != nil { // map keys come out sorted
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+IndexFileName+".tmp*")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if _, err := f.Write(js.Bytes()); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := filemap.Commit(f, path); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return nil
}
