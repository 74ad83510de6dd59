package dist

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

// TestQuantizedPartsEqualTheWhole loads tiny-a quantized at load (q8, and
// q4g64, whose groups fit every width of tiny-a) once whole and once as the hub's ends and each worker's part of pp=2,ep=2 and sp=2,
// and checks that every matrix a process holds is bitwise the single
// process's (type, quants, scales, mins): the LM head on the hub is
// quantized as the single process quantizes it, the embedding kept as the
// spec says, the layers and experts on the workers. Each process's weight
// bytes are what Config.PartBytes (inspect -plan) counts for its part.
func TestQuantizedPartsEqualTheWhole(t *testing.T) {
	for _, qt := range []quant.Type{quant.Q8, quant.Q4G64} {
		q := minimax01.DefaultQuantSpec(qt)
		single, err := minimax01.Load(tinyA, minimax01.Options{Quant: &q})
		if err != nil {
			t.Fatal(err)
		}
		c := single.Config
		if single.Weights.LMHead.Type != q.LMHead || single.Weights.Embed.Type != quant.F32 {
			t.Fatalf("%s: the single process's head is %s, embedding %s; want %s and F32 (as stored)", qt, single.Weights.LMHead.Type, single.Weights.Embed.Type, q.LMHead)
		}
		for _, planStr := range []string{"pp=2,ep=2", "sp=2"} {
			plan, _ := ParsePlan(planStr)
			parts := []minimax01.Part{HubPart}
			for r := range plan.Workers() {
				p, err := plan.Part(c, r)
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, p)
			}
			quantized := 0
			for _, part := range parts {
				m, err := minimax01.Load(tinyA, minimax01.Options{Part: &part, Quant: &q})
				if err != nil {
					t.Fatal(err)
				}
				if got := weightFormat(m); got != weightFormat(single) || !strings.Contains(got, qt.String()) {
					t.Errorf("%s %s %s: weight format %q, the single process %q", qt, planStr, part, got, weightFormat(single))
				}
				for _, p := range minimax01.ParamTable(c) {
					want, _ := single.Weights.Bind(p)
					got, _ := m.Weights.Bind(p)
					if want == nil || !part.HoldsParam(p) {
						continue
					}
					if got.Type != want.Type || got.ScaleType != want.ScaleType || got.Rows != want.Rows || got.Cols != want.Cols ||
						!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Scales, want.Scales) || !bytes.Equal(got.Mins, want.Mins) {
						t.Errorf("%s %s %s: %s is %s [%d, %d], not bitwise the single process's %s [%d, %d]",
							qt, planStr, part, p.Name, got.Type, got.Rows, got.Cols, want.Type, want.Rows, want.Cols)
					}
					if got.Type.Quantized() {
						quantized++
					}
				}
				if got, want := m.Info().WeightBytes, c.PartBytes(&part, quant.F32, &q); got != want {
					t.Errorf("%s %s %s: holds %d B of weights, PartBytes says %d", qt, planStr, part, got, want)
				}
				m.Close()
			}
			if quantized == 0 {
				t.Errorf("%s %s: no quantized matrix in any process", qt, planStr)
			}
		}
		single.Close()
	}
}

// TestQuantizedPlansMatchSingleProcess runs pp=2 with one micro-batch per
// step, ep=2 and sp=2 with every process quantized at load by q8 and
// q4g64, against the single process quantized the same way. A pp stage
// runs the single process's rows with the same weights and kernels, so its
// logits and greedy tokens are bitwise the single process's.
//
// ep and sp are held to 2e-4 on the prompt logits of the short prompts p7
// and b1 only. With quantized weights every product first rounds its
// activations to int8, so a last-bit difference of the kind ep (the MoE
// sum in two groups) and sp (the LASP and ring-attention sums) make, far
// below 2e-4 in float, can move an activation to the next int8 step, and
// that grows through the layers and the top-2 routing. The single process
// does the same when a prompt is fed in other chunks: on p257 its logits
// move by up to 0.07 (q8) and 0.9 (q4g64) between schedules ("spread" in
// the log, next to the plan's difference); ep=2 at q8 changes b1's decode
// logits by 0.04 this way.
func TestQuantizedPlansMatchSingleProcess(t *testing.T) {
	const newTokens = 8
	ps := loadPrompts(t, "p7", "p257", "b1")
	sec := Security{Token: testToken}
	for _, qt := range []quant.Type{quant.Q8, quant.Q4G64} {
		q := minimax01.DefaultQuantSpec(qt)
		single, err := minimax01.Load(tinyA, minimax01.Options{MaxBatchTokens: testMaxT, Quant: &q})
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			logits []float32
			gen    []int32
			spread float64 // max |Δlogit| of the prompt fed whole against fed in chunks (logged)
		}
		var want []result
		V := single.Info().VocabSize
		for _, p := range ps {
			l, g := run(single, p, newTokens)
			r := result{logits: l, gen: g}
			for _, chunk := range []int{1, 32, 64, 100, 129} {
				st := single.NewState()
				got := make([]float32, len(p)*V)
				for i := 0; i < len(p); i += chunk {
					j := min(i+chunk, len(p))
					single.Forward([]model.Seq{{State: st, Tokens: p[i:j], Logits: model.LogitsAll}}, got[i*V:j*V])
				}
				r.spread = max(r.spread, maxAbsDiff(got, l[:len(p)*V]))
			}
			want = append(want, r)
		}
		single.Close()
		for _, planStr := range []string{"pp=2", "ep=2", "sp=2"} {
			t.Run(qt.String()+"/"+planStr, func(t *testing.T) {
				plan, _ := ParsePlan(planStr)
				hub, err := Dial(loadQuantEnds(t, tinyA, &q), plan, startQuantWorkers(t, tinyA, plan, sec, &q), sec)
				if err != nil {
					t.Fatal(err)
				}
				defer hub.Close()
				hub.MicroBatches = 1
				for i, p := range ps {
					l, g := run(hub, p, newTokens)
					np := len(p) * V
					d, all := maxAbsDiff(l[:np], want[i].logits[:np]), maxAbsDiff(l, want[i].logits)
					t.Logf("prompt %d (%d tokens): prompt logits max |Δ| %.3g (the single process's own spread %.3g), with the decode steps %.3g; greedy %v (single %v)",
						i, len(p), d, want[i].spread, all, g, want[i].gen)
					switch {
					case plan.PP > 1 && (all != 0 || !slices.Equal(g, want[i].gen)):
						t.Errorf("prompt %d: pp logits differ from the single process (max |Δ| %g), or greedy %v ≠ %v", i, all, g, want[i].gen)
					case len(p) < 100 && d > goldenTol:
						t.Errorf("prompt %d: prompt logits max |Δ| %.3g > %g", i, d, goldenTol)
					}
				}
			})
		}
	}
}

// TestQuantMismatchRefused checks that a hub refuses workers whose weights
// are quantized otherwise than its own (float against q8, q8 against
// float, q8 against q4g64), naming -quant.
func TestQuantMismatchRefused(t *testing.T) {
	sec := Security{Token: testToken}
	plan, _ := ParsePlan("pp=2")
	q8, q4 := minimax01.DefaultQuantSpec(quant.Q8), minimax01.DefaultQuantSpec(quant.Q4G64)
	for _, tc := range []struct{ hub, workers *minimax01.QuantSpec }{{nil, &q8}, {&q8, nil}, {&q4, &q8}} {
		hub, err := Dial(loadQuantEnds(t, tinyA, tc.hub), plan, startQuantWorkers(t, tinyA, plan, sec, tc.workers), sec)
		if err == nil {
			hub.Close()
			t.Errorf("hub %v, workers %v: accepted", tc.hub, tc.workers)
			continue
		}
		if !strings.Contains(err.Error(), "same -quant") {
			t.Errorf("hub %v, workers %v: %v; want an error naming -quant", tc.hub, tc.workers, err)
		}
		t.Log(err)
	}
}
