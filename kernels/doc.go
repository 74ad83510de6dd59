// Package kernels holds Lightning's math on slices: matrix products over f32,
// bf16 and f16 weights, normalisation, activations, softmax and the small
// strided GEMM used by attention, plus the persistent worker pool that splits
// work across cores.
//
// Every exported kernel has a pure-Go twin named xxxGeneric that is always
// compiled; it is the reference semantics, the fallback on CPUs without a fast
// path, and the oracle the fast paths are tested against. Fast paths register
// with internal/cpu so tests can force each one.
//
// Glossary: T = rows of activations (tokens), in = input width, out = output
// width. Weights are stored as PyTorch nn.Linear keeps them, [out, in]
// row-major, and every product computes dst[T, out] = x[T, in] · wᵀ.
package kernels
