package minimax01

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/gguf"
	"github.com/lightninglm/lightning/quant"
)

// ggmlBlocks are the published block layouts of ggml's types
// (ggml-common.h): elements per block and bytes per block.
var ggmlBlocks = map[gguf.Type][2]int{
	gguf.F32: {1, 4}, gguf.F16: {1, 2}, gguf.BF16: {1, 2},
	gguf.Q4_0: {32, 18}, gguf.Q4_1: {32, 20}, gguf.Q5_0: {32, 22}, gguf.Q5_1: {32, 24}, gguf.Q8_0: {32, 34},
	gguf.Q4_K: {256, 144}, gguf.Q5_K: {256, 176}, gguf.Q6_K: {256, 210},
}

// ggmlLoadedAs is the Lightning format each ggml type loads as
// (GGUFLoadPlan, for rows of a multiple of 64).
var ggmlLoadedAs = map[gguf.Type]string{gguf.Q8_0: "q8b32", gguf.Q4_0: "q4g32", gguf.Q4_1: "q4g32m"}

// expectedTokenBytes works out, from a GGUF file's tensor directory and the
// published block sizes, the weight bytes one decoded token reads (one row
// of token_embd, TopK/Experts of each stacked expert tensor, every other
// tensor whole), in all and by the Lightning format they load as.
func expectedTokenBytes(t *testing.T, f *gguf.File, c *Config) (int64, map[string]int64) {
	t.Helper()
	var total int64
	by := map[string]int64{}
	for _, tn := range f.Tensors() {
		blk, ok := ggmlBlocks[tn.Type]
		if !ok || tn.NumElements()%blk[0] != 0 {
			t.Fatalf("%s: type %s has no published block here, or %d elements do not fill its blocks", tn.Name, tn.Type, tn.NumElements())
		}
		n := int64(tn.NumElements() / blk[0] * blk[1])
		switch {
		case tn.Name == "token_embd.weight":
			n /= int64(c.Vocab)
		case strings.HasSuffix(tn.Name, "_exps.weight"):
			n = n * int64(c.TopK) / int64(c.Experts)
		}
		name, ok := ggmlLoadedAs[tn.Type]
		if !ok {
			name = tn.Type.String()
		}
		total += n
		by[name] += n
	}
	return total, by
}

// decodeExtra is what a decode step at context ctx moves besides the
// weights, worked out from the config: the fp32 keys and values of ctx
// tokens in each softmax layer, and each lightning layer's fp32 state
// [heads, hd, hd], read and written.
func decodeExtra(c *Config, ctx int) int64 {
	var b int64
	for _, k := range c.LayerKinds {
		if k == Softmax {
			b += int64(ctx) * 2 * int64(c.KVHeads*c.HeadDim) * 4
		} else {
			b += 2 * int64(c.Heads*c.HeadDim*c.HeadDim) * 4
		}
	}
	return b
}

// checkDecodeBytes compares m's accounting with the expected weight bytes
// per token (in all and by format) at contexts 0 and 9.
func checkDecodeBytes(t *testing.T, m *Model, want int64, wantBy map[string]int64) {
	t.Helper()
	wb := m.Weights.Bytes(m.Config)
	got := map[string]int64{}
	for typ, n := range wb.PerTokenByType {
		got[typ.String()] = n
	}
	if wb.PerToken != want {
		t.Errorf("weight bytes per token %d, want %d (by format %v, want %v)", wb.PerToken, want, got, wantBy)
	}
	for k, n := range wantBy {
		if got[k] != n {
			t.Errorf("%s bytes per token %d, want %d", k, got[k], n)
		}
	}
	for k := range got {
		if _, ok := wantBy[k]; !ok {
			t.Errorf("bytes per token in %s, which the model should not hold", k)
		}
	}
	for _, ctx := range []int{0, 9} {
		if d, w := m.DecodeBytes(ctx), want+decodeExtra(m.Config, ctx); d != w {
			t.Errorf("DecodeBytes(%d) = %d, want %d", ctx, d, w)
		}
	}
}

// TestDecodeBytesByFormat checks the bytes a decoded token moves
// (Weights.Bytes, Model.DecodeBytes) for a small model in every GGUF type
// Lightning reads and in Lightning's own q8 and q4g64, against sizes
// worked out here from the published layouts: each ggml type from the
// file's tensor directory and ggml's block sizes (Q8_0 loads as q8b32,
// Q4_0 and Q4_1 as q4g32 and q4g32m, of the same size; the others stay
// blocks); q8 as int8 plus one F32 scale per row, q4g64 as 4 bits plus one
// F16 scale per 64. Every matrix has rows of 256, so each file holds the
// type asked for (checked), except the Q4_K_M mix, which holds three.
func TestDecodeBytesByFormat(t *testing.T) {
	c := shaped(512, 256, 2, 2, 1, 128, 64, 4, 256)()
	c.LayerKinds = []int{Lightning, Softmax}
	dir := filepath.Join(t.TempDir(), "f32")
	if err := WriteRandom(dir, c, RandomOptions{DType: quant.F32, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	src, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	loadFile := func(t *testing.T, path string, check func(f *gguf.File)) {
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		check(f)
		want, wantBy := expectedTokenBytes(t, f, c)
		m, err := Load(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		checkDecodeBytes(t, m, want, wantBy)
	}
	matrices := func(f *gguf.File) map[gguf.Type]int {
		types := map[gguf.Type]int{}
		for _, tn := range f.Tensors() {
			if len(tn.Shape) > 1 && !strings.Contains(tn.Name, "ffn_gate_inp") {
				types[tn.Type]++
			}
		}
		return types
	}
	for _, tc := range []struct {
		typ   gguf.Type
		mixed bool
	}{{gguf.Q8_0, false}, {gguf.Q5_0, false}, {gguf.Q5_1, false}, {gguf.Q4_K, false}, {gguf.Q5_K, false}, {gguf.Q6_K, false}, {gguf.Q4_K, true}} {
		name := tc.typ.String()
		if tc.mixed {
			name += "_M"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name+".gguf")
			if err := WriteGGUF(path, c, src.Weights, GGUFExportOptions{Type: tc.typ, Mixed: tc.mixed}); err != nil {
				t.Fatal(err)
			}
			loadFile(t, path, func(f *gguf.File) {
				types := matrices(f)
				if want := map[gguf.Type]int{tc.typ: 2 + 3 + 4 + 2*3}; !tc.mixed && !equalCounts(types, want) {
					t.Fatalf("matrix types %v, want %v", types, want)
				}
				if tc.mixed && (types[gguf.Q4_K] == 0 || types[gguf.Q5_K] == 0 || types[gguf.Q6_K] == 0) {
					t.Fatalf("Q4_K_M matrix types %v: want Q4_K, Q5_K and Q6_K", types)
				}
			})
		})
	}
	// Q4_0 and Q4_1, which Lightning reads but does not write: the Q8_0
	// file's tensors again, every matrix as blocks of random quants with
	// finite half-precision scales (and mins).
	q8 := filepath.Join(t.TempDir(), "q8_0.gguf")
	if err := WriteGGUF(q8, c, src.Weights, GGUFExportOptions{Type: gguf.Q8_0}); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []gguf.Type{gguf.Q4_0, gguf.Q4_1} {
		t.Run(typ.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), typ.String()+".gguf")
			retypeMatrices(t, q8, path, typ)
			loadFile(t, path, func(f *gguf.File) {
				if types := matrices(f); !equalCounts(types, map[gguf.Type]int{typ: 2 + 3 + 4 + 2*3}) {
					t.Fatalf("matrix types %v", types)
				}
			})
		})
	}
	// Lightning's formats, quantized at load with the default spec: the
	// attention and expert matrices in the format, the LM head in q8, the
	// embedding as stored (F32).
	for _, tc := range []struct {
		typ  quant.Type
		size func(rows, cols int) int64
	}{
		{quant.Q8, func(rows, cols int) int64 { return int64(rows * (cols + 4)) }},
		{quant.Q4G64, func(rows, cols int) int64 { return int64(rows * (cols/2 + 2*cols/64)) }},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			spec := DefaultQuantSpec(tc.typ)
			m, err := Load(dir, Options{Quant: &spec})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			q8 := func(rows, cols int) int64 { return int64(rows * (cols + 4)) }
			hd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
			by := map[string]int64{
				"F32": int64(4 * (c.Dim + c.Dim + 2*2*c.Dim + hd + 2*c.Experts*c.Dim)), // embedding row, final norm, 2 layers' norms, attn_norm, routers
				"q8":  q8(c.Vocab, c.Dim),
			}
			f := tc.size
			by[tc.typ.String()] += f(3*hd, c.Dim) + f(hd, c.Dim) + f(c.Dim, hd) + // lightning layer
				f(hd, c.Dim) + 2*f(kvd, c.Dim) + f(c.Dim, hd) + // softmax layer
				2*int64(c.TopK)*(2*f(c.FFN, c.Dim)+f(c.Dim, c.FFN)) // TopK experts of both layers
			var want int64
			for _, n := range by {
				want += n
			}
			checkDecodeBytes(t, m, want, by)
		})
	}
}

func equalCounts(a, b map[gguf.Type]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// retypeMatrices writes dst as a copy of the GGUF file src whose matrices
// (the Q8_0 tensors) become typ (Q4_0 or Q4_1) blocks of random quants
// with finite scales.
func retypeMatrices(t *testing.T, src, dst string, typ gguf.Type) {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blk := ggmlBlocks[typ]
	var infos []gguf.TensorInfo
	for _, tn := range f.Tensors() {
		ty := tn.Type
		if ty == gguf.Q8_0 {
			ty = typ
		}
		infos = append(infos, gguf.TensorInfo{Name: tn.Name, Type: ty, Shape: tn.Shape})
	}
	w, err := gguf.Create(dst, f.Metadata(), infos)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	seed := uint32(1)
	for i, tn := range f.Tensors() {
		data := tn.Data
		if infos[i].Type == typ {
			data = make([]byte, tn.NumElements()/blk[0]*blk[1])
			for b := range data {
				seed = seed*1664525 + 1013904223
				data[b] = byte(seed >> 24)
			}
			for o := 0; o < len(data); o += blk[1] {
				binary.LittleEndian.PutUint16(data[o:], 0x2000) // d = 2⁻⁷
				if typ == gguf.Q4_1 {
					binary.LittleEndian.PutUint16(data[o+2:], 0xa000) // m = −2⁻⁷
				}
			}
		}
		if err := w.WriteTensor(tn.Name, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
