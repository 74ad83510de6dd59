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

var b32Layouts = []Block32{Q4_0, Q4_1, Q5_0, Q5_1, Q8_0}

var b32Names = map[Block32]string{Q4_0: "Q4_0", Q4_1: "Q4_1", Q5_0: "Q5_0", Q5_1: "Q5_1", Q8_0: "Q8_0"}

// b32Elem64 dequantizes element e (< 32) of a block in float64 from the
// published layout (written apart from b32Quant, as the oracle's own
// reading of it), and returns the magnitude of its terms as the fast paths
// split them: |d·c| + |m|.
func b32Elem64(k Block32, blk []byte, e int) (w, mag float64) {
	d := float64(HalfToFloat(binary.LittleEndian.Uint16(blk)))
	if k == Q8_0 {
		q := float64(int8(blk[2+e]))
		return d * q, math.Abs(d * q)
	}
	// Header bytes before the 16 nibble bytes: d, then m (Q4_1, Q5_1),
	// then the 4 bytes of fifth bits (Q5_0, Q5_1).
	hdr := map[Block32]int{Q4_0: 2, Q4_1: 4, Q5_0: 6, Q5_1: 8}[k]
	nib := blk[hdr+e%16]
	if e >= 16 {
		nib >>= 4
	}
	q := float64(nib & 15)
	if k == Q5_0 || k == Q5_1 {
		qh := blk[hdr-4:]
		q += 16 * float64(qh[e/8]>>(e%8)&1)
	}
	switch k {
	case Q4_0:
		return d * (q - 8), math.Abs(d * (q - 8))
	case Q5_0:
		return d * (q - 16), math.Abs(d * (q - 16))
	}
	m := float64(HalfToFloat(binary.LittleEndian.Uint16(blk[2:])))
	return d*q + m, math.Abs(d*q) + math.Abs(m)
}

// randB32 returns out rows of in/32 random blocks of layout k at an odd
// address: random quant and fifth-bit bytes, binary16 d (and m) of random
// size and sign.
func randB32(k Block32, in, out int, r *rand.Rand) []byte {
	bb := k.BlockBytes()
	w := make([]byte, out*in/32*bb+5)[5:]
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	for b := 0; b < len(w)/bb; b++ {
		blk := w[b*bb:]
		sign := func() float64 { return float64(1 - 2*r.IntN(2)) }
		binary.LittleEndian.PutUint16(blk, FloatToHalf(float32(sign()*math.Exp(r.NormFloat64())*1e-2)))
		if k.mins() {
			binary.LittleEndian.PutUint16(blk[2:], FloatToHalf(float32(sign()*math.Exp(r.NormFloat64())*1e-1)))
		}
	}
	return w
}

// b32Cases cover odd and even block counts (the AVX-512 kernels take two
// blocks per step and a last odd one), token counts around the 4 and 2 a
// multi-token call takes, and zero sizes.
var b32Cases = []qCase{
	{0, 64, 3}, {2, 32, 0}, {1, 32, 1}, {1, 64, 3}, {3, 96, 4}, {4, 160, 2}, {5, 256, 5},
	{2, 4128, 3}, {7, 1024, 3}, {9, 96, 2},
}

// TestMatMulBlock32 checks every layout on every path, with and without
// the multi-token kernels, against a float64 product of the dequantized
// weights (b32Elem64) and the quantized activations, within DotTol of the
// magnitudes of the terms the paths sum; dst sits between guard bands.
func TestMatMulBlock32(t *testing.T) {
	numtest.EachImpl(t, "matmul.block32", func(t *testing.T) {
		numtest.EachImpl(t, "matmul.ggml.tokens", func(t *testing.T) {
			for _, k := range b32Layouts {
				for ci, c := range b32Cases {
					t.Run(fmt.Sprintf("%s/T%d_in%d_out%d", b32Names[k], c.T, c.in, c.out), func(t *testing.T) {
						r := rand.New(rand.NewPCG(uint64(k), uint64(ci)))
						w := randB32(k, c.in, c.out, r)
						x := numtest.Offset(randActs(c.T, c.in, r), 1+ci%3)
						dst, check := numtest.Guarded(t, c.T*c.out, 23)
						for i := range dst {
							dst[i] = float32(math.NaN())
						}
						MatMulBlock32(dst, x, w, k, c.T, c.in, c.out)
						check()
						nb := c.in / 32
						rec := make([]byte, b32RecBytes(nb))
						bad := 0
						for tt := range c.T {
							quantizeB32Act(rec, x[tt*c.in:(tt+1)*c.in])
							for o := range c.out {
								var want, mag float64
								for b := range nb {
									dx := float64(math.Float32frombits(binary.LittleEndian.Uint32(rec[32*nb+8*b:])))
									blk := w[(o*nb+b)*k.BlockBytes():]
									for e := range 32 {
										wv, m := b32Elem64(k, blk, e)
										xv := dx * float64(int8(rec[32*b+e]))
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

// TestMatMulBlock32Hand multiplies hand-built blocks, worked out on paper
// from the published layout, with activations 127 (input 0) and 1 (inputs
// 1–31): dx = 1 and xq = x exactly, and every scale a power of two, so each
// path must give the exact value. Each row holds three copies of the block
// (a pair and an odd block on AVX-512) and five tokens see the same x, so
// every output is 3 times the block's product.
func TestMatMulBlock32Hand(t *testing.T) {
	h := func(bits uint16) []byte { return binary.LittleEndian.AppendUint16(nil, bits) }
	const half, two, minusOne = 0x3800, 0x4000, 0xbc00
	rep := func(b byte, n int) []byte {
		s := make([]byte, n)
		for i := range s {
			s[i] = b
		}
		return s
	}
	qh := binary.LittleEndian.AppendUint32(nil, 1|1<<31) // fifth bits of elements 0 and 31
	alt := make([]byte, 16)                              // Q4_0: bytes 0x0F, 0xF0, 0x0F, …
	q41 := make([]byte, 16)                              // Q4_1: byte j = j | (15−j)<<4
	q80 := make([]byte, 32)                              // Q8_0: j−16, and −128 at 0
	for j := range 16 {
		alt[j] = []byte{0x0F, 0xF0}[j%2]
		q41[j] = byte(j | (15-j)<<4)
	}
	for j := range 32 {
		q80[j] = byte(int8(j - 16))
	}
	q80[0] = 0x80
	cat := func(parts ...[]byte) (b []byte) {
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	cases := []struct {
		k    Block32
		blk  []byte
		want float32
	}{
		// d = 2: element j < 16 is 2·(15−8) = 14 (j even) or 2·(0−8) = −16
		// (odd); element 16+j the other way round. 14·127 + 7·14 (j = 2…14)
		// − 8·16 (odd j < 16) − 8·16 + 8·14 (16…31) = 1732.
		{Q4_0, cat(h(two), alt), 1732},
		// d = 0.5, m = 2: element j is 0.5·j + 2, element 16+j is
		// 0.5·(15−j) + 2. 2·127 + (0.5·120 + 15·2) + (0.5·120 + 16·2) = 436.
		{Q4_1, cat(h(half), h(two), q41), 436},
		// d = 0.5, nibbles 1 (low) and 2 (high), fifth bits at 0 and 31:
		// elements 0.5·(17−16) = 0.5, then 0.5·(1−16) = −7.5 (1…15),
		// 0.5·(2−16) = −7 (16…30), 0.5·(18−16) = 1 (31).
		// 0.5·127 − 7.5·15 − 7·15 + 1 = −153.
		{Q5_0, cat(h(half), qh, rep(0x21, 16)), -153},
		// As Q5_0 with m = −1 and unsigned quants: 0.5·17 − 1 = 7.5, then
		// −0.5 (1…15), 0 (16…30), 0.5·18 − 1 = 8 (31).
		// 7.5·127 − 0.5·15 + 8 = 953.
		{Q5_1, cat(h(half), h(minusOne), qh, rep(0x21, 16)), 953},
		// d = 0.5: element 0 is 0.5·(−128) = −64, element j is 0.5·(j−16),
		// which sum to zero over j = 1…31. −64·127 = −8128.
		{Q8_0, cat(h(half), q80), -8128},
	}
	const T, nb, out = 5, 3, 2
	x := make([]float32, T*32*nb)
	for i := range x {
		x[i] = 1
		if i%32 == 0 {
			x[i] = 127
		}
	}
	numtest.EachImpl(t, "matmul.block32", func(t *testing.T) {
		for _, c := range cases {
			if len(c.blk) != c.k.BlockBytes() {
				t.Fatalf("%s: hand block of %d bytes, want %d", b32Names[c.k], len(c.blk), c.k.BlockBytes())
			}
			var w []byte
			for range nb * out {
				w = append(w, c.blk...)
			}
			dst := make([]float32, T*out)
			MatMulBlock32(dst, x, w, c.k, T, 32*nb, out)
			for i, v := range dst {
				if v != 3*c.want {
					t.Errorf("%s: dst[%d] = %v, want %v", b32Names[c.k], i, v, 3*c.want)
				}
			}
		}
	})
}

// TestBlock32TokensBitwise checks that the multi-token kernels give the
// same bits as one call per token, on every path.
func TestBlock32TokensBitwise(t *testing.T) {
	numtest.EachImpl(t, "matmul.block32", func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, k := range b32Layouts {
			for _, c := range []qCase{{4, 96, 7}, {9, 2080, 5}, {2, 64, 3}} {
				w := randB32(k, c.in, c.out, r)
				x := randActs(c.T, c.in, r)
				multi, single := make([]float32, c.T*c.out), make([]float32, c.T*c.out)
				MatMulBlock32(multi, x, w, k, c.T, c.in, c.out)
				restore := cpu.Select("matmul.ggml.tokens", "")
				MatMulBlock32(single, x, w, k, c.T, c.in, c.out)
				restore()
				for i := range multi {
					if math.Float32bits(multi[i]) != math.Float32bits(single[i]) {
						t.Fatalf("%s T%d in%d: dst[%d] = %v with several tokens per call, %v with one", b32Names[k], c.T, c.in, i, multi[i], single[i])
					}
				}
			}
		}
	})
}

// TestQuantizeB32Act checks the activation records: xq = x/dx rounded to
// nearest (|x − dx·xq| ≤ dx/2), ±127 at each block's largest |x|, sx =
// dx·Σxq, and a zero record for a zero block.
func TestQuantizeB32Act(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const nb = 6
	x := randActs(1, 32*nb, r) // block 1 is all zero
	rec := make([]byte, b32RecBytes(nb))
	quantizeB32Act(rec, x)
	for b := range nb {
		p := rec[32*nb+8*b:]
		dx := math.Float32frombits(binary.LittleEndian.Uint32(p))
		sx := math.Float32frombits(binary.LittleEndian.Uint32(p[4:]))
		var amax float32
		for _, v := range x[32*b : 32*b+32] {
			amax = max(amax, abs32(v))
		}
		if dx != amax/127 {
			t.Fatalf("block %d: dx = %g, want %g", b, dx, amax/127)
		}
		s := 0
		for i := range 32 {
			k := 32*b + i
			q := int8(rec[k])
			s += int(q)
			if d := math.Abs(float64(x[k]) - float64(dx)*float64(q)); d > float64(dx)/2*(1+1e-5) {
				t.Fatalf("x[%d] = %g, xq %d, dx %g: off by %g", k, x[k], q, dx, d)
			}
			if abs32(x[k]) == amax && amax > 0 && q != 127 && q != -127 {
				t.Fatalf("block %d: largest |x| quantized to %d", b, q)
			}
		}
		if sx != dx*float32(s) {
			t.Fatalf("block %d: sx = %g, want %g", b, sx, dx*float32(s))
		}
		if b == 1 && (dx != 0 || s != 0) {
			t.Fatalf("zero block: dx %g, Σxq %d", dx, s)
		}
	}
}

// BenchmarkMatMulBlock32 measures decode-shaped products (T = 1, 4096 →
// 4096, 9–17 MB of weights: more than the caches) on every path, and
// prefill-shaped ones (T = 64, 4096 → 1024) with and without the
// multi-token kernels; bytes/s is weight bytes read per product.
func BenchmarkMatMulBlock32(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	paths := []string{""}
	for _, im := range cpu.Impls("matmul.block32") {
		if im.Available {
			paths = append(paths, im.Name)
		}
	}
	for _, s := range []struct {
		name    string
		T, out  int
		tokens  []string
		layouts []Block32
	}{
		{"decode", 1, 4096, []string{"multi"}, b32Layouts},
		{"prefill", 64, 1024, []string{"multi", ""}, []Block32{Q5_0, Q5_1}},
	} {
		const in = 4096
		x := randActs(s.T, in, r)
		dst := make([]float32, s.T*s.out)
		for _, k := range s.layouts {
			w := randB32(k, in, s.out, r)
			for _, p := range paths {
				for _, tk := range s.tokens {
					restore := cpu.Select("matmul.block32", p)
					restoreT := cpu.Select("matmul.ggml.tokens", tk)
					b.Run(fmt.Sprintf("%s/%s/%s/tokens=%s", s.name, b32Names[k], cmp.Or(p, "generic"), cmp.Or(tk, "one")), func(b *testing.B) {
						b.SetBytes(int64(len(w)))
						for b.Loop() {
							MatMulBlock32(dst, x, w, k, s.T, in, s.out)
						}
					})
					restoreT()
					restore()
				}
			}
		}
	}
}
