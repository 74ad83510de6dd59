package main

// Machine-limit probes: loops that run one instruction kind as fast as the
// core can, for kernels/probe.go's FMAPeak, BF16DotPeak and ReadBandwidth.

// genPeakLoop emits a loop of n iterations × 24 independent accumulating
// instructions (no memory traffic); op is "fma" (VFMADD231PS zmm), "fma256"
// (VFMADD231PS ymm, for the AVX2 path), or "bf16" (VDPBF16PS zmm).
func genPeakLoop(f *file, name, op string) {
	per := map[string]string{
		"fma":    "24 VFMADD231PS zmm = 24·16·2 flops",
		"fma256": "12 VFMADD231PS ymm = 12·8·2 flops",
		"bf16":   "24 VDPBF16PS zmm = 24·16·4 flops",
	}[op]
	f.text(name, "$0-8",
		"func "+name+"(n int)",
		"",
		"Peak probe: n iterations of "+per+", into independent",
		"accumulators so only throughput (not latency) limits it.")
	f.i("MOVQ n+0(FP), CX")
	regs := 24
	if op == "fma256" {
		regs = 12
	}
	for z := 0; z < regs; z++ {
		if op == "fma256" {
			f.i("VXORPS Y%d, Y%d, Y%d", z, z, z)
		} else {
			f.i("VPXORD Z%d, Z%d, Z%d", z, z, z)
		}
	}
	if op == "fma256" {
		f.i("VXORPS Y14, Y14, Y14")
		f.i("VXORPS Y15, Y15, Y15")
	} else {
		f.i("VPXORD Z30, Z30, Z30")
		f.i("VPXORD Z31, Z31, Z31")
	}
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_done", name)
	f.label(name + "_loop")
	for z := 0; z < regs; z++ {
		switch op {
		case "fma":
			f.i("VFMADD231PS Z30, Z31, Z%d", z)
		case "fma256":
			f.i("VFMADD231PS Y14, Y15, Y%d", z)
		case "bf16":
			f.vdpbf16ps(30, 31, z)
		}
	}
	f.i("DECQ CX")
	f.i("JNZ %s_loop", name)
	f.label(name + "_done")
	f.i("VZEROUPPER")
	f.i("RET")
}

// genReadLoop emits a streaming read over 8 streams at once (one core
// reaches DRAM's rate only with several misses in flight): every byte of
// the 8 regions [p + s·stride, p + s·stride + 64n) is loaded once with
// 64-byte loads and XORed into eight accumulators whose fold is returned,
// so the loads cannot be dropped.
func genReadLoop(f *file, name string) {
	f.text(name, "$0-32",
		"func "+name+"(p unsafe.Pointer, stride, n int) uint64",
		"",
		"Read-bandwidth probe: XOR of every 64-bit word in the 8 regions",
		"[p + s·stride, p + s·stride + 64n), s < 8, folded.")
	f.i("MOVQ p+0(FP), SI")
	f.i("MOVQ stride+8(FP), R8")
	f.i("LEAQ (R8)(R8*2), R9")
	f.i("LEAQ (R8)(R8*4), R10")
	f.i("LEAQ (R9)(R8*4), R11")
	f.i("MOVQ n+16(FP), CX")
	for z := 0; z < 8; z++ {
		f.i("VPXORQ Z%d, Z%d, Z%d", z, z, z)
	}
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_fold", name)
	f.label(name + "_loop")
	addr := []string{"(SI)", "(SI)(R8*1)", "(SI)(R8*2)", "(SI)(R9*1)", "(SI)(R8*4)", "(SI)(R10*1)", "(SI)(R9*2)", "(SI)(R11*1)"}
	for z, a := range addr {
		f.i("VPXORQ %s, Z%d, Z%d", a, z, z)
	}
	f.i("ADDQ $64, SI")
	f.i("DECQ CX")
	f.i("JNZ %s_loop", name)
	f.label(name + "_fold")
	for z := 1; z < 8; z++ {
		f.i("VPXORQ Z%d, Z0, Z0", z)
	}
	f.i("VEXTRACTI64X4 $1, Z0, Y1")
	f.i("VPXORQ Y1, Y0, Y0")
	f.i("VEXTRACTI128 $1, Y0, X1")
	f.i("VPXOR X1, X0, X0")
	f.i("VPSRLDQ $8, X0, X1")
	f.i("VPXOR X1, X0, X0")
	f.i("VMOVQ X0, AX")
	f.i("MOVQ AX, ret+24(FP)")
	f.i("VZEROUPPER")
	f.i("RET")
}
