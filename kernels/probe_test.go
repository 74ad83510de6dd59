package kernels

import (
	"testing"
	"time"
)

func TestProbes(t *testing.T) {
	if f := FMAPeak(20 * time.Millisecond); !(f > 0) {
		t.Errorf("FMAPeak = %v, want > 0", f)
	}
	if f := BF16DotPeak(10 * time.Millisecond); f < 0 {
		t.Errorf("BF16DotPeak = %v", f)
	}
	buf := make([]byte, 1<<20+13)
	if r := ReadBandwidth(buf, 2); !(r > 0) {
		t.Errorf("ReadBandwidth = %v, want > 0", r)
	}
}

// BenchmarkPeaks reports the probes on this machine (one run each).
func BenchmarkPeaks(b *testing.B) {
	for _, th := range []int{1, 2} {
		old := Threads()
		SetThreads(th)
		b.Run("fma/threads="+string(rune('0'+th)), func(b *testing.B) {
			for b.Loop() {
				b.ReportMetric(FMAPeak(200*time.Millisecond)/1e9, "GFLOP/s")
			}
		})
		b.Run("bf16dot/threads="+string(rune('0'+th)), func(b *testing.B) {
			for b.Loop() {
				b.ReportMetric(BF16DotPeak(200*time.Millisecond)/1e9, "GFLOP/s")
			}
		})
		SetThreads(old)
	}
}

// BenchmarkReadBandwidth streams a 1 GB buffer on 1 and 2 threads.
func BenchmarkReadBandwidth(b *testing.B) {
	buf := make([]byte, 1<<30)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1 // fault the pages in before timing
	}
	for _, th := range []int{1, 2} {
		old := Threads()
		SetThreads(th)
		b.Run("threads="+string(rune('0'+th)), func(b *testing.B) {
			for b.Loop() {
				b.ReportMetric(ReadBandwidth(buf, 2)/1e9, "GB/s")
			}
		})
		SetThreads(old)
	}
}
