package attention

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lightninglm/lightning/kernels"
)

// BenchmarkFlash times a 512-token prefill chunk at the end of a long
// context (m300's softmax layer: 8 heads, 8 KV heads, d 128; and the real
// model's group of 8), reporting useful GFLOP/s (4·d per visible key).
func BenchmarkFlash(b *testing.B) {
	for _, c := range []struct{ heads, kv, ctx int }{{8, 8, 32768}, {16, 2, 32768}, {8, 8, 2048}} {
		b.Run(fmt.Sprintf("heads=%d/kv=%d/ctx=%d", c.heads, c.kv, c.ctx), func(b *testing.B) {
			const d, n = 128, 512
			r := rand.New(rand.NewPCG(1, 1))
			cache := NewKVCache(KVFloat32, c.kv, d, c.ctx)
			k, _ := randVec(r, c.ctx*c.kv*d, 1)
			v, _ := randVec(r, c.ctx*c.kv*d, 1)
			cache.Append(k, v, c.kv*d, c.ctx)
			q, _ := randVec(r, n*c.heads*d, 1)
			o := make([]float32, n*c.heads*d)
			group := c.heads / c.kv
			pos0 := c.ctx - n
			tiles := FlashTiles(n, group)
			free := make(chan *FlashScratch, kernels.Threads())
			for i := 0; i < kernels.Threads(); i++ {
				free <- NewFlashScratch(group, d)
			}
			body := func(lo, hi int) {
				ws := <-free
				for i := lo; i < hi; i++ {
					FlashAttend(o, c.heads*d, q, c.heads*d, &cache, i/tiles, group, d, pos0, n, i%tiles, 0.088, ws)
				}
				free <- ws
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				kernels.ParallelFor(c.kv*tiles, 1, body)
			}
			keys := float64(n)*float64(pos0) + float64(n)*float64(n+1)/2
			b.ReportMetric(4*float64(d)*float64(c.heads)*keys*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// lightningFLOPs counts the multiply-adds (×2) of the block algorithm over n
// tokens: per block of m tokens the forward does (Q⊙qd)·S, Q Kᵀ, P·V and the
// state update (4·m·d² + 4·m²·d, the masked products counted whole), the
// training forward skips the last block's state update, and the backward does
// P, dA, dQ, dK, dV (10·m²·d + 6·m·d²) plus the state gradient for every block
// but the first (2·m·d²).
func lightningFLOPs(n, d, B int) (prefill, keep, backward float64) {
	for r0 := 0; r0 < n; r0 += B {
		m, fd := float64(min(B, n-r0)), float64(d)
		prefill += 4*m*fd*fd + 4*m*m*fd
		keep += 4*m*fd*fd + 4*m*m*fd
		if r0+B >= n {
			keep -= 2 * m * fd * fd
		}
		backward += 6*m*fd*fd + 10*m*m*fd
		if r0 > 0 {
			backward += 2 * m * fd * fd
		}
	}
	return prefill, keep, backward
}

// BenchmarkLightningBackward times one head of lightning attention at the
// MiniMax shape (d 128, a 2048-token document) on one goroutine, with the
// official block length 256 and the shorter blocks training may choose (the
// results do not depend on B beyond rounding; the work per token is
// 12·d² + 14·B·d, the kept states n/B·d²): the inference prefill, the
// training forward that keeps the block states, the backward, and training
// forward+backward, each in GFLOP/s of the block algorithm's own work
// (lightningFLOPs).
func BenchmarkLightningBackward(b *testing.B) {
	const d, n, slope = 128, 2048, 0.3
	r := rand.New(rand.NewPCG(1, 1))
	qkv, _ := randVec(r, n*3*d, 1)
	q, k, v, ld := qkv, qkv[d:], qkv[2*d:], 3*d
	do, _ := randVec(r, n*d, 1)
	o := make([]float32, n*d)
	grads := make([]float32, n*3*d)
	dq, dk, dv := grads, grads[d:], grads[2*d:]
	state := make([]float32, d*d)
	report := func(b *testing.B, flops float64) {
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
	for _, B := range []int{256, 128, 64} {
		kept := make([]float32, LightningKeptLen(n, d, B))
		ws, gws := NewLightningScratch(B, d), NewLightningGradScratch(B, d)
		prefill, keep, backward := lightningFLOPs(n, d, B)
		b.Run(fmt.Sprintf("B=%d/prefill", B), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				clear(state)
				LightningPrefill(o, d, q, k, v, ld, n, d, state, slope, B, ws)
			}
			report(b, prefill)
		})
		b.Run(fmt.Sprintf("B=%d/forward-keep", B), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				LightningForwardKeep(o, d, q, k, v, ld, n, d, kept, slope, B, ws)
			}
			report(b, keep)
		})
		LightningForwardKeep(o, d, q, k, v, ld, n, d, kept, slope, B, ws)
		b.Run(fmt.Sprintf("B=%d/backward", B), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				LightningBackward(dq, dk, dv, ld, do, d, q, k, v, n, d, kept, slope, B, gws)
			}
			report(b, backward)
		})
		b.Run(fmt.Sprintf("B=%d/forward+backward", B), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				LightningForwardKeep(o, d, q, k, v, ld, n, d, kept, slope, B, ws)
				LightningBackward(dq, dk, dv, ld, do, d, q, k, v, n, d, kept, slope, B, gws)
			}
			report(b, keep+backward)
		})
	}
}

// BenchmarkFlashBackward times the training backward (and, for the ratio,
// the training forward) of one document of n = 2048 tokens at MiniMax's
// softmax-layer shape: d = 128, a GQA group of 8 query heads per KV head.
// "kv=1" is one (document, KV head) call on one goroutine; "kv=8" is the
// whole layer's 8 KV heads spread over the worker pool. GFLOP/s counts the
// useful work: per query head and visible key 4·d flops forward (q·k and
// p·v), 10·d backward (q·k again, dO·v, Pᵀ·dO, dSᵀ·q and dS·k, as
// FlashAttention-2 counts the backward: 2.5 times the forward).
func BenchmarkFlashBackward(b *testing.B) {
	const d, group, n = 128, 8, 2048
	for _, kv := range []int{1, 8} {
		for _, pass := range []string{"forward", "backward"} {
			b.Run(fmt.Sprintf("kv=%d/%s", kv, pass), func(b *testing.B) {
				heads := kv * group
				r := rand.New(rand.NewPCG(1, 1))
				q, _ := randVec(r, n*heads*d, 1)
				k, _ := randVec(r, n*kv*d, 1)
				v, _ := randVec(r, n*kv*d, 1)
				dOut, _ := randVec(r, n*heads*d, 1)
				o, lse := make([]float32, n*heads*d), make([]float32, n*heads)
				dq, dk, dv := make([]float32, n*heads*d), make([]float32, n*kv*d), make([]float32, n*kv*d)
				workers := min(kv, kernels.Threads())
				free := make(chan int, workers)
				fs, gs := make([]*FlashScratch, workers), make([]*FlashGradScratch, workers)
				for i := range workers {
					fs[i], gs[i] = NewFlashScratch(group, d), NewFlashGradScratch(group, d)
					free <- i
				}
				forward := func(g, w int) {
					FlashForward(o, heads*d, lse, heads, q, heads*d, k, kv*d, v, kv*d, g, group, d, n, fs[w])
				}
				backward := func(g, w int) {
					FlashBackward(dq, dk, dv, dOut, q, heads*d, k, kv*d, v, kv*d, o, heads*d, lse, heads, g, group, d, n, gs[w])
				}
				run := func(f func(g, w int)) {
					if kv == 1 {
						f(0, 0)
						return
					}
					kernels.ParallelFor(kv, 1, func(lo, hi int) {
						w := <-free
						for g := lo; g < hi; g++ {
							f(g, w)
						}
						free <- w
					})
				}
				run(forward)
				flops := 4.0
				f := forward
				if pass == "backward" {
					flops, f = 10, backward
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					run(f)
				}
				pairs := float64(heads) * float64(n) * float64(n+1) / 2
				b.ReportMetric(flops*d*pairs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
