package safetensors

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rawFile writes a safetensors file made of the 8-byte length of header,
// header itself and dataLen zero bytes, and returns its path.
func rawFile(t testing.TB, header string, dataLen int) string {
	t.Helper()
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	b = append(b, make([]byte, dataLen)...)
	return writeBytes(t, b)
}

// writeBytes writes b to a new file in a temporary folder.
func writeBytes(t testing.TB, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenRejectsMalformed(t *testing.T) {
	le := func(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }
	for _, tc := range []struct {
		name    string
		file    []byte // raw file; when nil, built from header and data
		header  string
		data    int
		tensor  string // the tensor the message must name, if any
		message string // a substring the message must contain
	}{
		{name: "empty file", file: []byte{}, message: "shorter than the 8-byte"},
		{name: "7 bytes", file: []byte("1234567"), message: "shorter than the 8-byte"},
		{name: "length past end", file: append(le(100), `{}`...), message: "runs past the end"},
		{name: "absurd length", file: append(le(1<<40), `{}`...), message: "exceeds the 100000000-byte limit"},
		{name: "max uint64 length", file: append(le(^uint64(0)), `{}`...), message: "exceeds"},
		{name: "not JSON", header: `{"a":`, message: "not valid JSON"},
		{name: "garbage", header: `hello`, message: "not valid JSON"},
		{name: "array", header: `[1, 2]`, message: "not a JSON object"},
		{name: "string", header: `"x"`, message: "not a JSON object"},
		{name: "invalid UTF-8", header: "{\"\xff\":{}}", message: "not valid UTF-8"},
		{name: "trailing data", header: `{} x`, message: "unexpected data after"},
		{name: "two objects", header: `{}{}`, message: "unexpected data after"},
		{name: "entry not object", header: `{"a": 1}`, tensor: "a", message: "not a JSON object"},
		{name: "missing dtype", header: `{"a":{"shape":[1],"data_offsets":[0,4]}}`, data: 4, tensor: "a", message: "missing dtype"},
		{name: "null dtype", header: `{"a":{"dtype":null,"shape":[1],"data_offsets":[0,4]}}`, data: 4, tensor: "a", message: "missing dtype"},
		{name: "missing shape", header: `{"a":{"dtype":"F32","data_offsets":[0,4]}}`, data: 4, tensor: "a", message: "missing shape"},
		{name: "missing offsets", header: `{"a":{"dtype":"F32","shape":[1]}}`, data: 4, tensor: "a", message: "missing data_offsets"},
		{name: "unknown field", header: `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, data: 4, tensor: "a", message: `unknown field "x"`},
		{name: "duplicate field", header: `{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, data: 4, tensor: "a", message: `duplicate field "dtype"`},
		{name: "dtype not string", header: `{"a":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}`, data: 4, tensor: "a", message: `field "dtype"`},
		{name: "unknown dtype", header: `{"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}`, data: 4, tensor: "a", message: `unknown dtype "F99"`},
		{name: "lower-case dtype", header: `{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}`, data: 4, tensor: "a", message: `unknown dtype "f32"`},
		{name: "negative dim", header: `{"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,0]}}`, tensor: "a", message: "negative dimension -1"},
		{name: "fractional dim", header: `{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, data: 4, tensor: "a", message: `field "shape"`},
		{name: "huge dim", header: `{"a":{"dtype":"F32","shape":[1e30],"data_offsets":[0,4]}}`, data: 4, tensor: "a", message: `field "shape"`},
		{name: "element overflow", header: `{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, data: 4, tensor: "a", message: "element count of shape [4294967296 4294967296] overflows"},
		{name: "byte overflow", header: `{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}}`, data: 4, tensor: "a", message: "byte size of shape"},
		{name: "one offset", header: `{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, data: 4, tensor: "a", message: "is not [begin, end]"},
		{name: "three offsets", header: `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, data: 8, tensor: "a", message: "is not [begin, end]"},
		{name: "offsets object", header: `{"a":{"dtype":"F32","shape":[1],"data_offsets":{"b":0}}}`, data: 4, tensor: "a", message: `field "data_offsets"`},
		{name: "begin after end", header: `{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}`, data: 8, tensor: "a", message: "0 <= begin <= end"},
		{name: "negative begin", header: `{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, data: 8, tensor: "a", message: "0 <= begin <= end"},
		{name: "truncated", header: `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, data: 12, tensor: "a", message: "truncated file"},
		{name: "size mismatch", header: `{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, data: 8, tensor: "a", message: "hold 8 bytes, but shape [3] of F32 needs 12"},
		{name: "overlap", header: `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, data: 12, tensor: "b", message: `overlap tensor "a"`},
		{name: "contained", header: `{"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}`, data: 16, tensor: "b", message: `overlap tensor "a"`},
		{name: "duplicate name", header: `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, data: 2, tensor: "a", message: "duplicate name"},
		{name: "duplicate metadata", header: `{"__metadata__":{},"__metadata__":{}}`, tensor: "__metadata__", message: "duplicate name"},
		{name: "metadata value not string", header: `{"__metadata__":{"k":1}}`, message: "__metadata__ is not a map of strings to strings"},
		{name: "metadata not object", header: `{"__metadata__":["k"]}`, message: "__metadata__ is not a map of strings to strings"},
		{name: "metadata string", header: `{"__metadata__":"pt"}`, message: "__metadata__ is not a map of strings to strings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var path string
			if tc.file != nil {
				path = writeBytes(t, tc.file)
			} else {
				path = rawFile(t, tc.header, tc.data)
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error %q does not wrap ErrFormat", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			if tc.tensor != "" && !strings.Contains(msg, `tensor "`+tc.tensor+`"`) {
				t.Errorf("error %q does not name tensor %q", msg, tc.tensor)
			}
			if !strings.Contains(msg, tc.message) {
				t.Errorf("error %q does not contain %q", msg, tc.message)
			}
		})
	}
}

func TestOpenAcceptsValidLayouts(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		data         int
		want         map[string][]int // name → shape
		meta         map[string]string
	}{
		{name: "no tensors", header: `{}`, want: map[string][]int{}},
		{name: "space padding", header: `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}      `, data: 4, want: map[string][]int{"a": {1}}},
		{name: "hole and trailing bytes", header: `{"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, data: 16,
			want: map[string][]int{"a": {2}, "b": {1}}},
		{name: "scalar", header: `{"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}`, data: 8, want: map[string][]int{"s": {}}},
		{name: "empty tensors anywhere", header: `{"a":{"dtype":"F32","shape":[0,3],"data_offsets":[2,2]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"c":{"dtype":"BF16","shape":[0],"data_offsets":[4,4]}}`, data: 4,
			want: map[string][]int{"a": {0, 3}, "b": {4}, "c": {0}}},
		{name: "null metadata", header: `{"__metadata__":null}`, want: map[string][]int{}},
		{name: "metadata", header: `{"__metadata__":{"format":"pt","x":""}}`, want: map[string][]int{}, meta: map[string]string{"format": "pt", "x": ""}},
		{name: "escaped name", header: `{"a\u002eb":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, data: 1, want: map[string][]int{"a.b": {1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Open(rawFile(t, tc.header, tc.data))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			names := f.Names()
			if len(names) != len(tc.want) {
				t.Fatalf("names %v, want %d of them", names, len(tc.want))
			}
			for name, shape := range tc.want {
				tn, ok := f.Tensor(name)
				if !ok {
					t.Fatalf("tensor %q missing; have %v", name, names)
				}
				if !slices.Equal(tn.Shape, shape) || len(tn.Data) != tn.NumElements()*tn.DType.Size() {
					t.Errorf("tensor %q: shape %v with %d bytes, want shape %v", name, tn.Shape, len(tn.Data), shape)
				}
			}
			if got := f.Metadata(); len(got) != len(tc.meta) {
				t.Errorf("metadata %v, want %v", got, tc.meta)
			} else {
				for k, v := range tc.meta {
					if got[k] != v {
						t.Errorf("metadata[%q] = %q, want %q", k, got[k], v)
					}
				}
			}
		})
	}
}

func TestOpenMissingFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope.safetensors"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestOpenDirectory(t *testing.T) {
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("error %v, want 'not a regular file'", err)
	}
}

// TestGoldenFile opens a file written by the Python safetensors library (the
// tiny-a-bf16 reference model of /work/shared/golden).
func TestGoldenFile(t *testing.T) {
	const path = "testdata/tiny-a-bf16/model.safetensors"
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n := len(f.Names()); n != 155 {
		t.Errorf("%d tensors, want 155", n)
	}
	if got := f.Metadata()["format"]; got != "pt" {
		t.Errorf("metadata format %q, want pt", got)
	}
	emb, ok := f.Tensor("model.embed_tokens.weight")
	if !ok {
		t.Fatal("model.embed_tokens.weight missing")
	}
	if emb.DType != BF16 || !slices.Equal(emb.Shape, []int{512, 64}) || emb.File != path {
		t.Fatalf("embed_tokens: %s %v from %q, want BF16 [512 64] from %q", emb.DType, emb.Shape, emb.File, path)
	}
	bits := emb.U16()
	if len(bits) != 512*64 || &bits[0] != (*uint16)(unsafePointer(emb.Data)) {
		t.Errorf("U16 view: len %d, in place %v; want 32768 elements viewed in place", len(bits), &bits[0] == (*uint16)(unsafePointer(emb.Data)))
	}
	for _, name := range f.Names() {
		tn, _ := f.Tensor(name)
		if tn.DType != BF16 {
			t.Errorf("%s: dtype %s, want BF16", name, tn.DType)
		}
	}

	c, err := OpenCheckpoint(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Names()) != 155 {
		t.Errorf("checkpoint has %d tensors, want 155", len(c.Names()))
	}
	if ct, err := c.Tensor("model.embed_tokens.weight"); err != nil || string(ct.Data) != string(emb.Data) {
		t.Errorf("checkpoint embed_tokens: err %v, equal data %v", err, err == nil && string(ct.Data) == string(emb.Data))
	}
}
