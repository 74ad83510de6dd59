package dist

import (
	"encoding/json"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

// tinyA is the golden tiny-a checkpoint (8 layers, 4 experts top-2, dim 64).
const tinyA = "../model/minimax01/testdata/golden/tiny-a"

// goldenTol is the golden tolerance of the issue; the distributed path
// differs from the single process only in the order of the ≤ topK additions
// of the MoE sum (docs/distributed.md), orders of magnitude below it.
const goldenTol = 2e-4

// testMaxT is small so that the longer prompts span several steps.
const testMaxT = 128

func TestParsePlan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Plan
		err  string
	}{
		{"pp=2", Plan{PP: 2, EP: 1, SP: 1}, ""},
		{"ep=4", Plan{PP: 1, EP: 4, SP: 1}, ""},
		{"ep=2, pp=3", Plan{PP: 3, EP: 2, SP: 1}, ""},
		{"sp=1,pp=2", Plan{PP: 2, EP: 1, SP: 1}, ""},
		{"sp=2", Plan{PP: 1, EP: 1, SP: 2}, ""},
		{"pp=2,sp=4", Plan{}, "not yet supported"},
		{"sp=2,ep=2", Plan{}, "not yet supported"},
		{"", Plan{}, "empty plan"},
		{"pp=0", Plan{}, "N ≥ 1"},
		{"pp=2,pp=2", Plan{}, "twice"},
		{"tp=2", Plan{}, "unknown key"},
		{"pp2", Plan{}, "KEY=N"},
	} {
		got, err := ParsePlan(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePlan(%q) error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePlan(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if back, err := ParsePlan(got.String()); err != nil || back != got {
			t.Errorf("ParsePlan(%q.String() = %q) = %+v, %v", tc.in, got.String(), back, err)
		}
	}
	if _, err := ParsePlan("sp=2,pp=2"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("sp=2,pp=2: %v, want ErrNotSupported", err)
	}
}

// TestPartsPartition checks that the hub and the workers of each plan hold
// every tensor of the checkpoint exactly once, except a stage's attention
// side, which only its leader holds.
func TestPartsPartition(t *testing.T) {
	ck, err := safetensors.OpenCheckpoint(tinyA)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	c, err := minimax01.LoadConfig(tinyA)
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range []string{"pp=2", "ep=2", "pp=2,ep=2", "pp=3,ep=3", "pp=8,ep=4"} {
		plan, _ := ParsePlan(ps)
		parts := []minimax01.Part{HubPart}
		for r := 0; r < plan.Workers(); r++ {
			p, err := plan.Part(c, r)
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, p)
		}
		for _, name := range ck.Names() {
			n := 0
			for i := range parts {
				if parts[i].Holds(name) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("plan %s: %s held by %d processes, want 1", ps, name, n)
			}
		}
	}
	if _, err := (Plan{PP: 9, EP: 1, SP: 1}).Part(c, 0); err == nil {
		t.Error("pp=9 over 8 layers accepted")
	}
}

// TestMemoryAddsUp checks, on the real MiniMax-Text-01 shape, that the
// per-process weight bytes of a plan add up to the whole model's, in bf16
// and in q8.
func TestMemoryAddsUp(t *testing.T) {
	c, err := minimax01.PresetConfig("minimax-text-01")
	if err != nil {
		t.Fatal(err)
	}
	q8 := minimax01.DefaultQuantSpec(quant.Q8)
	for _, q := range []*minimax01.QuantSpec{nil, &q8} {
		whole := c.PartBytes(nil, quant.BF16, q)
		for _, ps := range []string{"pp=4", "pp=8", "pp=2,ep=4"} {
			plan, _ := ParsePlan(ps)
			mem, err := plan.Memory(c, quant.BF16, q)
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, m := range mem {
				sum += m.WeightBytes
			}
			if sum != whole {
				t.Errorf("plan %s (quant %v): processes hold %d bytes, the model %d", ps, q != nil, sum, whole)
			}
		}
	}
	// The bf16 checkpoint is 2 bytes per parameter except the F32 routers.
	total, _ := c.Params()
	router := int64(c.Layers * c.Experts * c.Dim)
	if got, want := c.PartBytes(nil, quant.BF16, nil), 2*(total-router)+4*router; got != want {
		t.Errorf("bf16 bytes %d, want %d from Config.Params", got, want)
	}
}

type prompts struct {
	Prompts map[string][]int32 `json:"prompts"`
}

func loadPrompts(t *testing.T, names ...string) [][]int32 {
	return loadPromptsOf(t, tinyA, names...)
}

func loadPromptsOf(t *testing.T, dir string, names ...string) [][]int32 {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p prompts
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	var out [][]int32
	for _, n := range names {
		out = append(out, p.Prompts[n])
	}
	return out
}

// startWorkers runs the workers of plan for tiny-a in this process, each as
// its own gRPC server on a loopback port, and returns their addresses.
func startWorkers(t testing.TB, plan Plan, sec Security) []string {
	t.Helper()
	return startWorkersOf(t, tinyA, plan, sec)
}

// startWorkersOf is startWorkers for the model in dir.
func startWorkersOf(t testing.TB, dir string, plan Plan, sec Security) []string {
	t.Helper()
	return startQuantWorkers(t, dir, plan, sec, nil)
}

// startQuantWorkers is startWorkersOf with the weights quantized at load
// by q (nil: float).
func startQuantWorkers(t testing.TB, dir string, plan Plan, sec Security, q *minimax01.QuantSpec) []string {
	t.Helper()
	c, err := minimax01.LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for r := 0; r < plan.Workers(); r++ {
		part, err := plan.Part(c, r)
		if err != nil {
			t.Fatal(err)
		}
		m, err := minimax01.Load(dir, minimax01.Options{Part: &part, MaxBatchTokens: testMaxT, Quant: q})
		if err != nil {
			t.Fatal(err)
		}
		w, err := NewWorker(m, plan, r, sec)
		if err != nil {
			t.Fatal(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go w.Serve(lis)
		t.Cleanup(func() { w.Stop(); m.Close() })
		addrs = append(addrs, lis.Addr().String())
	}
	return addrs
}

func loadEnds(t testing.TB) *minimax01.Model {
	t.Helper()
	return loadEndsOf(t, tinyA)
}

func loadEndsOf(t testing.TB, dir string) *minimax01.Model {
	t.Helper()
	return loadQuantEnds(t, dir, nil)
}

// loadQuantEnds is loadEndsOf with the weights quantized at load by q
// (nil: float).
func loadQuantEnds(t testing.TB, dir string, q *minimax01.QuantSpec) *minimax01.Model {
	t.Helper()
	m, err := minimax01.Load(dir, minimax01.Options{Part: &HubPart, MaxBatchTokens: testMaxT, Quant: q})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// run feeds prompt then greedily generates n tokens, one Forward each; it
// returns the prompt's logits at every position, each decode step's
// logits, and the generated ids.
func run(m model.Model, prompt []int32, n int) (logits []float32, gen []int32) {
	V := m.Info().VocabSize
	st := m.NewState()
	logits = make([]float32, len(prompt)*V)
	m.Forward([]model.Seq{{State: st, Tokens: prompt, Logits: model.LogitsAll}}, logits)
	last := logits[len(logits)-V:]
	for range n {
		id := int32(argmax(last))
		gen = append(gen, id)
		next := make([]float32, V)
		m.Forward([]model.Seq{{State: st, Tokens: []int32{id}, Logits: model.LogitsLast}}, next)
		logits = append(logits, next...)
		last = next
	}
	return logits, gen
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

const testToken = "test-token-0123456789"

// TestPlansMatchSingleProcess runs the golden prompts through pp=2, ep=2
// and pp=2×ep=2 and compares logits and greedy tokens with one process.
func TestPlansMatchSingleProcess(t *testing.T) {
	single, err := minimax01.Load(tinyA, minimax01.Options{MaxBatchTokens: testMaxT})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	ps := loadPrompts(t, "p7", "p257", "b1")
	const newTokens = 8
	type result struct {
		logits []float32
		gen    []int32
	}
	var want []result
	for _, p := range ps {
		l, g := run(single, p, newTokens)
		want = append(want, result{l, g})
	}
	sec := Security{Token: testToken}
	for _, planStr := range []string{"pp=2", "ep=2", "pp=2,ep=2", "sp=2", "sp=4"} {
		t.Run(planStr, func(t *testing.T) {
			plan, _ := ParsePlan(planStr)
			hub, err := Dial(loadEnds(t), plan, startWorkers(t, plan, sec), sec)
			if err != nil {
				t.Fatal(err)
			}
			defer hub.Close()
			for i, p := range ps {
				l, g := run(hub, p, newTokens)
				d := maxAbsDiff(l, want[i].logits)
				t.Logf("prompt %d (%d tokens): max |Δlogit| %.3g, greedy %v", i, len(p), d, g)
				if d > goldenTol {
					t.Errorf("prompt %d (%d tokens): max |Δlogit| %.3g > %g", i, len(p), d, goldenTol)
				}
				if !slices.Equal(g, want[i].gen) {
					t.Errorf("prompt %d: greedy %v, single process %v", i, g, want[i].gen)
				}
			}
			// A ragged batch of two sequences in one Forward, and a clone
			// that continues on its own, equal the single process too.
			V := hub.Info().VocabSize
			a, b := hub.NewState(), hub.NewState()
			got := make([]float32, 2*V)
			hub.Forward([]model.Seq{{State: a, Tokens: ps[0], Logits: model.LogitsLast}, {State: b, Tokens: ps[2], Logits: model.LogitsLast}}, got)
			c := a.Clone()
			a.Reset()
			next := make([]float32, V)
			hub.Forward([]model.Seq{{State: c, Tokens: []int32{want[0].gen[0]}, Logits: model.LogitsLast}}, next)
			if c.Len() != len(ps[0])+1 || a.Len() != 0 {
				t.Errorf("clone length %d, reset length %d", c.Len(), a.Len())
			}
			refA := want[0].logits[(len(ps[0])-1)*V : len(ps[0])*V]
			refB := want[2].logits[(len(ps[2])-1)*V : len(ps[2])*V]
			refC := want[0].logits[len(ps[0])*V : (len(ps[0])+1)*V]
			if d := max(maxAbsDiff(got[:V], refA), maxAbsDiff(got[V:], refB), maxAbsDiff(next, refC)); d > goldenTol {
				t.Errorf("batched/cloned: max |Δlogit| %.3g > %g", d, goldenTol)
			}
		})
	}
}

// TestSPMatchesSingleProcess runs the golden prompts of tiny-a and tiny-b
// through sequence-parallel plans sp=2 and sp=4 over gRPC and compares
// every prompt logit, the decode logits and the greedy tokens with one
// process. With SPMinChunk 1 every prompt is cut into chunks over all
// ranks (p7 on 4 ranks: chunks of 1–2 tokens; p700 with steps of 128 rows:
// several rounds, so the state moves round the ring between rounds). The
// ring changes only summation orders (the LASP combination, the
// log-sum-exp merge of ring attention), far below goldenTol. Last, the
// default SPMinChunk sends short prompts whole to a rank and a second
// prompt after a decode (state away from rank 0) goes round again.
func TestSPMatchesSingleProcess(t *testing.T) {
	const newTokens = 8
	sec := Security{Token: testToken}
	for _, dir := range []string{tinyA, "../model/minimax01/testdata/golden/tiny-b"} {
		single, err := minimax01.Load(dir, minimax01.Options{MaxBatchTokens: testMaxT})
		if err != nil {
			t.Fatal(err)
		}
		ps := loadPromptsOf(t, dir, "p7", "b1", "p257", "p700")
		type result struct {
			logits []float32
			gen    []int32
		}
		var want []result
		for _, p := range ps {
			l, g := run(single, p, newTokens)
			want = append(want, result{l, g})
		}
		single.Close()
		for _, planStr := range []string{"sp=2", "sp=4"} {
			t.Run(filepath.Base(dir)+"/"+planStr, func(t *testing.T) {
				plan, _ := ParsePlan(planStr)
				hub, err := Dial(loadEndsOf(t, dir), plan, startWorkersOf(t, dir, plan, sec), sec)
				if err != nil {
					t.Fatal(err)
				}
				defer hub.Close()
				hub.SPMinChunk = 1
				for i, p := range ps {
					l, g := run(hub, p, newTokens)
					d := maxAbsDiff(l, want[i].logits)
					t.Logf("prompt %d (%d tokens): max |Δlogit| %.3g, greedy %v", i, len(p), d, g)
					if d > goldenTol {
						t.Errorf("prompt %d (%d tokens): max |Δlogit| %.3g > %g", i, len(p), d, goldenTol)
					}
					if !slices.Equal(g, want[i].gen) {
						t.Errorf("prompt %d: greedy %v, single process %v", i, g, want[i].gen)
					}
				}
				st := hub.Stats()
				if st.PeersSent == 0 {
					t.Errorf("no ring traffic: %v", st)
				}
				// Default SPMinChunk: p7 runs whole on a rank, p257 in chunks;
				// then p257 again after p7 + its tokens (the state is on
				// the last rank of the first round now).
				hub.SPMinChunk = DefaultSPMinChunk
				V := hub.Info().VocabSize
				a := hub.NewState()
				got := make([]float32, len(ps[0])*V)
				hub.Forward([]model.Seq{{State: a, Tokens: ps[0], Logits: model.LogitsAll}}, got)
				if d := maxAbsDiff(got, want[0].logits[:len(got)]); d > goldenTol {
					t.Errorf("p7 whole on one rank: max |Δlogit| %.3g", d)
				}
				b := hub.NewState()
				got = make([]float32, V)
				hub.Forward([]model.Seq{{State: b, Tokens: ps[2], Logits: model.LogitsLast}}, got)
				c := b.Clone()
				hub.Forward([]model.Seq{{State: c, Tokens: ps[2], Logits: model.LogitsLast}}, got)
				ref, err := minimax01.Load(dir, minimax01.Options{MaxBatchTokens: testMaxT})
				if err != nil {
					t.Fatal(err)
				}
				defer ref.Close()
				rs := ref.NewState()
				wantTwice := make([]float32, V)
				ref.Forward([]model.Seq{{State: rs, Tokens: append(slices.Clone(ps[2]), ps[2]...), Logits: model.LogitsLast}}, wantTwice)
				if d := maxAbsDiff(got, wantTwice); d > goldenTol {
					t.Errorf("a clone prefilled again in chunks: max |Δlogit| %.3g", d)
				}
			})
		}
	}
}

// TestSPSerialRounds checks that SerialRounds (each rank of a round run
// alone, one after another) gives bitwise the logits of the parallel
// rounds on p700 under sp=2 and sp=4 (several rounds of steps of 128 rows),
// and that the round counters sum the slowest rank and the busiest ring
// boundary of each round.
func TestSPSerialRounds(t *testing.T) {
	sec := Security{Token: testToken}
	p := loadPrompts(t, "p700")[0]
	for _, S := range []int{2, 4} {
		plan := Plan{PP: 1, EP: 1, SP: S}
		hub, err := Dial(loadEnds(t), plan, startWorkers(t, plan, sec), sec)
		if err != nil {
			t.Fatal(err)
		}
		V := hub.cfg.Vocab
		var logits [2][]float32
		var stats [2]Stats
		for i, serial := range []bool{false, true} {
			hub.SerialRounds = serial
			logits[i] = make([]float32, V)
			hub.Forward([]model.Seq{{State: hub.NewState(), Tokens: p, Logits: model.LogitsLast}}, logits[i])
			stats[i] = hub.Stats()
		}
		hub.Close()
		rounds := int64((len(p) + S*testMaxT - 1) / (S * testMaxT))
		s := stats[1]
		t.Logf("sp=%d serial: %v; %d rounds, slowest ranks %v, busiest boundary %d B", S, s, s.Rounds, s.RoundCompute, s.RoundRing)
		if !slices.Equal(logits[0], logits[1]) {
			t.Errorf("sp=%d: serial rounds change the logits by up to %.3g", S, maxAbsDiff(logits[0], logits[1]))
		}
		if s.Rounds != rounds || stats[0].Rounds != rounds {
			t.Errorf("sp=%d: %d and %d rounds counted, want %d", S, stats[0].Rounds, s.Rounds, rounds)
		}
		if s.RoundCompute <= 0 || s.RoundCompute > s.Compute || s.Compute > s.Wait {
			t.Errorf("sp=%d serial: slowest ranks %v, all ranks %v, waited %v", S, s.RoundCompute, s.Compute, s.Wait)
		}
		if s.RoundRing == 0 || s.RoundRing > s.PeersSent || s.RoundRing*uint64(S-1) < s.PeersSent {
			t.Errorf("sp=%d: busiest boundary %d B per round summed, ring %d B in all", S, s.RoundRing, s.PeersSent)
		}
	}
}
