package dist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightninglm/lightning/model/minimax01"
)

// The ring of a sequence-parallel plan (sp=S): each rank streams ringMsgs
// to the next one, (r+1) mod S, over a Ring stream it opens when the hub
// sets it up; the receiving rank queues them in its inbox for the chunk
// being run (chunkRing). The ring is closed because a sequence's state
// moves: a round of chunks starts at the rank that holds the sequence and
// ends, S−1 ranks on, at the one that holds it next.

var ringStream = grpc.StreamDesc{StreamName: "Ring", ClientStreams: true,
	Handler: func(srv any, ss grpc.ServerStream) error { return srv.(*Worker).ring(ss) }}

const methodRing = "/" + serviceName + "/Ring"

// ringInbox is how many ring messages a rank queues before its Ring
// stream stops reading (gRPC flow control then holds the sender).
const ringInbox = 1024

// ring queues the messages of the previous rank.
func (w *Worker) ring(ss grpc.ServerStream) error {
	for {
		m := &ringMsg{} // the chunk keeps the slices: one message each
		if err := ss.RecvMsg(m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		select {
		case w.ringIn <- m:
		case <-ss.Context().Done():
			return ss.Context().Err()
		}
	}
}

// ringLink is a rank's stream to the next rank of the ring.
type ringLink struct {
	conn   *grpc.ClientConn
	stream grpc.ClientStream
	cancel context.CancelFunc
	stats  *byteCounter
}

func dialRing(addr string, sec Security) (*ringLink, error) {
	opts, err := sec.dialOptions()
	if err != nil {
		return nil, err
	}
	l := &ringLink{stats: &byteCounter{}}
	if l.conn, err = grpc.NewClient(addr, append(opts, grpc.WithStatsHandler(l.stats))...); err != nil {
		return nil, fmt.Errorf("dist: ring peer %s: %w", addr, err)
	}
	return l, nil
}

// send streams m to the next rank, opening the stream first if needed; a
// failed stream is dropped and reopened by the next send.
func (l *ringLink) send(m *ringMsg) error {
	if l.stream == nil {
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := l.conn.NewStream(ctx, &ringStream, methodRing)
		if err != nil {
			cancel()
			return err
		}
		l.stream, l.cancel = stream, cancel
	}
	if err := l.stream.SendMsg(m); err != nil {
		l.drop()
		return err
	}
	return nil
}

func (l *ringLink) drop() {
	if l.cancel != nil {
		l.cancel()
	}
	l.stream, l.cancel = nil, nil
}

func (l *ringLink) close() {
	l.drop()
	l.conn.Close()
}

// chunkRing is the minimax01.ChunkRing of one chunk on a worker: it sends
// to the next rank through out and takes the previous rank's messages of
// its round from in. The first failure sticks in err; after it every
// receive returns nothing and every send is skipped. blocked sums the time
// spent waiting for the previous rank's messages and for sends to go out.
type chunkRing struct {
	round      uint64
	prev, next bool
	out        *ringLink
	in         chan *ringMsg
	timeout    time.Duration
	buf        []float32 // a KV block being sent
	err        error
	blocked    time.Duration
}

func (r *chunkRing) Prev() bool { return r.prev }
func (r *chunkRing) Next() bool { return r.next }

// recv returns the next message of the round, which must be of layer l and
// the given kind.
func (r *chunkRing) recv(l int, kind uint32) *ringMsg {
	if r.err != nil {
		return nil
	}
	start := time.Now()
	defer func() { r.blocked += time.Since(start) }()
	timer := time.NewTimer(r.timeout)
	defer timer.Stop()
	for {
		select {
		case m := <-r.in:
			if m.Round != r.round {
				continue // left over from a round that failed
			}
			if m.Layer != uint32(l) || m.Kind != kind {
				r.err = fmt.Errorf("dist: ring message of layer %d kind %d, want layer %d kind %d", m.Layer, m.Kind, l, kind)
				return nil
			}
			return m
		case <-timer.C:
			r.err = fmt.Errorf("%w: the previous rank sent nothing for layer %d within %v", ErrTimeout, l, r.timeout)
			return nil
		}
	}
}

func (r *chunkRing) send(m *ringMsg) {
	if r.err != nil {
		return
	}
	start := time.Now()
	defer func() { r.blocked += time.Since(start) }()
	if err := r.out.send(m); err != nil {
		r.err = fmt.Errorf("dist: ring to the next rank: %w", err)
	}
}

func (r *chunkRing) RecvState(l int) []float32 {
	if m := r.recv(l, ringState); m != nil {
		return m.Data
	}
	return nil
}

func (r *chunkRing) SendState(l int, st []float32) {
	r.send(&ringMsg{Round: r.round, Layer: uint32(l), Kind: ringState, Data: st})
}

func (r *chunkRing) RecvKV(l int) (pos, n int, k, v []float32) {
	m := r.recv(l, ringKV)
	if m == nil || m.N == 0 || len(m.Data)%(2*int(m.N)) != 0 {
		if m != nil {
			r.err = fmt.Errorf("dist: ring block of %d rows with %d floats", m.N, len(m.Data))
		}
		return 0, 0, nil, nil
	}
	half := len(m.Data) / 2
	return int(m.Pos), int(m.N), m.Data[:half], m.Data[half:]
}

func (r *chunkRing) SendKV(l, pos, n int, k, v []float32) {
	r.buf = append(append(r.buf[:0], k...), v...)
	r.send(&ringMsg{Round: r.round, Layer: uint32(l), Kind: ringKV, Pos: uint32(pos), N: uint32(n), Data: r.buf})
}

// stepChunk runs req, one chunk of a sequence-parallel prefill. A chunk
// with earlier chunks before it starts from an empty state at its position
// (the sequence's state is on the rank of the first chunk); a rank whose
// chunk is not the last drops the sequence's state afterwards: it has
// moved on with the ring. The state it keeps belongs to connection conn;
// start is when the step began.
func (w *Worker) stepChunk(req *stepRequest, reply *stepReply, conn uint64, start time.Time) error {
	if len(req.Rows) != 1 {
		return status.Errorf(codes.InvalidArgument, "dist: a sequence-parallel chunk with %d rows, want 1", len(req.Rows))
	}
	r := req.Rows[0]
	prev, next := req.Ring&ringPrev != 0, req.Ring&ringNext != 0
	if next && w.ringOut == nil {
		return status.Error(codes.FailedPrecondition, "dist: sequence-parallel chunk before the ring was set up")
	}
	var st *minimax01.State
	if prev {
		st = w.m.NewStateAt(int(r.Pos))
	} else {
		var err error
		if st, err = w.state(r, conn); err != nil {
			return err
		}
	}
	if int(r.N)*w.m.Config.Dim != len(req.X) || int(r.N) > w.m.MaxBatchTokens() {
		return status.Errorf(codes.InvalidArgument, "dist: chunk of %d rows with %d floats (at most %d rows)", r.N, len(req.X), w.m.MaxBatchTokens())
	}
	ring := &chunkRing{round: req.Round, prev: prev, next: next, out: w.ringOut, in: w.ringIn, timeout: w.PeerTimeout}
	var sent0 uint64
	if w.ringOut != nil {
		sent0 = w.ringOut.stats.total[0].Load()
	}
	w.m.RunChunk(req.X, st, int(r.N), ring)
	reply.X, reply.BF16 = req.X, req.BF16
	reply.setTimes(time.Since(start), ring.blocked)
	reply.PeerSent, reply.PeerRecv = 0, 0
	if w.ringOut != nil {
		reply.PeerSent = w.ringOut.stats.total[0].Load() - sent0
	}
	if next || ring.err != nil {
		delete(w.states, r.ID)
	} else {
		w.keep(r.ID, st, conn)
	}
	if ring.err != nil {
		return status.Errorf(codes.Unavailable, "dist: rank %d: %v", w.rank, ring.err)
	}
	return nil
}
