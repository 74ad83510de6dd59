package train

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/internal/numtest"
	"github.com/lightninglm/lightning/model/minimax01"
)

// tinyConfig is a small random model that exercises what the tiny-a golden
// does not: postnorm false, tied embeddings, distinct α and β at every
// residual site, a lightning block of 8 tokens (so documents cross block
// boundaries), GQA with two query heads per KV head and a large auxiliary
// loss weight.
func tinyConfig(t *testing.T, experts, topK int, postnorm, tied bool) *minimax01.Config {
	t.Helper()
	js := fmt.Sprintf(`{"model_type": "minimax_text_01", "vocab_size": 40, "hidden_size": 16,
	  "num_hidden_layers": 3, "attn_type_list": [0, 1, 0], "num_attention_heads": 2, "num_key_value_heads": 1,
	  "head_dim": 8, "rotary_dim": 4, "rope_theta": 10000, "intermediate_size": 24, "num_local_experts": %d,
	  "num_experts_per_tok": %d, "rms_norm_eps": 1e-5, "block_size": 8, "postnorm": %v,
	  "layernorm_linear_attention_alpha": 1.5, "layernorm_linear_attention_beta": 0.9,
	  "layernorm_full_attention_alpha": 2.0, "layernorm_full_attention_beta": 1.1,
	  "layernorm_mlp_alpha": 1.3, "layernorm_mlp_beta": 0.7, "hidden_act": "silu",
	  "tie_word_embeddings": %v, "initializer_range": 0.2, "router_aux_loss_coef": 0.3}`, experts, topK, postnorm, tied)
	c, err := minimax01.ParseConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tinyModel builds tinyConfig's model from seed, with norm weights spread
// around 1 so their gradients are not all alike.
func tinyModel(t *testing.T, c *minimax01.Config, seed uint64, maxT int) *Model {
	t.Helper()
	w, slab := minimax01.NewF32Weights(c)
	minimax01.InitWeights(c, slab, seed)
	for _, p := range minimax01.ParamTable(c) {
		if p.Role.Norm() {
			for i, r := range numtest.Rand(p.Size, seed+uint64(p.Offset)) {
				slab[p.Offset+i] = 1 + 0.3*r
			}
		}
	}
	return NewModel(c, w, slab, maxT)
}

// tinyBatch is four documents of 13, 17, 10 and 1 tokens (a one-token
// document predicts nothing but still runs through every layer).
func tinyBatch(vocab int) Batch {
	b := Batch{DocStarts: []int{0, 13, 30, 40}}
	for i := range 41 {
		b.Tokens = append(b.Tokens, int32((i*i*7+i*3+5)%vocab))
	}
	return b
}

// TestModelDirectionalDerivative checks the gradient of every parameter
// role, in four variants of the architecture, against a central difference
// of the fp32 loss along that role's gradient: with u = ∇_role L,
// (L(θ+εu) − L(θ−εu)) / 2ε must equal |u|². Every token is routed to all
// three experts (top-k = E), so the loss is smooth: a top-k choice that
// flips under the perturbation would make it jump (the golden covers
// proper top-k routing and the auxiliary loss's gradient, which is zero
// here since every expert is always chosen). The step moves the loss by
// δ = 2e-3 (ε = δ/|u|²): the fp32 loss carries rounding noise of about
// 1e-6, which contributes 1e-6/δ = 5e-4 relative, and the second-order
// remainder, measured at 1.6e-2 relative for δ = 1e-2 at this model's
// curvature, shrinks with δ² to ~6e-4; 5e-3 leaves margin for both, while
// a missing or wrong term (a dropped residual path, a wrong α or β, a
// mis-tied head) is an O(1) error in some role.
func TestModelDirectionalDerivative(t *testing.T) {
	const delta, tol = 2e-3, 5e-3
	for _, v := range []struct{ postnorm, tied bool }{{true, false}, {false, false}, {true, true}, {false, true}} {
		t.Run(fmt.Sprintf("postnorm=%v/tied=%v", v.postnorm, v.tied), func(t *testing.T) {
			c := tinyConfig(t, 3, 3, v.postnorm, v.tied)
			b := tinyBatch(c.Vocab)
			m := tinyModel(t, c, 7, len(b.Tokens))
			m.ForwardBackward(b, 1)
			grads := slices.Clone(m.Grads)
			base := slices.Clone(m.Params)
			roles := map[minimax01.Role][]minimax01.Param{}
			for _, p := range minimax01.ParamTable(c) {
				roles[p.Role] = append(roles[p.Role], p)
			}
			for role := minimax01.RoleEmbed; role <= minimax01.RoleW2; role++ {
				ps := roles[role]
				if len(ps) == 0 {
					continue // the LM head when tied
				}
				var norm2 float64
				for _, p := range ps {
					for _, g := range grads[p.Offset : p.Offset+p.Size] {
						norm2 += float64(g) * float64(g)
					}
				}
				if norm2 == 0 {
					t.Errorf("%v: the gradient is zero", role)
					continue
				}
				eps := delta / norm2
				eval := func(sign float64) float64 {
					copy(m.Params, base)
					for _, p := range ps {
						for i := p.Offset; i < p.Offset+p.Size; i++ {
							m.Params[i] = float32(float64(base[i]) + sign*eps*float64(grads[i]))
						}
					}
					return m.Evaluate(b).Total
				}
				fd := (eval(1) - eval(-1)) / (2 * eps)
				rel := math.Abs(fd-norm2) / norm2
				t.Logf("%-10v |∇|² %.6g, central difference %.6g, relative %.2g", role, norm2, fd, rel)
				if rel > tol {
					t.Errorf("%v: |∇|² = %.6g but the loss moves at %.6g per unit along ∇ (relative %.3g > %g)", role, norm2, fd, rel, tol)
				}
			}
			copy(m.Params, base)
		})
	}
}

// TestPackedEqualsSeparate checks that a packed batch gives the same
// cross-entropy and the same gradients as its documents run one by one (the
// auxiliary loss is taken over the whole batch, so it is switched off here:
// with it the objective does not decompose over documents).
// Packing changes no arithmetic of a document's rows except the order of
// the sums over rows in the weight gradients, so the two agree to float32
// rounding of those sums: |Δ| ≤ DotTol(T, Σ|terms|), bounded here by
// 4·T·u times the largest |gradient| entry summed over documents.
func TestPackedEqualsSeparate(t *testing.T) {
	c := tinyConfig(t, 4, 2, true, false)
	c.RouterAuxCoef = 0
	b := tinyBatch(c.Vocab)
	m := tinyModel(t, c, 3, len(b.Tokens))
	packed := m.ForwardBackward(b, 1)
	want := slices.Clone(m.Grads)
	m.ZeroGrads()
	var ceSum float64
	for i, s := range b.DocStarts {
		end := len(b.Tokens)
		if i+1 < len(b.DocStarts) {
			end = b.DocStarts[i+1]
		}
		one := Batch{Tokens: b.Tokens[s:end], DocStarts: []int{0}}
		l := m.ForwardBackward(one, float32(end-s-1)/float32(packed.Predictions))
		ceSum += l.CE * float64(l.Predictions)
	}
	if d := math.Abs(ceSum/float64(packed.Predictions) - packed.CE); d > 1e-6*packed.CE {
		t.Errorf("packed CE %.9g, separate %.9g", packed.CE, ceSum/float64(packed.Predictions))
	}
	for _, p := range minimax01.ParamTable(c) {
		got, ref := m.Grads[p.Offset:p.Offset+p.Size], want[p.Offset:p.Offset+p.Size]
		mx := 0.0
		for _, g := range ref {
			mx = max(mx, math.Abs(float64(g)))
		}
		tol := 4 * float64(len(b.Tokens)) * numtest.Eps32 * mx
		for i := range ref {
			if d := math.Abs(float64(got[i] - ref[i])); d > tol {
				t.Errorf("%s[%d]: separate %.9g, packed %.9g (|Δ| %.3g > %.3g)", p.Name, i, got[i], ref[i], d, tol)
				break
			}
		}
	}
}

// TestForwardBackwardDeterministic checks that repeated runs give the same
// bits, that Evaluate's loss is ForwardBackward's, and that the weight
// scales the gradient: weight 0.5 gives exactly half (a power-of-two scale
// commutes with every rounding), and a second call adds to the first.
func TestForwardBackwardDeterministic(t *testing.T) {
	c := tinyConfig(t, 4, 2, false, true)
	b := tinyBatch(c.Vocab)
	m := tinyModel(t, c, 5, len(b.Tokens))
	l1 := m.ForwardBackward(b, 1)
	g1 := slices.Clone(m.Grads)
	m.ZeroGrads()
	if l := m.ForwardBackward(b, 1); l != l1 || !slices.Equal(m.Grads, g1) {
		t.Fatalf("a second run differs: loss %+v, first %+v", l, l1)
	}
	if l := m.Evaluate(b); l != l1 {
		t.Errorf("Evaluate %+v, ForwardBackward %+v", l, l1)
	}
	m.ZeroGrads()
	m.ForwardBackward(b, 0.5)
	for i := range g1 {
		if m.Grads[i] != g1[i]/2 {
			t.Fatalf("gradient[%d] with weight 0.5 is %v, with weight 1 %v", i, m.Grads[i], g1[i])
		}
	}
	m.ForwardBackward(b, 0.5)
	mx := 0.0
	for _, g := range g1 {
		mx = max(mx, math.Abs(float64(g)))
	}
	// The second half lands on the first with one more rounding per add
	// into an accumulated tensor; at most T adds per element.
	tol := float64(len(b.Tokens)) * numtest.Eps32 * mx
	for i := range g1 {
		if d := math.Abs(float64(m.Grads[i] - g1[i])); d > tol {
			t.Fatalf("gradient[%d] after two calls with weight 0.5 is %v, one with weight 1 %v", i, m.Grads[i], g1[i])
		}
	}
}

// TestBatchChecks checks that malformed batches are refused with a message
// that says what is wrong.
func TestBatchChecks(t *testing.T) {
	c := tinyConfig(t, 4, 2, true, false)
	m := tinyModel(t, c, 1, 8)
	for _, tc := range []struct {
		name string
		b    Batch
		want string
	}{
		{"empty", Batch{DocStarts: []int{0}}, "batch of 0 tokens"},
		{"too long", Batch{Tokens: make([]int32, 9), DocStarts: []int{0}}, "the model takes 1 to 8"},
		{"no starts", Batch{Tokens: make([]int32, 4)}, "must start with 0"},
		{"late start", Batch{Tokens: make([]int32, 4), DocStarts: []int{1}}, "must start with 0"},
		{"repeated start", Batch{Tokens: make([]int32, 4), DocStarts: []int{0, 2, 2}}, "not strictly ascending"},
		{"start past end", Batch{Tokens: make([]int32, 4), DocStarts: []int{0, 4}}, "not strictly ascending"},
		{"token id", Batch{Tokens: []int32{1, 40}, DocStarts: []int{0}}, "token id 40 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Errorf("panic %v, want one containing %q", r, tc.want)
				}
			}()
			m.Evaluate(tc.b)
		})
	}
}
