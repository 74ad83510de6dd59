package dist

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/stats"
)

// byteCounter is a gRPC stats handler that counts the bytes of the messages
// a client sends and receives on the wire (each message plus gRPC's 5-byte
// frame header; HTTP/2 and TLS framing are not included).
type byteCounter struct {
	sent, recv atomic.Uint64    // since the last take
	total      [2]atomic.Uint64 // sent, received since the start
}

func (b *byteCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (b *byteCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (b *byteCounter) HandleConn(context.Context, stats.ConnStats)                       {}

func (b *byteCounter) HandleRPC(_ context.Context, s stats.RPCStats) {
	switch p := s.(type) {
	case *stats.OutPayload:
		b.sent.Add(uint64(p.WireLength))
		b.total[0].Add(uint64(p.WireLength))
	case *stats.InPayload:
		b.recv.Add(uint64(p.WireLength))
		b.total[1].Add(uint64(p.WireLength))
	}
}

// take returns the counts and zeroes them.
func (b *byteCounter) take() (sent, recv uint64) {
	return b.sent.Swap(0), b.recv.Swap(0)
}

// Stats are the hub's counters since the last call of Model.Stats.
type Stats struct {
	Steps     int64  // Forward steps run (one message per stage each)
	Tokens    int64  // rows (tokens) run through the workers
	Ops       int64  // state operations the step messages carried (20 B each; under pp every stage gets each)
	HubSent   uint64 // bytes the hub sent to the stage leaders
	HubRecv   uint64 // bytes the hub received from them
	PeersSent uint64 // bytes the leaders sent to their expert peers; sp: the ranks to the next rank (ring)
	PeersRecv uint64 // bytes the leaders received from their expert peers

	// Summed over the step messages: the time the hub waited for each
	// reply, and how the worker says it spent that time: computing, and
	// blocked waiting for its expert peers or for the previous rank of the
	// ring. The rest, Wait − Compute − Blocked, went to moving and
	// encoding the message and its reply.
	Wait, Compute, Blocked time.Duration

	// sp: the chunk rounds run, and summed over them the compute time of
	// the round's slowest rank and the ring bytes of the rank that sent the
	// most (the busiest rank boundary).
	Rounds       int64
	RoundCompute time.Duration
	RoundRing    uint64
}

// message adds one answered step message that carried ops state
// operations and was waited for for wait.
func (s *Stats) message(ops int, wait time.Duration, r *stepReply) {
	s.Ops += int64(ops)
	s.PeersSent += r.PeerSent
	s.PeersRecv += r.PeerRecv
	s.Wait += wait
	s.Compute += time.Duration(r.Compute)
	s.Blocked += time.Duration(r.Blocked)
}

// Add adds o's counters to s.
func (s *Stats) Add(o Stats) {
	s.Steps += o.Steps
	s.Tokens += o.Tokens
	s.Ops += o.Ops
	s.HubSent += o.HubSent
	s.HubRecv += o.HubRecv
	s.PeersSent += o.PeersSent
	s.PeersRecv += o.PeersRecv
	s.Wait += o.Wait
	s.Compute += o.Compute
	s.Blocked += o.Blocked
	s.Rounds += o.Rounds
	s.RoundCompute += o.RoundCompute
	s.RoundRing += o.RoundRing
}

// Total is every byte that crossed between processes.
func (s Stats) Total() uint64 { return s.HubSent + s.HubRecv + s.PeersSent + s.PeersRecv }

// String renders the counters.
func (s Stats) String() string {
	return fmt.Sprintf("%d steps, %d tokens; hub sent %d B, received %d B; peers (experts, sp ring) sent %d B, received %d B; waited %v for workers, which computed %v and were blocked %v",
		s.Steps, s.Tokens, s.HubSent, s.HubRecv, s.PeersSent, s.PeersRecv,
		s.Wait.Round(time.Microsecond), s.Compute.Round(time.Microsecond), s.Blocked.Round(time.Microsecond))
}
