package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lightninglm/lightning/internal/numtest"
)

// withSerialBytes makes Group.Run treat n bytes as the serial threshold
// for the rest of the test (0: always split over the pool).
func withSerialBytes(t *testing.T, n int) {
	t.Helper()
	calibrateSerial()
	serialCut.mu.Lock()
	old := serialCut.bytes
	serialCut.bytes = n
	serialCut.mu.Unlock()
	t.Cleanup(func() {
		serialCut.mu.Lock()
		serialCut.bytes = old
		serialCut.mu.Unlock()
	})
}

// groupProduct is one product of a group test: solo runs it with the
// package-level function, add queues it in g.
type groupProduct struct {
	name     string
	out      int
	T        int
	solo     func(dst []float32)
	add      func(g *Group, dst []float32)
	dst, ref []float32
}

// groupProducts builds products of every weight type over shapes that take
// the skinny kernels (T = 1, 3), their larger-T blocks (T = 20) and the
// packed GEMM (T = 130), with output counts that leave partial row groups.
func groupProducts(seed uint64) []*groupProduct {
	r := rand.New(rand.NewPCG(seed, 17))
	var ps []*groupProduct
	addMM := func(T, in, out int) {
		x, wf := numtest.Rand(T*in, r.Uint64()), numtest.Rand(out*in, r.Uint64())
		wh := make([]uint16, len(wf))
		F32ToBF16(wh, wf)
		for _, k := range []struct {
			name string
			solo func(dst []float32)
			add  func(g *Group, dst []float32)
		}{
			{"f32", func(d []float32) { MatMulF32(d, x, wf, T, in, out) }, func(g *Group, d []float32) { g.MatMulF32(d, x, wf, T, in, out) }},
			{"bf16", func(d []float32) { MatMulBF16(d, x, wh, T, in, out) }, func(g *Group, d []float32) { g.MatMulBF16(d, x, wh, T, in, out) }},
			{"f16", func(d []float32) { MatMulF16(d, x, wh, T, in, out) }, func(g *Group, d []float32) { g.MatMulF16(d, x, wh, T, in, out) }},
			{"bf16dot", func(d []float32) { MatMulBF16Dot(d, x, wh, T, in, out) }, func(g *Group, d []float32) { g.MatMulBF16Dot(d, x, wh, T, in, out) }},
		} {
			ps = append(ps, &groupProduct{name: fmt.Sprintf("%s T%d %d→%d", k.name, T, in, out), out: out, T: T, solo: k.solo, add: k.add})
		}
	}
	addQ := func(f qFormat, T, in, out int) {
		w := randQWeights(f, in, out, r)
		x := randActs(T, in, r)
		c := qCase{T, in, out}
		solo := func(d []float32) { runQ(f, w, d, x, c) }
		add := func(g *Group, d []float32) {
			switch f.kind {
			case q8Row:
				g.MatMulQ8(d, x, w.q, w.rs, T, in, out)
			case q8Blk:
				g.MatMulQ8B32(d, x, w.q, w.sc, f.bf16, T, in, out)
			default:
				g.MatMulQ4(d, x, w.q, w.sc, w.mn, f.group, f.bf16, T, in, out)
			}
		}
		ps = append(ps, &groupProduct{name: fmt.Sprintf("%s T%d %d→%d", f.name, T, in, out), out: out, T: T, solo: solo, add: add})
	}
	addKQ := func(k KQuant, T, in, out int) {
		w, x := randKQ(k, in, out, r), randActs(T, in, r)
		ps = append(ps, &groupProduct{name: fmt.Sprintf("kquant%d T%d %d→%d", k, T, in, out), out: out, T: T,
			solo: func(d []float32) { MatMulKQuant(d, x, w, k, T, in, out) },
			add:  func(g *Group, d []float32) { g.MatMulKQuant(d, x, w, k, T, in, out) }})
	}
	addB32 := func(k Block32, T, in, out int) {
		w, x := randB32(k, in, out, r), randActs(T, in, r)
		ps = append(ps, &groupProduct{name: fmt.Sprintf("block32 %d T%d %d→%d", k, T, in, out), out: out, T: T,
			solo: func(d []float32) { MatMulBlock32(d, x, w, k, T, in, out) },
			add:  func(g *Group, d []float32) { g.MatMulBlock32(d, x, w, k, T, in, out) }})
	}
	for _, s := range []struct{ T, in, out int }{{1, 256, 75}, {1, 100, 33}, {3, 64, 29}, {20, 96, 41}, {130, 64, 70}} {
		addMM(s.T, s.in, s.out)
	}
	for _, f := range []qFormat{qFormats[0], qFormats[1], qFormats[4], qFormats[7]} {
		addQ(f, 1, 256, 37)
		addQ(f, 5, 128, 22)
	}
	addKQ(Q4K, 1, 512, 19)
	addKQ(Q6K, 2, 256, 13)
	addB32(Q5_0, 1, 96, 21)
	addB32(Q5_1, 6, 256, 9)
	for _, p := range ps {
		p.dst, p.ref = make([]float32, p.T*p.out), make([]float32, p.T*p.out)
	}
	return ps
}

// TestGroupEqualsSolo checks that products run in a group give bitwise the
// results of the package-level functions, on every kernel path, for 1–4
// threads, whether the group splits over the pool or runs serially, and
// that a split Run is exactly one pool dispatch.
func TestGroupEqualsSolo(t *testing.T) {
	for _, kernel := range []string{"matmul", "matmul.q8", "matmul.kquant"} {
		numtest.EachImpl(t, kernel, func(t *testing.T) {
			for threads := 1; threads <= 4; threads++ {
				for _, serial := range []int{0, 1 << 40} {
					t.Run(fmt.Sprintf("threads%d/serial%v", threads, serial > 0), func(t *testing.T) {
						withThreads(t, threads)
						withSerialBytes(t, serial)
						ps := groupProducts(uint64(threads))
						for _, p := range ps {
							p.solo(p.ref)
						}
						// Several group sizes: all at once, and runs of a few.
						for _, size := range []int{len(ps), 3, 1} {
							var g Group
							for i := 0; i < len(ps); i += size {
								batch := ps[i:min(i+size, len(ps))]
								for _, p := range batch {
									for k := range p.dst {
										p.dst[k] = float32(math.NaN())
									}
									p.add(&g, p.dst)
								}
								d0 := PoolDispatches()
								g.Run()
								wantD := uint64(1)
								if threads == 1 || serial > 0 {
									wantD = 0
								}
								if d := PoolDispatches() - d0; d != wantD {
									t.Errorf("group of %d: Run made %d pool dispatches, want %d", len(batch), d, wantD)
								}
								if g.Len() != 0 {
									t.Fatalf("Run left %d products queued", g.Len())
								}
							}
							for _, p := range ps {
								for k := range p.ref {
									if math.Float32bits(p.dst[k]) != math.Float32bits(p.ref[k]) {
										t.Errorf("groups of %d: %s: dst[%d] = %g, solo %g", size, p.name, k, p.dst[k], p.ref[k])
										break
									}
								}
							}
						}
					})
				}
			}
		})
	}
}

// TestGroupNil checks that a nil Group runs each product at once.
func TestGroupNil(t *testing.T) {
	ps := groupProducts(9)
	var g *Group
	for _, p := range ps {
		p.solo(p.ref)
		p.add(g, p.dst)
		for k := range p.ref {
			if math.Float32bits(p.dst[k]) != math.Float32bits(p.ref[k]) {
				t.Fatalf("%s: dst[%d] = %g, solo %g", p.name, k, p.dst[k], p.ref[k])
			}
		}
	}
	g.Run() // a no-op
}

// TestGroupCuts checks the shares of a split: they cover every row of
// every product once, cut at multiples of each product's alignment, and
// hold about equal work.
func TestGroupCuts(t *testing.T) {
	for _, tc := range []struct {
		t     int
		items []groupItem
	}{
		{2, []groupItem{{n: 3072, align: 10, rowWork: 1024}, {n: 1024, align: 10, rowWork: 1024}}},
		{3, []groupItem{{n: 1024, align: 5, rowWork: 300}, {n: 1024, align: 5, rowWork: 50}, {n: 7, align: 3, rowWork: 9}}},
		{4, []groupItem{{n: 5, align: 10, rowWork: 1}}},
		{8, []groupItem{{n: 100, align: 1, rowWork: 1}, {n: 1, align: 1, rowWork: 1000}}},
	} {
		g := &Group{items: tc.items}
		work := 0
		seen := make([][]int, len(tc.items))
		for i, it := range tc.items {
			work += it.n * it.rowWork
			seen[i] = make([]int, it.n)
			g.items[i].run = func(lo, hi int) {
				if lo%tc.items[i].align != 0 || (hi%tc.items[i].align != 0 && hi != tc.items[i].n) {
					t.Errorf("item %d: piece [%d, %d) not aligned to %d", i, lo, hi, tc.items[i].align)
				}
				for r := lo; r < hi; r++ {
					seen[i][r]++
				}
			}
		}
		g.cutShares(tc.t, work)
		most := 0
		for k := range tc.t {
			w := 0
			a, b := g.cuts[k], g.cuts[k+1]
			for i := a.item; i <= b.item && i < len(g.items); i++ {
				r0, r1 := 0, g.items[i].n
				if i == a.item {
					r0 = a.row
				}
				if i == b.item {
					r1 = b.row
				}
				w += max(r1-r0, 0) * g.items[i].rowWork
			}
			most = max(most, w)
			g.runShares(k, k+1)
		}
		for i := range seen {
			for r, c := range seen[i] {
				if c != 1 {
					t.Fatalf("t=%d: item %d row %d run %d times", tc.t, i, r, c)
				}
			}
		}
		// The largest share exceeds the mean by at most one aligned piece
		// of the costliest item on either side of a cut.
		slack := 0
		for _, it := range tc.items {
			slack = max(slack, it.align*it.rowWork)
		}
		if most > work/tc.t+slack {
			t.Errorf("t=%d: largest share %d, mean %d (slack %d)", tc.t, most, work/tc.t, slack)
		}
	}
}

// TestGroupNoAlloc checks that a warm group of products allocates nothing.
func TestGroupNoAlloc(t *testing.T) {
	withSerialBytes(t, 0)
	const in, out = 96, 64
	x, w := numtest.Rand(in, 1), numtest.Rand(in*out, 2)
	wh := make([]uint16, in*out)
	F32ToBF16(wh, w)
	d1, d2 := make([]float32, out), make([]float32, out)
	var g Group
	if n := testing.AllocsPerRun(20, func() {
		g.MatMulF32(d1, x, w, 1, in, out)
		g.MatMulBF16(d2, x, wh, 1, in, out)
		g.Run()
	}); n != 0 {
		t.Errorf("%v allocations per group run, want 0", n)
	}
}

// BenchmarkDispatch reports the measured dispatch cost, one thread's read
// rate and the serial threshold derived from them.
func BenchmarkDispatch(b *testing.B) {
	for range b.N {
		serialCut.mu.Lock()
		serialCut.threads = 0 // measure again
		serialCut.mu.Unlock()
		cost, rate, bytes := DispatchCost()
		b.ReportMetric(float64(cost.Nanoseconds()), "ns/dispatch")
		b.ReportMetric(rate/1e9, "GB/s/thread")
		b.ReportMetric(float64(bytes), "serial-bytes")
	}
}

// TestProductNestedInParallelFor checks that a product large enough to
// split, called from inside a ParallelFor (as the MoE runs each thread's
// experts), runs on the calling thread instead of waiting for the pool.
func TestProductNestedInParallelFor(t *testing.T) {
	withThreads(t, 2)
	const T, in, out = 64, 256, 256
	x := numtest.Rand(T*in, 1)
	w := make([]uint16, in*out)
	for i, v := range numtest.Rand(in*out, 2) {
		w[i] = RoundBF16(v)
	}
	ref := make([]float32, T*out)
	MatMulBF16(ref, x, w, T, in, out)
	got := [2][]float32{make([]float32, T*out), make([]float32, T*out)}
	done := make(chan struct{})
	go func() {
		ParallelFor(2, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				MatMulBF16(got[i], x, w, T, in, out)
			}
		})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a product nested in ParallelFor did not return in 20 s")
	}
	for i := range got {
		for k := range ref {
			if math.Float32bits(got[i][k]) != math.Float32bits(ref[k]) {
				t.Fatalf("thread %d: dst[%d] = %g, alone %g", i, k, got[i][k], ref[k])
			}
		}
	}
}
