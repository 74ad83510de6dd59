package dist

import (
	"math"

	"github.com/lightninglm/lightning/model/minimax01"
)

// The analytic traffic of the messages, from wire.go's layouts. Every
// message also carries gRPC's 5-byte frame header, which the byte counters
// (stats.go) include.

const (
	frameHeader = 5
	// opBytes is one state operation in a step message.
	opBytes = 20
	// ringMsgHeader is a ring message's bytes besides its floats: the frame
	// header, round, layer, kind, position, row count and float count.
	ringMsgHeader = frameHeader + 8 + 4 + 4 + 4 + 4 + 4
)

// stepBytes is the size of a step message carrying T rows of hidden states
// ([T, dim], elem bytes each: 4 for fp32, 2 for bf16) in rows row records
// and ops state operations, and of its reply: the request has the round and
// ring fields, the op and row counts, 16 bytes per row and the float count;
// the reply the float count, two uint64 peer byte counters and two uint64
// times.
func stepBytes(T, rows, ops, dim, elem int) (req, reply int64) {
	x := int64(elem) * int64(T*dim)
	req = frameHeader + 12 + 4 + opBytes*int64(ops) + 4 + 16*int64(rows) + 4 + x
	reply = frameHeader + 4 + x + 16 + 16
	return req, reply
}

// expertBytes is the size of an expert request of n rows (the layer, each
// row's top-k ids and weights, its hidden state) and of its reply.
func expertBytes(n, dim, topK int) (req, reply int64) {
	req = frameHeader + 4 + (4 + 4*int64(topK*n)) + (4 + 4*int64(topK*n)) + (4 + 4*int64(dim*n))
	reply = frameHeader + 4 + 4*int64(dim*n)
	return req, reply
}

// Traffic is the analytic traffic of a Forward (Model.Traffic), in the
// units Stats counts.
type Traffic struct {
	HubSent, HubRecv int64 // between the hub and the workers
	// Peers is the bytes between workers: under sp the ring (exact), under
	// ep the expert exchanges both ways, expected under uniform routing
	// (each token's top-k experts a uniformly random set).
	Peers float64
	Exact bool // false when Peers is an expectation (ep)
}

// Total is every byte of t.
func (t Traffic) Total() float64 { return float64(t.HubSent+t.HubRecv) + t.Peers }

// Traffic is the analytic traffic of one Forward of a single sequence of n
// new tokens after pos0 earlier ones, cut into messages as this hub cuts
// them, with its Wire type, whose step messages carry ops state operations
// in all (Stats.Ops): what Stats counts for that Forward.
func (h *Model) Traffic(pos0, n, ops int) Traffic {
	c, dim, elem := h.cfg, h.cfg.Dim, h.Wire.Info().BlockBytes
	t := Traffic{Exact: h.plan.EP == 1, HubSent: opBytes * int64(ops)}
	step := func(T int) {
		req, reply := stepBytes(T, 1, 0, dim, elem)
		t.HubSent += req
		t.HubRecv += reply
	}
	if S := h.plan.SP; S > 1 {
		if n < S*max(h.SPMinChunk, 1) { // whole, on the sequence's rank
			for lo := 0; lo < n; lo += h.maxT {
				step(min(h.maxT, n-lo))
			}
			return t
		}
		msgs := (S-1)*c.Count(minimax01.Lightning) + S*(S-1)/2*c.Count(minimax01.Softmax)
		rounds := (n + S*h.maxT - 1) / (S * h.maxT)
		for j := range rounds {
			lo, hi := split(n, rounds, j)
			for k := range S {
				clo, chi := split(hi-lo, S, k)
				step(chi - clo)
			}
			t.Peers += float64(h.plan.RingBytes(c, pos0+lo, hi-lo) + int64(msgs*ringMsgHeader))
		}
		return t
	}
	size := h.microRows(n)
	for lo := 0; lo < n; lo += size {
		T := min(size, n-lo)
		for range h.stages {
			step(T)
		}
		t.Peers += h.expertTraffic(T)
	}
	return t
}

// expertTraffic is the expected bytes of the expert exchanges of one step
// of T rows through every stage under uniform routing: per MoE layer and
// expert peer holding x of the X experts, a row goes there when one of its
// top-k is among them, with probability q = 1 − C(X−x, k)/C(X, k), and an
// exchange happens when at least one row goes, with probability
// 1 − (1−q)^T.
func (h *Model) expertTraffic(T int) float64 {
	c, plan := h.cfg, h.plan
	if plan.EP <= 1 {
		return 0
	}
	req0, reply0 := expertBytes(0, c.Dim, c.TopK)
	req1, reply1 := expertBytes(1, c.Dim, c.TopK)
	header, perRow := float64(req0+reply0), float64(req1+reply1-req0-reply0)
	var b float64
	for r := range plan.Workers() {
		part, _ := plan.Part(c, r)
		if part.Attention { // a leader: its own experts stay local
			continue
		}
		q := 1 - choose(c.Experts-(part.ExpertHi-part.ExpertLo), c.TopK)/choose(c.Experts, c.TopK)
		pAny := 1 - math.Pow(1-q, float64(T))
		b += float64(part.Last-part.First) * (pAny*header + q*float64(T)*perRow)
	}
	return b
}

// choose is the binomial coefficient C(n, k) (0 when k > n).
func choose(n, k int) float64 {
	if k < 0 || k > n {
		return 0
	}
	v := 1.0
	for i := range k {
		v = v * float64(n-i) / float64(i+1)
	}
	return v
}
