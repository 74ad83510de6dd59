// Command q8 writes the quantized matmul kernels of Lightning (issue 7):
// kernels/q8_amd64.s and the Go declarations kernels/q8kern_amd64.go, and
// the kernels of ggml blocks used in place (issue 15): kernels/kquant_amd64.s
// (kquant.go), kernels/block32_amd64.s (block32.go) and their declarations
// kernels/ggmlkern_amd64.go. Run it from kernels/_gen with "go run ./q8" after changing
// it; the generated files are committed.
//
// Every kernel computes, for R rows of a quantized weight matrix and T ≤
// maxT tokens, the products of kernels/q8.go's reference q8DotGeneric (see
// that file for the formats and the activation record), reorganised for
// SIMD:
//
//	acc[r][t] = Σ_units Σ_lanes float(L + Σ_{4 bytes} u8(w)·s8(x)) · (s·dx) [+ m·Ef]
//	dst[t][r] = Σ_lanes acc[r][t]   (× s[r] for the per-row format)
//
// where the weights enter VPDPBUSD (or VPMADDUBSW) as unsigned bytes: int8
// quants with their sign bit flipped (q + 128), int4 quants as they are
// (0..15). L, precomputed per token and lane, is −o·Σx over the lane's 4
// activations, o being that offset (128 or 8; 0 with mins), so the int32
// lane sums are exactly Σ q·x of the signed quants. The AVX2 path (no VNNI)
// cannot take the 255 · 127 products of offset int8 weights in VPMADDUBSW's
// int16 pairs, so for int8 weights it uses |x| and sign(w, x) instead
// (o = 0 there).
//
// It is a plain Go program like ../main.go, and also emits the VEX-encoded
// VPDPBUSD of AVX-VNNI as bytes (the Go assembler only knows the EVEX form).
package main

import (
	"fmt"
	"go/format"
	"os"
	"strings"
)

// isa is one instruction-set path.
type isa struct {
	name string // function name suffix and cpu registry name
	zmm  bool   // 512-bit registers (else 256-bit)
	vnni bool   // VPDPBUSD (else VPMADDUBSW + VPMADDWD)
	R    int    // weight rows per call
}

// kind is one weight layout.
type kind struct {
	name  string
	row   bool // int8, one float32 scale per row (Q8)
	q4    bool // packed int4 (else int8)
	group int  // inputs per scale (int4; 32 for Q8B32)
	mins  bool // int4 with mins
	bf16  bool // 16-bit scales are bfloat16 (else binary16)
}

var isas = []isa{
	{"AVX512VNNI", true, true, 4},
	{"AVXVNNI", false, true, 2},
	{"AVX2", false, false, 2},
}

func kinds() []kind {
	k := []kind{{name: "Row", row: true}, {name: "Blk", group: 32}, {name: "BlkB", group: 32, bf16: true}}
	for _, g := range []int{32, 64, 128} {
		for _, m := range []bool{false, true} {
			for _, b := range []bool{false, true} {
				n := fmt.Sprintf("G%d", g)
				if m {
					n += "M"
				}
				if b {
					n += "B"
				}
				k = append(k, kind{name: n, q4: true, group: g, mins: m, bf16: b})
			}
		}
	}
	return k
}

// maxT is the most tokens one call takes (register budget).
func maxT(is isa, k kind) int {
	if !is.zmm {
		return 2
	}
	if k.mins {
		return 3
	}
	return 4
}

// Offsets of q8Args (kernels/q8_amd64.go; a test checks them).
const (
	argW    = 0
	argLdw  = 8
	argSc   = 16
	argLds  = 24
	argMn   = 32
	argAct  = 40
	argLdt  = 48
	argDst  = 56
	argLdd  = 64
	argN    = 72 // steps
	argTail = 80 // byte mask of the tail step's weights (0: no tail), zmm int8 only
	argT    = 88
	argIdx  = 96 // AVX-512 int4, one token: the scale permutation table of the group size
)

// prefetch is how far ahead (bytes) each step prefetches its rows' weights
// (0: no prefetch instructions). Rows shorter than a page are read a page
// apart (kernels/q8.go), R = 4 per call, so 16 KB on is the same rows of the
// next group of calls; at 8 KB the prefetches fell on rows the same call
// was reading. Decode with q8b32 weights, three interleaved runs per binary:
// m300 201–210 → 221–246 tok/s, b2 25.3–26.0 → 27.0–27.6 (32 KB: no better).
const prefetch = 16384

// gen accumulates assembly text.
type gen struct{ b strings.Builder }

func (g *gen) i(format string, args ...any) { fmt.Fprintf(&g.b, "\t"+format+"\n", args...) }
func (g *gen) c(format string, args ...any) { fmt.Fprintf(&g.b, "\t// "+format+"\n", args...) }
func (g *gen) label(l string)               { fmt.Fprintf(&g.b, "%s:\n", l) }

// vec names vector register n at the path's width.
func (is isa) vec(n int) string {
	if is.zmm {
		return fmt.Sprintf("Z%d", n)
	}
	return fmt.Sprintf("Y%d", n)
}

func xmm(n int) string { return fmt.Sprintf("X%d", n) }
func ymm(n int) string { return fmt.Sprintf("Y%d", n) }

// unit is the elements of one vector of quants: 64 (zmm) or 32 (ymm).
func (is isa) unit() int {
	if is.zmm {
		return 64
	}
	return 32
}

// recUnit is the inputs per activation record unit the kernel reads: a
// vector's worth, except for zmm int4, whose 128-input units hold their four
// blocks in the order 0, 2, 1, 3 so that the low nibbles of 64 packed bytes
// (inputs 0–31 and 64–95) meet the first half of the unit and the high
// nibbles (32–63, 96–127) the second.
func recUnit(is isa, k kind) int {
	if is.zmm && k.q4 {
		return 128
	}
	return is.unit()
}

// stepUnits is the units one loop step covers: int4 with groups of 128
// shares one scale across 128 inputs; ymm int4 unpacks 64 inputs per load.
func stepUnits(is isa, k kind) int {
	switch {
	case !k.q4:
		return 1
	case is.zmm:
		return 2 // one 128-input record unit (recUnit), two halves
	}
	return max(k.group/32, 2)
}

// Registers. Vector: accumulators 0..R·T−1 (acc[r][t] = r·T + t), then
// the ones below, counted down from the top.
const (
	vConst   = 31 // 0x80 (int8) or 0x0F (int4) bytes
	vIdx     = 30 // zmm: permutation [0×8, 1×8]; ymm AVX2: int16 ones
	vHiMask  = 29 // zmm bf16 pair scales: 0xFFFF0000
	vTmp     = 28
	vS       = 27
	vTmp2    = 26 // q4 unpack, AVX2 |x|
	vX       = 25 // ymm: activation bytes in a register
	vWBase   = 16 // weights of row r: vWBase + r (zmm: 16..19)
	vSvBase  = 20 // scale vector of row r (zmm: 20..23)
	vIdx02   = 25 // zmm int4 groups of 32: permutation [0×8, 2×8]
	vIdx13   = 24 // and [1×8, 3×8]
	ymmConst = 15
	ymmAux   = 14 // AVX2 int16 ones
	ymmTmp   = 13
	ymmS     = 12
	ymmTmp2  = 11
	ymmX     = 10
	ymmW     = 8 // 8, 9
	ymmSv    = 6 // 6, 7
	ymmMv    = 4 // 4, 5
)

// regs is the register assignment of one kernel.
type regs struct {
	cnst, aux, tmp, s, tmp2, x, hi int
	w, sv, mv                      []int
}

func regsFor(is isa, k kind, T int) regs {
	if is.zmm {
		r := regs{cnst: vConst, aux: vIdx, hi: vHiMask, tmp: vTmp, s: vS, tmp2: vTmp2, x: vX}
		for i := range is.R {
			r.w = append(r.w, vWBase+i)
			r.sv = append(r.sv, vSvBase+i)
		}
		if k.mins { // T ≤ 3: accumulators 0..11, mins in 12..15
			for i := range is.R {
				r.mv = append(r.mv, 12+i)
			}
		}
		return r
	}
	r := regs{cnst: ymmConst, aux: ymmAux, tmp: ymmTmp, s: ymmS, tmp2: ymmTmp2, x: ymmX}
	for i := range is.R {
		r.w = append(r.w, ymmW+i)
		r.sv = append(r.sv, ymmSv+i)
		r.mv = append(r.mv, ymmMv+i)
	}
	return r
}

func fname(is isa, k kind) string { return "q8Kern" + k.name + is.name }

// Address helpers: row r of a matrix with base reg and stride regs (stride,
// 3·stride), token t of the activation records.
func rowAddr(off int, base, ld, ld3 string, r int) string {
	switch r {
	case 0:
		return fmt.Sprintf("%d(%s)", off, base)
	case 1:
		return fmt.Sprintf("%d(%s)(%s*1)", off, base, ld)
	case 2:
		return fmt.Sprintf("%d(%s)(%s*2)", off, base, ld)
	}
	return fmt.Sprintf("%d(%s)(%s*1)", off, base, ld3)
}

func wAddr(off, r int) string  { return rowAddr(off, "SI", "BX", "R9", r) }
func scAddr(off, r int) string { return rowAddr(off, "R8", "DX", "R11", r) }
func mnAddr(off, r int) string { return rowAddr(off, "R12", "DX", "R11", r) }
func actAddr(off, t int) string {
	switch t {
	case 0:
		return fmt.Sprintf("%d(R10)", off)
	case 1:
		return fmt.Sprintf("%d(R10)(R13*1)", off)
	case 2:
		return fmt.Sprintf("%d(R10)(R13*2)", off)
	}
	return fmt.Sprintf("%d(R10)(AX*1)", off)
}

// vpdpbusdVEX emits the AVX-VNNI VPDPBUSD ymm(dst) += u8(ymm u)·s8(ymm s)
// as bytes: VEX.256.66.0F38.W0 50 /r, reg = dst, vvvv = u, rm = s.
func (g *gen) vpdpbusdVEX(s, u, dst int) {
	b1 := byte(0x02) // map 0F38
	if dst&8 == 0 {
		b1 |= 0x80
	}
	b1 |= 0x40 // X̄
	if s&8 == 0 {
		b1 |= 0x20
	}
	b2 := byte((^u&15)<<3) | 0x04 | 0x01 // W0, L = 256, pp = 66
	modrm := 0xC0 | byte(dst&7)<<3 | byte(s&7)
	g.i("BYTE $0xC4; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x50; BYTE $0x%02x // VPDPBUSD Y%d, Y%d, Y%d (VEX, AVX-VNNI)", b1, b2, modrm, s, u, dst)
}

// scaleVec loads the scale (or min) vector of row r for one unit into
// register dst: pair = the unit's lanes 0–7 and 8–15 take the 16-bit values
// at addr and addr+2 (zmm, groups of 32), else all lanes take addr's.
func (g *gen) scaleVec(is isa, k kind, rg regs, addr string, pair bool, dst int) {
	v := is.vec(dst)
	switch {
	case pair && !k.bf16:
		g.i("VPBROADCASTD %s, %s", addr, ymm(dst))
		g.i("VCVTPH2PS %s, %s", ymm(dst), v)
		g.i("VPERMPS %s, %s, %s", v, is.vec(rg.aux), v)
	case pair:
		g.i("VPBROADCASTD %s, %s", addr, is.vec(rg.tmp2))
		g.i("VPSLLD $16, %s, %s", is.vec(rg.tmp2), v)
		g.i("VPANDD %s, %s, %s", is.vec(rg.hi), is.vec(rg.tmp2), is.vec(rg.tmp2))
		g.i("VMOVAPS %s, K1, %s", is.vec(rg.tmp2), v)
	case !k.bf16 && is.zmm:
		g.i("VPBROADCASTW %s, %s", addr, ymm(dst))
		g.i("VCVTPH2PS %s, %s", ymm(dst), v)
	case !k.bf16:
		g.i("VPBROADCASTW %s, %s", addr, xmm(dst))
		g.i("VCVTPH2PS %s, %s", xmm(dst), v)
	default:
		g.i("VPBROADCASTW %s, %s", addr, v)
		g.i("VPSLLD $16, %s, %s", v, v)
	}
}

// loadWeights puts unit u of the step's weights of row r into rg.w[r] as
// unsigned bytes (or, AVX2 int8, as signed bytes for the sign trick);
// masked loads the zmm int8 tail.
func (g *gen) loadWeights(is isa, k kind, rg regs, r, u int, tail bool) {
	w := is.vec(rg.w[r])
	U := is.unit()
	if !k.q4 {
		switch {
		case tail:
			g.i("VMOVDQU8.Z %s, K3, %s", wAddr(0, r), w)
		case is.zmm:
			g.i("VMOVDQU64 %s, %s", wAddr(u*U, r), w)
		default:
			g.i("VMOVDQU %s, %s", wAddr(u*U, r), w)
		}
		if is.vnni {
			if is.zmm {
				g.i("VPXORD %s, %s, %s", is.vec(rg.cnst), w, w)
			} else {
				g.i("VPXOR %s, %s, %s", is.vec(rg.cnst), w, w)
			}
		}
		return
	}
	if is.zmm { // 32 bytes: low nibbles = inputs 0..31, high = 32..63
		g.i("VMOVDQU32 %s, %s", wAddr(u*32, r), ymm(rg.w[r]))
		g.i("VPSRLW $4, %s, %s", ymm(rg.w[r]), ymm(rg.tmp2))
		g.i("VINSERTI64X4 $1, %s, %s, %s", ymm(rg.tmp2), w, w)
		g.i("VPANDD %s, %s, %s", is.vec(rg.cnst), w, w)
		return
	}
	// ymm: units 2p (low nibbles) and 2p+1 (high) of 32 bytes at 32p.
	p := u / 2
	if u%2 == 0 {
		g.i("VPAND %s, %s, %s", wAddr(32*p, r), ymm(rg.cnst), w)
	} else {
		g.i("VMOVDQU %s, %s", wAddr(32*p, r), w)
		g.i("VPSRLW $4, %s, %s", w, w)
		g.i("VPAND %s, %s, %s", ymm(rg.cnst), w, w)
	}
}

// kernel emits one function.
func (g *gen) kernel(is isa, k kind) {
	name := fname(is, k)
	U := is.unit()
	su := stepUnits(is, k)
	fmt.Fprintf(&g.b, "\n// func %s(a *q8Args)\n//\n", name)
	fmt.Fprintf(&g.b, "// %d rows × a.T ≤ %d tokens of the %s layout (q8DotGeneric), %d inputs per step.\n", is.R, maxT(is, k), k.name, su*U)
	fmt.Fprintf(&g.b, "TEXT ·%s(SB), NOSPLIT, $0-8\n", name)
	g.i("MOVQ a+0(FP), DI")
	g.i("MOVQ %d(DI), SI", argW)
	g.i("MOVQ %d(DI), BX", argLdw)
	g.i("LEAQ (BX)(BX*2), R9")
	g.i("MOVQ %d(DI), R8", argSc)
	g.i("MOVQ %d(DI), DX", argLds)
	g.i("LEAQ (DX)(DX*2), R11")
	g.i("MOVQ %d(DI), R12", argMn)
	g.i("MOVQ %d(DI), R10", argAct)
	g.i("MOVQ %d(DI), R13", argLdt)
	g.i("LEAQ (R13)(R13*2), AX")
	// Constants.
	switch {
	case is.zmm:
		c := "$0x80808080"
		if k.q4 {
			c = "$0x0f0f0f0f"
		}
		g.i("MOVL %s, CX", c)
		g.i("VPBROADCASTD CX, %s", is.vec(vConst))
		if k.group == 32 || k.q4 {
			g.c("K1 = lanes 8..15; permutations [0×8, 1×8] (and [0×8, 2×8], [1×8, 3×8]) for pairs of scales")
			g.i("MOVL $0xff00, CX")
			g.i("KMOVW CX, K1")
			g.i("VPXORD %s, %s, %s", is.vec(vIdx), is.vec(vIdx), is.vec(vIdx))
			g.i("MOVL $1, CX")
			g.i("VPBROADCASTD CX, K1, %s", is.vec(vIdx))
			if k.q4 && k.group == 32 {
				g.i("VPXORD Z%d, Z%d, Z%d", vIdx02, vIdx02, vIdx02)
				g.i("MOVL $2, CX")
				g.i("VPBROADCASTD CX, K1, Z%d", vIdx02)
				g.i("MOVL $1, CX")
				g.i("VPBROADCASTD CX, Z%d", vIdx13)
				g.i("MOVL $3, CX")
				g.i("VPBROADCASTD CX, K1, Z%d", vIdx13)
			}
			if k.bf16 {
				g.i("MOVL $0xffff0000, CX")
				g.i("VPBROADCASTD CX, %s", is.vec(vHiMask))
			}
		}
		if !k.q4 {
			g.i("KMOVQ %d(DI), K3", argTail)
		}
	default:
		rg := regsFor(is, k, 1)
		c := "$0x80808080"
		if k.q4 {
			c = "$0x0f0f0f0f"
		}
		if k.q4 || is.vnni {
			g.i("MOVL %s, CX", c)
			g.i("VMOVD CX, %s", xmm(rg.cnst))
			g.i("VPBROADCASTD %s, %s", xmm(rg.cnst), ymm(rg.cnst))
		}
		if !is.vnni {
			g.i("MOVL $0x00010001, CX")
			g.i("VMOVD CX, %s", xmm(rg.aux))
			g.i("VPBROADCASTD %s, %s", xmm(rg.aux), ymm(rg.aux))
		}
	}
	g.i("MOVQ %d(DI), CX", argT)
	for T := 1; T <= maxT(is, k); T++ {
		g.i("CMPQ CX, $%d", T)
		g.i("JEQ %s_t%d", name, T)
	}
	g.i("RET")
	for T := 1; T <= maxT(is, k); T++ {
		g.body(is, k, T, name)
	}
}

// body emits the code for T tokens.
func (g *gen) body(is isa, k kind, T int, name string) {
	if is.zmm && k.q4 && T == 1 {
		g.bodyQ4ZT1(k, name)
		return
	}
	rg := regsFor(is, k, T)
	U := is.unit()
	su := stepUnits(is, k)
	lab := fmt.Sprintf("%s_t%d", name, T)
	g.label(lab)
	for n := range is.R * T {
		if is.zmm {
			g.i("VPXORD %s, %s, %s", is.vec(n), is.vec(n), is.vec(n))
		} else {
			g.i("VPXOR %s, %s, %s", is.vec(n), is.vec(n), is.vec(n))
		}
	}
	g.i("MOVQ %d(DI), CX", argN)
	g.i("TESTQ CX, CX")
	g.i("JEQ %s_tail", lab)
	g.label(lab + "_loop")
	g.step(is, k, rg, T, false)
	wBytes, sBytes := su*U, 0
	if k.q4 {
		wBytes = su * U / 2
	}
	if !k.row {
		sBytes = 2 * su * U / k.group
	}
	actBytes := 4 * su * U // = 4·recUnit per step for every path
	g.i("ADDQ $%d, SI", wBytes)
	if sBytes > 0 {
		g.i("ADDQ $%d, R8", sBytes)
		if k.mins {
			g.i("ADDQ $%d, R12", sBytes)
		}
	}
	g.i("ADDQ $%d, R10", actBytes)
	g.i("DECQ CX")
	g.i("JNZ %s_loop", lab)
	g.label(lab + "_tail")
	if is.zmm && !k.q4 {
		g.c("a masked step for the last in %% 64 inputs, if any")
		g.i("KORTESTQ K3, K3")
		g.i("JZ %s_reduce", lab)
		g.step(is, k, rg, T, true)
	}
	g.label(lab + "_reduce")
	g.reduce(is, k, T)
	g.i("VZEROUPPER")
	g.i("RET")
}

// step emits one loop step: su units of every row against T tokens.
func (g *gen) step(is isa, k kind, rg regs, T int, tail bool) {
	if is.zmm && k.q4 {
		g.stepQ4Z(k, rg, T)
		return
	}
	U := is.unit()
	su := stepUnits(is, k)
	v := is.vec
	if prefetch > 0 && !tail {
		g.c("prefetch the weights %d bytes ahead in each row", prefetch)
		for r := range is.R {
			g.i("PREFETCHT0 %s", wAddr(prefetch, r))
		}
	}
	for u := range su {
		g.c("unit %d: weights of each row as bytes, and their scale (and min) vectors", u)
		for r := range is.R {
			g.loadWeights(is, k, rg, r, u, tail)
			if k.row {
				continue
			}
			// The unit's scale: zmm groups of 32 take a pair (or one in the
			// tail); otherwise one scale per group, loaded on the group's
			// first unit.
			pair := is.zmm && k.group == 32 && !tail
			first := (u*U)%k.group == 0
			if !first {
				continue
			}
			off := 2 * (u * U / k.group)
			g.scaleVec(is, k, rg, scAddr(off, r), pair, rg.sv[r])
			if k.mins {
				g.scaleVec(is, k, rg, mnAddr(off, r), pair, rg.mv[r])
			}
		}
		for t := range T {
			xo, dxo, lo, eo := 4*U*u, 4*U*u+U, 4*U*u+2*U, 4*U*u+3*U
			if !is.zmm {
				g.i("VMOVDQU %s, %s", actAddr(xo, t), v(rg.x))
				if !is.vnni && !k.q4 {
					g.i("VPABSB %s, %s", v(rg.x), v(rg.tmp2))
				}
			}
			for r := range is.R {
				acc := v(r*T + t)
				tmp := v(rg.tmp)
				w := v(rg.w[r])
				switch {
				case is.zmm:
					g.i("VMOVDQU32 %s, %s", actAddr(lo, t), tmp)
					g.i("VPDPBUSD %s, %s, %s", actAddr(xo, t), w, tmp)
				case is.vnni:
					g.i("VMOVDQU %s, %s", actAddr(lo, t), tmp)
					g.vpdpbusdVEX(rg.x, rg.w[r], rg.tmp)
				case k.q4: // u8 nibbles × s8 x, int16 pairs cannot overflow (2·15·127)
					g.i("VPMADDUBSW %s, %s, %s", v(rg.x), w, tmp)
					g.i("VPMADDWD %s, %s, %s", v(rg.aux), tmp, tmp)
					g.i("VPADDD %s, %s, %s", actAddr(lo, t), tmp, tmp)
				default: // |x| × sign(w, x): pairs ≤ 2·127·127 fit int16
					g.i("VPSIGNB %s, %s, %s", v(rg.x), w, v(rg.s))
					g.i("VPMADDUBSW %s, %s, %s", v(rg.s), v(rg.tmp2), tmp)
					g.i("VPMADDWD %s, %s, %s", v(rg.aux), tmp, tmp)
				}
				g.i("VCVTDQ2PS %s, %s", tmp, tmp)
				if k.row {
					g.i("VFMADD231PS %s, %s, %s", actAddr(dxo, t), tmp, acc)
				} else {
					g.i("VMULPS %s, %s, %s", actAddr(dxo, t), v(rg.sv[r]), v(rg.s))
					g.i("VFMADD231PS %s, %s, %s", v(rg.s), tmp, acc)
				}
				if k.mins {
					g.i("VFMADD231PS %s, %s, %s", actAddr(eo, t), v(rg.mv[r]), acc)
				}
			}
		}
	}
}

// stepQ4Z emits the AVX-512 int4 step: 128 inputs per row from 64 packed
// bytes, whose low nibbles (inputs 0–31, 64–95) meet the record unit's
// first half and high nibbles (32–63, 96–127) its second (recUnit). The
// halves' lanes 0–7 and 8–15 belong to blocks (0, 2) and (1, 3), so their
// scale vectors are [s(0)×8, s(64)×8] and [s(32)×8, s(96)×8], s(k) being
// the scale of input k's group.
func (g *gen) stepQ4Z(k kind, rg regs, T int) {
	is := isas[0]
	v := is.vec
	if prefetch > 0 {
		g.c("prefetch the weights %d bytes ahead in each row", prefetch)
		for r := range is.R {
			g.i("PREFETCHT0 %s", wAddr(prefetch, r))
		}
	}
	for h := range 2 {
		g.c("half %d: the %s nibbles of each row, and the half's scale (and min) vectors", h, []string{"low", "high"}[h])
		for r := range is.R {
			w := v(rg.w[r])
			if h == 0 {
				g.i("VPANDD %s, %s, %s", wAddr(0, r), v(rg.cnst), w)
			} else {
				g.i("VPSRLW $4, %s, %s", wAddr(0, r), w)
				g.i("VPANDD %s, %s, %s", v(rg.cnst), w, w)
			}
			for _, m := range []bool{false, true} {
				if m && !k.mins {
					continue
				}
				addr, dst := scAddr(0, r), rg.sv[r]
				if m {
					addr, dst = mnAddr(0, r), rg.mv[r]
				}
				switch {
				case k.group == 128 && h == 0:
					g.scaleVec(is, k, rg, addr, false, dst)
				case k.group == 64 && h == 0:
					g.scaleVec(is, k, rg, addr, true, dst)
				case k.group == 32 && !k.bf16: // quad s0..s3: half 0 takes (s0, s2), half 1 (s1, s3)
					g.i("VPBROADCASTQ %s, %s", addr, ymm(dst))
					g.i("VCVTPH2PS %s, %s", ymm(dst), v(dst))
					g.i("VPERMPS %s, Z%d, %s", v(dst), []int{vIdx02, vIdx13}[h], v(dst))
				case k.group == 32: // bf16 pairs (s1:s0, s3:s2): half 0 shifts, half 1 masks
					g.i("VPBROADCASTQ %s, %s", addr, v(dst))
					if h == 0 {
						g.i("VPSLLD $16, %s, %s", v(dst), v(dst))
					} else {
						g.i("VPANDD %s, %s, %s", v(rg.hi), v(dst), v(dst))
					}
					g.i("VPERMPS %s, %s, %s", v(dst), v(rg.aux), v(dst))
				}
			}
		}
		for t := range T {
			xo, dxo, lo, eo := 64*h, 128+64*h, 256+64*h, 384+64*h
			for r := range is.R {
				acc, tmp := v(r*T+t), v(rg.tmp)
				g.i("VMOVDQU32 %s, %s", actAddr(lo, t), tmp)
				g.i("VPDPBUSD %s, %s, %s", actAddr(xo, t), v(rg.w[r]), tmp)
				g.i("VCVTDQ2PS %s, %s", tmp, tmp)
				g.i("VMULPS %s, %s, %s", actAddr(dxo, t), v(rg.sv[r]), v(rg.s))
				g.i("VFMADD231PS %s, %s, %s", v(rg.s), tmp, acc)
				if k.mins {
					g.i("VFMADD231PS %s, %s, %s", actAddr(eo, t), v(rg.mv[r]), acc)
				}
			}
		}
	}
}

// q4Window returns, for the one-token AVX-512 int4 body, the steps (of 128
// inputs) that one window of 16 scales covers, and log2 of the groups per
// step.
func q4Window(k kind) (steps, shift int) {
	switch k.group {
	case 32:
		return 4, 2
	case 64:
		return 8, 1
	}
	return 16, 0
}

// Registers of the one-token AVX-512 int4 body.
const (
	t1Acc  = 0  // 0..3: acc[r]
	t1T    = 4  // 4..7: row r's high nibbles (groups ≥ 64)
	t1Sw   = 8  // 8..11: row r's window of 16 scales
	t1Mw   = 12 // 12..15: and of 16 mins
	t1W    = 16 // 16..19: weights
	t1Sv   = 20 // 20..23: the step's scale vector
	t1Mv   = 24 // 24..27: the step's min vector
	t1Tmp  = 28
	t1S    = 29
	t1Idx  = 30
	t1Cnst = 31 // 0x0F bytes
)

// bodyQ4ZT1 emits the decode (one token) body of the AVX-512 int4
// kernels. It converts each row's scales (and mins) 16 at a time, once per
// window of q4Window steps, and picks each step's lanes with VPERMPS and a
// precomputed index table (a.idx); with groups of 64 or more both halves
// of a step share their scales and activation scales, so their integer
// sums are added before one conversion. Same sums as the generic body,
// fewer instructions.
func (g *gen) bodyQ4ZT1(k kind, name string) {
	is := isas[0]
	lab := name + "_t1"
	W, sh := q4Window(k)
	stride := 64 // idx table bytes per step
	if k.group == 32 {
		stride = 128 // a lo and a hi index per step
	}
	z := func(n int) string { return fmt.Sprintf("Z%d", n) }
	g.label(lab)
	for r := range is.R {
		g.i("VPXORD %s, %s, %s", z(t1Acc+r), z(t1Acc+r), z(t1Acc+r))
	}
	g.i("MOVQ %d(DI), CX", argN)
	g.i("MOVQ %d(DI), R13", argIdx)
	g.label(lab + "_window")
	g.i("TESTQ CX, CX")
	g.i("JEQ %s_reduce", lab)
	g.c("K2 = the window's groups: min(16, steps left × groups per step)")
	g.i("MOVQ CX, AX")
	if sh > 0 {
		g.i("SHLQ $%d, AX", sh)
	}
	g.i("MOVL $16, DI")
	g.i("CMPQ AX, DI")
	g.i("CMOVQGT DI, AX")
	g.i("MOVL $1, DI")
	g.i("SHLXQ AX, DI, DI")
	g.i("DECQ DI")
	g.i("KMOVW DI, K2")
	for r := range is.R {
		for _, m := range []bool{false, true} {
			if m && !k.mins {
				continue
			}
			addr, dst := scAddr(0, r), t1Sw+r
			if m {
				addr, dst = mnAddr(0, r), t1Mw+r
			}
			if k.bf16 {
				g.i("VPMOVZXWD.Z %s, K2, %s", addr, z(dst))
				g.i("VPSLLD $16, %s, %s", z(dst), z(dst))
			} else {
				g.i("VMOVDQU16.Z %s, K2, Y%d", addr, dst)
				g.i("VCVTPH2PS Y%d, %s", dst, z(dst))
			}
		}
	}
	g.c("AX runs over the window's index table entries, DI is their end")
	g.i("MOVQ CX, AX")
	g.i("MOVL $%d, DI", W)
	g.i("CMPQ AX, DI")
	g.i("CMOVQGT DI, AX")
	g.i("SUBQ AX, CX")
	g.i("IMULQ $%d, AX", stride)
	g.i("LEAQ (R13)(AX*1), DI")
	g.i("MOVQ R13, AX")
	g.label(lab + "_step")
	if prefetch > 0 {
		for r := range is.R {
			g.i("PREFETCHT0 %s", wAddr(prefetch, r))
		}
	}
	pick := func(idxOff int) {
		g.i("VMOVDQU32 %d(AX), %s", idxOff, z(t1Idx))
		for r := range is.R {
			g.i("VPERMPS %s, %s, %s", z(t1Sw+r), z(t1Idx), z(t1Sv+r))
			if k.mins {
				g.i("VPERMPS %s, %s, %s", z(t1Mw+r), z(t1Idx), z(t1Mv+r))
			}
		}
	}
	pick(0)
	if k.group >= 64 {
		// Both halves share the scales and (blocks of 64) the activation
		// scales, and the record holds the pair's L and ef in the low
		// half's lanes: one integer sum per lane, one conversion.
		for r := range is.R {
			lo, hi, tmp := z(t1W+r), z(t1T+r), z(t1Tmp)
			g.i("VPANDD %s, %s, %s", wAddr(0, r), z(t1Cnst), lo)
			g.i("VPSRLW $4, %s, %s", wAddr(0, r), hi)
			g.i("VPANDD %s, %s, %s", z(t1Cnst), hi, hi)
			g.i("VMOVDQU32 256(R10), %s", tmp)
			g.i("VPDPBUSD 0(R10), %s, %s", lo, tmp)
			g.i("VPDPBUSD 64(R10), %s, %s", hi, tmp)
			g.i("VCVTDQ2PS %s, %s", tmp, tmp)
			g.i("VMULPS 128(R10), %s, %s", tmp, tmp)
			g.i("VFMADD231PS %s, %s, %s", tmp, z(t1Sv+r), z(t1Acc+r))
			if k.mins {
				g.i("VFMADD231PS 384(R10), %s, %s", z(t1Mv+r), z(t1Acc+r))
			}
		}
	} else {
		for h := range 2 {
			if h == 1 {
				pick(64)
			}
			xo, dxo, lo, eo := 64*h, 128+64*h, 256+64*h, 384+64*h
			for r := range is.R {
				w := z(t1W + r)
				if h == 0 {
					g.i("VPANDD %s, %s, %s", wAddr(0, r), z(t1Cnst), w)
				} else {
					g.i("VPSRLW $4, %s, %s", wAddr(0, r), w)
					g.i("VPANDD %s, %s, %s", z(t1Cnst), w, w)
				}
				tmp := z(t1Tmp)
				g.i("VMOVDQU32 %d(R10), %s", lo, tmp)
				g.i("VPDPBUSD %d(R10), %s, %s", xo, w, tmp)
				g.i("VCVTDQ2PS %s, %s", tmp, tmp)
				g.i("VMULPS %d(R10), %s, %s", dxo, z(t1Sv+r), z(t1S))
				g.i("VFMADD231PS %s, %s, %s", z(t1S), tmp, z(t1Acc+r))
				if k.mins {
					g.i("VFMADD231PS %d(R10), %s, %s", eo, z(t1Mv+r), z(t1Acc+r))
				}
			}
		}
	}
	g.i("ADDQ $64, SI")
	g.i("ADDQ $512, R10")
	g.i("ADDQ $%d, AX", stride)
	g.i("CMPQ AX, DI")
	g.i("JNE %s_step", lab)
	g.i("ADDQ $32, R8")
	if k.mins {
		g.i("ADDQ $32, R12")
	}
	g.i("JMP %s_window", lab)
	g.label(lab + "_reduce")
	g.i("MOVQ a+0(FP), DI")
	g.reduce(is, k, 1)
	g.i("VZEROUPPER")
	g.i("RET")
}

// reduce sums each accumulator's lanes and stores dst[t][0..R), scaled by
// the per-row scales for the Row layout.
func (g *gen) reduce(is isa, k kind, T int) {
	g.c("horizontal sums: the R rows of token t land in lanes 0..R−1 of X(t), stored together")
	g.i("MOVQ %d(DI), SI", argDst)
	g.i("MOVQ %d(DI), BX", argLdd)
	for n := range is.R * T {
		if is.zmm { // scratch Z28, free after the loop
			g.i("VEXTRACTF64X4 $1, Z%d, Y%d", n, vTmp)
			g.i("VADDPS Y%d, Y%d, Y%d", vTmp, n, n)
			g.i("VEXTRACTF32X4 $1, Y%d, X%d", n, vTmp)
			g.i("VADDPS X%d, X%d, X%d", vTmp, n, n)
		} else { // scratch X15, the constant, no longer needed
			g.i("VEXTRACTF128 $1, Y%d, X15", n)
			g.i("VADDPS X15, X%d, X%d", n, n)
		}
	}
	for t := range T {
		a := func(r int) int { return r*T + t } // acc[r][t]
		if is.R == 4 {
			g.i("VHADDPS X%d, X%d, X%d", a(1), a(0), a(0))
			g.i("VHADDPS X%d, X%d, X%d", a(3), a(2), a(2))
			g.i("VHADDPS X%d, X%d, X%d", a(2), a(0), a(0))
			if k.row {
				g.i("VMULPS (R8), X%d, X%d", a(0), a(0))
			}
			g.i("VMOVUPS X%d, (SI)", a(0))
		} else {
			g.i("VHADDPS X%d, X%d, X%d", a(1), a(0), a(0))
			g.i("VHADDPS X%d, X%d, X%d", a(0), a(0), a(0))
			if k.row {
				g.i("VMOVQ (R8), X15")
				g.i("VMULPS X15, X%d, X%d", a(0), a(0))
			}
			g.i("VMOVQ X%d, (SI)", a(0))
		}
		if t+1 < T {
			g.i("ADDQ BX, SI")
		}
	}
}

// actQuant emits an activation quantizer (the name says which): units
// whole record units of U inputs, each block of 32 as quantizeActBlock
// does, bit for bit: amax as the largest |x| bit pattern (NaN and Inf
// propagate), d = amax/127, xq = RNE(x·(127/amax)) by VCVTPS2DQ, lane sums
// by VPDPBUSD (or VPMADDUBSW + VPMADDWD) against ones, L = −o·sum,
// ef = d·sum. pos maps a block of the unit to its record position; with
// pair, blocks (2i, 2i+1) share one amax (blocks of 64 inputs), and with
// combine the pair's L and ef sums go to the first block's lanes and zeros
// to the second's (the AVX-512 int4 order puts their lanes face to face).
func (g *gen) actQuant(name string, zmm bool, U, nb int, pos func(h int) int, pair, combine bool) {
	fmt.Fprintf(&g.b, "\n// func %s(rec *byte, x *float32, n int, negO int32)\n//\n", name)
	fmt.Fprintf(&g.b, "// Quantizes n×%d activations into record units of %d inputs (quantizeActBlock).\n", 32*nb, U)
	fmt.Fprintf(&g.b, "TEXT ·%s(SB), NOSPLIT, $0-28\n", name)
	g.i("MOVQ rec+0(FP), DI")
	g.i("MOVQ x+8(FP), SI")
	g.i("MOVQ n+16(FP), CX")
	g.i("MOVL negO+24(FP), AX")
	g.i("VMOVD AX, X15")
	g.i("VPBROADCASTD X15, Y15") // −o
	g.i("MOVL $0x7fffffff, AX")
	g.i("VMOVD AX, X14")
	g.i("VPBROADCASTD X14, Y14") // abs mask
	g.i("MOVL $0x42fe0000, AX")  // 127.0
	g.i("VMOVD AX, X13")
	g.i("VPBROADCASTD X13, Y13")
	g.i("MOVL $0x01010101, AX")
	g.i("VMOVD AX, X12")
	g.i("VPBROADCASTD X12, Y12") // u8 ones
	g.i("MOVL $0x00010001, AX")
	g.i("VMOVD AX, X11")
	g.i("VPBROADCASTD X11, Y11") // i16 ones
	if zmm {
		g.i("VINSERTI64X4 $1, Y14, Z14, Z14")
	} else {
		g.c("VPERMD order that undoes VPACKSSDW/VPACKSSWB's lane interleave")
		g.i("MOVQ $0x0000000400000000, AX")
		g.i("VMOVQ AX, X10")
		g.i("MOVQ $0x0000000500000001, AX")
		g.i("VPINSRQ $1, AX, X10, X10")
		g.i("MOVQ $0x0000000600000002, AX")
		g.i("VMOVQ AX, X9")
		g.i("MOVQ $0x0000000700000003, AX")
		g.i("VPINSRQ $1, AX, X9, X9")
		g.i("VINSERTI128 $1, X9, Y10, Y10")
		g.c("0x80000000, VCVTPS2DQ's answer for NaN, is made 0 as VPMOVDB's truncation gives")
		g.i("MOVL $0x80000000, AX")
		g.i("VMOVD AX, X9")
		g.i("VPBROADCASTD X9, Y9")
	}
	g.i("TESTQ CX, CX")
	g.i("JEQ %s_done", name)
	g.label(name + "_loop")
	ab := 1
	if pair {
		ab = 2
	}
	for h0 := 0; h0 < nb; h0 += ab {
		g.c("blocks %d..%d of the unit: amax of their |x| bit patterns into every lane of Y3", h0, h0+ab-1)
		if zmm {
			for h := h0; h < h0+ab; h++ {
				for v := range 2 {
					if h == h0 && v == 0 {
						g.i("VPANDD %d(SI), Z14, Z3", 128*h)
						continue
					}
					g.i("VPANDD %d(SI), Z14, Z4", 128*h+64*v)
					g.i("VPMAXUD Z4, Z3, Z3")
				}
			}
			g.i("VEXTRACTI64X4 $1, Z3, Y4")
			g.i("VPMAXUD Y4, Y3, Y3")
		} else {
			for h := h0; h < h0+ab; h++ {
				for v := range 4 {
					if h == h0 && v == 0 {
						g.i("VPAND %d(SI), Y14, Y3", 128*h)
						continue
					}
					g.i("VPAND %d(SI), Y14, Y4", 128*h+32*v)
					g.i("VPMAXUD Y4, Y3, Y3")
				}
			}
		}
		g.i("VEXTRACTI128 $1, Y3, X4")
		g.i("VPMAXUD X4, X3, X3")
		g.i("VPSHUFD $0x4e, X3, X4")
		g.i("VPMAXUD X4, X3, X3")
		g.i("VPSHUFD $0xb1, X3, X4")
		g.i("VPMAXUD X4, X3, X3")
		g.i("VPBROADCASTD X3, Y3")
		g.i("VDIVPS Y13, Y3, Y5") // d = amax/127
		g.i("VDIVPS Y3, Y13, Y6") // id = 127/amax
		if zmm {
			g.i("VINSERTF64X4 $1, Y6, Z6, Z6")
		}
		// off returns block h's byte offsets in the xq, dx, L and ef arrays.
		off := func(h int) (int, int, int, int) {
			base := 4 * U * (h / (U / 32))
			p := 32 * pos(h%(U/32))
			return base + p, base + U + p, base + 2*U + p, base + 3*U + p
		}
		for h := h0; h < h0+ab; h++ {
			qo, dxo, lo, eo := off(h)
			g.c("block %d", h)
			if zmm {
				g.i("VMULPS %d(SI), Z6, Z0", 128*h)
				g.i("VMULPS %d(SI), Z6, Z1", 128*h+64)
				g.i("VCVTPS2DQ Z0, Z0")
				g.i("VCVTPS2DQ Z1, Z1")
				g.i("VPMOVDB Z0, X0")
				g.i("VPMOVDB Z1, X1")
				g.i("VINSERTI128 $1, X1, Y0, Y0")
				g.i("VPXOR Y1, Y1, Y1")
				g.i("VPDPBUSD Y0, Y12, Y1") // lane sums: u8 ones × s8 q
			} else {
				for i := range 4 {
					g.i("VMULPS %d(SI), Y6, Y%d", 128*h+32*i, i)
					g.i("VCVTPS2DQ Y%d, Y%d", i, i)
					g.i("VPCMPEQD Y9, Y%d, Y8", i)
					g.i("VPANDN Y%d, Y8, Y%d", i, i)
				}
				g.i("VPACKSSDW Y1, Y0, Y0")
				g.i("VPACKSSDW Y3, Y2, Y2")
				g.i("VPACKSSWB Y2, Y0, Y0")
				g.i("VPERMD Y0, Y10, Y0")
				g.i("VPMADDUBSW Y0, Y12, Y1")
				g.i("VPMADDWD Y11, Y1, Y1")
			}
			g.i("VMOVDQU Y0, %d(DI)", qo)
			g.i("VMOVUPS Y5, %d(DI)", dxo)
			if combine && h == h0 {
				g.i("VMOVDQA Y1, Y7") // the pair's first sums, completed by the second block
				continue
			}
			if combine {
				g.i("VPXOR Y2, Y2, Y2")
				g.i("VMOVDQU Y2, %d(DI)", lo)
				g.i("VMOVUPS Y2, %d(DI)", eo)
				g.i("VPADDD Y7, Y1, Y1")
				_, _, lo, eo = off(h0)
			}
			g.i("VPMULLD Y15, Y1, Y2")
			g.i("VMOVDQU Y2, %d(DI)", lo)
			g.i("VCVTDQ2PS Y1, Y1")
			g.i("VMULPS Y5, Y1, Y1")
			g.i("VMOVUPS Y1, %d(DI)", eo)
		}
	}
	g.i("ADDQ $%d, SI", 128*nb)
	g.i("ADDQ $%d, DI", 128*nb)
	g.i("DECQ CX")
	g.i("JNZ %s_loop", name)
	g.label(name + "_done")
	g.i("VZEROUPPER")
	g.i("RET")
}

func main() {
	var g gen
	g.b.WriteString("// Code generated by kernels/_gen/q8 (go run ./q8 in kernels/_gen). DO NOT EDIT.\n\n//go:build !purego\n\n#include \"textflag.h\"\n")
	var decl strings.Builder
	decl.WriteString("// Code generated by kernels/_gen/q8 (go run ./q8 in kernels/_gen). DO NOT EDIT.\n\n//go:build !purego\n\npackage kernels\n\n")
	decl.WriteString("// Quantized matmul kernels in q8_amd64.s; each computes R rows × a.T\n// tokens of one weight layout (q8DotGeneric is the reference).\n")
	ident := func(h int) int { return h }
	perm := func(h int) int { return []int{0, 2, 1, 3}[h] }
	acts := []struct {
		name          string
		zmm           bool
		U, nb         int // record unit, blocks per loop step
		pos           func(int) int
		pair, combine bool
	}{
		{"q8ActAVX512", true, 64, 2, ident, false, false},
		{"q8ActAVX512Q4", true, 128, 4, perm, false, false},
		{"q8ActAVX512Q4P", true, 128, 4, perm, true, true},
		{"q8ActAVX2", false, 32, 1, ident, false, false},
		{"q8ActAVX2P", false, 32, 2, ident, true, false},
	}
	for _, a := range acts {
		g.actQuant(a.name, a.zmm, a.U, a.nb, a.pos, a.pair, a.combine)
		fmt.Fprintf(&decl, "\n//go:noescape\nfunc %s(rec *byte, x *float32, n int, negO int32)\n", a.name)
	}
	for _, is := range isas {
		for _, k := range kinds() {
			g.kernel(is, k)
			fmt.Fprintf(&decl, "\n//go:noescape\nfunc %s(a *q8Args)\n", fname(is, k))
		}
	}
	decl.WriteString("\n// q8Kernels lists the kernels per path and layout: q8Call's id, rows per\n// call, most tokens per call and inputs per loop step.\nvar q8Kernels = map[q8Path]map[string]q8Kernel{\n")
	id := 0
	var call strings.Builder
	call.WriteString("\n// q8Call runs kernel id (a direct call, so a does not escape).\nfunc q8Call(id int, a *q8Args) {\n\tswitch id {\n")
	for _, is := range isas {
		fmt.Fprintf(&decl, "\tq8Path%s: {\n", is.name)
		for _, k := range kinds() {
			id++
			fmt.Fprintf(&decl, "\t\t%q: {%d, %d, %d, %d},\n", k.name, id, is.R, maxT(is, k), stepUnits(is, k)*is.unit())
			fmt.Fprintf(&call, "\tcase %d:\n\t\t%s(a)\n", id, fname(is, k))
		}
		decl.WriteString("\t},\n")
	}
	decl.WriteString("}\n")
	call.WriteString("\t}\n}\n")
	decl.WriteString(call.String())
	src, err := format.Source([]byte(decl.String()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for path, text := range map[string]string{"../q8_amd64.s": g.b.String(), "../q8kern_amd64.go": string(src), "../kquant_amd64.s": kquantAsm(), "../block32_amd64.s": block32Asm(), "../ggmlkern_amd64.go": string(ggmlGo())} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
