//go:build !purego

package kernels

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/lightninglm/lightning/internal/cpu"
)

// TestQ8ArgsLayout pins q8Args to the offsets kernels/_gen/q8 compiles into
// the assembly (its arg* constants).
func TestQ8ArgsLayout(t *testing.T) {
	var a q8Args
	for _, c := range []struct {
		name     string
		got, off uintptr
	}{
		{"w", unsafe.Offsetof(a.w), 0}, {"ldw", unsafe.Offsetof(a.ldw), 8}, {"sc", unsafe.Offsetof(a.sc), 16},
		{"lds", unsafe.Offsetof(a.lds), 24}, {"mn", unsafe.Offsetof(a.mn), 32}, {"act", unsafe.Offsetof(a.act), 40},
		{"ldt", unsafe.Offsetof(a.ldt), 48}, {"dst", unsafe.Offsetof(a.dst), 56}, {"ldd", unsafe.Offsetof(a.ldd), 64},
		{"n", unsafe.Offsetof(a.n), 72}, {"tail", unsafe.Offsetof(a.tail), 80}, {"T", unsafe.Offsetof(a.T), 88},
		{"idx", unsafe.Offsetof(a.idx), 96},
	} {
		if c.got != c.off {
			t.Errorf("q8Args.%s at offset %d, the assembly reads %d", c.name, c.got, c.off)
		}
	}
}

// TestQ8KernelTable checks that every layout has a kernel on every path.
func TestQ8KernelTable(t *testing.T) {
	for p := range q8Fast {
		if len(q8Fast[p]) != 15 {
			t.Errorf("path %d: %d layouts, want 15", p, len(q8Fast[p]))
		}
		for k, v := range q8Fast[p] {
			if v.id == 0 || v.R == 0 || v.maxT == 0 || v.step%32 != 0 {
				t.Errorf("path %d %v: %v", p, fmt.Sprint(k), v)
			}
		}
	}
}

// TestQ8ActArch checks that the assembly activation quantizers write
// exactly the twin's records (quantizeActBlock), bit for bit, including
// all-zero blocks, outliers, subnormals, rounding ties and infinities.
func TestQ8ActArch(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	avx2 := cpu.X86.AVX2 && cpu.X86.FMA
	for _, sel := range []struct {
		id  int
		lay actLayout
		ok  bool
	}{
		{actAVX512, actLayout{U: 64}, useQ8AVX512VNNI},
		{actAVX512Q4, actLayout{U: 128, perm: true}, useQ8AVX512VNNI},
		{actAVX512Q4P, actLayout{U: 128, perm: true, pair: true}, useQ8AVX512VNNI},
		{actAVX2, actLayout{U: 32}, avx2},
		{actAVX2P, actLayout{U: 32, pair: true}, avx2},
	} {
		if !sel.ok {
			t.Logf("quantizer %d not available", sel.id)
			continue
		}
		sel.lay.o = 128
		for _, n := range []int{32, 64, 96, 128, 200, 2048} {
			x := randActs(1, n, r)
			for i := range x {
				switch r.IntN(40) {
				case 0:
					x[i] = 1e-42 // subnormal
				case 1: // a tie: amax·(k + ½)/127 in a block whose amax is 127
					x[i] = float32(r.IntN(100)) + 0.5
					x[i/32*32] = 127
				}
			}
			if n >= 128 {
				x[100] = float32(math.Inf(1))
			}
			pad := (n + 63) &^ 63
			if sel.lay.perm {
				pad = (n + 127) &^ 127
			}
			want := make([]byte, 4*pad)
			got := make([]byte, 4*pad)
			quantizeActRow(want, x, sel.lay)
			done := q8ActArch(sel.id, got, x, sel.lay.o)
			step := 32
			if sel.lay.pair {
				step = 64
			}
			for k0 := done; k0 < pad; k0 += step {
				quantizeActBlock(got, x, k0, sel.lay)
			}
			if !bytes.Equal(got, want) {
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("quantizer %d n=%d (did %d): record byte %d = %#x, twin %#x", sel.id, n, done, i, got[i], want[i])
					}
				}
			}
		}
	}
}
