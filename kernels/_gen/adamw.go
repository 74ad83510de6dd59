package main

// genAdamW writes adamwAVX512: one AdamW step over fp32 slabs, 8 elements
// at a time widened to float64 (twin: adamwGeneric in kernels/adamw.go,
// which it matches bit for bit: every operation is the twin's, unfused).
func genAdamW(f *file) {
	name := "adamwAVX512"
	f.text(name, "$0-48", "func "+name+"(p, gr, m, v *float32, n int, k *[8]float64)", "",
		"One AdamW step on p, m, v from the gradients gr, n elements; k = β1, 1−β1, β2, 1−β2, eps,",
		"step, rbc2, decay (kernels.adamwConsts). Twin: adamwGeneric.")
	f.i("MOVQ p+0(FP), DI")
	f.i("MOVQ gr+8(FP), SI")
	f.i("MOVQ m+16(FP), DX")
	f.i("MOVQ v+24(FP), BX")
	f.i("MOVQ n+32(FP), CX")
	f.i("MOVQ k+40(FP), AX")
	for i := 0; i < 8; i++ { // Z16 β1, Z17 1−β1, Z18 β2, Z19 1−β2, Z20 eps, Z21 step, Z22 rbc2, Z23 decay
		f.i("VBROADCASTSD %d(AX), Z%d", 8*i, 16+i)
	}
	body := func() { // in: Z0 g, Z1 m, Z2 v, Z3 p (float64); out: Z1 m, Z2 v, Z3 p
		f.i("VMULPD Z16, Z1, Z1") // β1·m
		f.i("VMULPD Z17, Z0, Z4") // (1−β1)·g
		f.i("VADDPD Z4, Z1, Z1")  // m
		f.i("VMULPD Z18, Z2, Z2") // β2·v
		f.i("VMULPD Z19, Z0, Z5") // (1−β2)·g
		f.i("VMULPD Z0, Z5, Z5")  // ·g
		f.i("VADDPD Z5, Z2, Z2")  // v
		f.i("VSQRTPD Z2, Z6")
		f.i("VMULPD Z22, Z6, Z6") // sqrt(v)·rbc2
		f.i("VADDPD Z20, Z6, Z6") // + eps
		f.i("VMULPD Z23, Z3, Z3") // p·decay
		f.i("VMULPD Z21, Z1, Z7") // step·m
		f.i("VDIVPD Z6, Z7, Z7")  // / den
		f.i("VSUBPD Z7, Z3, Z3")
		f.i("VCVTPD2PS Z1, Y1")
		f.i("VCVTPD2PS Z2, Y2")
		f.i("VCVTPD2PS Z3, Y3")
	}
	f.label(name + "_loop")
	f.i("CMPQ CX, $8")
	f.i("JB %s_tail", name)
	f.i("VCVTPS2PD (SI), Z0")
	f.i("VCVTPS2PD (DX), Z1")
	f.i("VCVTPS2PD (BX), Z2")
	f.i("VCVTPS2PD (DI), Z3")
	body()
	f.i("VMOVUPS Y1, (DX)")
	f.i("VMOVUPS Y2, (BX)")
	f.i("VMOVUPS Y3, (DI)")
	for _, r := range []string{"SI", "DX", "BX", "DI"} {
		f.i("ADDQ $32, %s", r)
	}
	f.i("SUBQ $8, CX")
	f.i("JMP %s_loop", name)
	f.label(name + "_tail")
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_done", name)
	f.i("MOVL $1, AX")
	f.i("SHLL CX, AX")
	f.i("DECL AX")
	f.i("KMOVW AX, K1")
	for i, r := range []string{"SI", "DX", "BX", "DI"} {
		f.i("VMOVUPS.Z (%s), K1, Y%d", r, i)
		f.i("VCVTPS2PD Y%d, Z%d", i, i)
	}
	body()
	f.i("VMOVUPS Y1, K1, (DX)")
	f.i("VMOVUPS Y2, K1, (BX)")
	f.i("VMOVUPS Y3, K1, (DI)")
	f.label(name + "_done")
	f.i("VZEROUPPER")
	f.i("RET")
}
