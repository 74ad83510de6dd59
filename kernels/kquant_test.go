package kernels

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lightninglm/lightning/internal/cpu"
	"github.com/lightninglm/lightning/internal/numtest"
)

// kqElem64 dequantizes element e (< 256) of a K-quant block in float64 from
// the published layout (written apart from kqDotGeneric, as the oracle's
// own reading of it), and returns the magnitude of its terms as the fast
// paths split them: |d·sc|·(q + offset) + |dmin·m|.
func kqElem64(k KQuant, blk []byte, e int) (w, mag float64) {
	half := func(off int) float64 { return float64(HalfToFloat(binary.LittleEndian.Uint16(blk[off:]))) }
	if k == Q6K {
		h, i := e/128, e%128
		l, quarter := i%32, i/32
		lowNib := blk[64*h+l+32*(quarter%2)]
		if quarter >= 2 {
			lowNib >>= 4
		}
		hi := blk[128+32*h+l] >> (2 * quarter) & 3
		q := float64(int(lowNib&15) | int(hi)<<4)
		ds := half(208) * float64(int8(blk[192+e/16]))
		return ds * (q - 32), math.Abs(ds) * (q + 32)
	}
	s := e / 32
	sc6 := func(j int) (sc, m int) { // the 12 scale bytes at 4, read bit by bit
		p := blk[4:16]
		if j < 4 {
			return int(p[j] & 63), int(p[j+4] & 63)
		}
		return int(p[j+4]&15) | int(p[j-4]>>6)<<4, int(p[j+4]>>4) | int(p[j]>>6)<<4
	}
	sc, m := sc6(s)
	qsOff := 16
	if k == Q5K {
		qsOff = 48
	}
	b := blk[qsOff+32*(s/2)+e%32]
	q := int(b & 15)
	if s%2 == 1 {
		q = int(b >> 4)
	}
	if k == Q5K {
		q |= int(blk[16+e%32]>>s&1) << 4
	}
	ds, dm := half(0)*float64(sc), half(2)*float64(m)
	return ds*float64(q) - dm, math.Abs(ds)*float64(q) + math.Abs(dm)
}

// randKQ returns out rows of in/256 random blocks of layout k: random
// quant, scale and high-bit bytes and binary16 d (and dmin) of random size.
func randKQ(k KQuant, in, out int, r *rand.Rand) []byte {
	bb := k.BlockBytes()
	w := make([]byte, out*in/256*bb+5)[5:] // odd offset
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	for b := 0; b < len(w)/bb; b++ {
		blk := w[b*bb : (b+1)*bb]
		d := FloatToHalf(float32(math.Exp(r.NormFloat64()) * 1e-3))
		if k == Q6K {
			binary.LittleEndian.PutUint16(blk[208:], d)
			continue
		}
		binary.LittleEndian.PutUint16(blk, d)
		binary.LittleEndian.PutUint16(blk[2:], FloatToHalf(float32(math.Exp(r.NormFloat64())*1e-3)))
	}
	return w
}

var kqCases = []qCase{
	{0, 256, 3}, {2, 256, 0}, {1, 256, 1}, {1, 512, 5}, {3, 768, 4}, {1, 4096, 9}, {5, 1024, 3}, {17, 256, 2},
}

// TestMatMulKQuant checks every K-quant layout on every path, with and
// without the multi-token kernels, against a float64 product of the
// dequantized weights (kqElem64) and the quantized activations, within
// DotTol of the magnitudes of the terms the paths sum; dst sits between
// guard bands.
func TestMatMulKQuant(t *testing.T) {
	numtest.EachImpl(t, "matmul.kquant", func(t *testing.T) {
		numtest.EachImpl(t, "matmul.ggml.tokens", func(t *testing.T) {
			for _, k := range []KQuant{Q4K, Q5K, Q6K} {
				for ci, c := range kqCases {
					t.Run(fmt.Sprintf("%d/T%d_in%d_out%d", k, c.T, c.in, c.out), func(t *testing.T) {
						r := rand.New(rand.NewPCG(uint64(k), uint64(ci)))
						w := randKQ(k, c.in, c.out, r)
						x := numtest.Offset(randActs(c.T, c.in, r), 1+ci%3)
						if c.T > 1 { // an all-zero block: dx = 0
							clear(x[c.in : c.in+256])
						}
						dst, check := numtest.Guarded(t, c.T*c.out, 23)
						for i := range dst {
							dst[i] = float32(math.NaN())
						}
						MatMulKQuant(dst, x, w, k, c.T, c.in, c.out)
						check()
						rec := make([]byte, kqRecBytes)
						bad := 0
						for tt := range c.T {
							for o := range c.out {
								var want, mag float64
								for b := range c.in / 256 {
									quantizeKQAct(rec, x[tt*c.in+256*b:])
									dx := float64(math.Float32frombits(binary.LittleEndian.Uint32(rec[288:])))
									blk := w[(o*c.in/256+b)*k.BlockBytes():]
									for e := range 256 {
										wv, m := kqElem64(k, blk, e)
										xv := dx * float64(int8(rec[e]))
										want += wv * xv
										mag += m * math.Abs(xv)
									}
								}
								tol := numtest.DotTol(c.in, mag)
								got := float64(dst[tt*c.out+o])
								if !(math.Abs(got-want) <= tol) && bad < 5 {
									bad++
									t.Errorf("dst[%d,%d] = %g, want %g ± %g", tt, o, got, want, tol)
								}
							}
						}
					})
				}
			}
		})
	})
}

// TestKQuantTokensBitwise checks that the multi-token kernels give the
// same bits as one call per token, on every path.
func TestKQuantTokensBitwise(t *testing.T) {
	numtest.EachImpl(t, "matmul.kquant", func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, k := range []KQuant{Q4K, Q5K, Q6K} {
			for _, c := range []qCase{{4, 512, 7}, {9, 768, 5}, {2, 256, 3}} {
				w := randKQ(k, c.in, c.out, r)
				x := randActs(c.T, c.in, r)
				multi, single := make([]float32, c.T*c.out), make([]float32, c.T*c.out)
				MatMulKQuant(multi, x, w, k, c.T, c.in, c.out)
				restore := cpu.Select("matmul.ggml.tokens", "")
				MatMulKQuant(single, x, w, k, c.T, c.in, c.out)
				restore()
				for i := range multi {
					if math.Float32bits(multi[i]) != math.Float32bits(single[i]) {
						t.Fatalf("layout %d T%d in%d: dst[%d] = %v with several tokens per call, %v with one", k, c.T, c.in, i, multi[i], single[i])
					}
				}
			}
		}
	})
}

// TestQuantizeKQAct checks the activation records: xq = x/dx rounded to
// nearest (|x − dx·xq| ≤ dx/2), |xq| ≤ 127 with ±127 at the largest |x|, the
// int16 sums of 16, and a zero record for a zero block.
func TestQuantizeKQAct(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rec := make([]byte, kqRecBytes)
	for trial := range 20 {
		x := make([]float32, 256)
		if trial > 0 {
			for i := range x {
				x[i] = float32(r.NormFloat64() * math.Exp(r.NormFloat64()))
			}
		}
		quantizeKQAct(rec, x)
		dx := math.Float32frombits(binary.LittleEndian.Uint32(rec[288:]))
		var amax float32
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		if dx != amax/127 {
			t.Fatalf("trial %d: dx = %g, want %g", trial, dx, amax/127)
		}
		for j := range 16 {
			var s int
			for i := range 16 {
				k := 16*j + i
				q := int8(rec[k])
				s += int(q)
				if d := math.Abs(float64(x[k]) - float64(dx)*float64(q)); d > float64(dx)/2*(1+1e-5) {
					t.Fatalf("trial %d: x[%d] = %g, xq %d, dx %g: off by %g", trial, k, x[k], q, dx, d)
				}
				if abs32(x[k]) == amax && amax > 0 && q != 127 && q != -127 {
					t.Fatalf("trial %d: largest |x| quantized to %d", trial, q)
				}
			}
			if got := int16(binary.LittleEndian.Uint16(rec[256+2*j:])); int(got) != s {
				t.Fatalf("trial %d: bs[%d] = %d, want %d", trial, j, got, s)
			}
		}
	}
}

// BenchmarkMatMulKQuant measures decode-shaped products (T = 1, 4096 →
// 4096, 7–12 MB of weights: more than the caches) on every path, and
// prefill-shaped ones (T = 64, 4096 → 1024) with the multi-token kernels
// (tokens=multi) and with one token per call (tokens=one); bytes/s is
// weight bytes read per product, to be set against the machine's measured
// read bandwidth.
func BenchmarkMatMulKQuant(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	paths := []string{""}
	for _, im := range cpu.Impls("matmul.kquant") {
		if im.Available {
			paths = append(paths, im.Name)
		}
	}
	for _, s := range []struct {
		name   string
		T, out int
		tokens []string
	}{{"decode", 1, 4096, []string{"multi"}}, {"prefill", 64, 1024, []string{"multi", ""}}} {
		const in = 4096
		x := randActs(s.T, in, r)
		dst := make([]float32, s.T*s.out)
		for _, k := range []KQuant{Q4K, Q5K, Q6K} {
			w := randKQ(k, in, s.out, r)
			name := map[KQuant]string{Q4K: "Q4_K", Q5K: "Q5_K", Q6K: "Q6_K"}[k]
			for _, p := range paths {
				for _, tk := range s.tokens {
					restore := cpu.Select("matmul.kquant", p)
					restoreT := cpu.Select("matmul.ggml.tokens", tk)
					b.Run(fmt.Sprintf("%s/%s/%s/tokens=%s", s.name, name, cmp.Or(p, "generic"), cmp.Or(tk, "one")), func(b *testing.B) {
						b.SetBytes(int64(len(w)))
						for b.Loop() {
							MatMulKQuant(dst, x, w, k, s.T, in, s.out)
						}
					})
					restoreT()
					restore()
				}
			}
		}
	}
}
