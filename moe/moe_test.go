package moe

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/tensor"
)

func f32Mat(t testing.TB, rows, cols int, v []float32) tensor.Mat {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	m, err := tensor.NewMat(rows, cols, quant.F32, b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func silu(x float64) float64 { return x / (1 + math.Exp(-x)) }

// TestRoute checks softmax → top-k → renormalise on a worked example and the
// lowest-id tie break.
func TestRoute(t *testing.T) {
	logits := []float32{0, float32(math.Log(3)), float32(math.Log(2)), float32(math.Log(3))} // p ∝ 1, 3, 2, 3
	ids := make([]int32, 2)
	w := make([]float32, 2)
	Route(logits, 1, 4, 2, ids, w)
	if ids[0] != 1 || ids[1] != 3 {
		t.Fatalf("ids %v, want [1 3] (tie to the lower id first)", ids)
	}
	if math.Abs(float64(w[0])-0.5) > 1e-6 || math.Abs(float64(w[1])-0.5) > 1e-6 {
		t.Errorf("weights %v, want [0.5 0.5]", w)
	}
	logits = []float32{0, float32(math.Log(3)), float32(math.Log(2)), 0}
	Route(logits, 1, 4, 2, ids, w)
	if ids[0] != 1 || ids[1] != 2 || math.Abs(float64(w[0])-0.6) > 1e-6 || math.Abs(float64(w[1])-0.4) > 1e-6 {
		t.Errorf("got %v %v, want [1 2] [0.6 0.4]", ids, w)
	}
}

// TestForwardAnalytic uses hand-built experts (tinygrad's idea): dim 1, ffn 1,
// expert e has w1 = w3 = 1 and w2 = e+1, so expert_e(x) = (e+1)·silu(x)·x.
func TestForwardAnalytic(t *testing.T) {
	experts := make([]Expert, 4)
	for e := range experts {
		experts[e] = Expert{W1: f32Mat(t, 1, 1, []float32{1}), W3: f32Mat(t, 1, 1, []float32{1}), W2: f32Mat(t, 1, 1, []float32{float32(e + 1)})}
	}
	h := []float32{1, 3}
	ids := []int32{0, 2, 3, 1}
	w := []float32{0.25, 0.75, 0.5, 0.5}
	out := make([]float32, 2)
	Forward(out, h, 2, 1, experts, ids, w, 2, NewScratch(2, 2, 1, 1, 4))
	want := []float64{(0.25*1 + 0.75*3) * silu(1) * 1, (0.5*4 + 0.5*2) * silu(3) * 3}
	for i := range want {
		if math.Abs(float64(out[i])-want[i]) > 1e-5*math.Abs(want[i]) {
			t.Errorf("token %d: %v, want %v", i, out[i], want[i])
		}
	}
}

// TestForwardEqualsPerToken checks the grouped computation against running
// each token's experts one by one in float64.
func TestForwardEqualsPerToken(t *testing.T) {
	const T, dim, ffn, E, K = 9, 8, 12, 5, 2
	r := rand.New(rand.NewPCG(7, 8))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	experts := make([]Expert, E)
	raw := make([][3][]float32, E)
	for e := range experts {
		raw[e] = [3][]float32{rnd(ffn * dim), rnd(ffn * dim), rnd(dim * ffn)}
		experts[e] = Expert{W1: f32Mat(t, ffn, dim, raw[e][0]), W3: f32Mat(t, ffn, dim, raw[e][1]), W2: f32Mat(t, dim, ffn, raw[e][2])}
	}
	h := rnd(T * dim)
	logits := rnd(T * E)
	ids := make([]int32, T*K)
	w := make([]float32, T*K)
	Route(logits, T, E, K, ids, w)
	out := make([]float32, T*dim)
	Forward(out, h, T, dim, experts, ids, w, K, NewScratch(T, K, dim, ffn, E))
	for tk := 0; tk < T; tk++ {
		want := make([]float64, dim)
		for j := 0; j < K; j++ {
			e := ids[tk*K+j]
			hid := make([]float64, ffn)
			for f := 0; f < ffn; f++ {
				var g, u float64
				for i := 0; i < dim; i++ {
					g += float64(raw[e][0][f*dim+i]) * float64(h[tk*dim+i])
					u += float64(raw[e][1][f*dim+i]) * float64(h[tk*dim+i])
				}
				hid[f] = silu(g) * u
			}
			for i := 0; i < dim; i++ {
				var y float64
				for f := 0; f < ffn; f++ {
					y += float64(raw[e][2][i*ffn+f]) * hid[f]
				}
				want[i] += float64(w[tk*K+j]) * y
			}
		}
		for i := range want {
			if math.Abs(float64(out[tk*dim+i])-want[i]) > 1e-4*(1+math.Abs(want[i])) {
				t.Errorf("token %d dim %d: %v, want %v", tk, i, out[tk*dim+i], want[i])
			}
		}
	}
}

// TestForwardGroupedEqualsSolo checks that running the experts' products
// in two grouped dispatches (Scratch.Group) gives bitwise the output of one
// dispatch per product, with an expert held elsewhere (no weights) skipped
// in both.
func TestForwardGroupedEqualsSolo(t *testing.T) {
	const T, dim, ffn, E, K = 6, 128, 256, 5, 2
	r := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	experts := make([]Expert, E)
	for e := range experts {
		if e == 3 {
			continue // held by another process
		}
		experts[e] = Expert{W1: f32Mat(t, ffn, dim, rnd(ffn*dim)), W3: f32Mat(t, ffn, dim, rnd(ffn*dim)), W2: f32Mat(t, dim, ffn, rnd(dim*ffn))}
	}
	h, logits := rnd(T*dim), rnd(T*E)
	ids, w := make([]int32, T*K), make([]float32, T*K)
	Route(logits, T, E, K, ids, w)
	solo, grouped := make([]float32, T*dim), make([]float32, T*dim)
	Forward(solo, h, T, dim, experts, ids, w, K, NewScratch(T, K, dim, ffn, E))
	s := NewScratch(T, K, dim, ffn, E)
	s.Group = new(kernels.Group)
	Forward(grouped, h, T, dim, experts, ids, w, K, s)
	for i := range solo {
		if math.Float32bits(solo[i]) != math.Float32bits(grouped[i]) {
			t.Fatalf("out[%d] = %v grouped, %v solo", i, grouped[i], solo[i])
		}
	}
}

// TestPlanShares checks how the token split deals rows to threads, on
// worked examples: experts 0, 2 and 3 with 300, 100 and 200 rows (600 in
// all; expert 1 unused), pieces of at least 97 rows.
func TestPlanShares(t *testing.T) {
	s := NewScratch(300, 2, 1, 1, 4)
	s.first[0], s.count[0] = 0, 300
	s.first[2], s.count[2] = 300, 100
	s.first[3], s.count[3] = 400, 200
	for _, c := range []struct {
		t    int
		want []segment // {share, expert, lo, hi}
	}{
		{1, []segment{{0, 0, 0, 300}, {0, 3, 400, 600}, {0, 2, 300, 400}}},
		{2, []segment{{0, 0, 0, 300}, {1, 3, 400, 600}, {1, 2, 300, 400}}},
		// 200 rows each: expert 0 fills share 0 and its rest goes to share 1.
		{3, []segment{{0, 0, 0, 200}, {1, 0, 200, 300}, {2, 3, 400, 600}, {1, 2, 300, 400}}},
		// 150 each: expert 3 would leave 50 rows, below 97, so it goes whole.
		{4, []segment{{0, 0, 0, 150}, {1, 0, 150, 300}, {2, 3, 400, 600}, {3, 2, 300, 400}}},
	} {
		s.used = append(s.used[:0], 0, 2, 3)
		s.planShares(c.t, 600, 97)
		if !slices.Equal(s.segs, c.want) {
			t.Errorf("%d shares: %v, want %v", c.t, s.segs, c.want)
		}
	}
}

// TestForwardByTokensEqualsColumns checks that the token split (one
// dispatch, an expert's rows cut between threads) gives bitwise the
// output of the column split, for f32 and bf16 experts, on 1 to 3 threads,
// with an expert held elsewhere skipped in both, and that it cuts an
// expert's rows only where both pieces keep the GEMM.
func TestForwardByTokensEqualsColumns(t *testing.T) {
	defer kernels.SetThreads(kernels.Threads())
	const T, dim, ffn, E, K = 500, 64, 96, 4, 2
	r := rand.New(rand.NewPCG(5, 6))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	bf16Mat := func(rows, cols int) tensor.Mat {
		b := make([]byte, 2*rows*cols)
		for i, x := range rnd(rows * cols) {
			binary.LittleEndian.PutUint16(b[2*i:], kernels.RoundBF16(x))
		}
		m, err := tensor.NewMat(rows, cols, quant.BF16, b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	h := rnd(T * dim)
	ids, w := make([]int32, T*K), make([]float32, T*K)
	// Experts 0–3 get 450, 350, 150 and 50 rows (3 is held elsewhere). On
	// 2 threads expert 2 could fill share 1 only by a cut that leaves 25
	// rows, too few to keep the GEMM, so it goes whole; on 3, expert 0 is
	// cut into 317 and 133 rows.
	for tk := range T {
		switch {
		case tk < 300:
			ids[tk*K], ids[tk*K+1] = 0, 1
		case tk < 450:
			ids[tk*K], ids[tk*K+1] = 0, 2
		default:
			ids[tk*K], ids[tk*K+1] = 1, 3
		}
		w[tk*K], w[tk*K+1] = 0.625, 0.375
	}
	for _, typ := range []string{"f32", "bf16"} {
		experts := make([]Expert, E)
		for e := range E - 1 {
			if typ == "f32" {
				experts[e] = Expert{W1: f32Mat(t, ffn, dim, rnd(ffn*dim)), W3: f32Mat(t, ffn, dim, rnd(ffn*dim)), W2: f32Mat(t, dim, ffn, rnd(dim*ffn))}
			} else {
				experts[e] = Expert{W1: bf16Mat(ffn, dim), W3: bf16Mat(ffn, dim), W2: bf16Mat(dim, ffn)}
			}
		}
		kernels.SetThreads(2)
		cols := NewScratch(T, K, dim, ffn, E)
		cols.Group, cols.ColumnSplit = new(kernels.Group), true
		want := make([]float32, T*dim)
		Forward(want, h, T, dim, experts, ids, w, K, cols)
		for _, threads := range []int{1, 2, 3} {
			kernels.SetThreads(threads)
			s := NewScratch(T, K, dim, ffn, E)
			s.Group = new(kernels.Group)
			got := make([]float32, T*dim)
			Forward(got, h, T, dim, experts, ids, w, K, s)
			if len(s.segs) == 0 {
				t.Fatalf("%s, %d threads: the token split was not taken", typ, threads)
			}
			minRows := experts[0].W1.SplitMinRows()
			for _, a := range s.segs {
				if a.hi-a.lo != s.count[a.e] && a.hi-a.lo < minRows {
					t.Errorf("%s, %d threads: segments %v: a piece of expert %d has fewer than %d rows", typ, threads, s.segs, a.e, minRows)
				}
			}
			if threads == 3 && len(s.segs) == len(s.used) {
				t.Errorf("%s: segments %v: no expert was cut", typ, s.segs)
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s, %d threads: out[%d] = %v by tokens, %v by columns", typ, threads, i, got[i], want[i])
				}
			}
		}
	}
}
