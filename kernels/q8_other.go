//go:build !amd64 || purego

package kernels

// q8Choose leaves the twin in charge: there is no fast path.
func q8Choose(*q8Job) {}

// q8Call is never reached without assembly.
func q8Call(int, *q8Args) { panic("kernels: no quantized fast path in this build") }

// q8ActArch quantizes nothing without assembly: the twin does every block.
func q8ActArch(int, []byte, []float32, int32) int { return 0 }
