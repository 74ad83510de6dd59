package dist

import (
	"fmt"
	"sync"

	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/quant"
)

// Sequence parallelism (plan sp=S): S ranks that each hold every layer.
// Every sequence's state is on one rank, its home. A Forward runs each
// sequence's new tokens either
//
//   - whole, on its home (a new sequence is given the next rank in turn),
//     in messages of at most the step size that carry the rows of several
//     sequences: decode steps and short inputs; different ranks run at
//     once, so for these the ranks are data-parallel replicas; or
//   - when there are at least S·SPMinChunk of them, in rounds of at most
//     S·step-size tokens: a round is cut into S contiguous chunks that the
//     ranks run at once (LASP prefill, minimax01.RunChunk), the first on
//     the home, which holds the state before them, the others on the next
//     ranks round the ring. Between ranks only each lightning layer's state
//     [heads, hd, hd] and the softmax layers' keys and values pass (ring.go),
//     and the rank of the last chunk ends with the sequence's whole state:
//     it is the new home, where decoding continues.
//
// The whole-sequence messages run first, then the rounds in order.

// DefaultSPMinChunk is Model.SPMinChunk unless set: below 32 tokens a
// rank's chunk costs more in messages than it saves.
const DefaultSPMinChunk = 32

// spMessage is one message to a rank: rows of several sequences, or one
// chunk of a round.
type spMessage struct {
	req   stepRequest
	parts []spPart // where the rows' hidden states come from and go back to
	err   error
	acct  Stats // what it adds to the counters (ring bytes, times)
}

// spPart is n rows of a sequence's hidden states xs[seq][lo:lo+n].
type spPart struct{ seq, lo, n int }

// forwardSP is Forward under an sp plan (see above). seqs are checked.
func (h *Model) forwardSP(seqs []model.Seq, logits []float32) {
	S, dim, V := h.plan.SP, h.cfg.Dim, h.cfg.Vocab
	xs := make([][]float32, len(seqs)) // per sequence: [n, dim] hidden states of its new tokens
	whole := make([][]*spMessage, S)   // per rank
	var chunked []int                  // sequences run in rounds
	seen := map[*remoteState]bool{}
	for i := range seqs {
		sq := &seqs[i]
		st := sq.State.(*remoteState)
		if seen[st] {
			panic("dist: a state appears twice in one Forward")
		}
		seen[st] = true
		n := len(sq.Tokens)
		if n == 0 {
			continue
		}
		xs[i] = make([]float32, n*dim)
		h.ends.Embed(xs[i], sq.Tokens)
		if n >= S*max(h.SPMinChunk, 1) {
			chunked = append(chunked, i)
			continue
		}
		if st.loc.home < 0 {
			st.loc.home = h.nextHome
			h.nextHome = (h.nextHome + 1) % S
		}
		r := st.loc.home
		for lo := 0; lo < n; {
			msgs := whole[r]
			if len(msgs) == 0 || rowsOf(msgs[len(msgs)-1]) == h.maxT {
				msgs = append(msgs, &spMessage{})
				whole[r] = msgs
			}
			m := msgs[len(msgs)-1]
			k := min(n-lo, h.maxT-rowsOf(m))
			m.req.Rows = append(m.req.Rows, row{ID: st.id, N: uint32(k), Pos: uint32(st.n)})
			m.parts = append(m.parts, spPart{seq: i, lo: lo, n: k})
			st.n += k
			lo += k
		}
	}
	var first error
	// Whole sequences: each rank's messages in order, the ranks at once.
	var wg sync.WaitGroup
	for r, msgs := range whole {
		if len(msgs) == 0 {
			continue
		}
		msgs[0].req.Ops, h.rankOps[r] = h.rankOps[r], nil
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, m := range msgs {
				if m.err = h.spSend(r, m, xs); m.err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, msgs := range whole {
		for _, m := range msgs {
			first = h.spAccount(m, first)
		}
	}
	// Long inputs: rounds of chunks over every rank.
	for _, i := range chunked {
		if first != nil {
			break
		}
		st := seqs[i].State.(*remoteState)
		n := len(seqs[i].Tokens)
		rounds := (n + S*h.maxT - 1) / (S * h.maxT)
		for j := 0; j < rounds && first == nil; j++ {
			lo, hi := split(n, rounds, j)
			start := max(st.loc.home, 0)
			h.nextID++
			round := h.nextID
			msgs := make([]*spMessage, S)
			for k := range msgs {
				r := (start + k) % S
				clo, chi := split(hi-lo, S, k)
				m := &spMessage{parts: []spPart{{seq: i, lo: lo + clo, n: chi - clo}}}
				m.req.Round = round
				if k > 0 {
					m.req.Ring |= ringPrev
				}
				if k < S-1 {
					m.req.Ring |= ringNext
				}
				m.req.Rows = []row{{ID: st.id, N: uint32(chi - clo), Pos: uint32(st.n + clo)}}
				m.req.Ops, h.rankOps[r] = h.rankOps[r], nil
				msgs[k] = m
				if h.SerialRounds {
					if m.err = h.spSend(r, m, xs); m.err != nil {
						break
					}
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					m.err = h.spSend(r, m, xs)
				}()
			}
			wg.Wait()
			slowest := Stats{Rounds: 1}
			for _, m := range msgs {
				if m == nil { // not sent after a failure (SerialRounds)
					continue
				}
				first = h.spAccount(m, first)
				slowest.RoundCompute = max(slowest.RoundCompute, m.acct.Compute)
				slowest.RoundRing = max(slowest.RoundRing, m.acct.PeersSent)
			}
			h.st.Add(slowest)
			st.n += hi - lo
			st.loc.home = (start + S - 1) % S
		}
	}
	sent, recv := h.takeBytes()
	h.st.HubSent += sent
	h.st.HubRecv += recv
	if first != nil {
		panic(first)
	}
	out := 0
	for i := range seqs {
		n := len(seqs[i].Tokens)
		switch {
		case n == 0:
		case seqs[i].Logits == model.LogitsAll:
			h.ends.Head(logits[out*V:(out+n)*V], xs[i], n)
			out += n
		case seqs[i].Logits == model.LogitsLast:
			h.ends.Head(logits[out*V:(out+1)*V], xs[i][(n-1)*dim:], 1)
			out++
		}
	}
}

// rowsOf is the number of rows of a message.
func rowsOf(m *spMessage) int {
	n := 0
	for _, p := range m.parts {
		n += p.n
	}
	return n
}

// spSend sends m to rank r with its rows' hidden states from xs and puts
// the returned ones back.
func (h *Model) spSend(r int, m *spMessage, xs [][]float32) error {
	dim := h.cfg.Dim
	x := make([]float32, 0, rowsOf(m)*dim)
	for _, p := range m.parts {
		x = append(x, xs[p.seq][p.lo*dim:(p.lo+p.n)*dim]...)
	}
	m.req.X, m.req.BF16 = x, h.Wire == quant.BF16
	var reply stepReply
	reply.X = x
	s := h.stages[r]
	wait, err := s.roundTrip(&m.req, &reply, h.StepTimeout)
	if err == nil && len(reply.X) != len(x) {
		err = fmt.Errorf("returned %d floats, want %d", len(reply.X), len(x))
	}
	if err != nil {
		return fmt.Errorf("%w: rank %d (%s): %w", model.ErrUnavailable, r, s.addr, err)
	}
	off := 0
	for _, p := range m.parts {
		copy(xs[p.seq][p.lo*dim:(p.lo+p.n)*dim], reply.X[off:off+p.n*dim])
		off += p.n * dim
	}
	m.acct.message(len(m.req.Ops), wait, &reply)
	s.peerSent.Add(reply.PeerSent)
	return nil
}

// spAccount adds a sent message to the traffic counters and returns the
// first error so far.
func (h *Model) spAccount(m *spMessage, first error) error {
	if m.err != nil {
		if first == nil {
			first = m.err
		}
		return first
	}
	if m.req.X != nil {
		h.st.Add(m.acct)
		h.st.Steps++
		h.st.Tokens += int64(rowsOf(m))
	}
	return first
}
