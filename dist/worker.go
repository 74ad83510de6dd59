package dist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

// The Worker service. Info and Setup are unary; Steps (hub → stage leader)
// and Experts (leader → expert peer) are bidirectional streams carrying one
// reply per request, in order.
const serviceName = "lightning.dist.Worker"

var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Info", Handler: unary(methodInfo, func(w *Worker, _ *infoRequest) (any, error) { return w.info() })},
		{MethodName: "Setup", Handler: unary(methodSetup, (*Worker).setup)},
	},
	Streams: []grpc.StreamDesc{stepsStream, expertsStream, ringStream},
}

var (
	stepsStream = grpc.StreamDesc{StreamName: "Steps", ServerStreams: true, ClientStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error { return srv.(*Worker).steps(ss) }}
	expertsStream = grpc.StreamDesc{StreamName: "Experts", ServerStreams: true, ClientStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error { return srv.(*Worker).experts(ss) }}
)

// unary adapts a method of Worker to a gRPC unary handler that decodes the
// request and runs it through the server's interceptor (the token check).
func unary[Req any, PReq interface {
	*Req
	message
}](method string, call func(*Worker, PReq) (any, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		req := PReq(new(Req))
		if err := dec(req); err != nil {
			return nil, err
		}
		h := func(_ context.Context, r any) (any, error) { return call(srv.(*Worker), r.(PReq)) }
		if ic == nil {
			return h(ctx, req)
		}
		return ic(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, h)
	}
}

const (
	methodInfo    = "/" + serviceName + "/Info"
	methodSetup   = "/" + serviceName + "/Setup"
	methodSteps   = "/" + serviceName + "/Steps"
	methodExperts = "/" + serviceName + "/Experts"
)

// Digest identifies a model configuration, so a hub refuses workers that
// hold another model.
func Digest(c *minimax01.Config) string {
	h := sha256.Sum256(c.JSON(quant.F32))
	return hex.EncodeToString(h[:8])
}

// weightFormat describes how m's weights are stored, "float" or
// "quantized (SPEC)", so that a hub refuses workers whose weights differ
// from its own: every process of a plan must quantize the same way for the
// plan to give the single process's logits.
func weightFormat(m *minimax01.Model) string {
	if q := m.QuantSpec(); q != nil {
		return "quantized (" + q.String() + ")"
	}
	return "float"
}

// Worker serves one rank's slice of a model.
type Worker struct {
	m    *minimax01.Model
	plan Plan
	rank int
	part minimax01.Part
	sec  Security
	srv  *grpc.Server

	mu      sync.Mutex // guards states, peers and ringOut; a step holds it throughout
	states  map[uint64]heldState
	peers   *peerSet
	ringOut *ringLink     // sp: the stream to the next rank
	ringIn  chan *ringMsg // sp: the previous rank's messages (ring.go)
	conns   *connOwner    // the live connections, which own the states

	// PeerTimeout bounds a leader's exchange with an expert peer (set before
	// Serve; NewWorker sets DefaultStepTimeout/2, below the hub's wait).
	PeerTimeout time.Duration
	// Test hooks: each step sleeps delay first (a slow link), and counts
	// itself in busy while it runs (stages overlapping).
	delay time.Duration
	busy  *busyCounter
}

// busyCounter counts steps running at once across workers, and the most.
type busyCounter struct {
	mu        sync.Mutex
	now, most int
}

func (b *busyCounter) add(d int) {
	b.mu.Lock()
	b.now += d
	b.most = max(b.most, b.now)
	b.mu.Unlock()
}

// NewWorker wraps a model loaded with Options.Part = plan.Part(rank).
func NewWorker(m *minimax01.Model, plan Plan, rank int, sec Security) (*Worker, error) {
	part, err := plan.Part(m.Config, rank)
	if err != nil {
		return nil, err
	}
	if err := sec.Check(); err != nil {
		return nil, err
	}
	w := &Worker{m: m, plan: plan, rank: rank, part: part, sec: sec, states: map[uint64]heldState{},
		ringIn: make(chan *ringMsg, ringInbox), PeerTimeout: DefaultStepTimeout / 2}
	w.conns = &connOwner{w: w, live: map[uint64]bool{}}
	return w, nil
}

// heldState is a sequence's state on a worker and the connection whose
// steps made it (0: none known, kept until dropped).
type heldState struct {
	st   *minimax01.State
	conn uint64
}

// A sequence's state belongs to the connection whose steps created it: the
// hub's (or one hub's, when several share the workers). When that
// connection ends — the hub closed it or exited, or its machine vanished
// and TCP keep-alive gave up on it — nothing can reach the states any more,
// and the worker releases them. A step stream that fails and is reopened on
// the same connection keeps them.

// connKey is the context key of a connection's id.
type connKey struct{}

// connOwner is the worker's gRPC stats handler: it gives each connection
// an id (in its context) and releases the connection's states when it
// ends. It has its own lock: a connection may open while a step holds the
// worker's (the ring stream a running chunk waits for).
type connOwner struct {
	w    *Worker
	next atomic.Uint64
	mu   sync.Mutex
	live map[uint64]bool
}

func (o *connOwner) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	id := o.next.Add(1)
	o.mu.Lock()
	o.live[id] = true
	o.mu.Unlock()
	return context.WithValue(ctx, connKey{}, id)
}

func (o *connOwner) HandleConn(ctx context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnEnd); !ok {
		return
	}
	id := connOf(ctx)
	o.mu.Lock()
	delete(o.live, id)
	o.mu.Unlock()
	o.w.release(id)
}

func (o *connOwner) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (o *connOwner) HandleRPC(context.Context, stats.RPCStats)                       {}

// alive reports whether connection id is still open (0, no connection, is).
func (o *connOwner) alive(id uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return id == 0 || o.live[id]
}

// connOf is the id of the connection of a stream's context (0: none).
func connOf(ctx context.Context) uint64 {
	id, _ := ctx.Value(connKey{}).(uint64)
	return id
}

// keep stores st as sequence id's state, owned by connection conn, unless
// that connection has ended (its states were released; the step's reply
// cannot reach anyone). Called with w.mu held.
func (w *Worker) keep(id uint64, st *minimax01.State, conn uint64) {
	if w.conns.alive(conn) {
		w.states[id] = heldState{st: st, conn: conn}
	}
}

// release forgets the states owned by connection conn.
func (w *Worker) release(conn uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, h := range w.states {
		if h.conn == conn {
			delete(w.states, id)
		}
	}
}

// heldStates is the number of sequence states the worker holds.
func (w *Worker) heldStates() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.states)
}

// Part is what the worker holds.
func (w *Worker) Part() minimax01.Part { return w.part }

// Serve accepts connections on lis until Stop.
func (w *Worker) Serve(lis net.Listener) error {
	opts, err := w.sec.serverOptions()
	if err != nil {
		return err
	}
	opts = append(opts, grpc.MaxRecvMsgSize(1<<30), grpc.MaxSendMsgSize(1<<30), grpc.StatsHandler(w.conns))
	w.mu.Lock()
	w.srv = grpc.NewServer(opts...)
	w.srv.RegisterService(&serviceDesc, w)
	srv := w.srv
	w.mu.Unlock()
	return srv.Serve(lis)
}

// Stop closes the listener and every connection, and the peer connections.
func (w *Worker) Stop() {
	w.mu.Lock()
	srv, peers, ring := w.srv, w.peers, w.ringOut
	w.peers, w.ringOut = nil, nil
	w.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
	if peers != nil {
		peers.close()
	}
	if ring != nil {
		ring.close()
	}
}

func (w *Worker) info() (any, error) {
	return &infoReply{Rank: uint32(w.rank), Plan: w.plan.String(), Digest: Digest(w.m.Config), Quant: weightFormat(w.m), Part: w.part.String(),
		MaxBatchTokens: uint32(w.m.MaxBatchTokens()), WeightBytes: uint64(w.m.Info().WeightBytes)}, nil
}

// setup connects a stage leader to its expert peers, or with sp a rank to
// the next rank of the ring (the one peer).
func (w *Worker) setup(req *setupRequest) (any, error) {
	if w.plan.SP > 1 {
		if len(req.Peers) != 1 {
			return nil, status.Errorf(codes.InvalidArgument, "dist: %d ring peers for plan %s, want 1", len(req.Peers), w.plan)
		}
		link, err := dialRing(req.Peers[0], w.sec)
		if err != nil {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		w.mu.Lock()
		old := w.ringOut
		w.ringOut = link
		w.mu.Unlock()
		if old != nil {
			old.close()
		}
		return &empty{}, nil
	}
	if !w.part.Attention {
		return nil, status.Error(codes.FailedPrecondition, "dist: setup sent to a worker that is not a stage leader")
	}
	if len(req.Peers) != w.plan.EP-1 {
		return nil, status.Errorf(codes.InvalidArgument, "dist: %d expert peers for plan %s, want %d", len(req.Peers), w.plan, w.plan.EP-1)
	}
	var ps *peerSet
	if len(req.Peers) > 0 {
		var err error
		if ps, err = dialPeers(w.m.Config, w.plan, w.rank, req.Peers, w.sec, w.PeerTimeout); err != nil {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
	}
	w.mu.Lock()
	old := w.peers
	w.peers = ps
	w.mu.Unlock()
	if old != nil {
		old.close()
	}
	return &empty{}, nil
}

// steps runs the hub's steps through the stage's layers.
func (w *Worker) steps(ss grpc.ServerStream) error {
	if !w.part.Attention {
		return status.Error(codes.FailedPrecondition, "dist: steps sent to a worker that is not a stage leader")
	}
	var req stepRequest
	var reply stepReply
	var rows []minimax01.Rows
	dim := w.m.Config.Dim
	conn := connOf(ss.Context())
	for {
		if err := ss.RecvMsg(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		var err error
		if rows, err = w.step(&req, &reply, rows[:0], dim, conn); err != nil {
			return err
		}
		if err := ss.SendMsg(&reply); err != nil {
			return err
		}
	}
}

// step applies req's state operations and runs its rows, for the hub on
// connection conn (which owns the states it creates); it returns rows
// (reused by the next step).
func (w *Worker) step(req *stepRequest, reply *stepReply, rows []minimax01.Rows, dim int, conn uint64) ([]minimax01.Rows, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.busy != nil {
		w.busy.add(1)
		defer w.busy.add(-1)
	}
	time.Sleep(w.delay)
	start := time.Now()
	for _, o := range req.Ops {
		switch o.Kind {
		case opClone:
			delete(w.states, o.B)
			if h, ok := w.states[o.A]; ok {
				w.keep(o.B, h.st.Clone().(*minimax01.State), conn)
			}
		case opReset:
			if h, ok := w.states[o.A]; ok {
				h.st.Reset()
			}
		case opDrop:
			delete(w.states, o.A)
		default:
			return rows, status.Errorf(codes.InvalidArgument, "dist: unknown state operation %d", o.Kind)
		}
	}
	if req.Round != 0 {
		return rows, w.stepChunk(req, reply, conn, start) // ring.go
	}
	T := 0
	for _, r := range req.Rows {
		st, err := w.state(r, conn)
		if err != nil {
			return rows, err
		}
		rows = append(rows, minimax01.Rows{State: st, N: int(r.N)})
		T += int(r.N)
	}
	if T*dim != len(req.X) || T > w.m.MaxBatchTokens() {
		return rows, status.Errorf(codes.InvalidArgument, "dist: step of %d rows with %d floats (dim %d, at most %d rows)", T, len(req.X), dim, w.m.MaxBatchTokens())
	}
	var peers minimax01.ExpertPeers
	if w.peers != nil {
		w.peers.reset()
		peers = w.peers
	}
	w.m.RunLayers(req.X, rows, w.part.First, w.part.Last, peers)
	reply.X, reply.BF16 = req.X, req.BF16
	reply.PeerSent, reply.PeerRecv = 0, 0
	var blocked time.Duration
	if w.peers != nil {
		blocked = w.peers.blocked
	}
	reply.setTimes(time.Since(start), blocked)
	if w.peers != nil {
		reply.PeerSent, reply.PeerRecv = w.peers.sent, w.peers.recv
		if err := w.peers.err; err != nil {
			for _, r := range req.Rows { // their states are now wrong
				delete(w.states, r.ID)
			}
			return rows, status.Errorf(codes.Unavailable, "dist: rank %d: expert peer: %v", w.rank, err)
		}
	}
	return rows, nil
}

// setTimes records in the reply how the worker spent a step of busy
// wall time, blocked of it waiting for expert peers or the ring.
func (m *stepReply) setTimes(busy, blocked time.Duration) {
	m.Compute, m.Blocked = uint64(max(busy-blocked, 0)), uint64(blocked)
}

// state returns the state of r's sequence, which must be at r.Pos (a new
// one at position 0, owned by connection conn).
func (w *Worker) state(r row, conn uint64) (*minimax01.State, error) {
	h, ok := w.states[r.ID]
	st := h.st
	if !ok && r.Pos == 0 {
		st = w.m.NewStateCap(0)
		w.keep(r.ID, st, conn)
	}
	if !ok && r.Pos != 0 || ok && st.Len() != int(r.Pos) {
		have := -1
		if ok {
			have = st.Len()
		}
		return nil, status.Errorf(codes.FailedPrecondition, "dist: rank %d: sequence %x at position %d, worker has %d tokens (-1: unknown); was the worker restarted, or the hub's connection lost?", w.rank, r.ID, r.Pos, have)
	}
	return st, nil
}

// experts serves a leader's expert requests.
func (w *Worker) experts(ss grpc.ServerStream) error {
	var req expertRequest
	var reply expertReply
	c := w.m.Config
	for {
		if err := ss.RecvMsg(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		T := len(req.H) / c.Dim
		l := int(req.Layer)
		if l < w.part.First || l >= w.part.Last || T*c.Dim != len(req.H) || len(req.IDs) != T*c.TopK || len(req.Weights) != T*c.TopK {
			return status.Errorf(codes.InvalidArgument, "dist: rank %d: bad expert request (layer %d, %d floats, %d ids)", w.rank, l, len(req.H), len(req.IDs))
		}
		for _, id := range req.IDs {
			if id < 0 || int(id) >= c.Experts {
				return status.Errorf(codes.InvalidArgument, "dist: expert id %d out of range", id)
			}
		}
		reply.Out = grow(reply.Out, T*c.Dim)
		w.m.ExpertsForward(reply.Out, req.H, T, l, req.IDs, req.Weights)
		if err := ss.SendMsg(&reply); err != nil {
			return err
		}
	}
}
