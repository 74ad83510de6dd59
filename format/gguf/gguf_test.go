package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// sampleMeta holds one value of every metadata type, arrays of every element
// type, and an array of arrays.
func sampleMeta() *Metadata {
	m := NewMetadata()
	m.Set("general.architecture", "test")
	m.Set("u8", uint8(200))
	m.Set("i8", int8(-100))
	m.Set("u16", uint16(60000))
	m.Set("i16", int16(-30000))
	m.Set("u32", uint32(4000000000))
	m.Set("i32", int32(-2000000000))
	m.Set("f32", float32(1.5))
	m.Set("bool", true)
	m.Set("str", "héllo")
	m.Set("u64", uint64(1<<63))
	m.Set("i64", int64(-1<<62))
	m.Set("f64", math.Pi)
	m.Set("a.u8", Array{TypeUint8, []uint8{1, 2}})
	m.Set("a.i8", Array{TypeInt8, []int8{-1}})
	m.Set("a.u16", Array{TypeUint16, []uint16{7}})
	m.Set("a.i16", Array{TypeInt16, []int16{-7}})
	m.Set("a.u32", Array{TypeUint32, []uint32{1, 2, 3}})
	m.Set("a.i32", Array{TypeInt32, []int32{-1, 0, 1}})
	m.Set("a.f32", Array{TypeFloat32, []float32{0.25}})
	m.Set("a.bool", Array{TypeBool, []bool{true, false}})
	m.Set("a.str", Array{TypeString, []string{"a", "", "ccc"}})
	m.Set("a.u64", Array{TypeUint64, []uint64{9}})
	m.Set("a.i64", Array{TypeInt64, []int64{-9}})
	m.Set("a.f64", Array{TypeFloat64, []float64{2.5}})
	m.Set("a.empty", Array{TypeString, []string{}})
	m.Set("a.nested", Array{TypeArray, []Array{{TypeInt32, []int32{1}}, {TypeString, []string{"x", "y"}}}})
	return m
}

type sampleTensor struct {
	info TensorInfo
	data []byte
}

func sampleTensors() []sampleTensor {
	mk := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i)*7 + seed
		}
		return b
	}
	return []sampleTensor{
		{TensorInfo{"token_embd.weight", F32, []int{3, 5}}, mk(60, 1)},
		{TensorInfo{"blk.0.ffn_down_exps.weight", Q8_0, []int{2, 3, 64}}, mk(2*3*2*34, 2)},
		{TensorInfo{"blk.0.attn_qkv.weight", Q4_K, []int{2, 256}}, mk(2*144, 3)},
		{TensorInfo{"scalar_like", F16, []int{1}}, mk(2, 4)},
		{TensorInfo{"empty", BF16, []int{0, 4}}, nil},
	}
}

func writeSample(t testing.TB, path string, meta *Metadata, ts []sampleTensor) {
	t.Helper()
	infos := make([]TensorInfo, len(ts))
	for i, s := range ts {
		infos[i] = s.info
	}
	w, err := Create(path, meta, infos)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, s := range ts {
		if err := w.WriteTensor(s.info.Name, s.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, align := range []uint32{0, 64} {
		t.Run(fmt.Sprint("align", align), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.gguf")
			meta, ts := sampleMeta(), sampleTensors()
			if align != 0 {
				meta.Set("general.alignment", align)
			}
			writeSample(t, path, meta, ts)
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Version != 3 {
				t.Errorf("version %d", f.Version)
			}
			got := f.Metadata()
			if !reflect.DeepEqual(got.Keys(), meta.Keys()) {
				t.Errorf("keys %v, want %v", got.Keys(), meta.Keys())
			}
			for _, k := range meta.Keys() {
				w, _ := meta.Get(k)
				g, _ := got.Get(k)
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s: got %#v, want %#v", k, g, w)
				}
			}
			a := int(max(align, DefaultAlignment))
			for _, s := range ts {
				tt, ok := f.Tensor(s.info.Name)
				if !ok {
					t.Fatalf("missing %s", s.info.Name)
				}
				if tt.Type != s.info.Type || !reflect.DeepEqual(tt.Shape, s.info.Shape) || string(tt.Data) != string(s.data) {
					t.Errorf("%s: got %s %v %d bytes, want %s %v %d bytes", s.info.Name, tt.Type, tt.Shape, len(tt.Data), s.info.Type, s.info.Shape, len(s.data))
				}
				if off := tensorOffset(t, path, s.info.Name); off%a != 0 {
					t.Errorf("%s: data at file offset %d, not a multiple of %d", s.info.Name, off, a)
				}
			}
		})
	}
}

// tensorOffset returns the file offset of a tensor's data, parsing the file
// from a buffer whose address is known.
func tensorOffset(t *testing.T, path, name string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parse(path, raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range h.tensors {
		if tt.Name == name {
			return int(uintptr(unsafe.Pointer(unsafe.SliceData(tt.Data[:cap(tt.Data)]))) - uintptr(unsafe.Pointer(&raw[0])))
		}
	}
	t.Fatalf("no tensor %s", name)
	return 0
}

func TestMetadataAccessors(t *testing.T) {
	m := sampleMeta()
	if v, err := m.Uint("u32"); err != nil || v != 4000000000 {
		t.Errorf("Uint(u32) = %v, %v", v, err)
	}
	if _, err := m.Uint("i8"); err == nil {
		t.Error("Uint of a negative value: no error")
	}
	if v, err := m.Float("f32"); err != nil || v != 1.5 {
		t.Errorf("Float(f32) = %v, %v", v, err)
	}
	if v, err := m.Ints("a.i32"); err != nil || !reflect.DeepEqual(v, []int64{-1, 0, 1}) {
		t.Errorf("Ints = %v, %v", v, err)
	}
	if v, err := m.Ints("a.bool"); err != nil || !reflect.DeepEqual(v, []int64{1, 0}) {
		t.Errorf("Ints(bool) = %v, %v", v, err)
	}
	if v, err := m.Strings("a.str"); err != nil || !reflect.DeepEqual(v, []string{"a", "", "ccc"}) {
		t.Errorf("Strings = %v, %v", v, err)
	}
	if _, err := m.String("missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing key: %v", err)
	}
}

// header builds a file by hand: the magic and version, then counts and raw
// sections, so malformed files can be made that the Writer refuses to write.
type hand struct{ b []byte }

func (h *hand) u32(v uint32) *hand { h.b = binary.LittleEndian.AppendUint32(h.b, v); return h }
func (h *hand) u64(v uint64) *hand { h.b = binary.LittleEndian.AppendUint64(h.b, v); return h }
func (h *hand) str(s string) *hand { h.u64(uint64(len(s))); h.b = append(h.b, s...); return h }
func (h *hand) raw(b ...byte) *hand {
	h.b = append(h.b, b...)
	return h
}
func start(nt, nkv uint64) *hand { h := &hand{[]byte(Magic)}; return h.u32(3).u64(nt).u64(nkv) }

// tensorRec appends one tensor record.
func (h *hand) tensorRec(name string, typ Type, off uint64, dims ...uint64) *hand {
	h.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		h.u64(d)
	}
	return h.u32(uint32(typ)).u64(off)
}

func (h *hand) padTo(a int) *hand {
	for len(h.b)%a != 0 {
		h.b = append(h.b, 0)
	}
	return h
}

func TestMalformed(t *testing.T) {
	good := func() []byte { return start(1, 0).tensorRec("w", F32, 0, 4).padTo(32).raw(make([]byte, 16)...).b }
	cases := []struct {
		name string
		data []byte
		want string // in the error
	}{
		{"empty", nil, "needs 4 bytes"},
		{"magic", append([]byte("GGML"), good()[4:]...), "not a GGUF file"},
		{"v1", (&hand{[]byte(Magic)}).u32(1).u32(0).u32(0).b, "version 1"},
		{"v9", (&hand{[]byte(Magic)}).u32(9).u64(0).u64(0).b, "version 9"},
		{"bigendian", (&hand{[]byte(Magic)}).u32(3 << 24).u64(0).u64(0).b, "big-endian"},
		{"huge tensor count", start(1<<60, 0).b, "cannot fit"},
		{"huge kv count", start(0, 1<<60).b, "cannot fit"},
		{"huge string", start(0, 1).u64(1 << 62).b, "cannot fit"},
		{"bad utf8", start(0, 1).str("\xff").u32(uint32(TypeUint8)).raw(1).b, "UTF-8"},
		{"empty key", start(0, 1).str("").u32(uint32(TypeUint8)).raw(1).b, "empty key"},
		{"dup key", start(0, 2).str("k").u32(uint32(TypeUint8)).raw(1).str("k").u32(uint32(TypeUint8)).raw(1).b, "duplicate key"},
		{"value type", start(0, 1).str("k").u32(13).b, "unknown value type 13"},
		{"bool byte", start(0, 1).str("k").u32(uint32(TypeBool)).raw(2).b, "want 0 or 1"},
		{"array count", start(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint32)).u64(1 << 40).b, "cannot fit"},
		{"array elem type", start(0, 1).str("k").u32(uint32(TypeArray)).u32(77).u64(1).b, "unknown value type 77"},
		{"array depth", func() []byte {
			h := start(0, 1).str("k").u32(uint32(TypeArray))
			for range 6 {
				h.u32(uint32(TypeArray)).u64(1)
			}
			return h.u32(uint32(TypeUint8)).u64(0).b
		}(), "nested deeper"},
		{"alignment type", start(0, 1).str("general.alignment").u32(uint32(TypeUint64)).u64(32).b, "general.alignment"},
		{"alignment value", start(0, 1).str("general.alignment").u32(uint32(TypeUint32)).u32(24).b, "power of two"},
		{"dims 0", start(1, 0).str("w").u32(0).raw(make([]byte, 32)...).b, "tensor w: 0 dimensions"},
		{"dims 5", start(1, 0).str("w").u32(5).raw(make([]byte, 32)...).b, "tensor w: 5 dimensions"},
		{"ggml type", start(1, 0).tensorRec("w", Type(4), 0, 4).b, "tensor w: unknown ggml type 4"},
		{"dup tensor", start(2, 0).tensorRec("w", F32, 0, 4).tensorRec("w", F32, 32, 4).b, "tensor w: duplicate"},
		{"block multiple", start(1, 0).tensorRec("w", Q8_0, 0, 40).padTo(32).raw(make([]byte, 64)...).b, "tensor w: row of 40 elements"},
		{"misaligned", start(1, 0).tensorRec("w", F32, 8, 4).padTo(32).raw(make([]byte, 64)...).b, "tensor w: offset 8"},
		{"past end", start(1, 0).tensorRec("w", F32, 0, 8).padTo(32).raw(make([]byte, 16)...).b, "tensor w: bytes [0, 32)"},
		{"offset past end", start(1, 0).tensorRec("w", F32, 1<<40, 1).padTo(32).b, "tensor w: bytes"},
		{"dim product", start(1, 0).tensorRec("w", F32, 0, 1<<20, 1<<20, 1<<20).padTo(32).b, "tensor w: F32 dims"},
		{"overlap", start(2, 0).tensorRec("a", F32, 0, 16).tensorRec("b", F32, 32, 8).padTo(32).raw(make([]byte, 96)...).b, "overlap"},
		{"no data padding", start(1, 0).tensorRec("w", F32, 0, 1).b, "padding"},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("case%d.gguf", i))
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatalf("no error, want one containing %q", c.want)
			}
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) {
				t.Errorf("error %v wraps neither ErrFormat nor ErrUnsupported", err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file and %q", err, c.want)
			}
		})
	}
	// The good file opens, and every truncation of it fails cleanly.
	g := good()
	if _, err := parse("good", g); err != nil {
		t.Fatalf("good file: %v", err)
	}
	for n := range len(g) {
		if _, err := parse("cut", g[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(g))
		}
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.gguf")
	if _, err := Create(path, nil, []TensorInfo{{"a", Q8_0, []int{2, 33}}}); err == nil || !strings.Contains(err.Error(), "multiple of 32") {
		t.Errorf("bad row length: %v", err)
	}
	w, err := Create(path, nil, []TensorInfo{{"a", F32, []int{2}}, {"b", F32, []int{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("b", make([]byte, 4)); err == nil {
		t.Error("out of order: no error")
	}
	if err := w.WriteTensor("a", make([]byte, 12)); err == nil {
		t.Error("too many bytes: no error")
	}
	if err := w.WriteTensor("a", make([]byte, 4)); err != nil { // in two pieces
		t.Fatal(err)
	}
	if err := w.WriteTensor("b", make([]byte, 4)); err == nil {
		t.Error("next tensor before the current one is complete: no error")
	}
	if err := w.WriteTensor("a", make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "only 1 of 2") {
		t.Errorf("incomplete: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("incomplete file left at %s", path)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("temporary files left: %v", ents)
	}
}

// TestSplit writes a model in three parts the way gguf-split names and tags
// them, and opens it from its first part.
func TestSplit(t *testing.T) {
	dir := t.TempDir()
	ts := sampleTensors()
	groups := [][]sampleTensor{ts[:2], ts[2:4], ts[4:]}
	for i, g := range groups {
		m := NewMetadata()
		if i == 0 {
			m = sampleMeta()
		}
		m.Set("split.no", uint16(i))
		m.Set("split.count", uint16(3))
		m.Set("split.tensors.count", int32(len(ts)))
		writeSample(t, filepath.Join(dir, fmt.Sprintf("model-%05d-of-00003.gguf", i+1)), m, g)
	}
	f, err := Open(filepath.Join(dir, "model-00001-of-00003.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Parts()) != 3 || len(f.Tensors()) != len(ts) {
		t.Fatalf("%d parts, %d tensors", len(f.Parts()), len(f.Tensors()))
	}
	for _, s := range ts {
		tt, ok := f.Tensor(s.info.Name)
		if !ok || string(tt.Data) != string(s.data) {
			t.Errorf("%s: wrong or missing", s.info.Name)
		}
	}
	if _, err := f.Metadata().String("str"); err != nil {
		t.Error("metadata is not the first part's")
	}
	if _, err := Open(filepath.Join(dir, "model-00002-of-00003.gguf")); err == nil || !strings.Contains(err.Error(), "first part") {
		t.Errorf("opening part 2: %v", err)
	}
	os.Remove(filepath.Join(dir, "model-00003-of-00003.gguf"))
	if _, err := Open(filepath.Join(dir, "model-00001-of-00003.gguf")); err == nil || !strings.Contains(err.Error(), "00003-of-00003") {
		t.Errorf("missing part 3: %v", err)
	}
}
