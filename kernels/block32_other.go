//go:build !amd64 || purego

package kernels

// b32Tokens is 1: there is no multi-token kernel in this build.
func b32Tokens() int { return 1 }

// b32Dots runs the twin for each of len(dst) tokens.
func b32Dots(k Block32, w, rec []byte, nb int, dst []float32) {
	for t := range dst {
		dst[t] = b32DotGeneric(k, w, rec[t*b32RecBytes(nb):], nb)
	}
}
