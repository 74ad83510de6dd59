package gguf

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
)

// TestTypeTable checks each block layout's byte count against the fields of
// its struct in ggml-common.h (the static_asserts there), so a typo in the
// table cannot pass.
func TestTypeTable(t *testing.T) {
	const h = 2 // ggml_half
	want := map[Type]int{
		Q4_0: h + 32/2,
		Q4_1: 2*h + 32/2,
		Q5_0: h + 4 + 32/2,
		Q5_1: 2*h + 4 + 32/2,
		Q8_0: h + 32,
		Q8_1: 2*h + 32,
		Q2_K: 2*h + 256/16 + 256/4,
		Q3_K: h + 256/4 + 256/8 + 12,
		Q4_K: 2*h + 12 + 256/2,
		Q5_K: 2*h + 12 + 256/8 + 256/2,
		Q6_K: h + 256/2 + 256/4 + 256/16,
		Q8_K: 4 + 256 + 256/16*2,
	}
	for typ, n := range want {
		info, ok := typ.Info()
		if !ok || info.BlockBytes != n {
			t.Errorf("%s: %d bytes per block, want %d", typ, info.BlockBytes, n)
		}
	}
	for _, name := range []string{"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"} {
		typ, ok := TypeByName(name)
		if !ok || !typ.CanDequant() {
			t.Errorf("%s: not readable", name)
		}
	}
}

// TestDequantReference compares every readable quantized type with values
// computed by an independent implementation: llama.cpp's gguf-py
// (gguf/quants.py, the numpy dequantize_blocks of each type), run outside
// this repository on random blocks with finite random F16 scales; the blocks
// and the float32 results it printed are testdata/dequant_ref.json. Both
// compute in fp32 in the same order (d·sc, then ·q, then −m), so the match
// must be exact.
func TestDequantReference(t *testing.T) {
	raw, err := os.ReadFile("testdata/dequant_ref.json")
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
	for _, name := range []string{"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16"} {
		t.Run(name, func(t *testing.T) {
			r, ok := ref[name]
			if !ok {
				t.Fatalf("no reference for %s", name)
			}
			typ, _ := TypeByName(name)
			src, err := hex.DecodeString(r.Blocks)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(r.Values))
			if err := typ.Dequant(got, src); err != nil {
				t.Fatal(err)
			}
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

// TestDequantHandBlocks checks one block of each 32-element type worked out
// by hand from the published layout, with scales that are powers of two so
// every product is exact.
func TestDequantHandBlocks(t *testing.T) {
	half := func(v float32) []byte { // exact for the small powers of two used here
		var h uint16
		switch v {
		case 0.5:
			h = 0x3800
		case 2:
			h = 0x4000
		case -1:
			h = 0xbc00
		}
		return binary.LittleEndian.AppendUint16(nil, h)
	}
	// Q8_0: d = 0.5, qs = −128, −1, 0, 1, …: element j is 0.5·qs[j].
	q8 := half(0.5)
	for j := range 32 {
		q8 = append(q8, byte(int8(j-16)))
	}
	q8[2] = 0x80 // −128
	// Q4_0: d = 2, byte j = 0x0F for j even, 0xF0 for odd: element j (< 16)
	// is 2·(15−8) = 14 or 2·(0−8) = −16; element 16+j the other way round.
	q4 := half(2)
	for j := range 16 {
		q4 = append(q4, []byte{0x0F, 0xF0}[j%2])
	}
	// Q5_1: d = 0.5, m = −1, qh = bit 0 and bit 31 set, qs = 0x21 each:
	// element 0 = 0.5·(1+16) − 1 = 7.5; elements 1…15 = 0.5·1 − 1 = −0.5;
	// elements 16…30 = 0.5·2 − 1 = 0; element 31 = 0.5·(2+16) − 1 = 8.
	q5 := append(half(0.5), half(-1)...)
	q5 = binary.LittleEndian.AppendUint32(q5, 1|1<<31)
	for range 16 {
		q5 = append(q5, 0x21)
	}
	cases := []struct {
		typ  Type
		src  []byte
		want func(j int) float32
	}{
		{Q8_0, q8, func(j int) float32 {
			if j == 0 {
				return -64
			}
			return 0.5 * float32(j-16)
		}},
		{Q4_0, q4, func(j int) float32 {
			if (j < 16) == (j%2 == 0) {
				return 14
			}
			return -16
		}},
		{Q5_1, q5, func(j int) float32 {
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
		if err := c.typ.Dequant(got, c.src); err != nil {
			t.Fatal(err)
		}
		for j, v := range got {
			if v != c.want(j) {
				t.Errorf("%s element %d: got %v, want %v", c.typ, j, v, c.want(j))
			}
		}
	}
}

func TestDequantUnsupported(t *testing.T) {
	err := IQ2_XXS.Dequant(make([]float32, 256), make([]byte, 66))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "IQ2_XXS") || !strings.Contains(err.Error(), "Q6_K") {
		t.Errorf("got %v, want ErrUnsupported naming IQ2_XXS and listing the supported types", err)
	}
	if err := Type(5).Dequant(make([]float32, 32), nil); err == nil || !strings.Contains(err.Error(), "type(5)") {
		t.Errorf("retired type 5: got %v", err)
	}
}

func TestHalfToFloat(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 1.0 / (1 << 24)}, {0x0400, 1.0 / (1 << 14)},
		{0x8000, float32(math.Copysign(0, -1))}, {0x7c00, float32(math.Inf(1))},
	} {
		if got := HalfToFloat(c.h); math.Float32bits(got) != math.Float32bits(c.want) {
			t.Errorf("HalfToFloat(%#04x) = %v, want %v", c.h, got, c.want)
		}
	}
	if v := HalfToFloat(0x7e00); !math.IsNaN(float64(v)) {
		t.Errorf("HalfToFloat(NaN) = %v", v)
	}
}
