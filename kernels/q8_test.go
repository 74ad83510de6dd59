package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
)

// qCase is one quantized product shape.
type qCase struct{ T, in, out int }

// qCases cover single tokens and token groups with tails (T not a multiple
// of the 4 or 2 tokens a fast kernel takes at once), output tails (out not
// a multiple of 4), inputs shorter than one SIMD chunk, with a 32-wide tail
// (Q8 formats), spanning several 16-scale windows of every group size, and
// zero sizes.
var qCases = []qCase{
	{0, 64, 4}, {3, 64, 0}, {1, 64, 1}, {1, 64, 4}, {1, 128, 5}, {2, 192, 7}, {3, 256, 8},
	{4, 512, 4}, {5, 640, 9}, {1, 2048, 12}, {7, 1024, 6}, {8, 64, 3}, {17, 384, 13},
	{1, 4096, 8}, {2, 2112, 5},
}

// qFormat is one weight layout under test.
type qFormat struct {
	name  string
	kind  q8Kind
	group int
	mins  bool
	bf16  bool
}

var qFormats = []qFormat{
	{"q8", q8Row, 0, false, false},
	{"q8b32", q8Blk, 32, false, false},
	{"q8b32-bf16", q8Blk, 32, false, true},
	{"q4g32", q4Grp, 32, false, false},
	{"q4g64", q4Grp, 64, false, false},
	{"q4g128", q4Grp, 128, false, false},
	{"q4g32m", q4Grp, 32, true, false},
	{"q4g64m-bf16", q4Grp, 64, true, true},
	{"q4g128m", q4Grp, 128, true, false},
}

// qWeights holds random quantized weights of one format and their exact
// dequantized values.
type qWeights struct {
	q      []byte
	rs     []float32
	sc, mn []uint16
	deq    []float64 // [out, in]
}

func randQWeights(f qFormat, in, out int, r *rand.Rand) qWeights {
	var w qWeights
	w.deq = make([]float64, out*in)
	half := func(v float32) uint16 {
		if f.bf16 {
			return RoundBF16(v)
		}
		return FloatToHalf(v)
	}
	scale := func() float32 { return float32(math.Exp(r.NormFloat64())) * 0.01 }
	switch f.kind {
	case q8Row:
		w.q = make([]byte, out*in+3)[3:] // odd offset
		w.rs = make([]float32, out)
		for o := range out {
			w.rs[o] = scale()
			for k := range in {
				v := int8(r.IntN(255) - 127)
				w.q[o*in+k] = byte(v)
				w.deq[o*in+k] = float64(w.rs[o]) * float64(v)
			}
		}
	case q8Blk:
		w.q = make([]byte, out*in)
		w.sc = make([]uint16, out*in/32)
		for i := range w.sc {
			w.sc[i] = half(scale())
		}
		for o := range out {
			for k := range in {
				v := int8(r.IntN(255) - 127)
				w.q[o*in+k] = byte(v)
				w.deq[o*in+k] = float64(scaleAt(w.sc[o*in/32+k/32], f.bf16)) * float64(v)
			}
		}
	default:
		ng := in / f.group
		w.q = make([]byte, out*in/2+1)[1:]
		w.sc = make([]uint16, out*ng)
		for i := range w.sc {
			w.sc[i] = half(scale())
		}
		if f.mins {
			w.mn = make([]uint16, out*ng)
			for i := range w.mn {
				w.mn[i] = half(-8 * scale())
			}
		}
		for i := range out * in / 2 {
			w.q[i] = byte(r.IntN(256))
		}
		for o := range out {
			row := w.q[o*in/2:]
			for k := range in {
				s := float64(scaleAt(w.sc[o*ng+k/f.group], f.bf16))
				q := float64(q4At(row, k))
				if f.mins {
					w.deq[o*in+k] = s*q + float64(scaleAt(w.mn[o*ng+k/f.group], f.bf16))
				} else {
					w.deq[o*in+k] = s * (q - 8)
				}
			}
		}
	}
	return w
}

// randActs returns activations with a spread of block magnitudes, an
// all-zero block and a block with one outlier.
func randActs(T, in int, r *rand.Rand) []float32 {
	x := make([]float32, T*in)
	for t := range T {
		for b := 0; b*32 < in; b++ {
			mag := float32(math.Exp(2 * r.NormFloat64()))
			if b == 1 {
				mag = 0
			}
			for k := b * 32; k < min(b*32+32, in); k++ {
				x[t*in+k] = mag * float32(r.NormFloat64())
			}
			if b == 2 && b*32 < in {
				x[t*in+b*32+5] *= 100
			}
		}
	}
	return x
}

func runQ(f qFormat, w qWeights, dst, x []float32, c qCase) {
	switch f.kind {
	case q8Row:
		MatMulQ8(dst, x, w.q, w.rs, c.T, c.in, c.out)
	case q8Blk:
		MatMulQ8B32(dst, x, w.q, w.sc, f.bf16, c.T, c.in, c.out)
	default:
		MatMulQ4(dst, x, w.q, w.sc, w.mn, f.group, f.bf16, c.T, c.in, c.out)
	}
}

// TestMatMulQ checks every quantized format on every path against a float64
// product of the dequantized weights and the dequantized activations. The
// fast paths offset the quants to unsigned bytes and take the offset out
// later, so their float32 sums run over terms up to |s·dx·(|q|+128)·xq| (and
// the mins' terms): the tolerance is DotTol over those magnitudes.
func TestMatMulQ(t *testing.T) {
	numtest.EachImpl(t, "matmul.q8", func(t *testing.T) {
		for fi, f := range qFormats {
			for ci, c := range qCases {
				if f.kind == q4Grp && (c.in%64 != 0 || c.in%f.group != 0) {
					continue
				}
				t.Run(fmt.Sprintf("%s/T%d_in%d_out%d", f.name, c.T, c.in, c.out), func(t *testing.T) {
					r := rand.New(rand.NewPCG(uint64(fi), uint64(ci)))
					w := randQWeights(f, c.in, c.out, r)
					x := numtest.Offset(randActs(c.T, c.in, r), 1+ci%3)
					dst, check := numtest.Guarded(t, c.T*c.out, 19)
					for i := range dst {
						dst[i] = float32(math.NaN())
					}
					runQ(f, w, dst, x, c)
					check()
					bad := 0
					pair := f.kind == q4Grp && f.group >= 64 // activations in blocks of 64
					for tt := range c.T {
						xq, dx := refActs(x[tt*c.in:(tt+1)*c.in], pair)
						for o := range c.out {
							var want float64
							for k := range c.in {
								want += w.deq[o*c.in+k] * float64(dx[k/32]) * float64(xq[k])
							}
							tol := numtest.DotTol(c.in, qAbsBound(f, w, dx, xq, o, c.in))
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
}

// refActs quantizes one row of activations as the kernels do (in blocks
// of 64 with pair) and returns the int8 values and the per-block scales.
func refActs(x []float32, pair bool) ([]int8, []float32) {
	inPad := (len(x) + 63) &^ 63
	j := &q8Job{lay: actLayout{U: 64, pair: pair}, inPad: inPad, rec: make([]float32, inPad)}
	quantizeActRow(recBytes(j.rec), x, j.lay)
	xq, dx := make([]int8, inPad), make([]float32, inPad/32)
	for k := range xq {
		xq[k] = j.xqAt(0, k)
	}
	for b := range dx {
		dx[b] = j.dxAt(0, b)
	}
	return xq, dx
}

// qAbsBound returns Σ_k |dx·xq[k]|·(|s|·(|q[k]|+128) + |m|) for row o: the
// largest terms any path's float32 sums see.
func qAbsBound(f qFormat, w qWeights, dx []float32, xq []int8, o, in int) float64 {
	var abs float64
	for k := range in {
		xv := math.Abs(float64(dx[k/32]) * float64(xq[k]))
		var s, q, m float64
		switch f.kind {
		case q8Row:
			s, q = float64(w.rs[o]), float64(int8(w.q[o*in+k]))
		case q8Blk:
			s, q = float64(scaleAt(w.sc[o*in/32+k/32], f.bf16)), float64(int8(w.q[o*in+k]))
		default:
			g := o*in/f.group + k/f.group
			s, q = float64(scaleAt(w.sc[g], f.bf16)), float64(q4At(w.q[o*in/2:], k))
			if f.mins {
				m = float64(scaleAt(w.mn[g], f.bf16))
			}
		}
		abs += xv * (math.Abs(s)*(math.Abs(q)+128) + math.Abs(m))
	}
	return abs
}

// TestQuantizeActRow checks the activation record against its definition
// for every layout: xq = RNE(x·127/amax) per block of 32 (64 with pair),
// dx = amax/127, so |x − dx·xq| ≤ dx/2 (plus the rounding of the scale),
// and the L and ef lanes hold −o·Σ and dx·Σ of their 4 inputs (with perm
// and pair, of their 4 inputs and of the paired block's 4, in the first
// block's lanes).
func TestQuantizeActRow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, lay := range []actLayout{{U: 64}, {U: 32}, {U: 128, perm: true}, {U: 64, pair: true}, {U: 32, pair: true}, {U: 128, perm: true, pair: true}} {
		lay.o = 8
		for _, n := range []int{1, 31, 32, 33, 64, 100, 1000} {
			x := randActs(1, n, r)
			pad := (n + 63) &^ 63
			if lay.perm {
				pad = (n + 127) &^ 127
			}
			j := &q8Job{lay: lay, inPad: pad, rec: make([]float32, pad)}
			rec := recBytes(j.rec)
			quantizeActRow(rec, x, lay)
			ab := 32
			if lay.pair {
				ab = 64
			}
			for k := range pad {
				d, q := j.dxAt(0, k/32), j.xqAt(0, k)
				if k >= n {
					if q != 0 {
						t.Fatalf("%+v n=%d: xq[%d] = %d past the end, want 0", lay, n, k, q)
					}
					continue
				}
				var amax float32
				for _, v := range x[k/ab*ab : min(k/ab*ab+ab, n)] {
					amax = max(amax, abs32(v))
				}
				if d != amax/127 {
					t.Fatalf("%+v n=%d k=%d: dx = %g, want %g", lay, n, k, d, amax/127)
				}
				if err := math.Abs(float64(x[k]) - float64(d)*float64(q)); err > float64(d)*(0.5+1e-5) {
					t.Errorf("%+v n=%d k=%d: x=%g, dx·xq=%g (error %g > dx/2)", lay, n, k, x[k], d*float32(q), err)
				}
			}
			sum := func(k int) int32 {
				var s int32
				for i := k; i < k+4; i++ {
					s += int32(j.xqAt(0, i))
				}
				return s
			}
			for l := 0; l < pad/4; l++ { // lane l of the whole row: inputs 4l..4l+3
				k := 4 * l
				u, off := recPos(k, lay)
				li := off/4 + l%8
				s := sum(k)
				if lay.pair && lay.perm { // first block of a pair: both blocks' sums; second: none
					if k/32%2 == 0 {
						s += sum(k + 32)
					} else {
						s = 0
					}
				}
				L := int32(binary.LittleEndian.Uint32(rec[4*lay.U*u+2*lay.U+4*li:]))
				ef := math.Float32frombits(binary.LittleEndian.Uint32(rec[4*lay.U*u+3*lay.U+4*li:]))
				if L != -8*s || ef != j.dxAt(0, k/32)*float32(s) {
					t.Errorf("%+v n=%d lane %d: L=%d ef=%g, want %d and %g", lay, n, l, L, ef, -8*s, j.dxAt(0, k/32)*float32(s))
				}
			}
		}
	}
}

func TestMatMulQNoAlloc(t *testing.T) {
	const in, out = 256, 64
	r := rand.New(rand.NewPCG(3, 4))
	ws := make([]qWeights, len(qFormats))
	for i, f := range qFormats {
		ws[i] = randQWeights(f, in, out, r)
	}
	x := randActs(40, in, r)
	dst := make([]float32, 40*out)
	for _, T := range []int{1, 4, 40} {
		if n := testing.AllocsPerRun(10, func() {
			for i, f := range qFormats {
				runQ(f, ws[i], dst, x, qCase{T, in, out})
			}
		}); n != 0 {
			t.Errorf("T=%d: %v allocations per call, want 0", T, n)
		}
	}
}

// BenchmarkQ8Decode times single-token products (decode) over a working
// set of 1 GiB of weights, far beyond the caches (260 MB of L3 on the dev
// machine), so the figure is the DRAM-bound rate: GB/s of weight bytes
// (scales included), beside bf16 for the same shape. -benchtime=20x or
// more; CPU time is shared, repeat and compare.
func BenchmarkQ8Decode(b *testing.B) {
	const in, out = 2048, 2048
	const total = 1 << 30
	x := randActs(1, in, rand.New(rand.NewPCG(5, 5)))
	dst := make([]float32, out)
	r := rand.New(rand.NewPCG(6, 6))
	for _, f := range append([]qFormat{{name: "bf16"}}, qFormats...) {
		b.Run(f.name, func(b *testing.B) {
			var run []func()
			var bytes int
			if f.name == "bf16" {
				w := make([]uint16, in*out)
				for i := range w {
					w[i] = RoundBF16(float32(r.NormFloat64()))
				}
				bytes = 2 * in * out
				for range total / bytes {
					wc := append([]uint16(nil), w...)
					run = append(run, func() { MatMulBF16(dst, x, wc, 1, in, out) })
				}
			} else {
				w := randQWeights(f, in, out, r)
				w.deq = nil
				bytes = len(w.q) + 4*len(w.rs) + 2*len(w.sc) + 2*len(w.mn)
				for range total / bytes {
					wc := qWeights{q: append([]byte(nil), w.q...), rs: w.rs, sc: append([]uint16(nil), w.sc...), mn: append([]uint16(nil), w.mn...)}
					if w.mn == nil {
						wc.mn = nil
					}
					run = append(run, func() { runQ(f, wc, dst, x, qCase{1, in, out}) })
				}
			}
			b.SetBytes(int64(bytes))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				run[i%len(run)]()
			}
		})
	}
}
