//go:build !amd64 || purego

package kernels

// kqDot runs the twin: there is no fast path in this build.
func kqDot(k KQuant, w, rec []byte, nb int) float32 { return kqDotGeneric(k, w, rec, nb) }
