package main

// Conversions between float32 and the 16-bit formats (AVX-512, masked
// tails). Twins: kernels/convert.go.

// convKernel emits a loop over n elements, 16 per step, with a masked tail;
// body(mask) converts one step (mask: use K1 on the loads and stores).
func convKernel(f *file, name, sig string, doc []string, dstStep, srcStep int, setup func(), body func(mask bool)) {
	f.text(name, "$0-24", append([]string{"func " + name + sig, ""}, doc...)...)
	f.i("MOVQ dst+0(FP), DI")
	f.i("MOVQ src+8(FP), SI")
	f.i("MOVQ n+16(FP), CX")
	setup()
	f.label(name + "_loop")
	f.i("CMPQ CX, $16")
	f.i("JB %s_tail", name)
	body(false)
	f.i("ADDQ $%d, SI", srcStep)
	f.i("ADDQ $%d, DI", dstStep)
	f.i("SUBQ $16, CX")
	f.i("JMP %s_loop", name)
	f.label(name + "_tail")
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_done", name)
	f.i("MOVL $1, AX")
	f.i("SHLL CX, AX")
	f.i("DECL AX")
	f.i("KMOVW AX, K1")
	body(true)
	f.label(name + "_done")
	f.i("VZEROUPPER")
	f.i("RET")
}

func genConvert(f *file) {
	konst := func(z int, v uint32) {
		f.i("MOVL $0x%08x, AX", v)
		f.i("VPBROADCASTD AX, Z%d", z)
	}
	convKernel(f, "f32ToBF16AVX512", "(dst *uint16, src *float32, n int)", []string{
		"dst[i] = RoundBF16(src[i]): round to nearest even by adding 0x7fff plus the",
		"lowest kept bit and truncating; NaNs keep their top bits with the quiet bit set.",
	}, 32, 64, func() {
		konst(16, 1)
		konst(17, 0x7fff)
		konst(18, 0x7fffffff)
		konst(19, 0x7f800000)
		konst(20, 0x40)
	}, func(mask bool) {
		if mask {
			f.i("VMOVDQU32.Z (SI), K1, Z0")
		} else {
			f.i("VMOVDQU32 (SI), Z0")
		}
		f.i("VPSRLD $16, Z0, Z1")
		f.i("VPANDD Z16, Z1, Z1")
		f.i("VPADDD Z17, Z1, Z1")
		f.i("VPADDD Z0, Z1, Z1")
		f.i("VPSRLD $16, Z1, Z1")
		f.c("NaN lanes: |b| > 0x7f800000 → (b>>16) | 0x40")
		f.i("VPANDD Z18, Z0, Z2")
		f.i("VPCMPUD $6, Z19, Z2, K2")
		f.i("VPSRLD $16, Z0, Z3")
		f.i("VPORD Z20, Z3, K2, Z1")
		if mask {
			f.i("VPMOVDW Z1, K1, (DI)")
		} else {
			f.i("VPMOVDW Z1, (DI)")
		}
	})
	convKernel(f, "bf16ToF32AVX512", "(dst *float32, src *uint16, n int)", []string{
		"dst[i] = float32 with bits src[i]<<16 (exact).",
	}, 64, 32, func() {}, func(mask bool) {
		if mask {
			f.i("VPMOVZXWD.Z (SI), K1, Z0")
		} else {
			f.i("VPMOVZXWD (SI), Z0")
		}
		f.i("VPSLLD $16, Z0, Z0")
		if mask {
			f.i("VMOVUPS Z0, K1, (DI)")
		} else {
			f.i("VMOVUPS Z0, (DI)")
		}
	})
	convKernel(f, "f16ToF32AVX512", "(dst *float32, src *uint16, n int)", []string{
		"dst[i] = HalfToFloat(src[i]) with VCVTPH2PS (exact; NaN payloads kept, quieted).",
	}, 64, 32, func() {}, func(mask bool) {
		if mask {
			f.i("VCVTPH2PS.Z (SI), K1, Z0")
			f.i("VMOVUPS Z0, K1, (DI)")
		} else {
			f.i("VCVTPH2PS (SI), Z0")
			f.i("VMOVUPS Z0, (DI)")
		}
	})
}
