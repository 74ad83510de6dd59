//go:build !purego

package kernels

import (
	"sync"
	"unsafe"

	"github.com/lightninglm/lightning/internal/cpu"
)

var useSgemmAVX512, useSgemmAVX2 bool

func init() {
	cpu.Register("sgemm", "avx512", &useSgemmAVX512,
		cpu.X86.AVX512F && cpu.X86.AVX512BW && cpu.X86.AVX512VL && cpu.X86.AVX512DQ)
	cpu.Register("sgemm", "avx2", &useSgemmAVX2, cpu.X86.AVX2 && cpu.X86.FMA)
}

// sgemmBuf is the packing scratch of one Sgemm call.
type sgemmBuf struct {
	a    [gemmMC * gemmKC]float32 // A block: panels [kc][mr]
	b    [gemmKC * gemmNR]float32 // B panel [kc][nr]
	tile [gemmMR * gemmNR]float32
	idx  [32]int32
}

var sgemmBufs = sync.Pool{New: func() any { return new(sgemmBuf) }}

// sgemm runs the GEMM microkernel of the selected ISA. An operand is read in
// place when its layout already is the kernel's (op(A) columns contiguous,
// i.e. transA; op(B) rows contiguous, i.e. !transB) and the panel is whole;
// otherwise it is packed (gathers on AVX-512, a Go loop on AVX2). Edge tiles
// go through a scratch tile.
func sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	var gi *gemmImpl
	switch {
	case useSgemmAVX512:
		gi = gemmAVX512
	case useSgemmAVX2:
		gi = gemmAVX2
	default:
		sgemmGeneric(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
		return
	}
	checkSgemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	buf := sgemmBufs.Get().(*sgemmBuf)
	defer sgemmBufs.Put(buf)
	MR, NR, gather := gi.mr, gi.nr, gi == gemmAVX512
	pa, pb := unsafe.Pointer(unsafe.SliceData(a)), unsafe.Pointer(unsafe.SliceData(b))
	// op(A)[i][p] = a[i*ais + p*aps]; op(B)[p][j] = b[p*bps + j*bjs]
	ais, aps := lda, 1
	if transA {
		ais, aps = 1, lda
	}
	bps, bjs := ldb, 1
	if transB {
		bps, bjs = 1, ldb
	}
	mp := (m + MR - 1) / MR
	mcp := gemmMC / MR
	for k0 := 0; k0 < k; k0 += gemmKC {
		kc := min(gemmKC, k-k0)
		acc := 0
		if accumulate || k0 > 0 {
			acc = 1
		}
		for ic := 0; ic < mp; ic += mcp {
			icEnd := min(ic+mcp, mp)
			for ip := ic; ip < icEnd; ip++ { // the A panels not read in place
				i0 := ip * MR
				mr := min(MR, m-i0)
				if transA && mr == MR {
					continue
				}
				packStrided(buf, buf.a[(ip-ic)*MR*gemmKC:], a, i0*ais+k0*aps, ais, aps, mr, MR, kc, gather)
			}
			for j0 := 0; j0 < n; j0 += NR {
				nr := min(NR, n-j0)
				bp, bs := unsafe.Add(pb, 4*(k0*bps+j0)), 4*ldb
				if transB || nr < NR {
					packStrided(buf, buf.b[:], b, k0*bps+j0*bjs, bjs, bps, nr, NR, kc, gather)
					bp, bs = unsafe.Pointer(&buf.b[0]), NR*4
				}
				for ip := ic; ip < icEnd; ip++ {
					i0 := ip * MR
					mr := min(MR, m-i0)
					ap, as := unsafe.Pointer(&buf.a[(ip-ic)*MR*gemmKC]), MR*4
					if transA && mr == MR {
						ap, as = unsafe.Add(pa, 4*(k0*lda+i0)), 4*lda
					}
					if mr == MR && nr == NR {
						gi.kern(kc, ap, as, bp, bs, &c[i0*ldc+j0], 4*ldc, acc)
						continue
					}
					gi.kern(kc, ap, as, bp, bs, &buf.tile[0], NR*4, 0)
					for i := range mr {
						row := c[(i0+i)*ldc+j0 : (i0+i)*ldc+j0+nr]
						tile := buf.tile[i*NR : i*NR+nr]
						if acc != 0 {
							for j, v := range tile {
								row[j] += v
							}
						} else {
							copy(row, tile)
						}
					}
				}
			}
		}
	}
}

// packStrided writes the panel dst[p*width + l] = src[base + l*ls + p*ps] for
// p < kc, l < lanes, and 0 for lanes ≤ l < width.
func packStrided(buf *sgemmBuf, dst, src []float32, base, ls, ps, lanes, width, kc int, gather bool) {
	if gather && lanes == 32 && width == 32 && ps == 1 && kc%16 == 0 && usePackTrans {
		// 32 whole rows (Q·Kᵀ's K), or below 14 (a row panel of A):
		// transposed in registers, as the weight panels are (packBGather)
		packTransDAVX512(&dst[0], unsafe.Pointer(&src[base]), 4*ls, kc, 4*width)
		return
	}
	if gather && lanes == gemmMR && width == gemmMR && ps == 1 && kc%16 == 0 && usePackTrans {
		packTrans14DAVX512(&dst[0], unsafe.Pointer(&src[base]), 4*ls, kc, 4*width)
		return
	}
	if gather {
		for l := range lanes {
			buf.idx[l] = int32(4 * l * ls)
		}
		gm, sm := uint32(1)<<lanes-1, uint32(1)<<width-1
		if lanes == 32 {
			gm = ^uint32(0)
		}
		if width == 32 {
			sm = ^uint32(0)
		}
		packGatherDAVX512(&dst[0], unsafe.Pointer(&src[base]), &buf.idx, kc, 4*ps, 4*width, gm, sm)
		return
	}
	dst = dst[:kc*width]
	if lanes < width {
		clear(dst)
	}
	for l := range lanes {
		s := base + l*ls
		for p := range kc {
			dst[p*width+l] = src[s+p*ps]
		}
	}
}

// checkSgemm panics unless every element Sgemm reads or writes is inside
// its slice (the assembly does not bounds-check).
func checkSgemm(transA, transB bool, m, n, k, na, lda, nb, ldb, nc, ldc int) {
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if lda < ac || ldb < bc || ldc < n {
		panic("kernels: Sgemm stride smaller than a row")
	}
	if na < (ar-1)*lda+ac || nb < (br-1)*ldb+bc || nc < (m-1)*ldc+n {
		panic("kernels: Sgemm slice too short")
	}
}
