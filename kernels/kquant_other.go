//go:build !amd64 || purego

package kernels

// kqTokens is 1: there is no multi-token kernel in this build.
func kqTokens() int { return 1 }

// kqDots runs the twin for each of len(dst) tokens.
func kqDots(k KQuant, w, rec []byte, nb int, dst []float32) {
	for t := range dst {
		dst[t] = kqDotGeneric(k, w, rec[t*nb*kqRecBytes:], nb)
	}
}
