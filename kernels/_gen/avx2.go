package main

// AVX2+FMA versions of the GEMM microkernel and the skinny kernel, for CPUs
// without AVX-512 (16 ymm registers). Packing is done by the Go driver.

// genGemmKernAVX2 emits the 6×16 microkernel: C[i][j] (+)= Σ_p A[p][i]·B[p][j]
// with A panel rows of 6 and B panel rows of 16, accumulators Y0–Y11.
func genGemmKernAVX2(f *file, name string) {
	const rows = 6
	f.text(name, "$0-64",
		"func "+name+"(k int, a unsafe.Pointer, as int, b unsafe.Pointer, bs int, c *float32, ldc int, acc int)",
		"",
		"AVX2 microkernel: the inner two loops of matMulF32Generic for a 6×16 tile",
		"of C, row i in Y(2i), Y(2i+1). A[p][i] at a + p·as + 4i, B[p][j] at",
		"b + p·bs + 4j, C[i][j] at c + i·ldc + 4j; acc ≠ 0 adds into C.")
	f.i("MOVQ k+0(FP), CX")
	f.i("MOVQ a+8(FP), SI")
	f.i("MOVQ as+16(FP), R8")
	f.i("MOVQ b+24(FP), DI")
	f.i("MOVQ bs+32(FP), R9")
	f.i("MOVQ c+40(FP), DX")
	f.i("MOVQ ldc+48(FP), R10")
	f.i("MOVQ acc+56(FP), R11")
	for z := 0; z < 2*rows; z++ {
		f.i("VXORPS Y%d, Y%d, Y%d", z, z, z)
	}
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_store", name)
	f.label(name + "_loop")
	f.i("VMOVUPS (DI), Y12")
	f.i("VMOVUPS 32(DI), Y13")
	for i := 0; i < rows; i++ {
		t := 14 + i%2
		f.i("VBROADCASTSS %d(SI), Y%d", 4*i, t)
		f.i("VFMADD231PS Y12, Y%d, Y%d", t, 2*i)
		f.i("VFMADD231PS Y13, Y%d, Y%d", t, 2*i+1)
	}
	f.i("ADDQ R8, SI")
	f.i("ADDQ R9, DI")
	f.i("DECQ CX")
	f.i("JNZ %s_loop", name)
	f.label(name + "_store")
	f.i("TESTQ R11, R11")
	f.i("JEQ %s_overwrite", name)
	for i := 0; i < rows; i++ {
		f.i("VADDPS (DX), Y%d, Y%d", 2*i, 2*i)
		f.i("VADDPS 32(DX), Y%d, Y%d", 2*i+1, 2*i+1)
		f.i("VMOVUPS Y%d, (DX)", 2*i)
		f.i("VMOVUPS Y%d, 32(DX)", 2*i+1)
		f.i("ADDQ R10, DX")
	}
	f.i("VZEROUPPER")
	f.i("RET")
	f.label(name + "_overwrite")
	for i := 0; i < rows; i++ {
		f.i("VMOVUPS Y%d, (DX)", 2*i)
		f.i("VMOVUPS Y%d, 32(DX)", 2*i+1)
		f.i("ADDQ R10, DX")
	}
	f.i("VZEROUPPER")
	f.i("RET")
}

// genGemvAVX2 emits the AVX2 skinny kernel: tt ≤ 2 tokens × 4 weight rows,
// 16 k per step; partial sums acc[t][r] in Y(4t+r).
func genGemvAVX2(f *file, name, w string) {
	doc := []string{
		"func " + name + "(n int, x *float32, ldx int, w unsafe.Pointer, ldw int, dst *float32, ldd int, tt int)",
		"",
		"AVX2 skinny kernel: for t < tt ≤ 2, r < 4, dst[t·ldd + 4r] = Σ_{k < 16n} x_t[k]·w_r[k]",
		"(w_r = w + r·ldw, x_t = x + t·ldx, bytes), the inner loop of matMulF32Generic.",
	}
	if w == "bf16" {
		doc = append(doc, "bf16: a 32-byte load holds 16 weights; word<<16 gives the even ones,",
			"word&0xffff0000 the odd ones; x_t is packed per 16-wide chunk as [8 even | 8 odd].")
	}
	f.text(name, "$0-64", doc...)
	f.i("MOVQ n+0(FP), CX")
	f.i("MOVQ x+8(FP), SI")
	f.i("MOVQ ldx+16(FP), R8")
	f.i("MOVQ w+24(FP), DI")
	f.i("MOVQ ldw+32(FP), R10")
	f.i("LEAQ (R10)(R10*2), R11")
	f.i("MOVQ dst+40(FP), DX")
	f.i("MOVQ ldd+48(FP), R12")
	f.i("MOVQ tt+56(FP), AX")
	if w == "bf16" {
		f.i("MOVL $0xffff0000, BX")
		f.i("MOVQ BX, X14")
		f.i("VPBROADCASTD X14, Y14")
	}
	for z := 0; z < 8; z++ {
		f.i("VXORPS Y%d, Y%d, Y%d", z, z, z)
	}
	f.i("CMPQ AX, $1")
	f.i("JEQ %s_t1", name)
	f.i("JMP %s_t2", name)
	wrow := []string{"(DI)", "(DI)(R10*1)", "(DI)(R10*2)", "(DI)(R11*1)"}
	xrow := []string{"(SI)", "(SI)(R8*1)"}
	wstep := 32
	if w == "f32" {
		wstep = 64
	}
	for tt := 1; tt <= 2; tt++ {
		p := name + "_t" + string(rune('0'+tt))
		f.label(p)
		f.i("TESTQ CX, CX")
		f.i("JEQ %s_reduce", p)
		f.label(p + "_loop")
		for t := 0; t < tt; t++ {
			f.i("VMOVUPS %s, Y%d", xrow[t], 10+2*t)
			f.i("VMOVUPS 32%s, Y%d", xrow[t], 11+2*t)
		}
		for r := 0; r < 4; r++ {
			switch w {
			case "f32":
				f.i("VMOVUPS %s, Y8", wrow[r])
				f.i("VMOVUPS 32%s, Y9", wrow[r])
			case "f16":
				f.i("VCVTPH2PS %s, Y8", wrow[r])
				f.i("VCVTPH2PS 16%s, Y9", wrow[r])
			case "bf16":
				f.i("VMOVDQU %s, Y9", wrow[r])
				f.i("VPSLLD $16, Y9, Y8")
				f.i("VPAND Y14, Y9, Y9")
			}
			for t := 0; t < tt; t++ {
				f.i("VFMADD231PS Y8, Y%d, Y%d", 10+2*t, 4*t+r)
				f.i("VFMADD231PS Y9, Y%d, Y%d", 11+2*t, 4*t+r)
			}
		}
		f.i("ADDQ $%d, DI", wstep)
		f.i("ADDQ $64, SI")
		f.i("DECQ CX")
		f.i("JNZ %s_loop", p)
		f.label(p + "_reduce")
		for t := 0; t < tt; t++ {
			for r := 0; r < 4; r++ {
				a := 4*t + r
				f.i("VEXTRACTF128 $1, Y%d, X15", a)
				f.i("VADDPS X15, X%d, X%d", a, a)
			}
			a := 4 * t
			f.i("VHADDPS X%d, X%d, X%d", a+1, a, a)
			f.i("VHADDPS X%d, X%d, X%d", a+3, a+2, a+2)
			f.i("VHADDPS X%d, X%d, X%d", a+2, a, a)
			f.i("VMOVUPS X%d, (DX)", a)
			f.i("ADDQ R12, DX")
		}
		f.i("VZEROUPPER")
		f.i("RET")
	}
}
