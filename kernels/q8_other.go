//go:build !amd64 || purego

package kernels

// q8arch holds no per-architecture state without assembly.
type q8arch struct{}

func (*q8arch) bind(*q8Job) {}

// q8MatMulArch never takes a job: the twins run.
func q8MatMulArch(*q8Job) bool { return false }
