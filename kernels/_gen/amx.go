package main

import "fmt"

// AMX kernels (Intel Advanced Matrix Extensions, AMX-BF16): the Go
// assembler knows none of the tile instructions, so they are emitted as
// VEX-encoded bytes. Tiles are configured by a 64-byte block (palette 1):
// tmm0–3 hold a 32×32 fp32 tile of C (four 16×16 quarters), tmm4–5 two
// 16-row slices of A (16 tokens × 32 bf16 inputs each), tmm6–7 the two
// 16-column halves of a B chunk (16 input pairs × 16 outputs × 2 bf16, the
// pair-interleaved layout TDPBF16PS reads), cut from a panel packed as the
// bf16-dot GEMM packs it: [kc/2][32] pairs, 128 bytes per pair row.

// amxMem emits a tile load or store: op 0x4B, pp 3 (F2: TILELOADD) or 2
// (F3: TILESTORED), tile tmm, address (base)(index*1).
func (f *file) amxMem(mnemonic string, pp byte, tmm, base, index int) {
	if base&7 == 5 || index == 4 {
		panic("amx: base must not be BP/R13, index must not be SP")
	}
	b1 := byte(0x02) // map 0F38
	b1 |= 0x80       // R̄: tmm0–7
	if index&8 == 0 {
		b1 |= 0x40
	}
	if base&8 == 0 {
		b1 |= 0x20
	}
	b2 := 0x78 | pp // W0, vvvv = 1111, L0
	modrm := byte(tmm&7)<<3 | 0x04
	sib := byte(index&7)<<3 | byte(base&7)
	f.i("BYTE $0xC4; BYTE $0x%02x; BYTE $0x%02x; BYTE $0x4B; BYTE $0x%02x; BYTE $0x%02x // %s", b1, b2, modrm, sib, mnemonic)
}

// gpr are the Go assembler's names of the general registers by number.
var gpr = []string{"AX", "CX", "DX", "BX", "SP", "BP", "SI", "DI", "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"}

func reg(name string) int {
	for i, n := range gpr {
		if n == name {
			return i
		}
	}
	panic("amx: unknown register " + name)
}

func (f *file) tileload(tmm int, base, index string) {
	f.amxMem(fmt.Sprintf("TILELOADD TMM%d, (%s)(%s*1)", tmm, base, index), 3, tmm, reg(base), reg(index))
}

func (f *file) tilestore(tmm int, base, index string) {
	f.amxMem(fmt.Sprintf("TILESTORED (%s)(%s*1), TMM%d", base, index, tmm), 2, tmm, reg(base), reg(index))
}

// tdpbf16ps emits TDPBF16PS dst, a, b: dst[m][n] += Σ_k a[m][k]·b[k][n]
// over bf16 pairs, accumulated in fp32.
func (f *file) tdpbf16ps(dst, a, b int) {
	b2 := byte((^b&15)<<3) | 0x02 // W0, vvvv = b̄, L0, pp F3
	f.i("BYTE $0xC4; BYTE $0xE2; BYTE $0x%02x; BYTE $0x5C; BYTE $0x%02x // TDPBF16PS TMM%d, TMM%d, TMM%d", b2, 0xC0|byte(dst)<<3|byte(a), dst, a, b)
}

func (f *file) tilezero(tmm int) {
	f.i("BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x49; BYTE $0x%02x // TILEZERO TMM%d", 0xC0|byte(tmm)<<3, tmm)
}

// genAMX emits the AMX kernels and the activation packers.
func genAMX(f *file) {
	genAMXKernel(f, "amxKernBF16x3", 3)
	genAMXKernel(f, "amxKernBF16", 1)
	genSplit(f)
	genRoundPacked(f)
	genAMXPeak(f)
}

// genAMXPeak emits amxPeakLoop, the AMX-BF16 throughput probe: n
// iterations of 4 independent TDPBF16PS on 16×16 fp32 tiles (the kernels'
// shape), 4·16·16·32·2 flops each.
func genAMXPeak(f *file) {
	const name = "amxPeakLoop"
	f.text(name, "$0-16",
		"func "+name+"(n int, cfg unsafe.Pointer)",
		"",
		"n iterations of TDPBF16PS into tiles 0–3 from tiles 4–7 (all zero).")
	f.i("MOVQ cfg+8(FP), AX")
	f.i("BYTE $0xC4; BYTE $0xE2; BYTE $0x78; BYTE $0x49; BYTE $0x00 // LDTILECFG (AX)")
	for t := 0; t < 8; t++ {
		f.tilezero(t)
	}
	f.i("MOVQ n+0(FP), CX")
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_done", name)
	f.label(name + "_loop")
	f.tdpbf16ps(0, 4, 6)
	f.tdpbf16ps(1, 4, 7)
	f.tdpbf16ps(2, 5, 6)
	f.tdpbf16ps(3, 5, 7)
	f.i("DECQ CX")
	f.i("JNZ %s_loop", name)
	f.label(name + "_done")
	f.i("BYTE $0xC4; BYTE $0xE2; BYTE $0x78; BYTE $0x49; BYTE $0xC0 // TILERELEASE")
	f.i("RET")
}

// genAMXKernel emits the kernel that sums the products of terms activation
// terms (3: the exact split, 1: activations rounded to bf16).
func genAMXKernel(f *file, name string, terms int) {
	f.text(name, "$0-80",
		"func "+name+"(np, kch int, a unsafe.Pointer, ldp, sp int, b, c unsafe.Pointer, ldc, acc int, cfg unsafe.Pointer)",
		"",
		fmt.Sprintf("For np panels of 32 rows (tokens) each: C[32×32] (+)= Σ_{s<%d} A_s · B over kch chunks of 32", terms),
		"inputs, where A_s = a + s·sp holds term s of the activations (bf16), packed per",
		"chunk as 32 rows × 64 bytes (chunk c at +2048c, panel p at +p·ldp), and B is a panel of 32",
		"outputs packed as [32·kch/2][32]",
		"bf16 pairs (packBGather's wBF16Dot layout). C rows are ldc bytes apart, panel p at",
		"c + 32p·ldc; acc = 0 starts from zero, else adds to C. cfg is the 64-byte tile configuration",
		"(amxConfig). Products and sums are fp32, inputs and outputs below 2⁻¹²⁶ flushed to zero.")
	f.i("MOVQ cfg+72(FP), AX")
	f.i("BYTE $0xC4; BYTE $0xE2; BYTE $0x78; BYTE $0x49; BYTE $0x00 // LDTILECFG (AX)")
	f.i("MOVQ kch+8(FP), R12")
	f.i("MOVQ a+16(FP), R10")
	f.i("MOVQ $64, DX // bytes per row of an A chunk")
	f.i("MOVQ sp+32(FP), R8")
	f.i("MOVQ b+40(FP), R14")
	f.i("MOVQ c+48(FP), SI")
	f.i("MOVQ ldc+56(FP), DI")
	f.i("MOVQ $1024, R13 // 16 rows of an A chunk")
	f.i("MOVQ $128, R9 // bytes per pair row of the B panel")
	f.label(name + "_panel")
	f.i("CMPQ acc+64(FP), $0")
	f.i("JNE %s_load", name)
	for t := 0; t < 4; t++ {
		f.tilezero(t)
	}
	f.i("JMP %s_k", name)
	f.label(name + "_load")
	cQuarters(f, func(t int, base string) { f.tileload(t, base, "DI") })
	f.label(name + "_k")
	f.i("MOVQ R10, AX")
	f.i("MOVQ R14, BX")
	f.i("MOVQ R12, CX")
	f.c("software pipeline: the tiles of chunk 0 now; each later load is issued as soon as")
	f.c("the tile it replaces has been read, so that it overlaps the products still queued")
	f.tileload(6, "BX", "R9")
	f.i("LEAQ 64(BX), R11")
	f.tileload(7, "R11", "R9")
	f.tileload(4, "AX", "DX")
	f.i("LEAQ (AX)(R13*1), R11")
	f.tileload(5, "R11", "DX")
	f.i("DECQ CX")
	f.i("JEQ %s_last", name)
	f.label(name + "_chunk")
	amxChunkOps(f, terms, true)
	f.i("DECQ CX")
	f.i("JNZ %s_chunk", name)
	f.label(name + "_last")
	amxChunkOps(f, terms, false)
	cQuarters(f, func(t int, base string) { f.tilestore(t, base, "DI") })
	f.c("next panel: 32 rows of A and C on")
	f.i("ADDQ ldp+24(FP), R10")
	f.i("MOVQ DI, R11")
	f.i("SHLQ $5, R11")
	f.i("ADDQ R11, SI")
	f.i("DECQ np+0(FP)")
	f.i("JNZ %s_panel", name)
	f.i("BYTE $0xC4; BYTE $0xE2; BYTE $0x78; BYTE $0x49; BYTE $0xC0 // TILERELEASE")
	f.i("RET")

}

// genSplit emits splitBF16x3AVX512.
func genSplit(f *file) {
	f.text("splitBF16x3AVX512", "$0-40",
		"func splitBF16x3AVX512(dst unsafe.Pointer, sp int, x *float32, n, ds int)",
		"",
		"For each of n chunks of 32 inputs x[32c:32c+32]: x[i] = hi + mid + lo exactly, each term a bf16",
		"(the top 8 significant bits of what is left, truncated), stored as 32 bf16 at dst + c·ds (hi),",
		"+ sp (mid) and + 2·sp (lo). The loop of splitBF16x3Generic.")
	f.i("MOVQ dst+0(FP), DI")
	f.i("MOVQ sp+8(FP), R8")
	f.i("MOVQ x+16(FP), SI")
	f.i("MOVQ n+24(FP), CX")
	f.i("MOVQ ds+32(FP), R9")
	f.i("MOVL $0xffff0000, AX")
	f.i("VPBROADCASTD AX, Z31")
	f.i("TESTQ CX, CX")
	f.i("JEQ splitBF16x3AVX512_done")
	f.label("splitBF16x3AVX512_loop")
	for h := 0; h < 2; h++ {
		f.i("VMOVUPS %d(SI), Z0", 64*h)
		f.i("VPANDD Z31, Z0, Z1")
		f.i("VSUBPS Z1, Z0, Z2")
		f.i("VPANDD Z31, Z2, Z3")
		f.i("VSUBPS Z3, Z2, Z4")
		f.i("VPANDD Z31, Z4, Z4")
		f.i("VPSRLD $16, Z1, Z1")
		f.i("VPSRLD $16, Z3, Z3")
		f.i("VPSRLD $16, Z4, Z4")
		off := ""
		if h > 0 {
			off = "32"
		}
		f.i("VPMOVDW Z1, %s(DI)", off)
		f.i("VPMOVDW Z3, %s(DI)(R8*1)", off)
		f.i("VPMOVDW Z4, %s(DI)(R8*2)", off)
	}
	f.i("ADDQ $128, SI")
	f.i("ADDQ R9, DI")
	f.i("DECQ CX")
	f.i("JNZ splitBF16x3AVX512_loop")
	f.label("splitBF16x3AVX512_done")
	f.i("VZEROUPPER")
	f.i("RET")
}

// genRoundPacked emits roundBF16PackedAVX512, the one-term packer of the
// lossy bf16-dot path.
func genRoundPacked(f *file) {
	const name = "roundBF16PackedAVX512"
	f.text(name, "$0-32",
		"func "+name+"(dst unsafe.Pointer, x *float32, n, ds int)",
		"",
		"For each of n chunks of 32 inputs x[32c:32c+32]: the 32 values rounded to bf16 (to nearest,",
		"ties to even, as RoundBF16 rounds finite values) at dst + c·ds.")
	f.i("MOVQ dst+0(FP), DI")
	f.i("MOVQ x+8(FP), SI")
	f.i("MOVQ n+16(FP), CX")
	f.i("MOVQ ds+24(FP), R9")
	f.i("MOVL $0x7fff, AX")
	f.i("VPBROADCASTD AX, Z30")
	f.i("MOVL $1, AX")
	f.i("VPBROADCASTD AX, Z31")
	f.i("TESTQ CX, CX")
	f.i("JEQ %s_done", name)
	f.label(name + "_loop")
	for h := 0; h < 2; h++ {
		f.i("VMOVUPS %d(SI), Z0", 64*h)
		f.i("VPSRLD $16, Z0, Z1")
		f.i("VPANDD Z31, Z1, Z1")
		f.i("VPADDD Z30, Z1, Z1")
		f.i("VPADDD Z1, Z0, Z0")
		f.i("VPSRLD $16, Z0, Z0")
		off := ""
		if h > 0 {
			off = "32"
		}
		f.i("VPMOVDW Z0, %s(DI)", off)
	}
	f.i("ADDQ $128, SI")
	f.i("ADDQ R9, DI")
	f.i("DECQ CX")
	f.i("JNZ %s_loop", name)
	f.label(name + "_done")
	f.i("VZEROUPPER")
	f.i("RET")
}

// cQuarters calls op for the four 16×16 quarters of the C tile: tile t at
// SI (t = 0), SI+64 (1), SI+16·ldc (2), SI+16·ldc+64 (3), with R11 as the
// address register where needed.
func cQuarters(f *file, op func(t int, base string)) {
	op(0, "SI")
	f.i("LEAQ 64(SI), R11")
	op(1, "R11")
	f.i("MOVQ DI, R11")
	f.i("SHLQ $4, R11")
	f.i("ADDQ SI, R11")
	op(2, "R11")
	f.i("ADDQ $64, R11")
	op(3, "R11")
}

// amxChunkOps emits the products of one chunk of 32 inputs, with the tile
// loads of the next term (and, when next is set, of the next chunk: AX and
// BX then move on by one chunk) placed right after the products that last
// read the tile they overwrite. Term s of the activations is at AX + s·R8,
// its second 16 rows 1024 bytes on (R13); B's halves at BX and BX+64.
func amxChunkOps(f *file, terms int, next bool) {
	loadA := func(tile, s int) { // rows 16·(tile−4) on of term s, from AX
		base := "AX"
		switch {
		case s == 0 && tile == 4:
		case s == 0:
			f.i("LEAQ (AX)(R13*1), R11")
			base = "R11"
		default:
			f.i("LEAQ (AX)(R8*%d), R11", s)
			if tile == 5 {
				f.i("ADDQ R13, R11")
			}
			base = "R11"
		}
		f.tileload(tile, base, "DX")
	}
	for s := 0; s < terms; s++ {
		last := s == terms-1
		f.c("term %d", s)
		f.tdpbf16ps(0, 4, 6)
		f.tdpbf16ps(1, 4, 7)
		switch {
		case !last:
			loadA(4, s+1)
		case next:
			f.i("ADDQ $2048, AX")
			f.i("ADDQ $2048, BX")
			loadA(4, 0)
		}
		f.tdpbf16ps(2, 5, 6)
		if last && next {
			f.tileload(6, "BX", "R9")
		}
		f.tdpbf16ps(3, 5, 7)
		switch {
		case !last:
			loadA(5, s+1)
		case next:
			f.i("LEAQ 64(BX), R11")
			f.tileload(7, "R11", "R9")
			loadA(5, 0)
		}
	}
}
