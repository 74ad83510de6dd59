package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// randomTensor returns a tensor of the given dtype and shape filled with
// random bytes.
func randomTensor(r *rand.Rand, name string, d DType, shape ...int) Tensor {
	t := Tensor{Name: name, DType: d, Shape: shape}
	t.Data = make([]byte, t.NumElements()*d.Size())
	for i := range t.Data {
		t.Data[i] = byte(r.Uint32())
	}
	return t
}

// mixedTensors is a set whose element sizes and odd lengths would misalign a
// naive name-ordered layout.
func mixedTensors() []Tensor {
	r := rand.New(rand.NewPCG(1, 2))
	return []Tensor{
		randomTensor(r, "a.bool", Bool, 3),
		randomTensor(r, "b.bf16", BF16, 3, 5),
		randomTensor(r, "c.f32", F32, 7),
		randomTensor(r, "d.i64", I64, 2, 3),
		randomTensor(r, "e.u8", U8, 1),
		randomTensor(r, "f.f16", F16, 1),
		randomTensor(r, "g.i32", I32, 3),
		randomTensor(r, "h.scalar", F64),
		randomTensor(r, "i.empty", F32, 0, 4),
		randomTensor(r, "j.f8", F8E4M3, 5),
		randomTensor(r, "k.<&>\"quoted\"", I16, 2),
	}
}

func TestWriteRoundTrip(t *testing.T) {
	tensors := mixedTensors()
	meta := map[string]string{"format": "pt", "note": "<&>"}
	path := filepath.Join(t.TempDir(), "out.safetensors")
	if err := Write(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	for _, tn := range tensors {
		want = append(want, tn.Name)
		got, ok := f.Tensor(tn.Name)
		if !ok {
			t.Fatalf("tensor %q missing", tn.Name)
		}
		if got.DType != tn.DType || !slices.Equal(got.Shape, tn.Shape) || !bytes.Equal(got.Data, tn.Data) || got.File != path {
			t.Errorf("%q: got %s %v (%d bytes, equal %v) from %q, want %s %v (%d bytes)",
				tn.Name, got.DType, got.Shape, len(got.Data), bytes.Equal(got.Data, tn.Data), got.File, tn.DType, tn.Shape, len(tn.Data))
		}
		if size := tn.DType.Size(); len(got.Data) > 0 && uintptr(unsafePointer(got.Data))%uintptr(size) != 0 {
			t.Errorf("%q: data at %p is not aligned to its %d-byte elements", tn.Name, unsafePointer(got.Data), size)
		}
	}
	slices.Sort(want)
	if !slices.Equal(f.Names(), want) {
		t.Errorf("Names() = %v, want %v", f.Names(), want)
	}
	if got := f.Metadata(); len(got) != 2 || got["format"] != "pt" || got["note"] != "<&>" {
		t.Errorf("metadata %v, want %v", got, meta)
	}
	if v := mustTensor(t, f, "c.f32").F32(); len(v) != 7 {
		t.Errorf("F32 view has %d elements, want 7", len(v))
	}
	checkReferenceLayout(t, path)
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("stat %s: %v, mode %v; want 0644", path, err, st.Mode())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// checkReferenceLayout checks what the reference reader requires beyond our
// own: a header padded to a multiple of 8 that starts with '{', and tensors
// that cover the data section with no gap and nothing after.
func checkReferenceLayout(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 || b[8] != '{' {
		t.Errorf("header length %d (want a multiple of 8), first byte %q (want '{')", n, b[8])
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	var spans [][2]int
	for name, raw := range hdr {
		if name == metadataKey {
			continue
		}
		var e struct {
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		spans = append(spans, e.Offsets)
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	end := 0
	for _, s := range spans {
		if s[0] != end {
			t.Errorf("data_offsets %v do not start where the previous tensor ended (%d)", s, end)
		}
		end = s[1]
	}
	if int(8+n)+end != len(b) {
		t.Errorf("tensors end at %d, file is %d bytes", int(8+n)+end, len(b))
	}
}

func mustTensor(t *testing.T, f *File, name string) Tensor {
	t.Helper()
	tn, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("tensor %q missing", name)
	}
	return tn
}

func TestWriteEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.safetensors")
	if err := Write(path, nil, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := "\x08\x00\x00\x00\x00\x00\x00\x00{}      "; string(b) != want {
		t.Errorf("file %q, want %q", b, want)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Names()) != 0 || f.Metadata() != nil {
		t.Errorf("names %v, metadata %v; want none", f.Names(), f.Metadata())
	}
}

func TestWriteReplacesAtomically(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	r := rand.New(rand.NewPCG(3, 4))
	if err := Write(path, []Tensor{randomTensor(r, "old", F32, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	// A failed write leaves the old file intact.
	bad := Tensor{Name: "new", DType: F32, Shape: []int{2}, Data: make([]byte, 7)}
	if err := Write(path, []Tensor{bad}, nil); err == nil || !strings.Contains(err.Error(), "7 bytes, but shape [2] of F32 needs 8") {
		t.Fatalf("Write with short data: error %v", err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Tensor("old"); !ok {
		t.Error("old file was damaged by a failed write")
	}
	f.Close()
	if err := Write(path, []Tensor{randomTensor(r, "new", F32, 2)}, nil); err != nil {
		t.Fatal(err)
	}
	if f, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !slices.Equal(f.Names(), []string{"new"}) {
		t.Errorf("names %v after replacing, want [new]", f.Names())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestStreamWriter(t *testing.T) {
	tensors := mixedTensors()
	specs := make([]TensorSpec, len(tensors))
	for i, tn := range tensors {
		specs[i] = TensorSpec{tn.Name, tn.DType, tn.Shape}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "s.safetensors")
	temps := func() []string { m, _ := filepath.Glob(filepath.Join(dir, ".*")); return m }

	t.Run("ok", func(t *testing.T) {
		w, err := Create(path, specs, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Error("destination exists before Close")
		}
		for _, tn := range tensors {
			if err := w.WriteTensor(tn.Name, tn.Data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WriteTensor("extra", nil); err == nil || !strings.Contains(err.Error(), "already written") {
			t.Errorf("extra tensor: error %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w.Abort() // must not remove the committed file
		if err := w.Close(); err == nil {
			t.Error("second Close succeeded")
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, tn := range tensors {
			if !bytes.Equal(mustTensor(t, f, tn.Name).Data, tn.Data) {
				t.Errorf("%q: data differs", tn.Name)
			}
		}
		checkReferenceLayout(t, path)
	})
	os.Remove(path)

	for _, tc := range []struct {
		name  string
		write func(w *StreamWriter) error
		want  string
	}{
		{"wrong order", func(w *StreamWriter) error { return w.WriteTensor(tensors[1].Name, tensors[1].Data) }, "must come in spec order"},
		{"wrong size", func(w *StreamWriter) error { return w.WriteTensor(tensors[0].Name, tensors[0].Data[1:]) }, "2 bytes, but shape [3] of BOOL needs 3"},
		{"incomplete", func(w *StreamWriter) error {
			if err := w.WriteTensor(tensors[0].Name, tensors[0].Data); err != nil {
				return err
			}
			return w.Close()
		}, "only 1 of 11 tensors written"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Create(path, specs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.write(w); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			w.Abort()
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Error("destination exists after a failed write")
			}
			if left := temps(); len(left) != 0 {
				t.Errorf("temporary files left after Abort: %v", left)
			}
		})
	}
}

func TestCreateRejectsBadSpecs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	for _, tc := range []struct {
		name  string
		specs []TensorSpec
		want  string
	}{
		{"unknown dtype", []TensorSpec{{"a", "F99", []int{1}}}, `unknown dtype "F99"`},
		{"negative dim", []TensorSpec{{"a", F32, []int{2, -1}}}, "negative dimension"},
		{"overflow", []TensorSpec{{"a", F32, []int{1 << 40, 1 << 40}}}, "overflows"},
		{"duplicate", []TensorSpec{{"a", F32, nil}, {"a", F32, nil}}, `"a" declared twice`},
		{"empty name", []TensorSpec{{"", F32, nil}}, "empty name"},
		{"reserved name", []TensorSpec{{"__metadata__", F32, nil}}, "reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Create(path, tc.specs, nil)
			if err == nil {
				w.Abort()
				t.Fatal("Create succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want one containing %q", err, tc.want)
			}
		})
	}
}
