//go:build !purego

package kernels

import (
	"sync"
	"unsafe"

	"github.com/lightninglm/lightning/internal/cpu"
)

var useSgemmAVX512 bool

func init() {
	cpu.Register("sgemm", "avx512", &useSgemmAVX512,
		cpu.X86.AVX512F && cpu.X86.AVX512BW && cpu.X86.AVX512VL && cpu.X86.AVX512DQ)
}

// sgemmMCp is the number of 14-row panels in one packed A block.
const sgemmMCp = gemmMC / gemmMR

// sgemmBuf is the packing scratch of one Sgemm call.
type sgemmBuf struct {
	a    [sgemmMCp * gemmMR * gemmKC]float32 // A block: panels [kc][14]
	b    [gemmKC * gemmNR]float32            // B panel [kc][32]
	tile [gemmMR * gemmNR]float32
	idx  [32]int32
}

var sgemmBufs = sync.Pool{New: func() any { return new(sgemmBuf) }}

// sgemm runs the GEMM microkernel. An operand is read in place when its
// layout already is the kernel's (op(A) columns contiguous, i.e. transA; op(B)
// rows contiguous, i.e. !transB) and the panel is whole; otherwise it is
// gather-packed. Edge tiles go through a scratch tile.
func sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	if !useSgemmAVX512 {
		sgemmGeneric(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
		return
	}
	checkSgemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	buf := sgemmBufs.Get().(*sgemmBuf)
	defer sgemmBufs.Put(buf)
	pa, pb := unsafe.Pointer(unsafe.SliceData(a)), unsafe.Pointer(unsafe.SliceData(b))
	mp := (m + gemmMR - 1) / gemmMR
	for k0 := 0; k0 < k; k0 += gemmKC {
		kc := min(gemmKC, k-k0)
		acc := 0
		if accumulate || k0 > 0 {
			acc = 1
		}
		for ic := 0; ic < mp; ic += sgemmMCp {
			icEnd := min(ic+sgemmMCp, mp)
			// Pack the A panels that cannot be read in place.
			for ip := ic; ip < icEnd; ip++ {
				i0 := ip * gemmMR
				mr := min(gemmMR, m-i0)
				if transA && mr == gemmMR {
					continue
				}
				dst := &buf.a[(ip-ic)*gemmMR*gemmKC]
				if transA { // op(A)[i][p] = a[p*lda+i]: contiguous in i
					for i := range mr {
						buf.idx[i] = int32(4 * i)
					}
					packGatherDAVX512(dst, unsafe.Add(pa, 4*(k0*lda+i0)), &buf.idx, kc, 4*lda, gemmMR*4, 1<<mr-1, 1<<gemmMR-1)
				} else { // op(A)[i][p] = a[i*lda+p]
					for i := range mr {
						buf.idx[i] = int32(4 * i * lda)
					}
					packGatherDAVX512(dst, unsafe.Add(pa, 4*(i0*lda+k0)), &buf.idx, kc, 4, gemmMR*4, 1<<mr-1, 1<<gemmMR-1)
				}
			}
			for j0 := 0; j0 < n; j0 += gemmNR {
				nr := min(gemmNR, n-j0)
				var bp unsafe.Pointer
				bs := gemmNR * 4
				switch {
				case !transB && nr == gemmNR:
					bp, bs = unsafe.Add(pb, 4*(k0*ldb+j0)), 4*ldb
				case !transB:
					for j := range nr {
						buf.idx[j] = int32(4 * j)
					}
					packGatherDAVX512(&buf.b[0], unsafe.Add(pb, 4*(k0*ldb+j0)), &buf.idx, kc, 4*ldb, gemmNR*4, 1<<nr-1, ^uint32(0))
					bp = unsafe.Pointer(&buf.b[0])
				default: // op(B)[p][j] = b[j*ldb+p]
					for j := range nr {
						buf.idx[j] = int32(4 * j * ldb)
					}
					gm := uint32(1)<<nr - 1
					if nr == 32 {
						gm = ^uint32(0)
					}
					packGatherDAVX512(&buf.b[0], unsafe.Add(pb, 4*(j0*ldb+k0)), &buf.idx, kc, 4, gemmNR*4, gm, ^uint32(0))
					bp = unsafe.Pointer(&buf.b[0])
				}
				for ip := ic; ip < icEnd; ip++ {
					i0 := ip * gemmMR
					mr := min(gemmMR, m-i0)
					ap, as := unsafe.Pointer(&buf.a[(ip-ic)*gemmMR*gemmKC]), gemmMR*4
					if transA && mr == gemmMR {
						ap, as = unsafe.Add(pa, 4*(k0*lda+i0)), 4*lda
					}
					if mr == gemmMR && nr == gemmNR {
						gemmKernF32AVX512(kc, ap, as, bp, bs, &c[i0*ldc+j0], 4*ldc, acc)
						continue
					}
					gemmKernF32AVX512(kc, ap, as, bp, bs, &buf.tile[0], gemmNR*4, 0)
					for i := range mr {
						row := c[(i0+i)*ldc+j0 : (i0+i)*ldc+j0+nr]
						tile := buf.tile[i*gemmNR : i*gemmNR+nr]
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
