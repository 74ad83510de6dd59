package main

import (
	"fmt"
	"go/format"
	"os"
	"strings"
)

// AVX-512 skinny kernels for small T (decode and small expert batches): the
// dot form of matMulF32Generic's inner loop, with tt tokens × R weight rows of
// 16-lane partial sums in registers. Each 32-wide chunk of a weight row is
// loaded and widened once and meets all tt tokens, so a pass over the weights
// costs R widenings and 2·tt·R FMAs per chunk. A kernel needs tt·R
// accumulators, 2R widened weights and two x registers: tt·R + 2R + 2 ≤ 32.
// The Go driver (runSkinny in kernels/matmul_amd64.go) picks the shapes.

// skinnyWeights are the weight types, in the order of the Go tables.
var skinnyWeights = []string{"f32", "bf16", "f16"}

// skinnyShapes lists the (tt, R) kernels generated per weight type: the
// widest R that fits for T ≤ 4 tokens in one block, and for larger T the
// blocks of 4 (R = 5) or 8 (R = 3) tokens with their remainders.
func skinnyShapes() [][2]int {
	s := [][2]int{{1, 10}, {2, 7}, {3, 6}, {4, 5}, {1, 5}, {2, 5}, {3, 5}}
	for tt := 1; tt <= 8; tt++ {
		s = append(s, [2]int{tt, 3})
	}
	return s
}

// skinnyName is the assembly name of one kernel.
func skinnyName(w string, tt, r int) string {
	return fmt.Sprintf("skinny%sT%dR%dAVX512", map[string]string{"f32": "F32", "bf16": "BF16", "f16": "F16"}[w], tt, r)
}

// genSkinny emits the kernel for tt tokens × R rows with weights of type w
// ("f32", "bf16", "f16").
func genSkinny(f *file, w string, tt, R int) {
	name := skinnyName(w, tt, R)
	doc := []string{
		"func " + name + "(n int, x *float32, ldx int, w unsafe.Pointer, ldw int, dst *float32, ldd int, mask int, pf int)",
		"",
		fmt.Sprintf("Skinny kernel, %d token(s) × %d weight rows: for t < %d, r < %d with bit r of mask set,", tt, R, tt, R),
		"dst[t·ldd + 4r] = Σ_{k < 32n} x_t[k]·w_r[k], where w_r = w + r·ldw and",
		"x_t = x + t·ldx (strides in bytes): the inner loop of matMulF32Generic.",
		fmt.Sprintf("The 16-lane partial sums acc[t][r] live in Z(%d·t+r) and are reduced after the loop.", R),
	}
	switch w {
	case "bf16":
		doc = append(doc,
			"bf16 weights are widened in registers from one 64-byte line of 32 weights:",
			"word<<16 gives the even ones, the word with its low half zeroed (a zero-masked",
			"16-bit load) the odd ones, so x_t is packed per 32-wide chunk as",
			"[16 even | 16 odd] (packEvenOddAVX512).")
	case "f16":
		doc = append(doc, "f16 weights are widened with VCVTPH2PS.")
	}
	if R == 0 || tt*R+2*R+2 > 32 || R > 10 || tt > 8 {
		panic("skinny: shape does not fit the registers")
	}
	f.text(name, "$0-72", doc...)
	f.i("MOVQ n+0(FP), CX")
	f.i("MOVQ x+8(FP), SI")
	f.i("MOVQ ldx+16(FP), R8")
	f.i("LEAQ (R8)(R8*2), R9")
	f.i("LEAQ (SI)(R8*4), BX")
	f.i("MOVQ w+24(FP), DI")
	f.i("MOVQ ldw+32(FP), R10")
	f.i("LEAQ (R10)(R10*2), R11")
	f.i("LEAQ (R10)(R10*4), R13")
	f.i("ADDQ DI, R13")
	if w == "bf16" {
		f.c("K2 keeps the odd 16-bit words of a line")
		f.i("MOVL $0xaaaaaaaa, AX")
		f.i("KMOVD AX, K2")
	}
	f.c("DX and AX walk the rows pf bytes ahead of DI and R13, for the prefetches")
	f.i("MOVQ pf+64(FP), DX")
	f.i("LEAQ (R13)(DX*1), AX")
	f.i("ADDQ DI, DX")
	acc := func(t, r int) int { return R*t + r }
	wlo := func(r int) int { return tt*R + 2*r }
	whi := func(r int) int { return tt*R + 2*r + 1 }
	xa, xb := 30, 31
	for t := 0; t < tt; t++ {
		for r := 0; r < R; r++ {
			a := acc(t, r)
			f.i("VPXORD Z%d, Z%d, Z%d", a, a, a)
		}
	}
	wrowFrom := func(lo, hi string, r, off int) string {
		idx := []string{"", "(R10*1)", "(R10*2)", "(R11*1)", "(R10*4)"}[r%5]
		base := lo
		if r >= 5 {
			base = hi
		}
		o := ""
		if off != 0 {
			o = fmt.Sprint(off)
		}
		return o + base + idx
	}
	wrow := func(r, off int) string { return wrowFrom("(DI)", "(R13)", r, off) }
	pfrow := func(r, off int) string { return wrowFrom("(DX)", "(AX)", r, off) }
	xrow := func(t, off int) string {
		idx := []string{"", "(R8*1)", "(R8*2)", "(R9*1)"}[t%4]
		base := "(SI)"
		if t >= 4 {
			base = "(BX)"
		}
		o := ""
		if off != 0 {
			o = fmt.Sprint(off)
		}
		return o + base + idx
	}
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_reduce", name)
	f.label(name + "_loop")
	wstep := 64
	if w == "f32" {
		wstep = 128
	}
	f.c("prefetch each row pf bytes ahead")
	for r := 0; r < R; r++ {
		for o := 0; o < wstep; o += 64 {
			f.i("PREFETCHT0 %s", pfrow(r, o))
		}
	}
	f.c("widen 32 weights of row r into Z%d+2r (k 0..15, or the even k) and Z%d+2r (k 16..31, or the odd k)", wlo(0), whi(0))
	for r := 0; r < R; r++ {
		switch w {
		case "f32":
			f.i("VMOVUPS %s, Z%d", wrow(r, 0), wlo(r))
			f.i("VMOVUPS %s, Z%d", wrow(r, 64), whi(r))
		case "f16":
			f.i("VCVTPH2PS %s, Z%d", wrow(r, 0), wlo(r))
			f.i("VCVTPH2PS %s, Z%d", wrow(r, 32), whi(r))
		case "bf16":
			f.i("VPSLLD $16, %s, Z%d", wrow(r, 0), wlo(r))
			f.i("VMOVDQU16.Z %s, K2, Z%d", wrow(r, 0), whi(r))
		}
	}
	f.c("acc[t][r] += x_t·w_r over both halves")
	for t := 0; t < tt; t++ {
		f.i("VMOVUPS %s, Z%d", xrow(t, 0), xa)
		f.i("VMOVUPS %s, Z%d", xrow(t, 64), xb)
		for r := 0; r < R; r++ {
			f.i("VFMADD231PS Z%d, Z%d, Z%d", wlo(r), xa, acc(t, r))
		}
		for r := 0; r < R; r++ {
			f.i("VFMADD231PS Z%d, Z%d, Z%d", whi(r), xb, acc(t, r))
		}
	}
	f.i("ADDQ $%d, DI", wstep)
	f.i("ADDQ $%d, DX", wstep)
	if R > 5 {
		f.i("ADDQ $%d, R13", wstep)
		f.i("ADDQ $%d, AX", wstep)
	}
	f.i("ADDQ $128, SI")
	if tt > 4 {
		f.i("ADDQ $128, BX")
	}
	f.i("DECQ CX")
	f.i("JNZ %s_loop", name)
	f.label(name + "_reduce")
	f.i("MOVQ dst+40(FP), DX")
	f.i("MOVQ ldd+48(FP), R12")
	f.i("MOVQ mask+56(FP), AX")
	f.i("KMOVW AX, K1")
	f.c("reduce: transpose-add trees of up to 16 accumulators; each tree holds the")
	f.c("%d lanes of up to %d tokens (lane %d·j+r for its j-th token), stored under K1 << %d·j", R, 16/R, R, R)
	tpt := 16 / R // tokens per tree
	type tree struct {
		t0, t1, reg int
	}
	var trees []tree
	for t0 := 0; t0 < tt; t0 += tpt {
		t1 := min(t0+tpt, tt)
		var slot [16]int
		for i := range slot {
			slot[i] = -1
		}
		for t := t0; t < t1; t++ {
			for r := 0; r < R; r++ {
				lane := (t-t0)*R + r
				slot[treeSlot[lane]] = acc(t, r)
			}
		}
		trees = append(trees, tree{t0, t1, transposeAdd(f, slot, xa, xb)})
	}
	for _, tr := range trees {
		for t := tr.t0; t < tr.t1; t++ {
			j := t - tr.t0
			k := "K1"
			if j > 0 {
				f.i("KSHIFTLW $%d, K1, K3", j*R)
				k = "K3"
			}
			addr := "(DX)"
			if j > 0 {
				addr = fmt.Sprintf("%d(DX)", -4*j*R)
			}
			f.i("VMOVUPS Z%d, %s, %s", tr.reg, k, addr)
			if t < tt-1 {
				f.i("ADDQ R12, DX")
			}
		}
	}
	f.i("VZEROUPPER")
	f.i("RET")
}

// treeSlot maps a lane of transposeAdd's result to the input slot that lands
// there.
var treeSlot = [16]int{0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15}

// transposeAdd emits a reduction of up to 16 zmm vectors (slot[i] is a
// register, or -1 for none) into one zmm whose lane L is the sum of the 16
// lanes of slot[treeSlot[L]] (lanes of empty slots are garbage). Four levels
// each fold pairs: 512→256 bits (VSHUFF32X4 0x44/0xEE), 256→128
// (0x88/0xDD), then within 128-bit lanes (VSHUFPS 0x44/0xEE, 0x88/0xDD). lo
// and hi are scratch registers; the inputs are overwritten. It returns the
// result register.
func transposeAdd(f *file, slot [16]int, lo, hi int) int {
	level := func(op string, immLo, immHi int, v []int) []int {
		n := len(v) / 2
		out := make([]int, n)
		for i := 0; i < n; i++ {
			a, b := v[i], v[i+n]
			switch {
			case a < 0 && b < 0:
				out[i] = -1
				continue
			case a < 0:
				a = b
			case b < 0:
				b = a
			}
			f.i("%s $0x%02x, Z%d, Z%d, Z%d", op, immLo, b, a, lo)
			f.i("%s $0x%02x, Z%d, Z%d, Z%d", op, immHi, b, a, hi)
			f.i("VADDPS Z%d, Z%d, Z%d", hi, lo, a)
			out[i] = a
		}
		return out
	}
	v := slot[:]
	v = level("VSHUFF32X4", 0x44, 0xee, v)
	v = level("VSHUFF32X4", 0x88, 0xdd, v)
	v = level("VSHUFPS", 0x44, 0xee, v)
	v = level("VSHUFPS", 0x88, 0xdd, v)
	return v[0]
}

// genPackEvenOdd emits packEvenOddAVX512, which lays out x for the bf16
// skinny kernels.
func genPackEvenOdd(f *file) {
	f.b.WriteString("\n// Lane indexes of VPERMI2PS: the even then the odd elements of 32.\n")
	for i := 0; i < 32; i++ {
		v := 2 * i
		if i >= 16 {
			v = 2*(i-16) + 1
		}
		f.b.WriteString(fmt.Sprintf("DATA evenOddIdx<>+%d(SB)/4, $%d\n", 4*i, v))
	}
	f.b.WriteString("GLOBL evenOddIdx<>(SB), RODATA|NOPTR, $128\n")
	f.text("packEvenOddAVX512", "$0-24",
		"func packEvenOddAVX512(dst, src *float32, n int)",
		"",
		"For each of n chunks of 32 floats: dst[i] = src[2i] and dst[16+i] = src[2i+1]",
		"for i < 16, the loop of packEvenOdd.")
	f.i("MOVQ dst+0(FP), DI")
	f.i("MOVQ src+8(FP), SI")
	f.i("MOVQ n+16(FP), CX")
	f.i("VMOVDQU32 evenOddIdx<>+0(SB), Z2")
	f.i("VMOVDQU32 evenOddIdx<>+64(SB), Z3")
	f.i("TESTQ CX, CX")
	f.i("JEQ packEvenOddAVX512_done")
	f.label("packEvenOddAVX512_loop")
	f.i("VMOVUPS (SI), Z0")
	f.i("VMOVAPS Z2, Z4")
	f.i("VPERMI2PS 64(SI), Z0, Z4")
	f.i("VMOVAPS Z3, Z5")
	f.i("VPERMI2PS 64(SI), Z0, Z5")
	f.i("VMOVUPS Z4, (DI)")
	f.i("VMOVUPS Z5, 64(DI)")
	f.i("ADDQ $128, SI")
	f.i("ADDQ $128, DI")
	f.i("DECQ CX")
	f.i("JNZ packEvenOddAVX512_loop")
	f.label("packEvenOddAVX512_done")
	f.i("VZEROUPPER")
	f.i("RET")
}

// writeSkinnyGo writes the Go declarations of the skinny kernels and the
// table the driver picks them from.
func writeSkinnyGo(path string) {
	var b strings.Builder
	b.WriteString("// Code generated by kernels/_gen (go run . in that directory). DO NOT EDIT.\n\n")
	b.WriteString("//go:build !purego\n\npackage kernels\n\nimport \"unsafe\"\n\n")
	b.WriteString("// The skinny kernels of gemv_amd64.s; each one's comment there states its loop.\n\n")
	for _, w := range skinnyWeights {
		for _, s := range skinnyShapes() {
			b.WriteString("//go:noescape\n")
			b.WriteString(fmt.Sprintf("func %s(n int, x *float32, ldx int, w unsafe.Pointer, ldw int, dst *float32, ldd int, mask int, pf int)\n\n", skinnyName(w, s[0], s[1])))
		}
	}
	b.WriteString("//go:noescape\nfunc packEvenOddAVX512(dst, src *float32, n int)\n\n")
	b.WriteString("// skinnyAVX512[kind][tt][R] is the kernel for wF32, wBF16 or wF16 weights,\n// tt tokens and R rows, or nil where none is generated.\n")
	b.WriteString("var skinnyAVX512 = [3][9][11]skinnyKern{\n")
	for k, w := range skinnyWeights {
		b.WriteString(fmt.Sprintf("\t%d: {\n", k))
		for tt := 1; tt <= 8; tt++ {
			b.WriteString(fmt.Sprintf("\t\t%d: {", tt))
			for _, sh := range skinnyShapes() {
				if sh[0] == tt {
					b.WriteString(fmt.Sprintf("%d: %s, ", sh[1], skinnyName(w, tt, sh[1])))
				}
			}
			b.WriteString("},\n")
		}
		b.WriteString("\t},\n")
	}
	b.WriteString("}\n")
	src, err := format.Source([]byte(b.String()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(path, src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
