package dist

import (
	"math"
	"slices"
	"testing"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

// TestStepMessagesInBF16 round-trips step messages through the codec with
// fp32 and bf16 hidden states: fp32 values come back bit for bit, bf16 ones
// as their round-to-nearest-even bf16 (ties to even, NaN kept), the reply
// in the request's type; a bf16 vector cut short is refused.
func TestStepMessagesInBF16(t *testing.T) {
	x := []float32{1, -2.5, 1 + 1.0/256, 1 + 3.0/256, 1 + 1.0/256 + 1.0/(1<<20), 3.14159265, float32(math.Inf(-1)), float32(math.NaN())}
	// bf16 keeps 8 significant bits. 1+2⁻⁸ is halfway between 1 and 1+2⁻⁷:
	// to even, 1; 1+3·2⁻⁸ halfway between 1+2⁻⁷ and 1+2⁻⁶: to even, 1+2⁻⁶;
	// 1+2⁻⁸+2⁻²⁰ is above halfway: 1+2⁻⁷. π = 11.00100100001…₂: 3.140625.
	want := []float32{1, -2.5, 1, 1 + 1.0/64, 1 + 1.0/128, 3.140625, float32(math.Inf(-1))}
	for _, bf16 := range []bool{false, true} {
		b, err := rawCodec{}.Marshal(&stepRequest{Round: 7, Rows: []row{{ID: 1, N: 8}}, X: x, BF16: bf16})
		if err != nil {
			t.Fatal(err)
		}
		// round 8, ring 4, op count 4, row count 4, one row 16, the
		// vector's count 4, then its elements.
		if fp32 := 40 + 4*len(x); bf16 && len(b) != fp32-2*len(x) || !bf16 && len(b) != fp32 {
			t.Errorf("bf16 %v: %d bytes, fp32 would be %d", bf16, len(b), fp32)
		}
		var got stepRequest
		if err := (rawCodec{}).Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		ref := x[:len(want)]
		if bf16 {
			ref = want
		}
		if got.BF16 != bf16 || got.Round != 7 || len(got.X) != len(x) || !slices.Equal(got.X[:len(ref)], ref) || !math.IsNaN(float64(got.X[len(x)-1])) {
			t.Errorf("bf16 %v: got %v (bf16 %v), want %v and NaN", bf16, got.X, got.BF16, ref)
		}
		rb, _ := rawCodec{}.Marshal(&stepReply{X: got.X, BF16: got.BF16})
		var reply stepReply
		if err := (rawCodec{}).Unmarshal(rb, &reply); err != nil || reply.BF16 != bf16 || !slices.Equal(reply.X[:len(ref)], ref) {
			t.Errorf("bf16 %v: reply %v (bf16 %v), %v", bf16, reply.X, reply.BF16, err)
		}
		if err := (rawCodec{}).Unmarshal(b[:len(b)-1], &got); err == nil {
			t.Errorf("bf16 %v: a message one byte short was accepted", bf16)
		}
	}
}

// TestWireBF16 runs tiny-a's golden prompts over pp=2 (one micro-batch per
// step) with bf16 hidden states between the hub and the workers, against
// the single process run stage by stage in this process with the same
// roundings: the embedding rounded to bf16, then each stage's output (the
// hub sends what it received). The logits and greedy tokens must be
// bitwise equal: the plan rounds where the wire does and nowhere else. It
// logs how far bf16 on the wire moves the logits from the exact (fp32)
// single process, for pp=2, ep=2 and sp=2 (docs/distributed.md reports
// it), and requires that it moves them at all.
func TestWireBF16(t *testing.T) {
	const newTokens = 8
	ps := loadPrompts(t, "p7", "p257", "b1")
	sec := Security{Token: testToken}
	single, err := minimax01.Load(tinyA, minimax01.Options{MaxBatchTokens: testMaxT})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	c, V, dim := single.Config, single.Config.Vocab, single.Config.Dim
	round := func(x []float32) {
		for i, v := range x {
			x[i] = math.Float32frombits(uint32(kernels.RoundBF16(v)) << 16)
		}
	}
	pp, _ := ParsePlan("pp=2")
	var stages [][2]int
	for r := range pp.Workers() {
		part, _ := pp.Part(c, r)
		stages = append(stages, [2]int{part.First, part.Last})
	}
	// rounded feeds tokens in steps of testMaxT rows as the hub cuts them,
	// through each stage's layers with that stage's state (sts, as the
	// workers hold them), rounding as the wire does, and returns every row's
	// logits.
	rounded := func(sts []*minimax01.State, tokens []int32) []float32 {
		out := make([]float32, len(tokens)*V)
		for lo := 0; lo < len(tokens); lo += testMaxT {
			hi := min(lo+testMaxT, len(tokens))
			x := make([]float32, (hi-lo)*dim)
			single.Embed(x, tokens[lo:hi])
			round(x)
			for i, s := range stages {
				single.RunLayers(x, []minimax01.Rows{{State: sts[i], N: hi - lo}}, s[0], s[1], nil)
				round(x)
			}
			single.Head(out[lo*V:hi*V], x, hi-lo)
		}
		return out
	}
	type result struct {
		logits []float32
		gen    []int32
	}
	var exact, emulated []result
	for _, p := range ps {
		l, g := run(single, p, newTokens)
		exact = append(exact, result{l, g})
		sts := []*minimax01.State{single.NewStateCap(0), single.NewStateCap(0)}
		l = rounded(sts, p)
		g = nil
		for range newTokens {
			g = append(g, int32(argmax(l[len(l)-V:])))
			l = append(l, rounded(sts, g[len(g)-1:])...)
		}
		emulated = append(emulated, result{l, g})
	}
	for _, planStr := range []string{"pp=2", "ep=2", "sp=2"} {
		t.Run(planStr, func(t *testing.T) {
			plan, _ := ParsePlan(planStr)
			hub, err := Dial(loadEnds(t), plan, startWorkers(t, plan, sec), sec)
			if err != nil {
				t.Fatal(err)
			}
			defer hub.Close()
			hub.MicroBatches, hub.Wire = 1, quant.BF16
			for i, p := range ps {
				l, g := run(hub, p, newTokens)
				d := maxAbsDiff(l, exact[i].logits)
				var sq, size float64
				for k, v := range exact[i].logits {
					sq += float64((l[k] - v) * (l[k] - v))
					size = max(size, math.Abs(float64(v)))
				}
				t.Logf("prompt %d (%d tokens): against fp32 on the wire max |Δlogit| %.3g, rms %.3g (the logits reach ±%.3g); greedy the same: %v",
					i, len(p), d, math.Sqrt(sq/float64(len(l))), size, slices.Equal(g, exact[i].gen))
				if d == 0 {
					t.Errorf("prompt %d: bf16 on the wire changed no logit", i)
				}
				if planStr == "pp=2" && (maxAbsDiff(l, emulated[i].logits) != 0 || !slices.Equal(g, emulated[i].gen)) {
					t.Errorf("prompt %d: max |Δlogit| %g against the single process rounded as the wire rounds, greedy %v ≠ %v",
						i, maxAbsDiff(l, emulated[i].logits), g, emulated[i].gen)
				}
			}
			if st := hub.Stats(); st.HubSent == 0 {
				t.Error("no traffic counted")
			}
		})
	}
}
