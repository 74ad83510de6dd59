//go:build !purego

package kernels

type q8arch struct{}

func (*q8arch) bind(*q8Job) {}

func q8MatMulArch(*q8Job) bool { return false }
