package main

import "fmt"

// AVX-512 GEMM pieces: the 14×32 register-blocked microkernels (fp32 FMA and
// bf16 VDPBF16PS) and the gather-based panel packers. The Go driver that
// blocks for the caches is kernels/gemm_amd64.go; the reference loop is
// matMulF32Generic in kernels/matmul.go.

const (
	mr = 14 // rows of A (tokens) per microkernel tile: 28 accumulators
	nr = 32 // columns of B (outputs) per tile: two zmm
)

// edgeRows are the row counts of the smaller microkernels for a row panel's
// last rows when T is not a multiple of mr: the panel runs the smallest
// kernel that covers its rows instead of computing 14 rows, most of them
// padding (an expert with 128 tokens would spend 12 of its 140 rows on it).
var edgeRows = []int{4, 7, 10}

// genGemmKernel emits a rows×32 microkernel (rows ≤ mr). With bf16 false
// it computes, for p < k:  C[i][j] (+)= Σ_p A[p][i]·B[p][j]  (A panel
// [k][14] fp32, of which the first rows are read; B panel [k][32] fp32),
// one VFMADD231PS per (i, 16 j). With bf16 true, A and B hold bf16 pairs
// (k counts pairs) and each VDPBF16PS adds two products. Every row is the
// same sum whatever rows, so the edge kernels give the bits of the 14-row one.
func genGemmKernel(f *file, name string, bf16 bool, rows int) {
	what := "fp32 FMA"
	if bf16 {
		what = "bf16 pairs, VDPBF16PS (lossy: inputs are bf16, denormals flushed)"
	}
	f.text(name, "$0-64",
		"func "+name+"(k int, a unsafe.Pointer, as int, b unsafe.Pointer, bs int, c *float32, ldc int, acc int)",
		"",
		fmt.Sprintf("Microkernel, %s: the inner two loops of matMulF32Generic for a %d×32", what, rows),
		"tile of C (rows i = tokens, columns j = outputs), with the sum over p kept in",
		fmt.Sprintf("Z0–Z%d (row i in Z(2i), Z(2i+1)). A[p][i] is at a + p·as + 4i, B[p][j] at", 2*rows-1),
		"b + p·bs + 4j, C[i][j] at c + i·ldc + 4j (strides in bytes). acc ≠ 0 adds",
		"the tile into C, acc = 0 overwrites it.")
	f.i("MOVQ k+0(FP), CX")
	f.i("MOVQ a+8(FP), SI")
	f.i("MOVQ as+16(FP), R8")
	f.i("MOVQ b+24(FP), DI")
	f.i("MOVQ bs+32(FP), R9")
	f.i("MOVQ c+40(FP), DX")
	f.i("MOVQ ldc+48(FP), R10")
	f.i("MOVQ acc+56(FP), R11")
	f.c("Warm C's %d rows while the products run; it is read only at the end.", rows)
	f.i("MOVQ DX, BX")
	for i := 0; i < rows; i++ {
		f.i("PREFETCHT0 (BX)")
		f.i("PREFETCHT0 64(BX)")
		if i < rows-1 {
			f.i("ADDQ R10, BX")
		}
	}
	f.c("acc[i][j] = 0")
	for z := 0; z < 2*rows; z++ {
		f.i("VPXORD Z%d, Z%d, Z%d", z, z, z)
	}
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_store", name)
	f.label(name + "_loop")
	f.c("for each p: load B[p][0:16], B[p][16:32]; for each row i broadcast A[p][i] and")
	f.c("accumulate into row i's two vectors")
	f.i("VMOVUPS (DI), Z28")
	f.i("VMOVUPS 64(DI), Z29")
	for i := 0; i < rows; i++ {
		t := 30 + i%2
		if bf16 {
			f.i("VPBROADCASTD %d(SI), Z%d", 4*i, t)
			f.vdpbf16ps(28, t, 2*i)
			f.vdpbf16ps(29, t, 2*i+1)
		} else {
			f.i("VBROADCASTSS %d(SI), Z%d", 4*i, t)
			f.i("VFMADD231PS Z28, Z%d, Z%d", t, 2*i)
			f.i("VFMADD231PS Z29, Z%d, Z%d", t, 2*i+1)
		}
	}
	f.i("ADDQ R8, SI")
	f.i("ADDQ R9, DI")
	f.i("DECQ CX")
	f.i("JNZ %s_loop", name)
	f.label(name + "_store")
	f.i("TESTQ R11, R11")
	f.i("JEQ %s_overwrite", name)
	f.c("C[i][:] += acc[i][:]")
	for i := 0; i < rows; i++ {
		f.i("VADDPS (DX), Z%d, Z%d", 2*i, 2*i)
		f.i("VADDPS 64(DX), Z%d, Z%d", 2*i+1, 2*i+1)
		f.i("VMOVUPS Z%d, (DX)", 2*i)
		f.i("VMOVUPS Z%d, 64(DX)", 2*i+1)
		f.i("ADDQ R10, DX")
	}
	f.i("VZEROUPPER")
	f.i("RET")
	f.label(name + "_overwrite")
	f.c("C[i][:] = acc[i][:]")
	for i := 0; i < rows; i++ {
		f.i("VMOVUPS Z%d, (DX)", 2*i)
		f.i("VMOVUPS Z%d, 64(DX)", 2*i+1)
		f.i("ADDQ R10, DX")
	}
	f.i("VZEROUPPER")
	f.i("RET")
}

// genPack emits a gather packer. mode "d" copies 32-bit words; "bf16" and
// "f16" gather pairs of 16-bit weights and widen each pair into two fp32 rows.
func genPack(f *file, name, mode string) {
	doc := []string{
		"func " + name + "(dst *float32, src unsafe.Pointer, idx *[32]int32, n, kstep, dstride int, gmask, smask uint32)",
		"",
	}
	switch mode {
	case "d":
		doc = append(doc,
			"Panel packer: for p < n, lane j < 32: dst[p·dstride + 4j] = word at",
			"src + p·kstep + idx[j] if bit j of gmask is set, else 0; only lanes in smask",
			"are stored. It is the transposing copy the GEMM driver's packB/packA twins do.")
	case "bf16":
		doc = append(doc,
			"Panel packer for bf16 weights: for p < n the word at src + p·kstep + idx[j]",
			"holds the pair (w[k], w[k+1]); row 2p of dst gets float32(w[k]) = word<<16,",
			"row 2p+1 gets float32(w[k+1]) = word&0xffff0000 (exact widening).")
	case "f16":
		doc = append(doc,
			"Panel packer for IEEE binary16 weights: like the bf16 packer, widening",
			"each half of the gathered pair with VCVTPH2PS (exact).")
	}
	f.text(name, "$0-56", doc...)
	f.i("MOVQ dst+0(FP), DI")
	f.i("MOVQ src+8(FP), SI")
	f.i("MOVQ idx+16(FP), AX")
	f.i("VMOVDQU32 (AX), Z30")
	f.i("VMOVDQU32 64(AX), Z31")
	f.i("MOVQ n+24(FP), CX")
	f.i("MOVQ kstep+32(FP), DX")
	f.i("MOVQ dstride+40(FP), R8")
	f.i("MOVL gmask+48(FP), AX")
	f.i("KMOVW AX, K5")
	f.i("SHRL $16, AX")
	f.i("KMOVW AX, K6")
	f.i("MOVL smask+52(FP), AX")
	f.i("KMOVW AX, K3")
	f.i("SHRL $16, AX")
	f.i("KMOVW AX, K4")
	if mode == "bf16" {
		f.i("MOVL $0xffff0000, AX")
		f.i("VPBROADCASTD AX, Z29")
	}
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_done", name)
	f.label(name + "_loop")
	f.c("gather lanes 0–15 and 16–31 (masked-off lanes stay 0)")
	f.i("KMOVW K5, K1")
	f.i("VPXORD Z0, Z0, Z0")
	f.i("VPGATHERDD (SI)(Z30*1), K1, Z0")
	f.i("KMOVW K6, K2")
	f.i("VPXORD Z1, Z1, Z1")
	f.i("VPGATHERDD (SI)(Z31*1), K2, Z1")
	switch mode {
	case "d":
		f.i("VMOVDQU32 Z0, K3, (DI)")
		f.i("VMOVDQU32 Z1, K4, 64(DI)")
		f.i("ADDQ R8, DI")
	case "bf16":
		f.c("row 2p: low halves << 16; row 2p+1: high halves")
		f.i("VPSLLD $16, Z0, Z2")
		f.i("VPSLLD $16, Z1, Z3")
		f.i("VMOVDQU32 Z2, K3, (DI)")
		f.i("VMOVDQU32 Z3, K4, 64(DI)")
		f.i("VPANDD Z29, Z0, Z0")
		f.i("VPANDD Z29, Z1, Z1")
		f.i("VMOVDQU32 Z0, K3, (DI)(R8*1)")
		f.i("VMOVDQU32 Z1, K4, 64(DI)(R8*1)")
		f.i("LEAQ (DI)(R8*2), DI")
	case "f16":
		f.c("row 2p: low halves; row 2p+1: high halves; each widened by VCVTPH2PS")
		f.i("VPMOVDW Z0, Y2")
		f.i("VCVTPH2PS Y2, Z2")
		f.i("VPMOVDW Z1, Y3")
		f.i("VCVTPH2PS Y3, Z3")
		f.i("VMOVDQU32 Z2, K3, (DI)")
		f.i("VMOVDQU32 Z3, K4, 64(DI)")
		f.i("VPSRLD $16, Z0, Z0")
		f.i("VPMOVDW Z0, Y0")
		f.i("VCVTPH2PS Y0, Z0")
		f.i("VPSRLD $16, Z1, Z1")
		f.i("VPMOVDW Z1, Y1")
		f.i("VCVTPH2PS Y1, Z1")
		f.i("VMOVDQU32 Z0, K3, (DI)(R8*1)")
		f.i("VMOVDQU32 Z1, K4, 64(DI)(R8*1)")
		f.i("LEAQ (DI)(R8*2), DI")
	}
	f.i("ADDQ DX, SI")
	f.i("DECQ CX")
	f.i("JNZ %s_loop", name)
	f.label(name + "_done")
	f.i("VZEROUPPER")
	f.i("RET")
}

// genPackTrans emits the transposing panel packer: the gather packers'
// result for 32 whole rows a fixed stride apart, read a 64-byte line at a
// time and transposed in registers. Gathering reads each line of the 32
// rows sixteen times, one dword per pass, and rows 2 or 4 KB apart share
// one or two L1 sets, so the lines fall out of L1 between passes.
func genPackTrans(f *file, name, mode string) {
	doc := []string{
		"func " + name + "(dst *float32, src unsafe.Pointer, ld, n, dstride int)",
		"",
		"Panel packer for 32 rows at src + r·ld: for p < n (a multiple of 16), r < 32,",
	}
	switch mode {
	case "d":
		doc = append(doc, "dst[p·dstride + 4r] = dword p of row r: packGatherDAVX512 with idx[r] = r·ld,",
			"kstep 4 and every lane gathered and stored.")
	case "bf16":
		doc = append(doc, "dword p of row r holds the pair (w[2p], w[2p+1]); row 2p of dst gets",
			"float32(w[2p]) = word<<16 in lane r, row 2p+1 float32(w[2p+1]): packGatherBF16AVX512",
			"with idx[r] = r·ld, kstep 4 and every lane gathered and stored.")
	}
	doc = append(doc, "Each 16×16 block of dwords is transposed in registers (unpack dwords, unpack",
		"quadwords, then two rounds of 128-bit lane shuffles).")
	f.text(name, "$0-40", doc...)
	packTransArgs(f)
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_done", name)
	f.label(name + "_loop")
	for g := 0; g < 2; g++ {
		f.c("rows %d–%d: one line each into Z0–Z15", 16*g, 16*g+15)
		if g == 0 {
			f.i("MOVQ SI, BX")
		}
		for r := 0; r < 16; r++ {
			sfx := []string{"", "(R8*1)", "(R8*2)", "(R9*1)"}[r%4]
			f.i("VMOVDQU32 (BX)%s, Z%d", sfx, r)
			if r%4 == 3 {
				f.i("LEAQ (BX)(R8*4), BX")
			}
		}
		transpose16(f)
		off := ""
		if g == 1 {
			off = "64"
		}
		f.c("store columns 0–15 (rows %d–%d of each)", 16*g, 16*g+15)
		f.i("MOVQ DI, DX")
		switch mode {
		case "d":
			for p := 0; p < 16; p++ {
				idx := []string{"(DX)", "(DX)(R11*1)", "(DX)(R11*2)", "(DX)(R12*1)"}[p%4]
				f.i("VMOVDQU32 Z%d, %s%s", p, off, idx)
				if p%4 == 3 && p < 15 {
					f.i("LEAQ (DX)(R11*4), DX")
				}
			}
		case "bf16":
			for p := 0; p < 16; p++ {
				f.i("VPSLLD $16, Z%d, Z16", p)
				f.i("VPSRLD $16, Z%d, Z17", p)
				f.i("VPSLLD $16, Z17, Z17")
				f.i("VMOVDQU32 Z16, %s(DX)", off)
				f.i("VMOVDQU32 Z17, %s(DX)(R11*1)", off)
				if p < 15 {
					f.i("LEAQ (DX)(R11*2), DX")
				}
			}
		}
		if g == 0 {
			f.i("MOVQ R8, AX")
			f.i("SHLQ $4, AX")
			f.i("LEAQ (SI)(AX*1), BX")
		}
	}
	f.c("next 16 dwords of each row; 16 (d) or 32 (bf16) rows of dst on")
	f.i("ADDQ $64, SI")
	if mode == "d" {
		f.i("SHLQ $4, R11")
		f.i("ADDQ R11, DI")
		f.i("SHRQ $4, R11")
	} else {
		f.i("SHLQ $5, R11")
		f.i("ADDQ R11, DI")
		f.i("SHRQ $5, R11")
	}
	f.i("DECQ CX")
	f.i("JNZ %s_loop", name)
	f.label(name + "_done")
	f.i("VZEROUPPER")
	f.i("RET")
}

// transpose16 emits the in-register transpose of the 16×16 dwords in
// Z0–Z15 (row i in Zi) into Z0–Z15 (column c in Zc), with Z16–Z31 as
// scratch: unpack dwords, unpack quadwords, then two rounds of 128-bit lane
// shuffles, 64 instructions.
func transpose16(f *file) {
	f.c("dwords: Z16+i, Z17+i = unpack lo, hi of rows i, i+1")
	for i := 0; i < 16; i += 2 {
		f.i("VPUNPCKLDQ Z%d, Z%d, Z%d", i+1, i, 16+i)
		f.i("VPUNPCKHDQ Z%d, Z%d, Z%d", i+1, i, 17+i)
	}
	f.c("quadwords: Z(i+c) holds, in 128-bit lane L, column 4L+c of rows i..i+3")
	for i := 0; i < 16; i += 4 {
		f.i("VPUNPCKLQDQ Z%d, Z%d, Z%d", 18+i, 16+i, i)
		f.i("VPUNPCKHQDQ Z%d, Z%d, Z%d", 18+i, 16+i, i+1)
		f.i("VPUNPCKLQDQ Z%d, Z%d, Z%d", 19+i, 17+i, i+2)
		f.i("VPUNPCKHQDQ Z%d, Z%d, Z%d", 19+i, 17+i, i+3)
	}
	f.c("lanes: Z16+4c.. = lanes {0,1} and {2,3} of rows 0–7 and 8–15, for each c")
	for c := 0; c < 4; c++ {
		f.i("VSHUFI32X4 $0x44, Z%d, Z%d, Z%d", 4+c, c, 16+4*c)
		f.i("VSHUFI32X4 $0xEE, Z%d, Z%d, Z%d", 4+c, c, 17+4*c)
		f.i("VSHUFI32X4 $0x44, Z%d, Z%d, Z%d", 12+c, 8+c, 18+4*c)
		f.i("VSHUFI32X4 $0xEE, Z%d, Z%d, Z%d", 12+c, 8+c, 19+4*c)
	}
	f.c("column 4L+c of the 16 rows into Z(4L+c)")
	for c := 0; c < 4; c++ {
		f.i("VSHUFI32X4 $0x88, Z%d, Z%d, Z%d", 18+4*c, 16+4*c, c)
		f.i("VSHUFI32X4 $0xDD, Z%d, Z%d, Z%d", 18+4*c, 16+4*c, 4+c)
		f.i("VSHUFI32X4 $0x88, Z%d, Z%d, Z%d", 19+4*c, 17+4*c, 8+c)
		f.i("VSHUFI32X4 $0xDD, Z%d, Z%d, Z%d", 19+4*c, 17+4*c, 12+c)
	}
}

// genPackTrans14 emits the transposing packer of the GEMM's 14-row
// activation panels: packGatherDAVX512's result for 14 whole rows a fixed
// stride apart, kstep 4, every lane stored.
func genPackTrans14(f *file, name string) {
	f.text(name, "$0-40",
		"func "+name+"(dst *float32, src unsafe.Pointer, ld, n, dstride int)",
		"",
		"Panel packer for 14 rows at src + r·ld: for p < n (a multiple of 16), r < 14,",
		"dst[p·dstride + 4r] = dword p of row r (packGatherDAVX512 with idx[r] = r·ld, kstep 4).",
		"Each 16×16 block is transposed in registers with rows 14 and 15 copies of row 13;",
		"their lanes are not stored.")
	packTransArgs(f)
	f.i("MOVL $0x3fff, AX")
	f.i("KMOVW AX, K1")
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_done", name)
	f.label(name + "_loop")
	f.i("MOVQ SI, BX")
	for r := 0; r < 14; r++ {
		sfx := []string{"", "(R8*1)", "(R8*2)", "(R9*1)"}[r%4]
		f.i("VMOVDQU32 (BX)%s, Z%d", sfx, r)
		if r%4 == 3 {
			f.i("LEAQ (BX)(R8*4), BX")
		}
	}
	f.i("VMOVDQA32 Z13, Z14")
	f.i("VMOVDQA32 Z13, Z15")
	transpose16(f)
	f.c("store columns 0–15, lanes 0–13")
	f.i("MOVQ DI, DX")
	for p := 0; p < 16; p++ {
		idx := []string{"(DX)", "(DX)(R11*1)", "(DX)(R11*2)", "(DX)(R12*1)"}[p%4]
		f.i("VMOVDQU32 Z%d, K1, %s", p, idx)
		if p%4 == 3 && p < 15 {
			f.i("LEAQ (DX)(R11*4), DX")
		}
	}
	f.i("ADDQ $64, SI")
	f.i("SHLQ $4, R11")
	f.i("ADDQ R11, DI")
	f.i("SHRQ $4, R11")
	f.i("DECQ CX")
	f.i("JNZ %s_loop", name)
	f.label(name + "_done")
	f.i("VZEROUPPER")
	f.i("RET")
}

// packTransArgs loads the transposing packers' arguments: DI = dst, SI =
// src, R8 = ld, R9 = 3·ld, CX = n/16 blocks, R11 = dstride, R12 = 3·dstride.
func packTransArgs(f *file) {
	f.i("MOVQ dst+0(FP), DI")
	f.i("MOVQ src+8(FP), SI")
	f.i("MOVQ ld+16(FP), R8")
	f.i("LEAQ (R8)(R8*2), R9")
	f.i("MOVQ n+24(FP), CX")
	f.i("SHRQ $4, CX")
	f.i("MOVQ dstride+32(FP), R11")
	f.i("LEAQ (R11)(R11*2), R12")
}
