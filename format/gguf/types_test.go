package gguf

import (
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
	if _, err := Type(5).RowBytes(32); err == nil || !strings.Contains(err.Error(), "unknown ggml type 5") {
		t.Errorf("retired type 5: %v", err)
	}
	if typ, ok := TypeByName("Q6_K"); !ok || typ != Q6_K || typ.String() != "Q6_K" {
		t.Errorf("TypeByName(Q6_K) = %v, %v", typ, ok)
	}
}
