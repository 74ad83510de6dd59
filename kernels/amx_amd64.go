//go:build !purego

package kernels

import (
	"math"
	"sync"
	"unsafe"

	"github.com/lightninglm/lightning/internal/cpu"
)

// MatMulBF16 on AMX (issue 17): the exact bf16 product at tile speed. Each
// fp32 activation is cut into three bf16 terms whose sum is exactly the
// activation (splitBF16x3AVX512), so that every product of a bf16 weight
// with a term is exact in fp32, as in the FMA path; TDPBF16PS accumulates
// them in fp32. The sum runs over 3·in exact products instead of in, in
// another order: the result differs from the FMA GEMM's by float32
// rounding, within the same bound (numtest.DotTol of 3·in terms).
// Activations below 2⁻¹²⁶ and their terms are flushed to zero by the tiles.

var useAMX bool // MatMulBF16's GEMM path on AMX tiles

func init() {
	cpu.Register("matmul.amx", "amxbf16", &useAMX, cpu.X86.AMXBF16 && cpu.X86.AVX512F && cpu.X86.AVX512BW)
	if cpu.X86.AMXBF16 {
		amxChunk = func() float64 {
			const n = 1 << 12
			amxPeakLoop(n, unsafe.Pointer(&amxConfig[0]))
			return n * 4 * 16 * 16 * 32 * 2
		}
	}
}

//go:noescape
func amxKernBF16x3(np, kch int, a unsafe.Pointer, ldp, sp int, b, c unsafe.Pointer, ldc, acc int, cfg unsafe.Pointer)

//go:noescape
func amxKernBF16(np, kch int, a unsafe.Pointer, ldp, sp int, b, c unsafe.Pointer, ldc, acc int, cfg unsafe.Pointer)

//go:noescape
func splitBF16x3AVX512(dst unsafe.Pointer, sp int, x *float32, n, ds int)

//go:noescape
func roundBF16PackedAVX512(dst unsafe.Pointer, x *float32, n, ds int)

//go:noescape
func amxPeakLoop(n int, cfg unsafe.Pointer)

// amxConfig is the tile configuration of amxKernBF16x3: palette 1, eight
// tiles of 16 rows × 64 bytes.
var amxConfig = func() (c [64]byte) {
	c[0] = 1
	for t := range 8 {
		c[16+2*t] = 64
		c[48+t] = 16
	}
	return c
}()

// Blocking of the AMX GEMM: a row block of amxMC tokens' three activation
// terms over amxKC inputs (768 KB) stays in L2 while every column panel of
// the thread's share goes by, each packed once per block as [amxKC/2][32]
// bf16 pairs (32 KB, the panel buffer of the bf16-dot GEMM).
const (
	amxMC = 256
	amxKC = 512
)

// splitBF16x3Generic is splitBF16x3AVX512's twin: x[i] = hi[i] + mid[i] +
// lo[i] exactly, each term the top 8 significant bits of what is left.
func splitBF16x3Generic(hi, mid, lo []uint16, x []float32) {
	for i, v := range x {
		b := math.Float32bits(v) &^ 0xffff
		r := v - math.Float32frombits(b)
		c := math.Float32bits(r) &^ 0xffff
		r2 := r - math.Float32frombits(c)
		hi[i], mid[i], lo[i] = uint16(b>>16), uint16(c>>16), uint16(math.Float32bits(r2)>>16)
	}
}

// runAMX splits the activations into their three bf16 terms (terms = 3;
// terms = 1 rounds them to bf16 instead, MatMulBF16Dot's lossy product),
// padded with zero rows to whole 32-token panels, and queues the output
// stage. Each
// term is packed per panel of 32 tokens and chunk of 32 inputs as 32 rows
// of 64 bytes (amxAt), so that a tile load reads 2 KB in a row: rows of
// the activations 2 or 4 KB apart would all fall in the same L1 sets.
func (j *mmJob) runAMX(g *Group, terms int) bool {
	T, K := j.T, j.in
	tp := (T + 31) &^ 31
	j.terms = terms
	j.ah = grow(j.ah, terms*tp*K)
	ParallelFor(T, 1, j.splitRange)
	if T%32 != 0 { // the padding rows of the last panel, in every chunk
		for s := range terms {
			for c := range K / 32 {
				at := s*tp*K + amxAt(T, 32*c, K)
				clear(j.ah[at : at+(32-T%32)*32])
			}
		}
	}
	return g.add(groupItem{n: (j.out + 31) / 32, align: 1, rowWork: T * K * 32, rowBytes: 32 * K * 2, run: j.amxRange, job: j})
}

// splitAct splits the activations of tokens [lo, hi) (runAMX).
func (j *mmJob) splitAct(lo, hi int) {
	K := j.in
	tp := (j.T + 31) &^ 31
	for r := lo; r < hi; r++ {
		if j.terms == 1 {
			roundBF16PackedAVX512(unsafe.Pointer(&j.ah[amxAt(r, 0, K)]), &j.x[r*K], K/32, 2048)
		} else {
			splitBF16x3AVX512(unsafe.Pointer(&j.ah[amxAt(r, 0, K)]), tp*K*2, &j.x[r*K], K/32, 2048)
		}
	}
}

// amxAt is the index in a term of runAMX's packing of token r, input k,
// for in = K: panel r/32, chunk k/32, row r%32, column k%32.
func amxAt(r, k, K int) int { return r/32*32*K + k/32*1024 + r%32*32 + k%32 }

// amxPanels is how many column panels the AMX GEMM packs at a time (for
// one block of amxKC inputs) and keeps for every row block: 16 panels of
// 32 KB, which with a row block of activations (768 KB) stay in the 2 MB
// L2 of a Xeon core. Packing each panel once per row block instead cost
// 10–15% of a 1,024-token product.
const amxPanels = 16

// amxBuf holds the packed column panels of one amx call.
type amxBuf struct {
	b     [amxPanels][amxKC / 2 * 32]float32 // panel [kc/2][32] bf16 pairs
	ctile [32 * 32]float32                   // C tile for edges
	idx   [32]int32
}

var amxBufs = sync.Pool{New: func() any { return new(amxBuf) }}

// amx computes column panels [plo, phi) of dst (32 outputs each).
func (j *mmJob) amx(plo, phi int) {
	buf := amxBufs.Get().(*amxBuf)
	defer amxBufs.Put(buf)
	T, K, out := j.T, j.in, j.out
	tp := (T + 31) &^ 31
	sp := tp * K * 2
	cfg := unsafe.Pointer(&amxConfig[0])
	kern := amxKernBF16x3
	if j.terms == 1 {
		kern = amxKernBF16
	}
	for k0 := 0; k0 < K; k0 += amxKC {
		kc := min(amxKC, K-k0)
		acc := 0
		if k0 > 0 {
			acc = 1
		}
		for jc := plo; jc < phi; jc += amxPanels {
			jcEnd := min(jc+amxPanels, phi)
			for jp := jc; jp < jcEnd; jp++ {
				j0 := jp * 32
				nr := min(32, out-j0)
				gm := uint32(1)<<nr - 1
				if nr == 32 {
					gm = ^uint32(0)
				}
				packPairs(j, &buf.b[jp-jc][0], &buf.idx, j0, nr, k0, kc, gm)
			}
			for ic := 0; ic < tp; ic += amxMC {
				icEnd := min(ic+amxMC, tp)
				fullEnd := max(ic, min(icEnd, T/32*32)) // rows [ic, fullEnd) are whole panels of real tokens
				for jp := jc; jp < jcEnd; jp++ {
					j0 := jp * 32
					nr := min(32, out-j0)
					b := unsafe.Pointer(&buf.b[jp-jc][0])
					i0 := ic
					if nr == 32 && fullEnd > ic {
						kern((fullEnd-ic)/32, kc/32, unsafe.Pointer(&j.ah[amxAt(ic, k0, K)]), 64*K, sp, b, unsafe.Pointer(&j.dst[ic*out+j0]), out*4, acc, cfg)
						i0 = fullEnd
					}
					for ; i0 < icEnd; i0 += 32 { // a panel with padding rows or columns, through buf.ctile
						rows := min(32, T-i0)
						if acc != 0 {
							for r := range rows {
								copy(buf.ctile[r*32:r*32+nr], j.dst[(i0+r)*out+j0:])
							}
						}
						kern(1, kc/32, unsafe.Pointer(&j.ah[amxAt(i0, k0, K)]), 64*K, sp, b, unsafe.Pointer(&buf.ctile[0]), 128, acc, cfg)
						for r := range rows {
							copy(j.dst[(i0+r)*out+j0:(i0+r)*out+j0+nr], buf.ctile[r*32:])
						}
					}
				}
			}
		}
	}
}
