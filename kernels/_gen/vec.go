package main

import "math"

// Elementwise and reduction kernels over float32 slices (AVX-512, masked
// tails). Twins: kernels/vec.go.

// bcastConst loads the float32 c into every lane of Zz.
func bcastConst(f *file, z int, c float32, what string) {
	f.i("MOVL $0x%08x, AX // %s = %g", math.Float32bits(c), what, c)
	f.i("VPBROADCASTD AX, Z%d", z)
}

// Registers of the exp sequence's constants (loaded by expConsts).
const (
	zLog2e = 16 + iota
	zNegLn2Hi
	zNegLn2Lo
	zP0
	zP1
	zP2
	zP3
	zP4
	zP5
	zOne
	zLo
	zHi
	zSign
)

// expConsts loads the constants of expSeq into Z16–Z28. The polynomial is
// Cephes expf's minimax fit of eʳ on [−ln2/2, ln2/2] (about 1 ulp).
func expConsts(f *file) {
	bcastConst(f, zLog2e, float32(math.Log2E), "log2(e)")
	bcastConst(f, zNegLn2Hi, -0.693359375, "-ln2 high part (exact in 9 bits)")
	bcastConst(f, zNegLn2Lo, 2.12194440e-4, "-ln2 low part")
	for i, c := range []float32{1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1} {
		bcastConst(f, zP0+i, c, "poly")
	}
	bcastConst(f, zOne, 1, "1")
	bcastConst(f, zLo, -104, "below: exp < smallest subnormal/2")
	bcastConst(f, zHi, 89, "above: exp overflows")
	f.i("MOVL $0x80000000, AX")
	f.i("VPBROADCASTD AX, Z%d", zSign)
}

// expSeq computes Z(y) = exp(Z(x)) lane-wise, using temporaries t, u, n
// (x is preserved unless x == y):
//
//	x' = clamp(x, −104, 89)        NaN stays NaN
//	n  = round(x'·log2 e)
//	r  = x' − n·ln2                 (two-part ln2, so r is exact)
//	eʳ ≈ 1 + r + r²·P(r)
//	y  = eʳ·2ⁿ                      VSCALEFPS: overflow → +Inf, underflow → subnormal or 0
func expSeq(f *file, x, y, t, u, n int) {
	f.i("VMAXPS Z%d, Z%d, Z%d", x, zLo, y)
	f.i("VMINPS Z%d, Z%d, Z%d", y, zHi, y)
	f.i("VMULPS Z%d, Z%d, Z%d", zLog2e, y, n)
	f.i("VRNDSCALEPS $0, Z%d, Z%d", n, n)
	f.i("VFMADD231PS Z%d, Z%d, Z%d", zNegLn2Hi, n, y)
	f.i("VFMADD231PS Z%d, Z%d, Z%d", zNegLn2Lo, n, y)
	f.i("VMOVAPS Z%d, Z%d", zP0, t)
	for p := zP1; p <= zP5; p++ {
		f.i("VFMADD213PS Z%d, Z%d, Z%d", p, y, t)
	}
	f.i("VMULPS Z%d, Z%d, Z%d", y, y, u)
	f.i("VFMADD213PS Z%d, Z%d, Z%d", y, u, t)
	f.i("VADDPS Z%d, Z%d, Z%d", zOne, t, t)
	f.i("VSCALEFPS Z%d, Z%d, Z%d", n, t, y)
}

// mapKernel emits dst[i] = op(x[i] [, y[i]]) for i < n, 16 lanes per step
// and one masked step for the tail. body computes Z1 from Z0 (and Z2 for the
// second input).
func mapKernel(f *file, name, sig string, doc []string, twoInputs, needExp bool, body func()) {
	frame := "$0-24"
	if twoInputs {
		frame = "$0-32"
	}
	f.text(name, frame, append([]string{"func " + name + sig, ""}, doc...)...)
	f.i("MOVQ dst+0(FP), DI")
	f.i("MOVQ x+8(FP), SI")
	if twoInputs {
		f.i("MOVQ y+16(FP), DX")
		f.i("MOVQ n+24(FP), CX")
	} else {
		f.i("MOVQ n+16(FP), CX")
	}
	if needExp {
		expConsts(f)
	}
	f.label(name + "_loop")
	f.i("CMPQ CX, $16")
	f.i("JB %s_tail", name)
	f.i("VMOVUPS (SI), Z0")
	if twoInputs {
		f.i("VMOVUPS (DX), Z2")
	}
	body()
	f.i("VMOVUPS Z1, (DI)")
	f.i("ADDQ $64, SI")
	f.i("ADDQ $64, DI")
	if twoInputs {
		f.i("ADDQ $64, DX")
	}
	f.i("SUBQ $16, CX")
	f.i("JMP %s_loop", name)
	f.label(name + "_tail")
	f.c("the last n%%16 elements under the mask (1<<n)-1")
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_done", name)
	f.i("MOVL $1, AX")
	f.i("SHLL CX, AX")
	f.i("DECL AX")
	f.i("KMOVW AX, K1")
	f.i("VMOVUPS.Z (SI), K1, Z0")
	if twoInputs {
		f.i("VMOVUPS.Z (DX), K1, Z2")
	}
	body()
	f.i("VMOVUPS Z1, K1, (DI)")
	f.label(name + "_done")
	f.i("VZEROUPPER")
	f.i("RET")
}

// reduceKernel emits a reduction over n elements with four 16-lane
// accumulators Z4–Z7 (64 elements per step, then 16 per step, then a
// masked tail); step(acc) folds Z0 (and Z2) into Z(acc). fold combines two
// accumulators; the final horizontal fold returns a float32.
func reduceKernel(f *file, name, sig, frame, retOff string, doc []string, twoInputs, isMax bool) {
	f.text(name, frame, append([]string{"func " + name + sig, ""}, doc...)...)
	f.i("MOVQ x+0(FP), SI")
	if twoInputs {
		f.i("MOVQ y+8(FP), DX")
		f.i("MOVQ n+16(FP), CX")
	} else {
		f.i("MOVQ n+8(FP), CX")
	}
	init := func(z int) {
		if isMax {
			f.i("MOVL $0xff800000, AX // -Inf")
			f.i("VPBROADCASTD AX, Z%d", z)
		} else {
			f.i("VPXORD Z%d, Z%d, Z%d", z, z, z)
		}
	}
	for z := 4; z < 8; z++ {
		init(z)
	}
	step := func(acc int, off int, mask bool) {
		ld := "VMOVUPS"
		k := ""
		if mask {
			ld, k = "VMOVUPS.Z", "K1, "
		}
		switch {
		case isMax:
			if mask { // masked-off lanes must not win: start from -Inf
				f.i("VMOVAPS Z4, Z0")
				f.i("VMOVUPS %d(SI), K1, Z0", off)
			} else {
				f.i("VMOVUPS %d(SI), Z0", off)
			}
			f.i("VMAXPS Z0, Z%d, Z%d", acc, acc)
		case twoInputs:
			f.i("%s %d(SI), %sZ0", ld, off, k)
			f.i("%s %d(DX), %sZ2", ld, off, k)
			f.i("VFMADD231PS Z0, Z2, Z%d", acc)
		default: // sum of squares
			f.i("%s %d(SI), %sZ0", ld, off, k)
			f.i("VFMADD231PS Z0, Z0, Z%d", acc)
		}
	}
	f.label(name + "_loop64")
	f.i("CMPQ CX, $64")
	f.i("JB %s_loop16", name)
	for a := 0; a < 4; a++ {
		step(4+a, 64*a, false)
	}
	f.i("ADDQ $256, SI")
	if twoInputs {
		f.i("ADDQ $256, DX")
	}
	f.i("SUBQ $64, CX")
	f.i("JMP %s_loop64", name)
	f.label(name + "_loop16")
	f.i("CMPQ CX, $16")
	f.i("JB %s_tail", name)
	step(4, 0, false)
	f.i("ADDQ $64, SI")
	if twoInputs {
		f.i("ADDQ $64, DX")
	}
	f.i("SUBQ $16, CX")
	f.i("JMP %s_loop16", name)
	f.label(name + "_tail")
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_fold", name)
	f.i("MOVL $1, AX")
	f.i("SHLL CX, AX")
	f.i("DECL AX")
	f.i("KMOVW AX, K1")
	step(5, 0, true)
	f.label(name + "_fold")
	op := "VADDPS"
	if isMax {
		op = "VMAXPS"
	}
	f.i("%s Z5, Z4, Z4", op)
	f.i("%s Z7, Z6, Z6", op)
	f.i("%s Z6, Z4, Z0", op)
	f.i("VEXTRACTF64X4 $1, Z0, Y1")
	f.i("%s Y1, Y0, Y0", op)
	f.i("VEXTRACTF128 $1, Y0, X1")
	f.i("%s X1, X0, X0", op)
	f.i("VMOVHLPS X0, X0, X1")
	f.i("%s X1, X0, X0", op)
	f.i("VPSHUFD $1, X0, X1")
	f.i("%s X1, X0, X0", op)
	f.i("VMOVSS X0, %s", retOff)
	f.i("VZEROUPPER")
	f.i("RET")
}

func genVec(f *file) {
	sig1 := "(dst, x *float32, n int)"
	mapKernel(f, "expAVX512", sig1, []string{"dst[i] = exp(x[i]) for i < n (expSeq: ≤ 2 ulp). Twin: expGeneric."}, false, true, func() {
		expSeq(f, 0, 1, 8, 9, 10)
	})
	mapKernel(f, "sigmoidAVX512", sig1, []string{"dst[i] = 1/(1+exp(−x[i])). Twin: sigmoidGeneric."}, false, true, func() {
		f.i("VXORPS Z%d, Z0, Z3", zSign)
		expSeq(f, 3, 3, 8, 9, 10)
		f.i("VADDPS Z%d, Z3, Z3", zOne)
		f.i("VDIVPS Z3, Z%d, Z1", zOne)
	})
	mapKernel(f, "siluAVX512", sig1, []string{"dst[i] = x[i]/(1+exp(−x[i])). Twin: siluGeneric."}, false, true, func() {
		f.i("VXORPS Z%d, Z0, Z3", zSign)
		expSeq(f, 3, 3, 8, 9, 10)
		f.i("VADDPS Z%d, Z3, Z3", zOne)
		f.i("VDIVPS Z3, Z0, Z1")
	})
	sig2 := "(dst, x, y *float32, n int)"
	mapKernel(f, "siluMulAVX512", sig2, []string{"dst[i] = x[i]/(1+exp(−x[i]))·y[i] (gate x, up y). Twin: siluMulGeneric."}, true, true, func() {
		f.i("VXORPS Z%d, Z0, Z3", zSign)
		expSeq(f, 3, 3, 8, 9, 10)
		f.i("VADDPS Z%d, Z3, Z3", zOne)
		f.i("VDIVPS Z3, Z0, Z1")
		f.i("VMULPS Z2, Z1, Z1")
	})
	mapKernel(f, "mulAVX512", sig2, []string{"dst[i] = x[i]·y[i]. Twin: the loop in Mul."}, true, false, func() {
		f.i("VMULPS Z2, Z0, Z1")
	})

	// Kernels with a scalar argument a: the scalar sits at a fixed offset.
	scalarMap := func(name, sig string, doc string, withY bool, body func()) {
		frame := "$0-28"
		if withY {
			frame = "$0-36"
		}
		f.text(name, frame, "func "+name+sig, "", doc)
		f.i("MOVQ dst+0(FP), DI")
		f.i("MOVQ x+8(FP), SI")
		if withY {
			f.i("MOVQ y+16(FP), DX")
			f.i("MOVQ n+24(FP), CX")
			f.i("VBROADCASTSS a+32(FP), Z3")
		} else {
			f.i("MOVQ n+16(FP), CX")
			f.i("VBROADCASTSS a+24(FP), Z3")
		}
		f.label(name + "_loop")
		f.i("CMPQ CX, $16")
		f.i("JB %s_tail", name)
		f.i("VMOVUPS (SI), Z0")
		if withY {
			f.i("VMOVUPS (DX), Z2")
		}
		f.i("VMOVUPS (DI), Z1")
		body()
		f.i("VMOVUPS Z1, (DI)")
		f.i("ADDQ $64, SI")
		f.i("ADDQ $64, DI")
		if withY {
			f.i("ADDQ $64, DX")
		}
		f.i("SUBQ $16, CX")
		f.i("JMP %s_loop", name)
		f.label(name + "_tail")
		f.i("TESTQ CX, CX")
		f.i("JEQ %s_done", name)
		f.i("MOVL $1, AX")
		f.i("SHLL CX, AX")
		f.i("DECL AX")
		f.i("KMOVW AX, K1")
		f.i("VMOVUPS.Z (SI), K1, Z0")
		if withY {
			f.i("VMOVUPS.Z (DX), K1, Z2")
		}
		f.i("VMOVUPS.Z (DI), K1, Z1")
		body()
		f.i("VMOVUPS Z1, K1, (DI)")
		f.label(name + "_done")
		f.i("VZEROUPPER")
		f.i("RET")
	}
	scalarMap("axpyAVX512", "(dst, x *float32, n int, a float32)", "dst[i] += a·x[i] (one FMA). Twin: the loop in Axpy.", false, func() {
		f.i("VFMADD231PS Z0, Z3, Z1")
	})
	scalarMap("scaleAVX512", "(dst, x *float32, n int, a float32)", "dst[i] = a·x[i] (x may be dst). Twin: the loop in Scale.", false, func() {
		f.i("VMULPS Z0, Z3, Z1")
	})
	scalarMap("normMulAVX512", "(dst, x, y *float32, n int, a float32)", "dst[i] = y[i]·(x[i]·a): RMSNorm's second pass with a = 1/rms, y = weight.", true, func() {
		f.i("VMULPS Z0, Z3, Z1")
		f.i("VMULPS Z2, Z1, Z1")
	})

	reduceKernel(f, "dotAVX512", "(x, y *float32, n int) float32", "$0-28", "ret+24(FP)",
		[]string{"Σ x[i]·y[i] with 64 partial sums (4 FMA accumulators × 16 lanes). Twin: dotGeneric."}, true, false)
	reduceKernel(f, "sumSqAVX512", "(x *float32, n int) float32", "$0-20", "ret+16(FP)",
		[]string{"Σ x[i]² with 64 partial sums: RMSNorm's first pass."}, false, false)
	reduceKernel(f, "maxAVX512", "(x *float32, n int) float32", "$0-20", "ret+16(FP)",
		[]string{"max x[i] (−Inf for n = 0): Softmax's first pass."}, false, true)

	// Softmax's second pass: x[i] = exp(x[i] − m), returning Σ.
	name := "expSubSumAVX512"
	f.text(name, "$0-28", "func "+name+"(x *float32, n int, m float32) float32", "",
		"x[i] = exp(x[i] − m) in place, returning Σ x[i] (16 partial sums in Z4).",
		"Softmax's second pass; twin: the loop in softmaxGeneric.")
	f.i("MOVQ x+0(FP), SI")
	f.i("MOVQ n+8(FP), CX")
	f.i("VBROADCASTSS m+16(FP), Z5")
	f.i("VPXORD Z4, Z4, Z4")
	expConsts(f)
	f.label(name + "_loop")
	f.i("CMPQ CX, $16")
	f.i("JB %s_tail", name)
	f.i("VMOVUPS (SI), Z0")
	f.i("VSUBPS Z5, Z0, Z0")
	expSeq(f, 0, 1, 8, 9, 10)
	f.i("VADDPS Z1, Z4, Z4")
	f.i("VMOVUPS Z1, (SI)")
	f.i("ADDQ $64, SI")
	f.i("SUBQ $16, CX")
	f.i("JMP %s_loop", name)
	f.label(name + "_tail")
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_fold", name)
	f.i("MOVL $1, AX")
	f.i("SHLL CX, AX")
	f.i("DECL AX")
	f.i("KMOVW AX, K1")
	f.i("VMOVUPS.Z (SI), K1, Z0")
	f.i("VSUBPS Z5, Z0, Z0")
	expSeq(f, 0, 1, 8, 9, 10)
	f.i("VMOVAPS.Z Z1, K1, Z1")
	f.i("VADDPS Z1, Z4, Z4")
	f.i("VMOVUPS Z1, K1, (SI)")
	f.label(name + "_fold")
	f.i("VEXTRACTF64X4 $1, Z4, Y1")
	f.i("VADDPS Y1, Y4, Y0")
	f.i("VEXTRACTF128 $1, Y0, X1")
	f.i("VADDPS X1, X0, X0")
	f.i("VMOVHLPS X0, X0, X1")
	f.i("VADDPS X1, X0, X0")
	f.i("VPSHUFD $1, X0, X1")
	f.i("VADDPS X1, X0, X0")
	f.i("VMOVSS X0, ret+24(FP)")
	f.i("VZEROUPPER")
	f.i("RET")
}

// genArgmax emits argmaxAVX512: a max pass whose VMAXPS keeps the running
// maximum when an element is NaN, then a pass that returns the first index
// equal to it.
func genArgmax(f *file) {
	const name = "argmaxAVX512"
	f.text(name, "$0-24",
		"func "+name+"(x *float32, n int) int",
		"",
		"The lowest i < n with x[i] = m, m the largest non-NaN x[i] (n > 0; −1 if",
		"every x[i] is NaN). Twin: argmaxGeneric, for x[0] not NaN (Argmax checks).")
	f.i("MOVQ x+0(FP), SI")
	f.i("MOVQ n+8(FP), R8")
	f.i("MOVL $0xff800000, AX // -Inf")
	f.i("VPBROADCASTD AX, Z8")
	for z := 4; z < 8; z++ {
		f.i("VMOVAPS Z8, Z%d", z)
	}
	f.c("pass 1: m = max over x, acc = x > acc ? x : acc, so a NaN x keeps acc")
	f.i("MOVQ SI, DI")
	f.i("MOVQ R8, DX")
	f.label(name + "_max64")
	f.i("CMPQ DX, $64")
	f.i("JB %s_max16", name)
	for k := 0; k < 4; k++ {
		f.i("VMOVUPS %d(DI), Z0", 64*k)
		f.i("VMAXPS Z%d, Z0, Z%d", 4+k, 4+k)
	}
	f.i("ADDQ $256, DI")
	f.i("SUBQ $64, DX")
	f.i("JMP %s_max64", name)
	f.label(name + "_max16")
	f.i("CMPQ DX, $16")
	f.i("JB %s_maxtail", name)
	f.i("VMOVUPS (DI), Z0")
	f.i("VMAXPS Z4, Z0, Z4")
	f.i("ADDQ $64, DI")
	f.i("SUBQ $16, DX")
	f.i("JMP %s_max16", name)
	f.label(name + "_maxtail")
	f.i("TESTQ DX, DX")
	f.i("JEQ %s_fold", name)
	f.i("MOVQ DX, CX")
	f.i("MOVL $1, AX")
	f.i("SHLL CX, AX")
	f.i("DECL AX")
	f.i("KMOVW AX, K1")
	f.i("VMOVAPS Z8, Z0")
	f.i("VMOVUPS (DI), K1, Z0")
	f.i("VMAXPS Z5, Z0, Z5")
	f.label(name + "_fold")
	f.c("no lane is NaN from here on")
	f.i("VMAXPS Z5, Z4, Z4")
	f.i("VMAXPS Z7, Z6, Z6")
	f.i("VMAXPS Z6, Z4, Z0")
	f.i("VEXTRACTF64X4 $1, Z0, Y1")
	f.i("VMAXPS Y1, Y0, Y0")
	f.i("VEXTRACTF32X4 $1, Y0, X1")
	f.i("VMAXPS X1, X0, X0")
	f.i("VPERMILPS $0x4e, X0, X1")
	f.i("VMAXPS X1, X0, X0")
	f.i("VPERMILPS $0xb1, X0, X1")
	f.i("VMAXPS X1, X0, X0")
	f.i("VBROADCASTSS X0, Z1")
	f.c("pass 2: the first i with x[i] == m (ordered compare: NaN never equals)")
	f.i("XORQ BX, BX")
	f.label(name + "_find16")
	f.i("LEAQ 16(BX), DX")
	f.i("CMPQ DX, R8")
	f.i("JA %s_findtail", name)
	f.i("VCMPPS $0, (SI)(BX*4), Z1, K2")
	f.i("KMOVW K2, AX")
	f.i("TESTL AX, AX")
	f.i("JNZ %s_found", name)
	f.i("MOVQ DX, BX")
	f.i("JMP %s_find16", name)
	f.label(name + "_findtail")
	f.i("MOVQ R8, CX")
	f.i("SUBQ BX, CX")
	f.i("JEQ %s_none", name)
	f.i("MOVL $1, AX")
	f.i("SHLL CX, AX")
	f.i("DECL AX")
	f.i("KMOVW AX, K1")
	f.i("VCMPPS $0, (SI)(BX*4), Z1, K1, K2")
	f.i("KMOVW K2, AX")
	f.i("TESTL AX, AX")
	f.i("JNZ %s_found", name)
	f.label(name + "_none")
	f.i("MOVQ $-1, ret+16(FP)")
	f.i("VZEROUPPER")
	f.i("RET")
	f.label(name + "_found")
	f.i("TZCNTL AX, AX")
	f.i("ADDQ BX, AX")
	f.i("MOVQ AX, ret+16(FP)")
	f.i("VZEROUPPER")
	f.i("RET")
}
