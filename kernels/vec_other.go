//go:build !amd64 || purego

package kernels

func dot(a, b []float32) float32                 { return dotGeneric(a, b) }
func axpy(dst []float32, a float32, x []float32) { axpyGeneric(dst, a, x) }
func scale(dst []float32, a float32)             { scaleGeneric(dst, a) }
func mul(dst, x []float32)                       { mulGeneric(dst, x) }
func rmsNorm(dst, x, w []float32, eps float32)   { rmsNormGeneric(dst, x, w, eps) }
func exp(dst, x []float32)                       { expGeneric(dst, x) }
func silu(dst, x []float32)                      { siluGeneric(dst, x) }
func sigmoid(dst, x []float32)                   { sigmoidGeneric(dst, x) }
func siluMul(dst, gate, up []float32)            { siluMulGeneric(dst, gate, up) }
func softmax(x []float32)                        { softmaxGeneric(x) }
func argmax(x []float32) int                     { return argmaxGeneric(x) }
