package quant

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
)

var ggmlTypes = []Type{GQ4_0, GQ4_1, GQ5_0, GQ5_1, GQ8_0, GQ4_K, GQ5_K, GQ6_K}

// TestGGMLSizes checks each block layout's byte count against the fields of
// its struct in ggml-common.h (the static_asserts there).
func TestGGMLSizes(t *testing.T) {
	const h = 2 // ggml_half
	want := map[Type]int{
		GQ4_0: h + 32/2, GQ4_1: 2*h + 32/2, GQ5_0: h + 4 + 32/2, GQ5_1: 2*h + 4 + 32/2, GQ8_0: h + 32,
		GQ4_K: 2*h + 12 + 256/2, GQ5_K: 2*h + 12 + 256/8 + 256/2, GQ6_K: h + 256/2 + 256/4 + 256/16,
	}
	for typ, n := range want {
		f := typ.Info()
		if rb, err := typ.RowBytes(f.BlockLen); err != nil || rb != n {
			t.Errorf("%s: %d bytes per block (%v), want %d", typ, rb, err, n)
		}
		if typ.ScalesPerRow(1024) != 0 || !typ.ScaleTypeOK(Invalid) || typ.ScaleTypeOK(F16) || typ.CanQuantize() {
			t.Errorf("%s: not an inline, read-only format", typ)
		}
	}
	if got := GQ4_K.BitsPerWeight(4096, Invalid); got != 4.5 {
		t.Errorf("Q4_K bits per weight %g, want 4.5", got)
	}
	err := GQ4_K.QuantizeRow(make([]byte, 144), nil, nil, Invalid, make([]float32, 256))
	if err == nil || !strings.Contains(err.Error(), "does not produce") {
		t.Errorf("QuantizeRow(Q4_K): %v", err)
	}
	for _, n := range QuantizedNames() {
		if strings.ContainsAny(n, "_") {
			t.Errorf("QuantizedNames lists the read-only %s", n)
		}
	}
}

// TestGGMLDequantReference compares every ggml type with values computed by
// an independent implementation: llama.cpp's gguf-py (gguf/quants.py, the
// numpy dequantize_blocks of each type), run outside this repository on
// random blocks with finite random F16 scales; the blocks and the float32
// results it printed are testdata/ggml_dequant_ref.json. Both compute in
// fp32 in the same order (d·sc, then ·q, then −m), so the match must be
// exact. F16 and BF16 rows check the float formats the same way.
func TestGGMLDequantReference(t *testing.T) {
	raw, err := os.ReadFile("testdata/ggml_dequant_ref.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string]struct {
		Blocks string   `json:"blocks"`
		Values []uint32 `json:"values"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	for _, typ := range append(ggmlTypes, F16, BF16) {
		t.Run(typ.String(), func(t *testing.T) {
			r, ok := ref[typ.String()]
			if !ok {
				t.Fatalf("no reference for %s", typ)
			}
			src, err := hex.DecodeString(r.Blocks)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(r.Values))
			typ.DequantRow(got, src, nil, nil, Invalid)
			bad := 0
			for i, bits := range r.Values {
				if math.Float32bits(got[i]) != bits {
					if bad++; bad <= 5 {
						t.Errorf("element %d: got %v, want %v", i, got[i], math.Float32frombits(bits))
					}
				}
			}
		})
	}
}

// TestGGMLHandBlocks checks one block of each 32-element type worked out
// by hand from the published layout, with power-of-two scales so every
// product is exact.
func TestGGMLHandBlocks(t *testing.T) {
	half := map[float32]uint16{0.5: 0x3800, 2: 0x4000, -1: 0xbc00}
	h := func(v float32) []byte { return binary.LittleEndian.AppendUint16(nil, half[v]) }
	// Q8_0: d = 0.5, qs[j] = j−16 except qs[0] = −128: element j is 0.5·qs[j].
	q8 := h(0.5)
	for j := range 32 {
		q8 = append(q8, byte(int8(j-16)))
	}
	q8[2] = 0x80
	// Q4_0: d = 2, byte j = 0x0F for j even, 0xF0 for odd: element j (< 16)
	// is 2·(15−8) = 14 or 2·(0−8) = −16; element 16+j the other way round.
	q4 := h(2)
	for j := range 16 {
		q4 = append(q4, []byte{0x0F, 0xF0}[j%2])
	}
	// Q5_1: d = 0.5, m = −1, qh = bits 0 and 31, qs = 0x21: element 0 =
	// 0.5·(1+16) − 1 = 7.5; 1…15 = 0.5·1 − 1 = −0.5; 16…30 = 0.5·2 − 1 = 0;
	// 31 = 0.5·(2+16) − 1 = 8.
	q5 := append(h(0.5), h(-1)...)
	q5 = binary.LittleEndian.AppendUint32(q5, 1|1<<31)
	for range 16 {
		q5 = append(q5, 0x21)
	}
	// Q5_0: d = 2, qh = bits 0 and 31, qs = 0x21: element 0 = 2·(1+16−16)
	// = 2; 1…15 = 2·(1−16) = −30; 16…30 = 2·(2−16) = −28; 31 =
	// 2·(2+16−16) = 4.
	q50 := h(2)
	q50 = binary.LittleEndian.AppendUint32(q50, 1|1<<31)
	for range 16 {
		q50 = append(q50, 0x21)
	}
	// Q4_1: d = 0.5, m = −1, byte j = j | (15−j)<<4: element j (< 16) =
	// 0.5·j − 1, element 16+j = 0.5·(15−j) − 1.
	q41 := append(h(0.5), h(-1)...)
	for j := range 16 {
		q41 = append(q41, byte(j|(15-j)<<4))
	}
	cases := []struct {
		typ  Type
		src  []byte
		want func(j int) float32
	}{
		{GQ5_0, q50, func(j int) float32 {
			switch {
			case j == 0:
				return 2
			case j == 31:
				return 4
			case j < 16:
				return -30
			}
			return -28
		}},
		{GQ4_1, q41, func(j int) float32 {
			if j < 16 {
				return 0.5*float32(j) - 1
			}
			return 0.5*float32(31-j) - 1
		}},
		{GQ8_0, q8, func(j int) float32 {
			if j == 0 {
				return -64
			}
			return 0.5 * float32(j-16)
		}},
		{GQ4_0, q4, func(j int) float32 {
			if (j < 16) == (j%2 == 0) {
				return 14
			}
			return -16
		}},
		{GQ5_1, q5, func(j int) float32 {
			switch {
			case j == 0:
				return 7.5
			case j == 31:
				return 8
			case j < 16:
				return -0.5
			}
			return 0
		}},
	}
	for _, c := range cases {
		got := make([]float32, 32)
		c.typ.DequantRow(got, c.src, nil, nil, Invalid)
		for j, v := range got {
			if v != c.want(j) {
				t.Errorf("%s element %d: got %v, want %v", c.typ, j, v, c.want(j))
			}
		}
	}
}

// randomGGML returns rows of random blocks of typ with finite F16 scales.
func randomGGML(r *rand.Rand, typ Type, rows, cols int) []byte {
	rb, _ := typ.RowBytes(cols)
	b := make([]byte, rows*rb)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	f := typ.Info()
	fields := map[Type][]int{GQ4_0: {0}, GQ5_0: {0}, GQ8_0: {0}, GQ4_1: {0, 2}, GQ5_1: {0, 2}, GQ4_K: {0, 2}, GQ5_K: {0, 2}, GQ6_K: {208}}[typ]
	for o := 0; o < len(b); o += f.BlockBytes {
		for _, fo := range fields { // |d| in [2⁻⁷, 2⁻⁶): products stay small
			binary.LittleEndian.PutUint16(b[o+fo:], 0x2000|uint16(r.IntN(0x400))|uint16(r.IntN(2))<<15)
		}
	}
	return b
}

// TestGGMLMatMul checks the product of each ggml format against the fp64
// dot products of its dequantized rows, on every kernel path. Bound: a
// length-n fp32 dot product of terms |wᵢxᵢ| errs by at most n·ε·Σ|wᵢxᵢ|
// (ε = 2⁻²⁴), whatever the order; the kernels also round each activation
// to a multiple of its block's dx = amax/127 (blocks of 256 for the
// K-quants, of 32 for the others), so they may err by Σ|wᵢ|·dx/2 more (and
// the fp32 bound is taken over |wᵢ|·(|xᵢ| + dx/2)).
func TestGGMLMatMul(t *testing.T) {
	const T, in, out = 3, 512, 5
	for _, typ := range ggmlTypes {
		r := rand.New(rand.NewPCG(1, uint64(typ)))
		w := randomGGML(r, typ, out, in)
		x := make([]float32, T*in)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		clear(x[in+256 : 2*in]) // all-zero activation blocks
		rb, _ := typ.RowBytes(in)
		row := make([]float32, in)
		bl := typ.Info().BlockLen // the activation blocks: as long as the weight blocks
		kernel := map[int]string{32: "matmul.block32", 256: "matmul.kquant"}[bl]
		t.Run(typ.String(), func(t *testing.T) {
			numtest.EachImpl(t, kernel, func(t *testing.T) {
				dst := make([]float32, T*out)
				typ.MatMul(dst, x, T, in, out, Weights{Q: w})
				for o := range out {
					typ.DequantRow(row, w[o*rb:(o+1)*rb], nil, nil, Invalid)
					for tk := range T {
						var want, mag, actErr float64
						for b := 0; b < in; b += bl {
							xs := x[tk*in+b : tk*in+b+bl]
							var amax float64
							for _, v := range xs {
								amax = max(amax, math.Abs(float64(v)))
							}
							halfStep := amax / 127 / 2
							for i, v := range xs {
								wi := float64(row[b+i])
								want += wi * float64(v)
								mag += math.Abs(wi) * (math.Abs(float64(v)) + halfStep)
								actErr += math.Abs(wi) * halfStep
							}
						}
						tol := float64(in)*0x1p-24*mag + actErr
						if d := math.Abs(float64(dst[tk*out+o]) - want); !(d <= tol) {
							t.Errorf("dst[%d,%d] = %v, want %v (|Δ| %.3g > %.3g)", tk, o, dst[tk*out+o], want, d, tol)
						}
					}
				}
			})
		})
	}
}

// BenchmarkGGMLMatVec measures decode-shaped products (T = 1, 4096 → 1024)
// of the ggml formats used in place, next to q4g64 and bf16 for scale;
// bytes/s is weight bytes read.
func BenchmarkGGMLMatVec(b *testing.B) {
	const in, out = 4096, 1024
	r := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, in)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	dst := make([]float32, out)
	for _, typ := range []Type{GQ4_K, GQ5_K, GQ6_K, GQ5_0, GQ8_0, Q4G64, BF16} {
		var w Weights
		switch {
		case typ.Info().Inline:
			w.Q = randomGGML(r, typ, out, in)
		case typ == BF16:
			w.Q = make([]byte, 2*in*out)
			for i := range w.Q {
				w.Q[i] = byte(r.IntN(64))
			}
		default:
			row := make([]float32, in)
			rb, _ := typ.RowBytes(in)
			w.Q, w.Scales, w.ScaleType = make([]byte, out*rb), make([]byte, out*in/64*2), F16
			for o := range out {
				for i := range row {
					row[i] = float32(r.NormFloat64())
				}
				typ.QuantizeRow(w.Q[o*rb:(o+1)*rb], w.Scales[o*in/64*2:(o+1)*in/64*2], nil, F16, row)
			}
		}
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(len(w.Q) + len(w.Scales)))
			for b.Loop() {
				typ.MatMul(dst, x, 1, in, out, w)
			}
		})
	}
}

// TestEncodeQ4_K encodes Gaussian rows (and a constant, an all-positive and
// an all-zero block) and checks every element against what the layout
// allows: within half a step ds = d·sc of its value, plus the rounding of
// sc to an integer (the top level moves by at most 15·d/2), of m (the
// bottom moves by at most dmin/2), and of d and dmin to F16 (2⁻¹¹
// relative, times the 15 steps and the offset).
func TestEncodeQ4_K(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	x := make([]float32, 4*256)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * float32(1+i/256)
	}
	for i := range 32 {
		x[256+i] = 0.75 // a constant sub-block
		x[512+i] = 3 + float32(i)/8
		x[768+i] = 0
	}
	q := make([]byte, len(x)/256*144)
	EncodeQ4_K(q, x)
	y := make([]float32, len(x))
	GQ4_K.DequantRow(y, q, nil, nil, Invalid)
	var se, sx float64
	for b := range len(x) / 256 {
		blk := q[144*b:]
		d, dmin := f16(blk), f16(blk[2:])
		for j := range 8 {
			s, m := scaleMinK4(j, blk[4:16])
			ds, dm := float64(d)*float64(s), float64(dmin)*float64(m)
			tol := ds/2 + 15*float64(d)/2 + float64(dmin)/2 + (16*ds+dm)*0x1p-11
			for l := range 32 {
				i := 256*b + 32*j + l
				if e := math.Abs(float64(x[i] - y[i])); e > tol {
					t.Fatalf("element %d: %v encodes as %v (|Δ| %.3g > %.3g)", i, x[i], y[i], e, tol)
				}
				se += float64(x[i]-y[i]) * float64(x[i]-y[i])
				sx += float64(x[i]) * float64(x[i])
			}
		}
	}
	t.Logf("NMSE %.4g", se/sx)
}

// TestEncodeQ5_KQ6_K encodes Gaussian rows of growing scale (and constant
// and all-zero sub-blocks) and checks every element, read back with the
// reference dequantization, against what the layout allows. Q5_K: half a
// step ds = d·sc, plus the rounding of sc (31 steps move by at most 31·d/2),
// of m (dmin/2) and of d, dmin to F16 (2⁻¹¹ relative). Q6_K: a whole step
// (the largest |x| may clamp from 32 to 31 steps), plus the rounding of sc
// (32 steps of d/2) and of d to F16.
func TestEncodeQ5_KQ6_K(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := make([]float32, 4*256)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * float32(1+i/256)
	}
	for i := range 32 {
		x[256+i], x[768+i] = 0.75, 0
	}
	for _, typ := range []Type{GQ5_K, GQ6_K} {
		rb, _ := typ.RowBytes(len(x))
		q := make([]byte, rb)
		if typ == GQ5_K {
			EncodeQ5_K(q, x)
		} else {
			EncodeQ6_K(q, x)
		}
		y := make([]float32, len(x))
		typ.DequantRow(y, q, nil, nil, Invalid)
		var se, sx float64
		for i := range x {
			b, blk := i/256, q[rb/(len(x)/256)*(i/256):]
			var tol float64
			if typ == GQ5_K {
				d, dmin := float64(f16(blk)), float64(f16(blk[2:]))
				s, m := scaleMinK4(i%256/32, blk[4:16])
				ds, dm := d*float64(s), dmin*float64(m)
				tol = ds/2 + 31*d/2 + dmin/2 + (32*ds+dm)*0x1p-11
			} else {
				d := float64(f16(blk[208:]))
				ds := math.Abs(d * float64(int8(blk[192+i%256/16])))
				tol = ds + 16*d + 33*ds*0x1p-11
			}
			if e := math.Abs(float64(x[i] - y[i])); e > tol {
				t.Fatalf("%s block %d element %d: %v encodes as %v (|Δ| %.3g > %.3g)", typ, b, i, x[i], y[i], e, tol)
			}
			se += float64(x[i]-y[i]) * float64(x[i]-y[i])
			sx += float64(x[i]) * float64(x[i])
		}
		t.Logf("%s NMSE %.4g", typ, se/sx)
	}
}

// TestEncodeQ5_0Q5_1 encodes Gaussian rows of growing scale (and constant,
// all-positive and all-zero blocks) and checks every element, read back
// with the reference dequantization, against what the layout allows. Q5_0:
// half a step |d|, or a whole step at level 31 (the values opposite the
// largest clamp there), plus the rounding of d to F16 (16 steps of 2⁻¹¹
// relative). Q5_1: half a step d, plus the rounding of d (31 steps)
// and of m to F16.
func TestEncodeQ5_0Q5_1(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	x := make([]float32, 8*32)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * float32(1+i/32)
	}
	for i := range 32 {
		x[32+i], x[64+i], x[96+i] = 0.75, 3+float32(i)/8, 0
	}
	for _, typ := range []Type{GQ5_0, GQ5_1} {
		rb, _ := typ.RowBytes(len(x))
		q := make([]byte, rb)
		if typ == GQ5_0 {
			EncodeQ5_0(q, x)
		} else {
			EncodeQ5_1(q, x)
		}
		y := make([]float32, len(x))
		typ.DequantRow(y, q, nil, nil, Invalid)
		var se, sx float64
		for i := range x {
			blk := q[typ.Info().BlockBytes*(i/32):]
			d := math.Abs(float64(f16(blk)))
			tol := d/2 + 16*d*0x1p-11
			if d > 0 && math.Round(float64(y[i]/f16(blk)))+16 == 31 { // perhaps clamped
				tol += d / 2
			}
			if typ == GQ5_1 {
				tol = d/2 + 31*d*0x1p-11 + math.Abs(float64(f16(blk[2:])))*0x1p-11
			}
			if e := math.Abs(float64(x[i] - y[i])); e > tol {
				t.Fatalf("%s element %d: %v encodes as %v (|Δ| %.3g > %.3g)", typ, i, x[i], y[i], e, tol)
			}
			se += float64(x[i]-y[i]) * float64(x[i]-y[i])
			sx += float64(x[i]) * float64(x[i])
		}
		t.Logf("%s NMSE %.4g", typ, se/sx)
	}
}
