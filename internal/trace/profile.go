package trace

import (
	"sync/atomic"
	"time"
)

// Op is a class of work in a forward step, the rows of a profile.
type Op uint8

// The op classes. GEMMs are split by the role of their weight matrix.
const (
	OpOther    Op = iota // step setup and anything not lapped elsewhere
	OpEmbed              // embedding rows
	OpNorm               // RMSNorms (sub-layer inputs, lightning output, final)
	OpAct                // SiLU, sigmoid, gating products, SwiGLU
	OpResidual           // residual updates, with the RMSNorm that follows each fused in
	OpQKV                // lightning fused q|k|v projection
	OpGate               // lightning output gate projection
	OpOut                // lightning output projection
	OpQ                  // softmax q projection
	OpK                  // softmax k projection
	OpV                  // softmax v projection
	OpO                  // softmax output projection
	OpRouter             // MoE router projection
	OpExperts            // expert projections (W1, W3, W2)
	OpLMHead             // LM head
	OpRoute              // MoE softmax + top-k
	OpGather             // MoE gather of each expert's rows
	OpScatter            // MoE weighted scatter-add of the expert outputs
	OpLinInter           // lightning inter-block part (Q·S, state update) or the decode recurrence
	OpLinIntra           // lightning intra-block part (masked Q·Kᵀ, its product with V)
	OpRoPE               // RoPE and the KV-cache append of softmax layers
	OpSoftmax            // softmax attention over the KV cache
	OpPoolWait           // the calling thread waiting for the kernel pool's workers
	NumOps
)

var opNames = [NumOps]string{"other", "embed", "norm", "activation", "residual + norm", "gemm qkv", "gemm output gate",
	"gemm out", "gemm q", "gemm k", "gemm v", "gemm o", "gemm router", "gemm experts", "gemm lm head",
	"moe routing", "moe gather", "moe scatter", "lightning inter-block", "lightning intra-block",
	"rope + kv append", "softmax attention", "pool wait"}

// String is the op's name in reports.
func (o Op) String() string { return opNames[o] }

// Kind is where an op ran: in a lightning layer, a softmax layer, or outside
// the layers (embedding, final norm, LM head).
type Kind uint8

// The kinds of a profile.
const (
	KindModel Kind = iota
	KindLightning
	KindSoftmax
	NumKinds
)

var kindNames = [NumKinds]string{"model", "lightning", "softmax"}

// String is the kind's name in reports.
func (k Kind) String() string { return kindNames[k] }

// Phase separates decode steps (every sequence adds one token) from prefill
// steps (anything else).
type Phase uint8

// The phases of a profile.
const (
	Prefill Phase = iota
	Decode
	NumPhases
)

// Cell is the accumulated cost of one op of one kind.
type Cell struct {
	Time  time.Duration // wall time on the calling thread
	Wait  time.Duration // pool waits that followed this op's work (also counted in OpPoolWait, not in Time)
	Flops float64       // multiply-adds × 2 the op performed
	Bytes float64       // bytes the op had to move (weights, caches, activations read and written)
	// Dispatches counts the kernel pool's dispatches (each a wake-up of its
	// workers and a barrier) the op made.
	Dispatches uint64
}

// Steps is the accumulated profile of the steps of one phase.
type Steps struct {
	Steps  int
	Tokens int
	Wall   time.Duration // from each step's Begin to its End
	Cells  [NumKinds][NumOps]Cell
	Layers [NumKinds]int // layers of each kind a step runs (Profile.Layers), for per-layer figures
}

// Profile splits the wall time of forward steps by op class and layer kind
// with laps: each Lap charges the time since the previous lap to one op, so
// the parts add up to the step. A nil *Profile is off and costs one pointer
// comparison per lap (style.md G12). Laps are taken on the goroutine that
// runs the step; Split is the one entry point safe from pool workers.
type Profile struct {
	// Waited, if set, returns the cumulative time the kernel pool's caller
	// spent waiting for its workers; each lap moves the wait since the
	// previous lap from its op to OpPoolWait (of the same kind).
	Waited func() time.Duration
	// Dispatched, if set, returns the cumulative count of the kernel
	// pool's dispatches; each lap charges those since the previous lap to
	// its op.
	Dispatched func() uint64
	// Layers is the number of layers of each kind a step runs (the model
	// kind: 0), copied into each phase's Steps.
	Layers [NumKinds]int

	Phases [NumPhases]Steps

	cur      *Steps
	kind     Kind
	last     time.Time
	begin    time.Time
	lastWait time.Duration
	lastDisp uint64
	split    [2]atomic.Int64 // CPU nanoseconds of the two parts of a Split, summed over threads
}

// Begin starts a step of the given phase.
func (p *Profile) Begin(ph Phase) {
	if p == nil {
		return
	}
	p.cur = &p.Phases[ph]
	p.cur.Layers = p.Layers
	p.kind = KindModel
	if p.Waited != nil {
		p.lastWait = p.Waited()
	}
	if p.Dispatched != nil {
		p.lastDisp = p.Dispatched()
	}
	p.begin = time.Now()
	p.last = p.begin
}

// Kind sets the kind the following laps are charged to.
func (p *Profile) Kind(k Kind) {
	if p == nil {
		return
	}
	p.kind = k
}

// Lap charges the wall time since the previous lap to op, and the work it
// did (flops, bytes) for the op's ratio to the machine's limits. A lap
// outside a step (before Begin or after End) is ignored: kernels that lap
// can also run outside a model step (minimax01.Model.ExpertsForward).
func (p *Profile) Lap(op Op, flops, bytes float64) {
	if p == nil || p.cur == nil {
		return
	}
	p.lap(op, flops, bytes)
}

func (p *Profile) lap(op Op, flops, bytes float64) time.Duration {
	now := time.Now()
	dt := now.Sub(p.last)
	p.last = now
	row := &p.cur.Cells[p.kind]
	if p.Waited != nil {
		w := p.Waited()
		wait := min(w-p.lastWait, dt)
		p.lastWait = w
		row[OpPoolWait].Time += wait
		row[op].Wait += wait
		dt -= wait
	}
	c := &row[op]
	if p.Dispatched != nil {
		d := p.Dispatched()
		c.Dispatches += d - p.lastDisp
		p.lastDisp = d
	}
	c.Time += dt
	c.Flops += flops
	c.Bytes += bytes
	return dt
}

// AddSplit records, from any goroutine, CPU time spent in part 0 or 1 of
// an op that LapSplit will divide; a nil Profile ignores it.
func (p *Profile) AddSplit(part int, d time.Duration) {
	if p == nil {
		return
	}
	p.split[part].Add(int64(d))
}

// LapSplit is Lap for an op whose work ran on several threads in two parts
// (ops[0], ops[1]) timed with AddSplit: the wall time since the previous lap
// is divided between them in proportion to their summed CPU times.
func (p *Profile) LapSplit(ops [2]Op, flops, bytes [2]float64) {
	if p == nil {
		return
	}
	a, b := p.split[0].Swap(0), p.split[1].Swap(0)
	if p.cur == nil { // outside a step, like Lap
		return
	}
	wait0 := p.cur.Cells[p.kind][ops[0]].Wait
	dt := p.lap(ops[0], flops[0], bytes[0])
	if a+b == 0 {
		return
	}
	moved := time.Duration(float64(dt) * float64(b) / float64(a+b))
	row := &p.cur.Cells[p.kind]
	row[ops[0]].Time -= moved
	// The pool wait that followed is shared in the same proportion.
	w := time.Duration(float64(row[ops[0]].Wait-wait0) * float64(b) / float64(a+b))
	row[ops[0]].Wait -= w
	c := &row[ops[1]]
	c.Time += moved
	c.Wait += w
	c.Flops += flops[1]
	c.Bytes += bytes[1]
}

// LapShared is Lap for ops whose work ran together in one pool dispatch
// (a kernels.Group of matrix products): the wall time since the previous
// lap, and the pool wait that followed, are divided among ops in
// proportion to the bytes each moved; the dispatch is counted once, on
// ops[0].
func (p *Profile) LapShared(ops []Op, flops, bytes []float64) {
	if p == nil || p.cur == nil {
		return
	}
	row := &p.cur.Cells[p.kind]
	wait0 := row[ops[0]].Wait
	dt := p.lap(ops[0], flops[0], bytes[0])
	wait := row[ops[0]].Wait - wait0
	var total float64
	for _, b := range bytes {
		total += b
	}
	if total <= 0 {
		return
	}
	for i := 1; i < len(ops); i++ {
		f := bytes[i] / total
		t, w := time.Duration(float64(dt)*f), time.Duration(float64(wait)*f)
		row[ops[0]].Time -= t
		row[ops[0]].Wait -= w
		c := &row[ops[i]]
		c.Time += t
		c.Wait += w
		c.Flops += flops[i]
		c.Bytes += bytes[i]
	}
}

// End closes the step that added tokens rows, charging the time since the
// last lap to OpOther of the model kind.
func (p *Profile) End(tokens int) {
	if p == nil || p.cur == nil {
		return
	}
	p.kind = KindModel
	p.lap(OpOther, 0, 0)
	p.cur.Steps++
	p.cur.Tokens += tokens
	p.cur.Wall += p.last.Sub(p.begin)
	p.cur = nil
}

// Reset clears the accumulated steps.
func (p *Profile) Reset() {
	if p == nil {
		return
	}
	p.Phases = [NumPhases]Steps{}
}
