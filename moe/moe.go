// Package moe holds MiniMax-01's mixture-of-experts FFN: a softmax router
// with top-k selection and renormalised weights, and SwiGLU experts run as
// one matrix product per expert over the tokens routed to it.
package moe

import (
	"github.com/lightninglm/lightning/internal/trace"
	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/tensor"
)

// Expert is one SwiGLU FFN: W2·(silu(W1·x) ⊙ W3·x) (spec §2.6).
type Expert struct {
	W1 tensor.Mat // [ffn, dim] gate projection
	W3 tensor.Mat // [ffn, dim] up projection
	W2 tensor.Mat // [dim, ffn] down projection
}

// Route picks each token's experts (spec §2.6): p = softmax(logits) in fp32
// over all experts, the topK largest (ties to the lower id), weights
// renormalised to sum to 1.
//
//	logits:  [T, E] router logits (overwritten with probabilities)
//	ids:     [T, topK] chosen experts, by descending probability
//	weights: [T, topK] their renormalised weights
func Route(logits []float32, T, E, topK int, ids []int32, weights []float32) {
	for t := 0; t < T; t++ {
		p := logits[t*E : (t+1)*E]
		kernels.Softmax(p)
		id := ids[t*topK : (t+1)*topK]
		w := weights[t*topK : (t+1)*topK]
		var sum float32
		for j := range id {
			best := -1
			for e, v := range p {
				if taken(id[:j], e) {
					continue
				}
				if best < 0 || v > p[best] {
					best = e
				}
			}
			id[j] = int32(best)
			w[j] = p[best]
			sum += p[best]
		}
		for j := range w {
			w[j] /= sum
		}
	}
}

func taken(ids []int32, e int) bool {
	for _, x := range ids {
		if int(x) == e {
			return true
		}
	}
	return false
}

// Scratch holds the buffers of one MoE forward, sized once for up to maxT
// tokens: every token's topK rows, each expert's rows together.
type Scratch struct {
	// Profile, if set, gets Forward's laps: gather, expert GEMMs, SwiGLU
	// and scatter (trace.Profile).
	Profile *trace.Profile
	// Group, if set, runs the W1 and W3 products of all the experts used
	// in one kernel-pool dispatch, then all their W2 products in another;
	// nil gives every product its own dispatch (kernels.Group). Forward
	// uses it when the experts get too few tokens to split them by tokens
	// (decode, short chunks), or always with ColumnSplit.
	Group *kernels.Group
	// ColumnSplit turns the token split off: every expert product is cut
	// between the threads by output columns, as before issue 17's prefill
	// work, for A/B benchmarks (bench -ab-prefill). The results are
	// bitwise the same either way.
	ColumnSplit bool

	rows  []int32   // [maxT·topK] token row of each gathered row, experts one after another
	w     []float32 // [maxT·topK] their routing weights
	x     []float32 // [maxT·topK, dim] gathered inputs
	gate  []float32 // [maxT·topK, ffn]
	up    []float32 // [maxT·topK, ffn]
	y     []float32 // [maxT·topK, dim] expert outputs
	count []int     // [E] tokens per expert
	first []int     // [E] each used expert's first gathered row

	// The token split of one Forward (byTokens).
	used    []int            // ids of the experts whose rows were gathered, largest count first
	segs    []segment        // what each thread runs
	load    []int            // [threads] rows given to each share so far
	experts []Expert         // the Forward's experts
	dim     int              // their input width
	shareFn func(lo, hi int) // s.runShares, bound once so Forward does not allocate
}

// segment is rows [lo, hi) of the gathered rows, all of expert e, run by
// share (thread) share.
type segment struct{ share, e, lo, hi int }

// Bytes is the memory the scratch holds.
func (s *Scratch) Bytes() int64 {
	return int64(len(s.rows)+len(s.w)+len(s.x)+len(s.gate)+len(s.up)+len(s.y))*4 + int64(len(s.count)+len(s.first))*8
}

// Touch writes a zero to every 4 KiB page of the buffers, on the kernel
// pool's threads, so that the OS maps them before the first Forward.
func (s *Scratch) Touch() {
	bufs := [][]float32{s.w, s.x, s.gate, s.up, s.y}
	kernels.ParallelFor(len(bufs), 1, func(lo, hi int) {
		for _, b := range bufs[lo:hi] {
			for i := 0; i < len(b); i += 1024 {
				b[i] = 0
			}
		}
	})
}

// NewScratch sizes the buffers for maxT tokens of topK experts each.
func NewScratch(maxT, topK, dim, ffn, experts int) *Scratch {
	n := maxT * topK
	return &Scratch{
		rows: make([]int32, n), w: make([]float32, n),
		x: make([]float32, n*dim), gate: make([]float32, n*ffn), up: make([]float32, n*ffn),
		y: make([]float32, n*dim), count: make([]int, experts), first: make([]int, experts),
		used: make([]int, 0, experts),
	}
}

// Forward computes out[T, dim] = Σ_j weights[t,j]·expert_{ids[t,j]}(h[t]).
// Tokens are grouped per expert so each expert runs one matrix product over
// all its tokens; the experts' outputs are added in ascending expert id, so
// each token's sum has the reference's order (index_add_ per expert). out
// is overwritten. Experts without weights (W1.Rows == 0) are skipped:
// under expert parallelism another process holds them and adds their share.
func Forward(out, h []float32, T, dim int, experts []Expert, ids []int32, weights []float32, topK int, s *Scratch) {
	p := s.Profile
	clear(out[:T*dim])
	clear(s.count)
	for _, e := range ids[:T*topK] {
		s.count[e]++
	}
	p.Lap(trace.OpScatter, 0, 4*float64(T*dim))
	// Gather each used expert's tokens into its own block of rows.
	n := 0
	for e := range experts {
		s.first[e] = n
		if s.count[e] == 0 || experts[e].W1.Rows == 0 {
			continue // unused, or held by another process (expert parallelism)
		}
		for t := 0; t < T; t++ {
			for j := 0; j < topK; j++ {
				if int(ids[t*topK+j]) == e {
					s.rows[n] = int32(t)
					s.w[n] = weights[t*topK+j]
					copy(s.x[n*dim:(n+1)*dim], h[t*dim:(t+1)*dim])
					n++
				}
			}
		}
	}
	p.Lap(trace.OpGather, 0, 8*float64(n*dim))
	if n == 0 {
		return
	}
	if s.byTokens(experts, n, dim) {
		// One lap for the dispatch: SwiGLU runs inside it, between the products.
		ffn := experts[s.used[0]].W1.Rows
		var bytes int
		for _, e := range s.used {
			bytes += experts[e].W1.Bytes() + experts[e].W3.Bytes() + experts[e].W2.Bytes()
		}
		p.Lap(trace.OpExperts, 6*float64(n*dim*ffn), float64(bytes+4*n*(2*dim+3*ffn)))
	} else {
		s.byColumns(experts, n, dim)
	}
	for i := 0; i < n; i++ {
		t := int(s.rows[i])
		kernels.Axpy(out[t*dim:(t+1)*dim], s.w[i], s.y[i*dim:(i+1)*dim])
	}
	p.Lap(trace.OpScatter, 0, 12*float64(n*dim))
}

// byColumns computes the n gathered rows' expert outputs into s.y with
// every product cut between the threads by output columns: the W1 and W3
// products of all the experts in one dispatch of s.Group, SwiGLU, then all
// the W2 products in another.
func (s *Scratch) byColumns(experts []Expert, n, dim int) {
	p, g := s.Profile, s.Group
	ffn := 0
	var upBytes, downBytes int
	for e := range experts {
		ex := &experts[e]
		if s.count[e] == 0 || ex.W1.Rows == 0 {
			continue
		}
		ffn = ex.W1.Rows
		r, k := s.first[e], s.count[e]
		tensor.MatMulGroup(g, s.gate[r*ffn:], s.x[r*dim:], k, ex.W1)
		tensor.MatMulGroup(g, s.up[r*ffn:], s.x[r*dim:], k, ex.W3)
		upBytes += ex.W1.Bytes() + ex.W3.Bytes()
		downBytes += ex.W2.Bytes()
	}
	g.Run()
	p.Lap(trace.OpExperts, 4*float64(n*dim*ffn), float64(upBytes+4*n*(dim+2*ffn)))
	kernels.SiLUMul(s.gate[:n*ffn], s.gate[:n*ffn], s.up[:n*ffn])
	p.Lap(trace.OpAct, 0, 12*float64(n*ffn))
	for e := range experts {
		ex := &experts[e]
		if s.count[e] == 0 || ex.W1.Rows == 0 {
			continue
		}
		r := s.first[e]
		tensor.MatMulGroup(g, s.y[r*dim:], s.gate[r*ffn:], s.count[e], ex.W2)
	}
	g.Run()
	p.Lap(trace.OpExperts, 2*float64(n*dim*ffn), float64(downBytes+4*n*(dim+ffn)))
}

// byTokens computes the n gathered rows' expert outputs into s.y in one
// pool dispatch, the rows shared between the threads, and reports whether
// it did: it does when the experts are worth it, with on average at least
// the rows from which their products take the packed GEMM (prefill).
// Each thread runs W1, W3, SwiGLU and W2 over its rows of each expert in
// turn, so the activations are packed inside the dispatch, the SwiGLU
// inputs are still in the thread's cache, and there is no barrier between
// the products. An expert is cut only where both pieces keep the whole
// product's kernels (tensor.Mat.SplitMinRows), so the rows are bitwise
// those of the column split whatever the number of threads.
func (s *Scratch) byTokens(experts []Expert, n, dim int) bool {
	if s.ColumnSplit {
		return false
	}
	s.used = s.used[:0]
	minRows := 1 << 30
	for e := range experts {
		ex := &experts[e]
		if s.count[e] == 0 || ex.W1.Rows == 0 {
			continue
		}
		s.used = append(s.used, e)
		minRows = min(minRows, ex.W1.SplitMinRows(), ex.W3.SplitMinRows(), ex.W2.SplitMinRows())
	}
	if minRows == 0 || n < len(s.used)*minRows {
		return false
	}
	t := kernels.Threads()
	s.planShares(t, n, minRows)
	s.experts, s.dim = experts, dim
	if s.shareFn == nil {
		s.shareFn = s.runShares
	}
	kernels.ParallelFor(t, 1, s.shareFn)
	s.experts = nil
	return true
}

// planShares deals the used experts' rows (n in all) to t shares of about
// n/t rows, largest expert first, each to the share with the fewest rows
// so far (ties to the lower share). An expert that does not fit that share
// is cut to fill it when both pieces keep at least minRows rows, the rest
// dealt on; otherwise it goes whole.
func (s *Scratch) planShares(t, n, minRows int) {
	for i := 1; i < len(s.used); i++ { // insertion sort, stable: a handful of experts
		for j := i; j > 0 && s.count[s.used[j]] > s.count[s.used[j-1]]; j-- {
			s.used[j], s.used[j-1] = s.used[j-1], s.used[j]
		}
	}
	if cap(s.load) < t {
		s.load = make([]int, t)
	}
	s.load = s.load[:t]
	clear(s.load)
	s.segs = s.segs[:0]
	target := (n + t - 1) / t
	for _, e := range s.used {
		lo, hi := s.first[e], s.first[e]+s.count[e]
		for lo < hi {
			k := 0
			for i, l := range s.load {
				if l < s.load[k] {
					k = i
				}
			}
			rows, room := hi-lo, target-s.load[k]
			if rows > room && room >= minRows && rows-room >= minRows {
				rows = room
			}
			s.segs = append(s.segs, segment{k, e, lo, lo + rows})
			s.load[k] += rows
			lo += rows
		}
	}
}

// runShares runs shares [lo, hi) of byTokens: each of their segments, W1
// and W3, SwiGLU, then W2. The products run on the calling goroutine
// (kernels.ParallelFor inside a dispatch does).
func (s *Scratch) runShares(lo, hi int) {
	dim := s.dim
	for _, sg := range s.segs {
		if sg.share < lo || sg.share >= hi {
			continue
		}
		ex := &s.experts[sg.e]
		ffn, rows := ex.W1.Rows, sg.hi-sg.lo
		gate, up := s.gate[sg.lo*ffn:sg.hi*ffn], s.up[sg.lo*ffn:sg.hi*ffn]
		x := s.x[sg.lo*dim : sg.hi*dim]
		tensor.MatMul(gate, x, rows, ex.W1)
		tensor.MatMul(up, x, rows, ex.W3)
		kernels.SiLUMul(gate, gate, up)
		tensor.MatMul(s.y[sg.lo*dim:sg.hi*dim], gate, rows, ex.W2)
	}
}
