package safetensors

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// manyTensors writes a file of n small F32 tensors with names shaped like a
// real checkpoint's, and returns its path.
func manyTensors(b *testing.B, n int) string {
	b.Helper()
	specs := make([]TensorSpec, n)
	for i := range specs {
		specs[i] = TensorSpec{fmt.Sprintf("model.layers.%d.block_sparse_moe.experts.%d.w%d.weight", i/96, i/3%32, i%3+1), F32, []int{4, 4}}
	}
	path := filepath.Join(b.TempDir(), "many.safetensors")
	w, err := Create(path, specs, map[string]string{"format": "pt"})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Abort()
	data := make([]byte, 64)
	for _, s := range specs {
		if err := w.WriteTensor(s.Name, data); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkOpen measures opening (mapping and validating) a file with many
// tensors: the cost is almost all header parsing. Reported per open, with
// tensors/s as a rate.
func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("tensors=%d", n), func(b *testing.B) {
			path := manyTensors(b, n)
			st, _ := os.Stat(path)
			b.ReportAllocs()
			for b.Loop() {
				f, err := Open(path)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tensors/s")
			b.ReportMetric(float64(st.Size()), "file-bytes")
		})
	}
}
