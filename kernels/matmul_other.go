//go:build !amd64 || purego

package kernels

// arch holds no per-architecture state without assembly.
type arch struct{}

func (*arch) bind(*mmJob) {}

func matMul(j *mmJob) {
	if j.T == 0 || j.out == 0 {
		return
	}
	matMulGeneric(j)
}
