// Package numtest holds the helpers kernel tests share: running a test once
// per registered fast path (EachImpl), error measures (NMSE, ULP distance),
// tolerances derived from the float32 unit roundoff, and guard bands that
// catch writes outside a destination. Only _test.go files import it.
package numtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lightninglm/lightning/internal/cpu"
)

// Eps32 is the unit roundoff of float32 (2⁻²⁴): one rounding of a value v
// errs by at most Eps32·|v|.
const Eps32 = 1.0 / (1 << 24)

// EachImpl runs f as a subtest once per fast path of kernel that this CPU
// can execute (all other paths of kernel switched off), then once as
// "generic" with every path of kernel off, so one machine tests every path it
// has. The previous settings are restored afterwards.
//
// Subtests are named kernel/path, e.g. "exp/avx512" and "exp/generic".
func EachImpl(t *testing.T, kernel string, f func(t *testing.T)) {
	t.Helper()
	t.Run(kernel, func(t *testing.T) {
		for _, im := range cpu.Impls(kernel) {
			if !im.Available {
				t.Logf("%s/%s: not available on this CPU", kernel, im.Name)
				continue
			}
			restore := cpu.Select(kernel, im.Name)
			t.Run(im.Name, f)
			restore()
		}
		restore := cpu.Select(kernel, "")
		t.Run("generic", f)
		restore()
	})
}

// NMSE returns Σ(got−want)² / Σ want², the normalised mean squared error
// llama.cpp's test-backend-ops uses (0 when both are all zero).
func NMSE(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		return num
	}
	return num / den
}

// ULP returns the distance between a and b in units in the last place of
// float32 (the number of representable floats between them); NaN against
// NaN is 0, NaN against a number is MaxInt64.
func ULP(a, b float32) int64 {
	if a != a || b != b {
		if a != a && b != b {
			return 0
		}
		return math.MaxInt64
	}
	ia, ib := ordered(a), ordered(b)
	if ia > ib {
		return ia - ib
	}
	return ib - ia
}

func ordered(f float32) int64 {
	b := int64(math.Float32bits(f))
	if b&(1<<31) != 0 {
		return -(b & (1<<31 - 1))
	}
	return b
}

// DotTol bounds the error of a float32 sum of n products computed in any
// order (with or without fused multiply-add) against the exact value: the
// standard bound for recursive summation is γ_n·Σ|aᵢbᵢ| with γ_n = n·u/(1−n·u)
// ≈ n·u, plus one rounding of each product. absSum is Σ|aᵢbᵢ|; the factor 2
// covers the product rounding and the twin's own error, since both sides
// are float32 computations compared with each other, not with the exact
// value.
func DotTol(n int, absSum float64) float64 {
	return 2 * float64(n+1) * Eps32 * absSum
}

// Guarded returns a slice of n float32 values that sits between guard bands
// of pad elements filled with a sentinel, and a check function that reports
// (as a test error) any band element that was overwritten.
func Guarded(t *testing.T, n, pad int) (s []float32, check func()) {
	t.Helper()
	const sentinel = float32(-1234.5678)
	buf := make([]float32, n+2*pad)
	for i := range buf {
		buf[i] = sentinel
	}
	s = buf[pad : pad+n : pad+n]
	return s, func() {
		t.Helper()
		for i := range pad {
			if buf[i] != sentinel {
				t.Errorf("guard band before dst written at %d: %v", i-pad, buf[i])
				return
			}
			if buf[pad+n+i] != sentinel {
				t.Errorf("guard band after dst written at +%d: %v", i, buf[pad+n+i])
				return
			}
		}
	}
}

// Rand fills a new slice of n values uniform in [-1, 1) from a fixed seed.
func Rand(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*r.Float32() - 1
	}
	return s
}

// Offset returns a copy of s placed off at elements into a fresh backing
// array, so kernels see slices that start at odd (unaligned) addresses.
func Offset(s []float32, off int) []float32 {
	buf := make([]float32, len(s)+off)
	copy(buf[off:], s)
	return buf[off:]
}

// Name formats subtest names for shapes.
func Name(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// Central differences in float64 for gradient checks: with step FDStep the
// truncation error is h²·|f⁽³⁾|/6 ≈ 1e-12 and the rounding error
// ≈ 1e-16·|f|/h ≈ 1e-9 for losses of order 10, so FDTol (absolute, plus the
// same relative) is a safe bound that a wrong formula (errors of order one)
// cannot meet.
const (
	FDStep = 1e-6
	FDTol  = 1e-7
)

// CentralDiff returns (f(p+h) − f(p−h)) / 2h with h = FDStep, restoring *p.
func CentralDiff(f func() float64, p *float64) float64 {
	v := *p
	*p = v + FDStep
	fp := f()
	*p = v - FDStep
	fm := f()
	*p = v
	return (fp - fm) / (2 * FDStep)
}

// CheckFD reports element i of what when the analytic gradient got is further
// than FDTol·(1+|want|) from the finite difference want.
func CheckFD(t *testing.T, what string, i int, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > FDTol*(1+math.Abs(want)) {
		t.Errorf("%s[%d] = %.12g, finite difference %.12g", what, i, got, want)
	}
}
