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
