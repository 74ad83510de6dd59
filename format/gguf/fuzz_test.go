package gguf

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
)

// FuzzParse checks that the parser never panics on any input and that every
// file it accepts is consistent: each tensor's bytes lie inside the input
// and match its shape and type, and the metadata survives a rewrite.
func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.gguf")
	writeSample(f, path, sampleMeta(), sampleTensors())
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(start(1, 0).tensorRec("w", Q4_0, 0, 32).padTo(32).raw(make([]byte, 18)...).b)
	f.Add(start(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1).str("v").b)
	f.Add([]byte("GGUF"))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := parse("fuzz", in)
		if err != nil {
			return
		}
		for _, tt := range h.tensors {
			info, ok := tt.Type.Info()
			if !ok {
				t.Fatalf("%s: unknown type accepted", tt.Name)
			}
			n := tt.NumElements()
			if len(tt.Data) != n/info.BlockLen*info.BlockBytes {
				t.Fatalf("%s: %d bytes for %d elements of %s", tt.Name, len(tt.Data), n, info.Name)
			}
			if len(tt.Data) > 0 && !within(in, tt.Data) {
				t.Fatalf("%s: data outside the input", tt.Name)
			}
		}
		for _, k := range h.meta.Keys() {
			if _, ok := h.meta.Get(k); !ok {
				t.Fatalf("key %q listed but absent", k)
			}
		}
		// The accepted metadata survives a write and a re-read unchanged
		// (compared as encoded bytes, so NaN values compare equal).
		enc := encodeMeta(t, h.meta)
		h2, err := parse("fuzz-rewritten", enc)
		if err != nil {
			t.Fatalf("re-reading the rewritten metadata: %v", err)
		}
		if !bytes.Equal(encodeMeta(t, h2.meta), enc) {
			t.Fatal("metadata changed through a write and a re-read")
		}
	})
}

// encodeMeta writes a file of m and no tensors.
func encodeMeta(t *testing.T, m *Metadata) []byte {
	b := start(0, uint64(len(m.keys))).b
	for _, k := range m.keys {
		b = appendString(b, k)
		var err error
		if b, err = appendValue(b, m.values[k], true); err != nil {
			t.Fatalf("key %s: %v", k, err)
		}
	}
	return b
}

// within reports whether sub lies inside b.
func within(b, sub []byte) bool {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return p >= lo && p+uintptr(len(sub)) <= lo+uintptr(len(b))
}
