//go:build !amd64 || purego

package kernels

// arch holds no per-architecture state without assembly.
type arch struct{}

func (*arch) bind(*mmJob) {}

// matMul runs the product, or queues its output stage in g (non-nil); it
// reports whether it was queued.
func matMul(j *mmJob, g *Group) bool {
	if j.T == 0 || j.out == 0 {
		return false
	}
	return matMulGeneric(j, g)
}

// splitMinRows is SplitMinRows: the twins compute every output on its own.
func splitMinRows(elemBytes, in int) int { return 1 }
