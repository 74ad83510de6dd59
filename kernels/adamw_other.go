//go:build !amd64 || purego

package kernels

func adamw(p, g, m, v []float32, s AdamWStep) { adamwGeneric(p, g, m, v, s) }
