package minimax01

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/quant"
)

// benchModel returns a random BF16 model of a preset, generated once into the
// system temp folder and reused by later runs (b2 is 4 GB).
func benchModel(b *testing.B, preset string) *Model {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "lightning-bench-"+preset+"-bf16-seed1")
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		c, err := PresetConfig(preset)
		if err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
		if err := WriteRandom(dir, c, RandomOptions{DType: quant.BF16, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	m, err := Load(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

func benchPrompt(n, vocab int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32((i*7919 + 13) % vocab)
	}
	return p
}

// BenchmarkPrefill measures prompt processing on random-weight presets.
// Run: go test -run '^$' -bench Prefill ./model/minimax01
func BenchmarkPrefill(b *testing.B) {
	for _, preset := range []string{"m300", "b2"} {
		for _, n := range []int{512, 2048} {
			b.Run(fmt.Sprintf("%s/T=%d", preset, n), func(b *testing.B) {
				m := benchModel(b, preset)
				prompt := benchPrompt(n, m.Config.Vocab)
				logits := make([]float32, m.Config.Vocab)
				st := m.NewStateCap(n)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					st.Reset()
					m.Forward([]model.Seq{{State: st, Tokens: prompt, Logits: model.LogitsLast}}, logits)
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}

// BenchmarkDecode measures single-sequence decode after a short prompt.
// Run: go test -run '^$' -bench Decode ./model/minimax01
func BenchmarkDecode(b *testing.B) {
	for _, preset := range []string{"m300", "b2"} {
		b.Run(preset, func(b *testing.B) {
			m := benchModel(b, preset)
			logits := make([]float32, m.Config.Vocab)
			st := m.NewStateCap(b.N + 16)
			m.Forward([]model.Seq{{State: st, Tokens: benchPrompt(8, m.Config.Vocab), Logits: model.LogitsLast}}, logits)
			tok := []int32{1}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Forward([]model.Seq{{State: st, Tokens: tok, Logits: model.LogitsLast}}, logits)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
			b.ReportMetric(float64(m.Info().WeightBytes), "weight-B")
		})
	}
}

// BenchmarkPrefillChunk measures a 2048-token prefill with different step
// sizes (MaxBatchTokens).
func BenchmarkPrefillChunk(b *testing.B) {
	for _, chunk := range []int{512, 2048} {
		b.Run(fmt.Sprintf("m300/chunk=%d", chunk), func(b *testing.B) {
			m0 := benchModel(b, "m300")
			m, err := Load(m0.ck.Dir(), Options{MaxBatchTokens: chunk})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			prompt := benchPrompt(2048, m.Config.Vocab)
			logits := make([]float32, m.Config.Vocab)
			st := m.NewStateCap(2048)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				st.Reset()
				m.Forward([]model.Seq{{State: st, Tokens: prompt, Logits: model.LogitsLast}}, logits)
			}
			b.ReportMetric(float64(2048*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
