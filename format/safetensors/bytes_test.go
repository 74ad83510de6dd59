package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"
)

// TestFromBytes checks that a file held in memory reads as the same file
// opened from disk, with every tensor a view into the caller's bytes.
func TestFromBytes(t *testing.T) {
	tensors := mixedTensors()
	path := filepath.Join(t.TempDir(), "in.safetensors")
	if err := Write(path, tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := CheckpointFromBytes("embedded", data)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if ck.Dir() != "embedded" {
		t.Errorf("Dir() = %q, want %q", ck.Dir(), "embedded")
	}
	var want []string
	lo, hi := uintptr(unsafe.Pointer(&data[0])), uintptr(unsafe.Pointer(&data[0]))+uintptr(len(data))
	for _, tn := range tensors {
		want = append(want, tn.Name)
		got, err := ck.Tensor(tn.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.DType != tn.DType || !slices.Equal(got.Shape, tn.Shape) || !bytes.Equal(got.Data, tn.Data) || got.File != "embedded" {
			t.Errorf("%q: got %s %v from %q, want %s %v", tn.Name, got.DType, got.Shape, got.File, tn.DType, tn.Shape)
		}
		if len(got.Data) > 0 {
			if p := uintptr(unsafe.Pointer(&got.Data[0])); p < lo || p+uintptr(len(got.Data)) > hi {
				t.Errorf("%q: data at %#x is not a view into the given bytes [%#x, %#x)", tn.Name, p, lo, hi)
			}
		}
	}
	slices.Sort(want)
	if !slices.Equal(ck.Names(), want) {
		t.Errorf("Names() = %v, want %v", ck.Names(), want)
	}

	// The same validation as Open: a truncated file is an ErrFormat naming it.
	if _, err := CheckpointFromBytes("cut", data[:len(data)-1]); !errors.Is(err, ErrFormat) || !bytes.Contains([]byte(err.Error()), []byte("cut")) {
		t.Errorf("truncated bytes: err = %v, want an ErrFormat naming %q", err, "cut")
	}
}
