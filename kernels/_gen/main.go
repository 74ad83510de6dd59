// Command _gen writes Lightning's amd64 kernels as Go assembly. Run it from
// this directory with "go run ." after changing it; the generated .s files in
// the parent directory are committed.
//
// It is a plain Go program rather than an avo program because neither avo
// nor the Go assembler knows the AVX512_BF16 instructions (VDPBF16PS,
// VCVTNE2PS2BF16); those are emitted as EVEX bytes by evexRRR.
package main

import "fmt"

func main() {
	g := newFile("!purego")
	genGemmKernel(g, "gemmKernF32AVX512", false, mr)
	genGemmKernel(g, "gemmKernBF16DotAVX512", true, mr)
	for _, r := range edgeRows {
		genGemmKernel(g, fmt.Sprintf("gemmKernF32AVX512R%d", r), false, r)
		genGemmKernel(g, fmt.Sprintf("gemmKernBF16DotAVX512R%d", r), true, r)
	}
	genPack(g, "packGatherDAVX512", "d")
	genPack(g, "packGatherBF16AVX512", "bf16")
	genPack(g, "packGatherF16AVX512", "f16")
	genPackTrans(g, "packTransDAVX512", "d")
	genPackTrans(g, "packTransBF16AVX512", "bf16")
	genPackTrans14(g, "packTrans14DAVX512")
	genGemmKernAVX2(g, "gemmKernF32AVX2")
	g.write("../gemm_amd64.s")

	v := newFile("!purego")
	for _, w := range skinnyWeights {
		for _, s := range skinnyShapes() {
			genSkinny(v, w, s[0], s[1])
		}
	}
	genPackEvenOdd(v)
	genGemvAVX2(v, "gemvF32AVX2", "f32")
	genGemvAVX2(v, "gemvBF16AVX2", "bf16")
	genGemvAVX2(v, "gemvF16AVX2", "f16")
	v.write("../gemv_amd64.s")
	writeSkinnyGo("../skinny_amd64.go")

	p := newFile("!purego")
	genPeakLoop(p, "fmaLoopAVX512", "fma")
	genPeakLoop(p, "fmaLoopAVX2", "fma256")
	genPeakLoop(p, "bf16DotLoopAVX512", "bf16")
	genReadLoop(p, "readLoopAVX512")
	p.write("../probe_amd64.s")

	a := newFile("!purego")
	genAMX(a)
	a.write("../amx_amd64.s")

	e := newFile("!purego")
	genVec(e)
	genArgmax(e)
	genConvert(e)
	genAdamW(e)
	e.write("../vec_amd64.s")
}
