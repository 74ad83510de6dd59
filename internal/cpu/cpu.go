// Package cpu reports the CPU features Lightning's kernels can use and keeps a
// registry of every fast path, so tests can switch each one off and run the
// same checks on the slower paths (Go's crypto/internal/impl, klauspost's
// cpuinfo.Disable*).
//
// Feature flags come from golang.org/x/sys/cpu and are read once at init.
package cpu

import (
	"sort"
	"sync"

	xcpu "golang.org/x/sys/cpu"
)

// X86 holds the x86-64 features the kernels dispatch on. All fields are false
// on other architectures.
var X86 struct {
	AVX2, FMA, F16C        bool
	AVX512F, AVX512BW      bool
	AVX512VL, AVX512DQ     bool
	AVX512BF16, AVX512VNNI bool
	AVXVNNI                bool
	AMXBF16                bool // AMX tiles with TDPBF16PS, and the OS lets this process use them
}

func init() {
	X86.AVX2 = xcpu.X86.HasAVX2
	X86.FMA = xcpu.X86.HasFMA
	X86.F16C = xcpu.X86.HasAVX2 // every AVX2 x86 CPU in use has F16C; x/sys/cpu does not report it separately
	X86.AVX512F = xcpu.X86.HasAVX512F
	X86.AVX512BW = xcpu.X86.HasAVX512BW
	X86.AVX512VL = xcpu.X86.HasAVX512VL
	X86.AVX512DQ = xcpu.X86.HasAVX512DQ
	X86.AVX512BF16 = xcpu.X86.HasAVX512BF16
	X86.AVX512VNNI = xcpu.X86.HasAVX512VNNI
	X86.AVXVNNI = xcpu.X86.HasAVXVNNI
	X86.AMXBF16 = amxUsable()
}

// Impl is one registered fast path of one kernel.
type Impl struct {
	Kernel    string // e.g. "matmul.bf16"
	Name      string // e.g. "avx512"
	Available bool   // the CPU can run it
	enabled   *bool  // the switch the kernel reads
}

var (
	mu    sync.Mutex
	impls []*Impl
)

// Register records a fast path. enabled must point at the flag the kernel
// consults on every call; it is set to available now and can be cleared later
// by tests through Disable or Select.
func Register(kernel, name string, enabled *bool, available bool) {
	mu.Lock()
	defer mu.Unlock()
	*enabled = available
	impls = append(impls, &Impl{Kernel: kernel, Name: name, Available: available, enabled: enabled})
}

// Impls lists the registered fast paths of kernel (all kernels when kernel is
// ""), sorted by kernel then name.
func Impls(kernel string) []Impl {
	mu.Lock()
	defer mu.Unlock()
	var out []Impl
	for _, im := range impls {
		if kernel == "" || im.Kernel == kernel {
			out = append(out, *im)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kernel != out[j].Kernel {
			return out[i].Kernel < out[j].Kernel
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Enabled reports which fast paths of kernel are switched on.
func Enabled(kernel string) []string {
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for _, im := range impls {
		if im.Kernel == kernel && *im.enabled {
			out = append(out, im.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Select switches on only the fast path name of kernel (if available) and
// switches off its other paths; name "" switches them all off so the pure-Go
// twin runs. It returns a function that restores the previous settings.
func Select(kernel, name string) (restore func()) {
	mu.Lock()
	defer mu.Unlock()
	type saved struct {
		p *bool
		v bool
	}
	var old []saved
	for _, im := range impls {
		if im.Kernel != kernel {
			continue
		}
		old = append(old, saved{im.enabled, *im.enabled})
		*im.enabled = im.Available && im.Name == name
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range old {
			*s.p = s.v
		}
	}
}

// DisableAll switches off every fast path of every kernel and returns a
// function that restores them. Used to run whole-model tests on the twins.
func DisableAll() (restore func()) {
	mu.Lock()
	defer mu.Unlock()
	old := make([]bool, len(impls))
	for i, im := range impls {
		old[i] = *im.enabled
		*im.enabled = false
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for i, im := range impls {
			*im.enabled = old[i]
		}
	}
}
