// Package safetensors reads and writes the safetensors format: an 8-byte
// little-endian header length N, N bytes of JSON describing each tensor
// (dtype, shape, data_offsets) plus optional string metadata, then the raw
// little-endian tensor bytes.
//
// Files are memory-mapped read-only (read into memory where mmap is not
// available), or used in place when already in memory (FromBytes), and
// validated strictly when opened, so a malformed file gives an
// error wrapping ErrFormat that names the file and the tensor, never a panic.
// Tensors stay in their stored dtype. The package knows nothing about models:
// Checkpoint resolves a model folder (one file, an index plus shards, or every
// .safetensors file) into one name → tensor table.
package safetensors

import (
	"fmt"
	"maps"
	"slices"

	"github.com/lightninglm/lightning/format/internal/filemap"
)

// File is one opened .safetensors file. Its tensors' Data are views into the
// file's mapping, valid until Close. A File is safe for concurrent reads.
// The file must not be truncated while it is open: reading a mapped page past
// the new end faults.
type File struct {
	path     string
	data     []byte       // the whole file
	release  func() error // unmaps data; nil once closed
	tensors  []Tensor     // sorted by name
	index    map[string]int
	metadata map[string]string
}

// Open maps the file at path and validates its header.
func Open(path string) (*File, error) {
	data, release, err := filemap.Map(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := newFile(path, data, release)
	if err != nil {
		release()
		return nil, err
	}
	return f, nil
}

// FromBytes validates data, a whole safetensors file held in memory (for
// example embedded in the binary), and returns it as a File whose tensors'
// Data are views into data, never copies. data must not change while the
// File is used; Close releases nothing. name stands for the path in Path and
// in error messages.
func FromBytes(name string, data []byte) (*File, error) {
	return newFile(name, data, func() error { return nil })
}

// newFile parses data, the bytes of the file at path, into a File that
// release frees on Close.
func newFile(path string, data []byte, release func() error) (*File, error) {
	h, err := parseFile(path, data)
	if err != nil {
		return nil, err
	}
	sf := &File{
		path:     path,
		data:     data,
		release:  release,
		tensors:  make([]Tensor, len(h.entries)),
		index:    make(map[string]int, len(h.entries)),
		metadata: h.metadata,
	}
	for i, e := range h.entries {
		b, end := h.dataStart+e.begin, h.dataStart+e.end
		sf.tensors[i] = Tensor{Name: e.name, DType: e.dtype, Shape: e.shape, Data: data[b:end:end], File: path}
		sf.index[e.name] = i
	}
	return sf, nil
}

// Path returns the path the file was opened from.
func (f *File) Path() string { return f.path }

// Names returns the names of the file's tensors, sorted.
func (f *File) Names() []string {
	names := make([]string, len(f.tensors))
	for i, t := range f.tensors {
		names[i] = t.Name
	}
	return names
}

// Tensor returns the tensor called name, and whether the file has it. The
// returned Shape is the caller's to keep; Data is a read-only view.
func (f *File) Tensor(name string) (Tensor, bool) {
	i, ok := f.index[name]
	if !ok {
		return Tensor{}, false
	}
	t := f.tensors[i]
	t.Shape = slices.Clone(t.Shape)
	return t, true
}

// Metadata returns a copy of the header's __metadata__ map, or nil when the
// file has none.
func (f *File) Metadata() map[string]string { return maps.Clone(f.metadata) }

// Close unmaps the file. Every Tensor.Data obtained from it becomes invalid.
// Closing twice is a no-op.
func (f *File) Close() error {
	if f.release == nil {
		return nil
	}
	err := f.release()
	f.release, f.data, f.tensors, f.index = nil, nil, nil, nil
	if err != nil {
		return fmt.Errorf("safetensors: unmap %s: %w", f.path, err)
	}
	return nil
}

// Prefault maps every page of data, a view into a mapped checkpoint, into
// the process now, so that later reads do not fault one page at a time
// (MADV_POPULATE_READ, else a read of one byte per page).
func Prefault(data []byte) { filemap.Prefault(data) }
