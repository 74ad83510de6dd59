package dist

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/lightninglm/lightning/model/minimax01"
)

// peerSet is a stage leader's link to the other expert ranks of its stage
// (minimax01.ExpertPeers): per MoE layer it sends each peer, in one message,
// the rows routed to at least one of that peer's experts, and adds the
// peers' weighted sums into the layer's output.
type peerSet struct {
	dim, topK int
	peers     []*peer
	wg        sync.WaitGroup
	timeout   time.Duration // per exchange; a peer that does not answer fails the step

	// Per step (reset by the leader before each step).
	sent, recv uint64        // payload bytes to and from the peers
	blocked    time.Duration // waiting in Recv for the peers' replies
	err        error         // the first failure; later layers are skipped
}

type peer struct {
	lo, hi int // experts [lo, hi)
	conn   *grpc.ClientConn
	stream grpc.ClientStream
	cancel context.CancelFunc
	stats  *byteCounter

	rows  []int32 // rows of the current layer sent to this peer
	req   expertRequest
	reply expertReply
	err   error
	done  chan error
}

// open opens the peer's stream (again after a failure: the connection
// reconnects to a restarted peer by itself).
func (p *peer) open() error {
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := p.conn.NewStream(ctx, &expertsStream, methodExperts)
	if err != nil {
		cancel()
		return err
	}
	p.stream, p.cancel = stream, cancel
	return nil
}

// drop closes a failed stream.
func (p *peer) drop() {
	if p.cancel != nil {
		p.cancel()
	}
	p.stream, p.cancel = nil, nil
}

func dialPeers(c *minimax01.Config, plan Plan, rank int, addrs []string, sec Security, timeout time.Duration) (*peerSet, error) {
	ps := &peerSet{dim: c.Dim, topK: c.TopK, timeout: timeout}
	for i, addr := range addrs {
		part, err := plan.Part(c, rank+1+i)
		if err != nil {
			ps.close()
			return nil, err
		}
		p := &peer{lo: part.ExpertLo, hi: part.ExpertHi, stats: &byteCounter{}, done: make(chan error, 1)}
		ps.peers = append(ps.peers, p)
		opts, err := sec.dialOptions()
		if err != nil {
			ps.close()
			return nil, err
		}
		if p.conn, err = grpc.NewClient(addr, append(opts, grpc.WithStatsHandler(p.stats))...); err != nil {
			ps.close()
			return nil, fmt.Errorf("dist: expert peer %s: %w", addr, err)
		}
		if err := p.open(); err != nil {
			ps.close()
			return nil, fmt.Errorf("dist: expert peer %s: %w", addr, err)
		}
	}
	return ps, nil
}

func (ps *peerSet) close() {
	for _, p := range ps.peers {
		p.drop()
		if p.conn != nil {
			p.conn.Close()
		}
	}
}

func (ps *peerSet) reset() {
	ps.err = nil
	for _, p := range ps.peers {
		p.stats.take()
	}
	ps.sent, ps.recv, ps.blocked = 0, 0, 0
}

// Send implements minimax01.ExpertPeers.
func (ps *peerSet) Send(l int, h []float32, T int, ids []int32, wts []float32) {
	if ps.err != nil {
		return
	}
	K, dim := ps.topK, ps.dim
	for _, p := range ps.peers {
		p.rows = p.rows[:0]
		p.req.Layer = uint32(l)
		p.req.IDs, p.req.Weights, p.req.H = p.req.IDs[:0], p.req.Weights[:0], p.req.H[:0]
		for t := 0; t < T; t++ {
			for j := 0; j < K; j++ {
				if e := int(ids[t*K+j]); e >= p.lo && e < p.hi {
					p.rows = append(p.rows, int32(t))
					p.req.IDs = append(p.req.IDs, ids[t*K:(t+1)*K]...)
					p.req.Weights = append(p.req.Weights, wts[t*K:(t+1)*K]...)
					p.req.H = append(p.req.H, h[t*dim:(t+1)*dim]...)
					break
				}
			}
		}
		if len(p.rows) == 0 {
			continue
		}
		p.err = nil
		if p.stream == nil {
			if p.err = p.open(); p.err != nil {
				continue
			}
		}
		ps.wg.Add(1)
		go func() {
			defer ps.wg.Done()
			stream := p.stream
			go func() {
				err := stream.SendMsg(&p.req)
				if err == nil {
					err = stream.RecvMsg(&p.reply)
				}
				p.done <- err
			}()
			timer := time.NewTimer(ps.timeout)
			defer timer.Stop()
			select {
			case p.err = <-p.done:
			case <-timer.C:
				p.cancel()
				<-p.done
				p.err = fmt.Errorf("%w: expert peer gave no reply within %v", ErrTimeout, ps.timeout)
			}
			if p.err == nil && len(p.reply.Out) != len(p.req.H) {
				p.err = fmt.Errorf("dist: expert peer returned %d floats for %d", len(p.reply.Out), len(p.req.H))
			}
		}()
	}
}

// Recv implements minimax01.ExpertPeers: out[t] += the peers' sums, in
// peer order.
func (ps *peerSet) Recv(out []float32) {
	start := time.Now()
	ps.wg.Wait()
	ps.blocked += time.Since(start)
	if ps.err != nil {
		return
	}
	dim := ps.dim
	for _, p := range ps.peers {
		if len(p.rows) == 0 {
			continue
		}
		if p.err != nil {
			ps.err = p.err
			for _, q := range ps.peers { // reopen at the next step
				if q.err != nil {
					q.drop()
				}
			}
			return
		}
		for i, t := range p.rows {
			dst, src := out[int(t)*dim:(int(t)+1)*dim], p.reply.Out[i*dim:(i+1)*dim]
			for j := range dst {
				dst[j] += src[j]
			}
		}
	}
	for _, p := range ps.peers {
		s, r := p.stats.take()
		ps.sent += s
		ps.recv += r
	}
}
