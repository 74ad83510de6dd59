package kernels

import (
	"fmt"
	"math"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
)

func TestSgemm(t *testing.T) {
	shapes := [][3]int{ // m, n, k
		{1, 1, 1}, {3, 5, 7}, {14, 32, 16}, {15, 33, 17}, {13, 31, 300}, {28, 64, 128},
		{64, 128, 128}, {100, 100, 128}, {256, 128, 128}, {37, 256, 129}, {2, 200, 513}, {520, 40, 20},
	}
	numtest.EachImpl(t, "sgemm", func(t *testing.T) {
		for si, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				for _, accumulate := range []bool{false, true} {
					name := fmt.Sprintf("m%d_n%d_k%d_tA%v_tB%v_acc%v", m, n, k, tr[0], tr[1], accumulate)
					// strides wider than a row, offsets so rows start unaligned
					ar, ac := m, k
					if tr[0] {
						ar, ac = k, m
					}
					br, bc := k, n
					if tr[1] {
						br, bc = n, k
					}
					lda, ldb, ldc := ac+3, bc+1, n+5
					a := numtest.Offset(numtest.Rand((ar-1)*lda+ac, uint64(si)), 1)
					b := numtest.Offset(numtest.Rand((br-1)*ldb+bc, uint64(50+si)), 3)
					c0 := numtest.Rand((m-1)*ldc+n, uint64(90+si))
					c, check := numtest.Guarded(t, len(c0), 40)
					copy(c, c0)
					Sgemm(tr[0], tr[1], m, n, k, a, lda, b, ldb, c, ldc, accumulate)
					check()
					bad := 0
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							var want, abs float64
							if accumulate {
								want, abs = float64(c0[i*ldc+j]), math.Abs(float64(c0[i*ldc+j]))
							}
							for p := 0; p < k; p++ {
								var av, bv float32
								if tr[0] {
									av = a[p*lda+i]
								} else {
									av = a[i*lda+p]
								}
								if tr[1] {
									bv = b[j*ldb+p]
								} else {
									bv = b[p*ldb+j]
								}
								pr := float64(av) * float64(bv)
								want += pr
								abs += math.Abs(pr)
							}
							// k products plus the old C: a reordered
							// float32 sum of k+1 terms (DotTol).
							tol := numtest.DotTol(k+1, abs)
							if got := float64(c[i*ldc+j]); !(math.Abs(got-want) <= tol) && bad < 3 {
								bad++
								t.Errorf("%s: c[%d,%d] = %g, want %g ± %g", name, i, j, got, want, tol)
							}
						}
					}
					// the gaps between C rows (ldc > n) are not written
					for i := 0; i+1 < m; i++ {
						for j := n; j < ldc; j++ {
							if c[i*ldc+j] != c0[i*ldc+j] {
								t.Fatalf("%s: wrote c[%d,%d] past n", name, i, j)
							}
						}
					}
				}
			}
		}
	})
}

func TestSgemmNoAlloc(t *testing.T) {
	a, b, c := numtest.Rand(256*128, 1), numtest.Rand(128*128, 2), make([]float32, 256*128)
	if n := testing.AllocsPerRun(10, func() { Sgemm(false, false, 256, 128, 128, a, 128, b, 128, c, 128, false) }); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

// BenchmarkSgemm runs the lightning-attention shapes for one head: the
// inter-block term Q[256,128]·S[128,128], the intra-block scores
// Q·Kᵀ [256,256], and the state update Kᵀ[128,256]·V[256,128].
func BenchmarkSgemm(b *testing.B) {
	const m, d = 256, 128
	q, kk, v := numtest.Rand(m*d, 1), numtest.Rand(m*d, 2), numtest.Rand(m*d, 3)
	s, c := numtest.Rand(d*d, 4), make([]float32, m*m)
	cases := []struct {
		name    string
		m, n, k int
		run     func()
	}{
		{"QS_256x128x128", m, d, d, func() { Sgemm(false, false, m, d, d, q, d, s, d, c, d, false) }},
		{"QKt_256x256x128", m, m, d, func() { Sgemm(false, true, m, m, d, q, d, kk, d, c, m, false) }},
		{"KtV_128x128x256", d, d, m, func() { Sgemm(true, false, d, d, m, kk, d, v, d, c, d, true) }},
	}
	for _, cs := range cases {
		b.Run(cs.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cs.run()
			}
			b.ReportMetric(2*float64(cs.m*cs.n*cs.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
