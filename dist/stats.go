package dist

import (
	"context"
	"fmt"
	"sync/atomic"

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

// Stats are the hub's traffic counters since the last call of Model.Stats.
type Stats struct {
	Steps     int64  // Forward steps run (one message per stage each)
	Tokens    int64  // rows (tokens) run through the workers
	HubSent   uint64 // bytes the hub sent to the stage leaders
	HubRecv   uint64 // bytes the hub received from them
	PeersSent uint64 // bytes the leaders sent to their expert peers; sp: the ranks to the next rank (ring)
	PeersRecv uint64 // bytes the leaders received from their expert peers
}

// Total is every byte that crossed between processes.
func (s Stats) Total() uint64 { return s.HubSent + s.HubRecv + s.PeersSent + s.PeersRecv }

// String renders the counters.
func (s Stats) String() string {
	return fmt.Sprintf("%d steps, %d tokens; hub sent %d B, received %d B; peers (experts, sp ring) sent %d B, received %d B",
		s.Steps, s.Tokens, s.HubSent, s.HubRecv, s.PeersSent, s.PeersRecv)
}
