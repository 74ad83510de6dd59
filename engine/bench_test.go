package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

// benchModel loads a random BF16 model of a preset from the system temp
// folder, writing it on first use (the same folder model/minimax01's
// benchmarks use; b2 is 4 GB).
func benchModel(b *testing.B, preset string, batchTokens int) *minimax01.Model {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "lightning-bench-"+preset+"-bf16-seed1")
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		c, err := minimax01.PresetConfig(preset)
		if err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
		if err := minimax01.WriteRandom(dir, c, minimax01.RandomOptions{DType: quant.BF16, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	m, err := minimax01.Load(dir, minimax01.Options{MaxBatchTokens: batchTokens})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkDecodeStreams measures aggregate decode throughput with 1, 8 and 16
// concurrent streams: every step decodes all streams in one forward pass,
// so the weights stream once per step for all of them. The decode rate is
// measured from the moment every stream has its first token (prefill done)
// to the end.
//
//	go test -run '^$' -bench DecodeStreams -benchtime 1x ./engine
func BenchmarkDecodeStreams(b *testing.B) {
	presets := []string{"m300", "b2"}
	if p := os.Getenv("LIGHTNING_BENCH_PRESET"); p != "" {
		presets = []string{p}
	}
	for _, preset := range presets {
		for _, n := range []int{1, 8, 16} {
			b.Run(fmt.Sprintf("%s/streams=%d", preset, n), func(b *testing.B) {
				m := benchModel(b, preset, 256)
				V := m.Info().VocabSize
				e, err := engine.New(m, engine.Config{MaxSeqs: n, BatchTokens: 256})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close()
				const gen = 32
				r := rand.New(rand.NewPCG(1, 1))
				var tokens int
				var decode time.Duration
				for range b.N {
					streams := make([]*engine.Stream, n)
					for i := range streams {
						streams[i], err = e.Submit(context.Background(), engine.Request{Prompt: randomPrompt(r, 8, V), MaxTokens: gen, Params: greedy()})
						if err != nil {
							b.Fatal(err)
						}
					}
					// Wait for every first token, then time the rest.
					counts := make([]int, n)
					for i, s := range streams {
						for counts[i] == 0 {
							<-s.Ready()
							toks, _ := s.Take()
							counts[i] += len(toks)
						}
					}
					t0 := time.Now()
					for i, s := range streams {
						toks, _, err := s.Wait(context.Background())
						if err != nil {
							b.Fatal(err)
						}
						counts[i] += len(toks)
					}
					decode += time.Since(t0)
					for _, c := range counts {
						tokens += c - 1
					}
				}
				b.ReportMetric(float64(tokens)/decode.Seconds(), "decode-tok/s")
			})
		}
	}
}

// BenchmarkPrefixTTFT measures time to first token for a request whose
// 8192-token prefix (a long shared system prompt) was cached by an earlier
// request, against the first request that had to prefill it.
//
//	go test -run '^$' -bench PrefixTTFT -benchtime 1x ./engine
func BenchmarkPrefixTTFT(b *testing.B) {
	preset := "m300"
	if p := os.Getenv("LIGHTNING_BENCH_PRESET"); p != "" {
		preset = p
	}
	const prefix = 8192
	m := benchModel(b, preset, 512)
	V := m.Info().VocabSize
	r := rand.New(rand.NewPCG(2, 2))
	var cold, warm time.Duration
	for range b.N {
		e, err := engine.New(m, engine.Config{BatchTokens: 512, PrefixCacheBytes: 4 << 30})
		if err != nil {
			b.Fatal(err)
		}
		shared := randomPrompt(r, prefix, V)
		ttft := func(question []int32) time.Duration {
			p := append(append([]int32(nil), shared...), question...)
			t0 := time.Now()
			s, err := e.Submit(context.Background(), engine.Request{Prompt: p, MaxTokens: 1, Params: greedy(), Checkpoints: []int{prefix}})
			if err != nil {
				b.Fatal(err)
			}
			_, res, err := s.Wait(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if question[0] == 1 && res.CachedTokens != prefix {
				b.Fatalf("second request reused %d tokens, want %d", res.CachedTokens, prefix)
			}
			return time.Since(t0)
		}
		cold += ttft(append([]int32{0}, randomPrompt(r, 31, V)...))
		warm += ttft(append([]int32{1}, randomPrompt(r, 31, V)...))
		e.Close()
	}
	b.ReportMetric(cold.Seconds()/float64(b.N), "cold-ttft-s")
	b.ReportMetric(warm.Seconds()/float64(b.N), "warm-ttft-s")
	b.ReportMetric(float64(cold)/float64(warm), "speedup")
}
