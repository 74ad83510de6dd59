package dist

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

// Model is the hub: a model.Model whose layers run on workers. It holds the
// embedding, the final norm and the LM head (a model loaded with
// Options.Part = &HubPart) and one stream to each stage leader. Forward
// panics with an error value when a worker fails (the engine turns a panic
// into the failure of that step's requests).
type Model struct {
	ends   *minimax01.Model
	cfg    *minimax01.Config
	plan   Plan
	stages []*stage
	conns  []*grpc.ClientConn
	stats  []*byteCounter // per worker, in rank order
	roles  []string       // per worker: what it holds
	maxT   int
	wbytes int64 // weight bytes of the hub and every worker

	// StepTimeout bounds each stage's reply to a step (Dial sets
	// DefaultStepTimeout); a worker that does not answer in time fails
	// the Forward with ErrTimeout.
	StepTimeout time.Duration
	// MicroBatches is how many pieces a Forward's rows are cut into so the
	// stages overlap (Dial sets the number of stages; 1 = no pipelining).
	// Set it, like StepTimeout, before the first Forward.
	MicroBatches int

	// Wire is the type of the hidden states between the hub and the
	// workers: quant.F32 (Dial's default), exact, or quant.BF16, half the
	// bytes, each stage's input and output rounded to bf16 (to nearest
	// even). Expert exchanges and the sp ring stay fp32.
	Wire quant.Type

	// SPMinChunk is the fewest tokens per rank for which an sp plan cuts
	// a sequence's new tokens into chunks over every rank (sp.go); shorter
	// inputs run whole on the rank that holds the sequence.
	SPMinChunk int
	// SerialRounds makes an sp plan send a round's chunks one after
	// another, each once the previous rank has answered, instead of all at
	// once: each rank then computes alone, as it would on a machine of its
	// own, and the ring messages wait in its inbox. The results are the
	// same; bench uses it to measure each rank's compute on one machine.
	SerialRounds bool

	mu       sync.Mutex // serialises Forward; guards everything below
	nextID   uint64
	pending  []stateOp      // queued state operations, sent with the next step
	rankOps  [][]stateOp    // sp: per rank, the state operations for its next message
	nextHome int            // sp: the rank that takes the next new sequence
	free     chan []float32 // [maxT, dim] hidden-state buffers of micro-batches in flight
	final    []float32      // [maxT, dim] rows that get logits
	st       Stats
}

// stage is the hub's stream to one stage leader. After a failure the
// stream is dropped and reopened (with the leader's expert peers set up
// again) at the next step, so a restarted worker is used again.
type stage struct {
	rank   int
	conn   *grpc.ClientConn
	addr   string
	peers  []string // the stage's expert ranks 1..EP-1
	stream grpc.ClientStream
	cancel context.CancelFunc

	// Since the start: steps sent, time waiting for their replies, and the
	// bytes the leader exchanged with its expert peers.
	steps              atomic.Int64
	wait               atomic.Int64 // ns
	peerSent, peerRecv atomic.Uint64
}

// open connects the leader to its peers and opens the step stream.
func (s *stage) open(ctx context.Context) error {
	if len(s.peers) > 0 {
		if err := s.conn.Invoke(ctx, methodSetup, &setupRequest{Peers: s.peers}, &empty{}); err != nil {
			return fmt.Errorf("connect expert peers: %w", err)
		}
	}
	sctx, cancel := context.WithCancel(context.Background())
	stream, err := s.conn.NewStream(sctx, &stepsStream, methodSteps)
	if err != nil {
		cancel()
		return err
	}
	s.stream, s.cancel = stream, cancel
	return nil
}

// close drops the stream.
func (s *stage) close() {
	if s.stream != nil {
		s.stream.CloseSend()
		s.cancel()
		s.stream, s.cancel = nil, nil
	}
}

// roundTrip sends req and waits up to timeout for the reply, and returns
// how long it waited; on any failure the stream is dropped.
func (s *stage) roundTrip(req *stepRequest, reply *stepReply, timeout time.Duration) (time.Duration, error) {
	if s.stream == nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := s.open(ctx)
		cancel()
		if err != nil {
			return 0, err
		}
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		err := s.stream.SendMsg(req)
		if err == nil {
			err = s.stream.RecvMsg(reply)
		}
		done <- err
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		s.cancel() // unblocks the goroutine
		<-done
		err = fmt.Errorf("%w: no reply within %v", ErrTimeout, timeout)
	}
	wait := time.Since(start)
	s.steps.Add(1)
	s.wait.Add(int64(wait))
	if err != nil {
		s.close()
	}
	return wait, err
}

// ErrTimeout is the error of a step whose worker did not answer in time.
var ErrTimeout = errors.New("dist: worker timed out")

// DefaultStepTimeout is Model.StepTimeout unless set.
const DefaultStepTimeout = time.Minute

// DialTimeout bounds connecting to and checking every worker in Dial.
const DialTimeout = 30 * time.Second

// Dial connects the hub to the workers of plan, given in rank order, checks
// that each holds the expected slice of the same model, connects the stage
// leaders to their expert peers, and opens the step streams. A worker that
// cannot be reached fails it at once (DialWait waits for one).
func Dial(ends *minimax01.Model, plan Plan, addrs []string, sec Security) (*Model, error) {
	return DialWait(ends, plan, addrs, sec, 0)
}

// DialWait is Dial that first waits up to wait for workers that are not up
// yet: not listening, still loading, or their host names not resolving yet,
// as when a whole group of pods starts at once under Kubernetes. A worker
// that answers and refuses (wrong token, another plan) fails it at once.
func DialWait(ends *minimax01.Model, plan Plan, addrs []string, sec Security, wait time.Duration) (*Model, error) {
	c := ends.Config
	if len(addrs) != plan.Workers() {
		return nil, fmt.Errorf("dist: plan %s needs %d workers, got %d addresses", plan, plan.Workers(), len(addrs))
	}
	if err := plan.Check(c); err != nil {
		return nil, err
	}
	opts, err := sec.dialOptions()
	if err != nil {
		return nil, err
	}
	h := &Model{ends: ends, cfg: c, plan: plan, maxT: ends.MaxBatchTokens(),
		wbytes: ends.Info().WeightBytes, StepTimeout: DefaultStepTimeout}
	var seed [8]byte
	rand.Read(seed[:])
	h.nextID = binary.LittleEndian.Uint64(seed[:]) // ids of several hubs never meet
	ctx, cancel := context.WithTimeout(context.Background(), wait+DialTimeout)
	defer cancel()
	var callOpts []grpc.CallOption
	if wait > 0 {
		callOpts = append(callOpts, grpc.WaitForReady(true))
	}
	for r, addr := range addrs {
		bc := &byteCounter{}
		h.stats = append(h.stats, bc)
		conn, err := grpc.NewClient(addr, append(opts, grpc.WithStatsHandler(bc))...)
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("dist: worker %d (%s): %w", r, addr, err)
		}
		h.conns = append(h.conns, conn)
		var info infoReply
		if err := conn.Invoke(ctx, methodInfo, &infoRequest{}, &info, callOpts...); err != nil {
			h.Close()
			return nil, fmt.Errorf("dist: worker %d (%s): %w", r, addr, err)
		}
		if info.Rank != uint32(r) || info.Plan != plan.String() || info.Digest != Digest(c) {
			h.Close()
			return nil, fmt.Errorf("dist: worker at %s is rank %d of plan %s for model %s; want rank %d of plan %s for model %s",
				addr, info.Rank, info.Plan, info.Digest, r, plan, Digest(c))
		}
		if want := weightFormat(ends); info.Quant != want {
			h.Close()
			return nil, fmt.Errorf("dist: worker %d (%s) has %s weights, this hub %s: give the hub and every worker the same -quant (or the same checkpoint)",
				r, addr, info.Quant, want)
		}
		h.roles = append(h.roles, info.Part)
		h.maxT = min(h.maxT, int(info.MaxBatchTokens))
		h.wbytes += int64(info.WeightBytes)
	}
	for s := 0; s < plan.PP*plan.SP; s++ {
		lead := s * plan.EP
		st := &stage{rank: lead, conn: h.conns[lead], addr: addrs[lead], peers: addrs[lead+1 : lead+plan.EP]}
		if plan.SP > 1 { // every rank is a stage of all layers; its peer is the next rank of the ring
			st.peers = []string{addrs[(s+1)%plan.SP]}
		}
		h.stages = append(h.stages, st)
		if err := st.open(ctx); err != nil {
			h.Close()
			return nil, fmt.Errorf("dist: stage %d leader (%s): %w", s, addrs[lead], err)
		}
	}
	h.MicroBatches = plan.PP
	h.free = make(chan []float32, plan.PP+2)
	for range plan.PP + 2 {
		h.free <- make([]float32, h.maxT*c.Dim)
	}
	h.final = make([]float32, h.maxT*c.Dim)
	h.rankOps = make([][]stateOp, plan.SP)
	h.SPMinChunk = DefaultSPMinChunk
	h.Wire = quant.F32
	h.takeBytes()
	return h, nil
}

// Close ends the streams and connections (the workers keep running).
func (h *Model) Close() error {
	for _, s := range h.stages {
		s.close()
	}
	for _, c := range h.conns {
		c.Close()
	}
	return nil
}

// takeBytes returns the bytes exchanged with every worker since the last
// call.
func (h *Model) takeBytes() (sent, recv uint64) {
	for _, b := range h.stats {
		s, r := b.take()
		sent += s
		recv += r
	}
	return sent, recv
}

// Workers implements model.Workers: it checks each worker with an Info call
// bounded by ctx, in parallel.
func (h *Model) Workers(ctx context.Context) []model.WorkerStatus {
	out := make([]model.WorkerStatus, len(h.conns))
	var wg sync.WaitGroup
	for r, conn := range h.conns {
		w := &out[r]
		w.Rank, w.Addr, w.Role = r, conn.Target(), h.roles[r]
		w.BytesSent, w.BytesRecv = h.stats[r].total[0].Load(), h.stats[r].total[1].Load()
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			var info infoReply
			err := conn.Invoke(ctx, methodInfo, &infoRequest{}, &info)
			w.Check = time.Since(start)
			if err == nil && info.Rank != uint32(r) {
				err = fmt.Errorf("answers as rank %d", info.Rank)
			}
			if err != nil {
				w.Error = err.Error()
			}
			w.Ready = err == nil
		}()
	}
	for _, s := range h.stages {
		w := &out[s.rank]
		w.Steps, w.StepWait = s.steps.Load(), time.Duration(s.wait.Load())
		w.PeerBytesSent, w.PeerBytesRecv = s.peerSent.Load(), s.peerRecv.Load()
	}
	wg.Wait()
	return out
}

// Info implements model.Model. WeightBytes is what this process holds (the
// ends), so that a memory budget derived from it (serve -max-memory auto)
// is about this machine; TotalWeightBytes counts every worker too. The
// sequence states live on the stage leaders: size their budget from the
// leaders' memory (inspect -plan).
func (h *Model) Info() model.Info { return h.ends.Info() }

// Plan is the plan the hub drives.
func (h *Model) Plan() Plan { return h.plan }

// MaxBatchTokens is the most rows of one step message: the smallest step
// size of the hub and its workers.
func (h *Model) MaxBatchTokens() int { return h.maxT }

// TotalWeightBytes is the weight memory of the hub and every worker.
func (h *Model) TotalWeightBytes() int64 { return h.wbytes }

// Stats returns the traffic counters and zeroes them.
func (h *Model) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.st
	h.st = Stats{}
	return s
}

// remoteState is a sequence's state as the hub sees it: an id whose layer
// states live on the stage leaders (with sp: on one rank, loc.home), and
// the token count.
type remoteState struct {
	h   *Model
	id  uint64
	n   int
	loc *seqLoc
}

// seqLoc is where a sequence's state is under an sp plan: the rank that
// holds it, -1 before its first step. It is apart from remoteState so the
// cleanup that drops the state can read it.
type seqLoc struct {
	id   uint64
	home int
}

// NewState implements model.Model.
func (h *Model) NewState() model.State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.newStateLocked(0, -1)
}

func (h *Model) newStateLocked(n, home int) *remoteState {
	h.nextID++
	s := &remoteState{h: h, id: h.nextID, n: n, loc: &seqLoc{id: h.nextID, home: home}}
	runtime.AddCleanup(s, h.drop, s.loc)
	return s
}

// drop queues the release of a state the hub no longer references.
func (h *Model) drop(loc *seqLoc) {
	h.mu.Lock()
	h.queue(stateOp{Kind: opDrop, A: loc.id}, loc)
	h.mu.Unlock()
}

// queue queues a state operation on the sequence at loc for the workers
// that hold it: every stage leader, or with sp the rank that holds it
// (none yet: nothing to do).
func (h *Model) queue(op stateOp, loc *seqLoc) {
	switch {
	case h.plan.SP <= 1:
		h.pending = append(h.pending, op)
	case loc.home >= 0:
		h.rankOps[loc.home] = append(h.rankOps[loc.home], op)
	}
}

func (s *remoteState) Len() int { return s.n }

// Bytes is the state the leaders keep for the sequence (fp32 lightning
// states and KV caches).
func (s *remoteState) Bytes() int64 {
	m := s.h.cfg.Memory()
	return m.StateBytes + int64(s.n)*m.KVBytesPerToken
}

func (s *remoteState) Clone() model.State {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.newStateLocked(s.n, s.loc.home)
	h.queue(stateOp{Kind: opClone, A: s.id, B: c.id}, s.loc)
	return c
}

func (s *remoteState) Reset() {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	s.n = 0
	h.queue(stateOp{Kind: opReset, A: s.id}, s.loc)
}

// Forward implements model.Model. It packs the sequences, in order, into
// MicroBatches micro-batches (more when they would exceed the workers' step
// size; the single process packs its steps the same way) and pipelines
// them: the hub embeds micro-batch k+1 while stage 0 runs k and stage 1 k−1, and applies the final norm and LM head to the rows
// that want logits as micro-batches come back. Each stage sees the
// micro-batches in order, so every sequence's rows reach it in order.
func (h *Model) Forward(seqs []model.Seq, logits []float32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	V := h.cfg.Vocab
	if len(logits) < model.LogitRows(seqs)*V {
		panic(fmt.Sprintf("dist: logits buffer holds %d floats, need %d", len(logits), model.LogitRows(seqs)*V))
	}
	total := 0
	for i := range seqs {
		sq := &seqs[i]
		if st, ok := sq.State.(*remoteState); !ok || st.h != h {
			panic("dist: Forward got a state that was not made by this model")
		}
		for _, id := range sq.Tokens {
			if id < 0 || int(id) >= V {
				panic(fmt.Sprintf("dist: token id %d out of range [0, %d)", id, V))
			}
		}
		total += len(sq.Tokens)
	}
	if total == 0 {
		return
	}
	if h.plan.SP > 1 {
		h.forwardSP(seqs, logits) // sp.go
		return
	}
	mbs := h.pack(seqs, h.microRows(total))
	mbs[0].ops = h.pending
	h.pending = nil

	// feeder → stage 0 → … → stage P−1 → this goroutine (head).
	chans := make([]chan *microBatch, len(h.stages)+1)
	for i := range chans {
		chans[i] = make(chan *microBatch, len(mbs))
	}
	go func() {
		for _, mb := range mbs {
			mb.x = <-h.free
			mb.x = mb.x[:mb.T*h.cfg.Dim]
			r := 0
			for _, sp := range mb.spans {
				h.ends.Embed(mb.x[r*h.cfg.Dim:], sp.toks)
				r += len(sp.toks)
			}
			chans[0] <- mb
		}
		close(chans[0])
	}()
	var failed atomic.Bool
	for si, s := range h.stages {
		go func() {
			req, reply := &stepRequest{}, &stepReply{}
			for mb := range chans[si] {
				if mb.err == nil && failed.Load() {
					mb.err = errSkipped
				}
				if mb.err == nil {
					*req = stepRequest{Ops: mb.ops, Rows: mb.rows, X: mb.x, BF16: h.Wire == quant.BF16}
					reply.X = mb.x // decode in place
					wait, err := s.roundTrip(req, reply, h.StepTimeout)
					if err == nil && len(reply.X) != len(mb.x) {
						err = fmt.Errorf("returned %d floats, want %d", len(reply.X), len(mb.x))
					}
					if err != nil {
						mb.err = fmt.Errorf("%w: stage %d (%s): %w", model.ErrUnavailable, si, s.addr, err)
						failed.Store(true)
					} else {
						mb.acct.message(len(mb.ops), wait, reply)
					}
					s.peerSent.Add(reply.PeerSent)
					s.peerRecv.Add(reply.PeerRecv)
				}
				chans[si+1] <- mb
			}
			close(chans[si+1])
		}()
	}
	var first error
	out := 0
	dim := h.cfg.Dim
	for mb := range chans[len(h.stages)] {
		if mb.err != nil && first == nil {
			first = mb.err
		}
		if first == nil {
			R, r := 0, 0
			for _, sp := range mb.spans {
				for i := range sp.toks {
					if sp.all || sp.last && i == len(sp.toks)-1 {
						copy(h.final[R*dim:(R+1)*dim], mb.x[(r+i)*dim:(r+i+1)*dim])
						R++
					}
				}
				r += len(sp.toks)
			}
			if R > 0 {
				h.ends.Head(logits[out*V:(out+R)*V], h.final[:R*dim], R)
			}
			out += R
		}
		h.free <- mb.x[:cap(mb.x)]
		h.st.Add(mb.acct)
		h.st.Steps++
		h.st.Tokens += int64(mb.T)
	}
	sent, recv := h.takeBytes()
	h.st.HubSent += sent
	h.st.HubRecv += recv
	if first != nil {
		panic(first)
	}
}

// errSkipped marks the micro-batches after a failed one.
var errSkipped = errors.New("dist: skipped after an earlier failure")

// microRows is the size of the micro-batches of a Forward of total rows:
// with several stages, the rows are cut into MicroBatches pieces so that
// stages overlap (never more than the workers' step size).
func (h *Model) microRows(total int) int {
	n := max(h.MicroBatches, 1)
	return max(1, min(h.maxT, (total+n-1)/n))
}

// microBatch is one message's worth of rows on its way through the stages.
type microBatch struct {
	ops   []stateOp
	rows  []row
	spans []hubSpan
	T     int
	x     []float32 // [T, dim], from h.free
	err   error
	acct  Stats // what its messages to the stages add to the counters
}

// hubSpan is one sequence's tokens in a micro-batch and which of their rows
// want logits (all of them, or the last).
type hubSpan struct {
	toks      []int32
	all, last bool
}

// pack cuts the sequences into micro-batches of at most size rows, in
// order, advancing the hub-side states.
func (h *Model) pack(seqs []model.Seq, size int) []*microBatch {
	var mbs []*microBatch
	mb := &microBatch{}
	for i := range seqs {
		sq := &seqs[i]
		st := sq.State.(*remoteState)
		toks := sq.Tokens
		for len(toks) > 0 {
			if mb.T == size {
				mbs = append(mbs, mb)
				mb = &microBatch{}
			}
			n := min(len(toks), size-mb.T)
			mb.rows = append(mb.rows, row{ID: st.id, N: uint32(n), Pos: uint32(st.n)})
			mb.spans = append(mb.spans, hubSpan{toks: toks[:n], all: sq.Logits == model.LogitsAll,
				last: sq.Logits == model.LogitsLast && n == len(toks)})
			st.n += n
			mb.T += n
			toks = toks[n:]
		}
	}
	return append(mbs, mb)
}
