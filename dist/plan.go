// Package dist serves one MiniMax-01 model from several processes: a hub
// (the process that runs the engine) holds the embedding and the LM head and
// drives workers that hold layer ranges (pipeline parallelism) and subsets of
// each MoE layer's experts (expert parallelism), over gRPC with raw fp32
// hidden states. The design is docs/distributed.md.
//
// Ranks: a plan pp=P,ep=E has P·E workers; rank r is pipeline stage r/E and
// expert rank r%E; expert rank 0 of a stage is its leader (attention, norms,
// routers and the sequences' states of the stage's layers). A plan sp=S
// (sequence parallelism, LASP) has S workers that each hold every layer: a
// long prompt is cut into S contiguous chunks run at once (sp.go).
package dist

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

// ErrNotSupported is returned for plan features that do not exist yet.
var ErrNotSupported = errors.New("dist: not yet supported")

// Plan says how a model is split over workers.
type Plan struct {
	PP int // pipeline stages (layer ranges)
	EP int // expert ranks per stage (expert subsets)
	SP int // sequence-parallel ranks (LASP prefill), each holding every layer
}

// ParsePlan reads "pp=2", "ep=2", "pp=2,ep=2" or "sp=2" (any order; absent
// = 1). sp cannot be combined with pp or ep yet (ErrNotSupported).
func ParsePlan(s string) (Plan, error) {
	p := Plan{PP: 1, EP: 1, SP: 1}
	if strings.TrimSpace(s) == "" {
		return p, fmt.Errorf("dist: empty plan; write e.g. pp=2, ep=2 or pp=2,ep=2")
	}
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 1 {
			return p, fmt.Errorf("dist: plan %q: %q is not KEY=N with N ≥ 1 (keys pp, ep, sp)", s, f)
		}
		if seen[k] {
			return p, fmt.Errorf("dist: plan %q: %s given twice", s, k)
		}
		seen[k] = true
		switch k {
		case "pp":
			p.PP = n
		case "ep":
			p.EP = n
		case "sp":
			p.SP = n
		default:
			return p, fmt.Errorf("dist: plan %q: unknown key %q (keys pp, ep, sp)", s, k)
		}
	}
	if p.SP > 1 && (p.PP > 1 || p.EP > 1) {
		return p, fmt.Errorf("%w: plan %q: sp (sequence parallelism) with pp or ep; use sp=N alone, or pp and ep", ErrNotSupported, s)
	}
	return p, nil
}

// String renders p in the syntax ParsePlan reads.
func (p Plan) String() string {
	var s []string
	if p.PP > 1 {
		s = append(s, fmt.Sprintf("pp=%d", p.PP))
	}
	if p.EP > 1 {
		s = append(s, fmt.Sprintf("ep=%d", p.EP))
	}
	if p.SP > 1 {
		s = append(s, fmt.Sprintf("sp=%d", p.SP))
	}
	if len(s) == 0 {
		return "pp=1"
	}
	return strings.Join(s, ",")
}

// Workers is the number of worker processes p needs.
func (p Plan) Workers() int { return p.PP * p.EP * p.SP }

// Check reports whether c can be split by p.
func (p Plan) Check(c *minimax01.Config) error {
	if p.PP > c.Layers {
		return fmt.Errorf("dist: plan %s: %d pipeline stages for %d layers", p, p.PP, c.Layers)
	}
	if p.EP > c.Experts {
		return fmt.Errorf("dist: plan %s: %d expert ranks for %d experts", p, p.EP, c.Experts)
	}
	return nil
}

// split returns [lo, hi) of part i of n over count items, the first count%n
// parts one larger.
func split(count, n, i int) (lo, hi int) {
	q, r := count/n, count%n
	lo = i*q + min(i, r)
	hi = lo + q
	if i < r {
		hi++
	}
	return lo, hi
}

// Part returns what worker rank holds under p.
func (p Plan) Part(c *minimax01.Config, rank int) (minimax01.Part, error) {
	if err := p.Check(c); err != nil {
		return minimax01.Part{}, err
	}
	if rank < 0 || rank >= p.Workers() {
		return minimax01.Part{}, fmt.Errorf("dist: rank %d outside plan %s (ranks 0..%d)", rank, p, p.Workers()-1)
	}
	if p.SP > 1 { // every layer, whole
		return minimax01.Part{First: 0, Last: c.Layers, Attention: true, ExpertLo: 0, ExpertHi: c.Experts}, nil
	}
	first, last := split(c.Layers, p.PP, rank/p.EP)
	elo, ehi := split(c.Experts, p.EP, rank%p.EP)
	return minimax01.Part{First: first, Last: last, Attention: rank%p.EP == 0, ExpertLo: elo, ExpertHi: ehi}, nil
}

// HubPart is what the hub holds: the embedding, final norm and LM head.
var HubPart = minimax01.Part{Ends: true}

// Memory is the weight memory of one process of a plan.
type Memory struct {
	Role        string // "hub" or "worker R"
	Part        minimax01.Part
	WeightBytes int64
	// StateBytes and KVBytesPerToken are the per-sequence state this
	// process keeps (fp32 lightning states, fp32 KV caches): leaders only;
	// with sp, a sequence's state is on one rank at a time (its home).
	StateBytes      int64
	KVBytesPerToken int64
}

// Memory lists the memory of the hub and of every worker of p for a
// checkpoint of c stored in dtype, quantized by q when not nil.
func (p Plan) Memory(c *minimax01.Config, dtype quant.Type, q *minimax01.QuantSpec) ([]Memory, error) {
	hub := HubPart
	out := []Memory{{Role: "hub", Part: hub, WeightBytes: c.PartBytes(&hub, dtype, q)}}
	for r := 0; r < p.Workers(); r++ {
		part, err := p.Part(c, r)
		if err != nil {
			return nil, err
		}
		m := Memory{Role: fmt.Sprintf("worker %d", r), Part: part, WeightBytes: c.PartBytes(&part, dtype, q)}
		m.StateBytes, m.KVBytesPerToken = StateMemory(c, part)
		out = append(out, m)
	}
	return out, nil
}

// StateMemory returns the per-sequence state a process holding part keeps:
// fp32 lightning states (fixed) and fp32 KV cache bytes per token, for the
// layers whose attention it holds.
func StateMemory(c *minimax01.Config, part minimax01.Part) (state, kvPerToken int64) {
	if !part.Attention {
		return 0, 0
	}
	for l := part.First; l < part.Last; l++ {
		if c.LayerKinds[l] == minimax01.Lightning {
			state += int64(c.Heads*c.HeadDim*c.HeadDim) * 4
		} else {
			kvPerToken += 2 * int64(c.KVHeads*c.HeadDim) * 4
		}
	}
	return state, kvPerToken
}

// RingBytes is the analytic payload (fp32, no message headers) that passes
// between the ranks of an sp plan in one round of n new tokens after pos0
// earlier ones, cut into SP chunks as the hub cuts them: each of the SP−1
// rank boundaries carries every lightning layer's state [heads, hd, hd],
// and the keys and values of every softmax layer go from the rank of the
// first chunk (the pos0 earlier tokens and its chunk) and from each later
// rank (its chunk) to every rank after it.
func (p Plan) RingBytes(c *minimax01.Config, pos0, n int) int64 {
	if p.SP <= 1 {
		return 0
	}
	state, kv := ringUnits(c)
	b := int64(p.SP-1) * state
	for k := 0; k < p.SP-1; k++ {
		lo, hi := split(n, p.SP, k)
		rows := int64(hi - lo)
		if k == 0 {
			rows += int64(pos0)
		}
		b += int64(p.SP-1-k) * rows * kv
	}
	return b
}

// ringUnits are the ring's units: the lightning states of every layer (one
// rank boundary) and one token's keys and values of every softmax layer.
func ringUnits(c *minimax01.Config) (state, kvPerToken int64) {
	m := c.Memory()
	return m.StateBytes, m.KVBytesPerToken
}
