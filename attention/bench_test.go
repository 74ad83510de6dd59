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
