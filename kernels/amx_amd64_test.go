//go:build !purego

package kernels

import (
	"math"
	"runtime"
	"testing"
	"unsafe"

	"github.com/lightninglm/lightning/internal/numtest"
)

// TestSplitBF16x3 checks that the three bf16 terms add up exactly to each
// activation, that the AVX-512 split equals its twin bitwise, and that the
// one-term packer rounds as RoundBF16 does.
func TestSplitBF16x3(t *testing.T) {
	if !useAMX {
		t.Skip("no AMX-BF16 on this CPU")
	}
	const n = 4096
	x := numtest.Rand(n, 7)
	for i := range x {
		x[i] *= float32(math.Pow(2, float64(i%60-30))) // exponents from 2⁻³⁰ to 2²⁹
	}
	x[0], x[1] = 0, float32(math.Copysign(0, -1))
	want := [3][]uint16{make([]uint16, n), make([]uint16, n), make([]uint16, n)}
	splitBF16x3Generic(want[0], want[1], want[2], x)
	got := make([]uint16, 3*n)
	splitBF16x3AVX512(unsafe.Pointer(&got[0]), 2*n, &x[0], n/32, 64)
	for i, v := range x {
		for s := range 3 {
			if got[s*n+i] != want[s][i] {
				t.Fatalf("x[%d] = %g: term %d is %#04x, twin %#04x", i, v, s, got[s*n+i], want[s][i])
			}
		}
		sum := float64(bf16ToF32(want[0][i])) + float64(bf16ToF32(want[1][i])) + float64(bf16ToF32(want[2][i]))
		if sum != float64(v) {
			t.Fatalf("x[%d] = %g: terms add up to %g", i, v, sum)
		}
	}
	rounded := make([]uint16, n)
	roundBF16PackedAVX512(unsafe.Pointer(&rounded[0]), &x[0], n/32, 64)
	for i, v := range x {
		if rounded[i] != RoundBF16(v) {
			t.Fatalf("x[%d] = %g rounds to %#04x, RoundBF16 %#04x", i, v, rounded[i], RoundBF16(v))
		}
	}
}

// TestMatMulAMX checks the AMX path of MatMulBF16 against the float64
// product: row blocks and k blocks with partial last ones, padding rows
// and columns, and the bound of a float32 sum of 3·in exact products.
func TestMatMulAMX(t *testing.T) {
	if !useAMX {
		t.Skip("no AMX-BF16 on this CPU")
	}
	for ci, c := range []mmCase{{97, 64, 32}, {128, 1024, 96}, {300, 1056, 70}, {520, 96, 33}, {100, 2048, 64}} {
		if c.T <= skinnyMaxT(wBF16, c.in) {
			t.Fatalf("%v takes the skinny path, not AMX", c)
		}
		x := numtest.Rand(c.T*c.in, uint64(ci))
		wf := numtest.Rand(c.out*c.in, uint64(50+ci))
		wh := make([]uint16, len(wf))
		for i, v := range wf {
			wh[i] = RoundBF16(v)
			wf[i] = bf16ToF32(wh[i])
		}
		dst, check := numtest.Guarded(t, c.T*c.out, 11)
		MatMulBF16(dst, x, wh, c.T, c.in, c.out)
		check()
		for tt := range c.T {
			for o := range c.out {
				var want, abs float64
				for i := range c.in {
					p := float64(x[tt*c.in+i]) * float64(wf[o*c.in+i])
					want += p
					abs += math.Abs(p)
				}
				tol := numtest.DotTol(3*c.in, abs)
				if got := float64(dst[tt*c.out+o]); !(math.Abs(got-want) <= tol) {
					t.Fatalf("T=%d in=%d out=%d: dst[%d,%d] = %g, want %g ± %g", c.T, c.in, c.out, tt, o, got, want, tol)
				}
			}
		}
	}
}

// TestMatMulAMXExactTerms checks that no bit of an activation is lost: with
// one nonzero weight per output (a power of two), each output is one
// activation scaled exactly, which only the sum of all three terms gives.
func TestMatMulAMXExactTerms(t *testing.T) {
	if !useAMX {
		t.Skip("no AMX-BF16 on this CPU")
	}
	const T, in = 130, 96
	x := numtest.Rand(T*in, 3)
	for i := range x {
		x[i] = math.Float32frombits(math.Float32bits(x[i]) | 0x5555) // low mantissa bits set
	}
	wh := make([]uint16, in*in)
	for o := range in {
		wh[o*in+(o*7)%in] = RoundBF16(float32(math.Ldexp(1, o%9-4)))
	}
	dst := make([]float32, T*in)
	MatMulBF16(dst, x, wh, T, in, in)
	for tt := range T {
		for o := range in {
			want := x[tt*in+(o*7)%in] * float32(math.Ldexp(1, o%9-4))
			if got := dst[tt*in+o]; got != want {
				t.Fatalf("dst[%d,%d] = %g (%#08x), want %g (%#08x)", tt, o, got, math.Float32bits(got), want, math.Float32bits(want))
			}
		}
	}
}

// TestMatMulAMXUnderPreemption checks that the tile state survives signals:
// while another goroutine keeps the garbage collector and the scheduler's
// preemption signals busy, repeated products give bitwise the first one.
func TestMatMulAMXUnderPreemption(t *testing.T) {
	if !useAMX {
		t.Skip("no AMX-BF16 on this CPU")
	}
	const T, in, out = 256, 512, 256
	x := numtest.Rand(T*in, 5)
	wh := make([]uint16, in*out)
	for i, v := range numtest.Rand(in*out, 6) {
		wh[i] = RoundBF16(v)
	}
	ref := make([]float32, T*out)
	MatMulBF16(ref, x, wh, T, in, out)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	dst := make([]float32, T*out)
	for i := range 100 {
		MatMulBF16(dst, x, wh, T, in, out)
		for k := range ref {
			if math.Float32bits(dst[k]) != math.Float32bits(ref[k]) {
				close(stop)
				<-done
				t.Fatalf("run %d: dst[%d] = %g, first run %g", i, k, dst[k], ref[k])
			}
		}
	}
	close(stop)
	<-done
}
