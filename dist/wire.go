package dist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/grpc/encoding"

	"github.com/lightninglm/lightning/kernels"
)

// The messages of the Worker service are not protobuf: each has a fixed
// little-endian layout written by marshal and read by unmarshal, and the
// codec below carries them under the gRPC content-subtype "lraw". Slices are
// a uint32 count followed by the raw elements; float32 values are their IEEE
// bits, so hidden states cross the wire as raw fp32 bytes, or, between the
// hub and the workers when asked (Model.Wire), as raw bf16 bytes: the
// vector's count then has its top bit set (putVec).

// codecName is the gRPC content-subtype of the raw codec.
const codecName = "lraw"

// message is a Worker service message.
type message interface {
	marshal(b []byte) []byte
	unmarshal(r *reader) error
}

type rawCodec struct{}

func (rawCodec) Name() string { return codecName }

func (rawCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(message)
	if !ok {
		return nil, fmt.Errorf("dist: codec cannot marshal %T", v)
	}
	return m.marshal(nil), nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(message)
	if !ok {
		return fmt.Errorf("dist: codec cannot unmarshal into %T", v)
	}
	r := &reader{b: data}
	if err := m.unmarshal(r); err != nil {
		return err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errShort, len(r.b))
	}
	return nil
}

func init() { encoding.RegisterCodec(rawCodec{}) }

var errShort = errors.New("dist: malformed message")

// reader consumes a message's bytes; the first short read sticks as err.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// count reads a slice length and checks that elem·n bytes remain.
func (r *reader) count(elem int) int {
	n := int(r.u32())
	if r.err == nil && n*elem > len(r.b) {
		r.err = errShort
	}
	if r.err != nil {
		return 0
	}
	return n
}

func (r *reader) f32s(dst []float32) []float32 {
	n := r.count(4)
	b := r.take(4 * n)
	dst = grow(dst, n)
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return dst
}

// bf16Tag marks, in a vector's count, elements sent as bf16 (putVec).
const bf16Tag = 1 << 31

// vec reads a vector of putVec into dst's storage and reports whether it
// crossed as bf16 (then widened exactly to float32).
func (r *reader) vec(dst []float32) ([]float32, bool) {
	h := r.u32()
	bf16, n := h&bf16Tag != 0, int(h&^bf16Tag)
	elem := 4
	if bf16 {
		elem = 2
	}
	b := r.take(elem * n)
	if r.err != nil {
		return dst[:0], bf16
	}
	dst = grow(dst, n)
	for i := range dst {
		if bf16 {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		} else {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}
	return dst, bf16
}

func (r *reader) i32s(dst []int32) []int32 {
	n := r.count(4)
	b := r.take(4 * n)
	dst = grow(dst, n)
	for i := range dst {
		dst[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return dst
}

func (r *reader) str() string { return string(r.take(r.count(1))) }

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func putU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func putU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

func putF32s(b []byte, v []float32) []byte {
	b = putU32(b, uint32(len(v)))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// putVec writes hidden states v as fp32 (putF32s), or rounded to bf16
// (round to nearest even) with bf16Tag in the count.
func putVec(b []byte, v []float32, bf16 bool) []byte {
	if !bf16 {
		return putF32s(b, v)
	}
	b = putU32(b, uint32(len(v))|bf16Tag)
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, kernels.RoundBF16(x))
	}
	return b
}

func putI32s(b []byte, v []int32) []byte {
	b = putU32(b, uint32(len(v)))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

func putStr(b []byte, s string) []byte { return append(putU32(b, uint32(len(s))), s...) }

// infoRequest asks a worker who it is.
type infoRequest struct{}

func (*infoRequest) marshal(b []byte) []byte { return b }
func (*infoRequest) unmarshal(*reader) error { return nil }

// infoReply describes a worker: its place in the plan, the model it holds
// (a digest of its configuration, and how its weights are quantized), its
// step size and memory.
type infoReply struct {
	Rank           uint32
	Plan           string
	Digest         string
	Quant          string // weightFormat
	Part           string
	MaxBatchTokens uint32
	WeightBytes    uint64
}

func (m *infoReply) marshal(b []byte) []byte {
	b = putU32(b, m.Rank)
	b = putStr(b, m.Plan)
	b = putStr(b, m.Digest)
	b = putStr(b, m.Quant)
	b = putStr(b, m.Part)
	b = putU32(b, m.MaxBatchTokens)
	return putU64(b, m.WeightBytes)
}

func (m *infoReply) unmarshal(r *reader) error {
	m.Rank, m.Plan, m.Digest, m.Quant, m.Part = r.u32(), r.str(), r.str(), r.str(), r.str()
	m.MaxBatchTokens, m.WeightBytes = r.u32(), r.u64()
	return r.err
}

// setupRequest gives a stage leader the addresses of its stage's other
// expert ranks, in expert-rank order (1..EP-1).
type setupRequest struct{ Peers []string }

func (m *setupRequest) marshal(b []byte) []byte {
	b = putU32(b, uint32(len(m.Peers)))
	for _, p := range m.Peers {
		b = putStr(b, p)
	}
	return b
}

func (m *setupRequest) unmarshal(r *reader) error {
	n := r.count(4)
	m.Peers = make([]string, n)
	for i := range m.Peers {
		m.Peers[i] = r.str()
	}
	return r.err
}

// empty is a reply with no content.
type empty struct{}

func (*empty) marshal(b []byte) []byte { return b }
func (*empty) unmarshal(*reader) error { return nil }

// State operations queued by the hub and applied in order before a step.
const (
	opClone = 1 // B = a copy of A
	opReset = 2 // A emptied
	opDrop  = 3 // A forgotten
)

type stateOp struct {
	Kind uint32
	A, B uint64
}

// row is one sequence's rows in a step: N tokens starting at position Pos.
type row struct {
	ID     uint64
	N, Pos uint32
}

// stepRequest runs a stage's layers on X ([ΣN, dim]) after applying Ops.
// A Round other than 0 makes it one chunk of a sequence-parallel prefill
// (one row; Ring says whether chunks come before and after it, ringPrev
// and ringNext), whose ring messages carry the same Round.
type stepRequest struct {
	Round uint64
	Ring  uint32
	Ops   []stateOp
	Rows  []row
	X     []float32
	BF16  bool // X crosses as bf16 (putVec), and the reply's X too
}

// Bits of stepRequest.Ring.
const (
	ringPrev = 1 // earlier chunks are on other ranks
	ringNext = 2 // a later chunk follows on the next rank
)

func (m *stepRequest) marshal(b []byte) []byte {
	b = putU32(putU64(b, m.Round), m.Ring)
	b = putU32(b, uint32(len(m.Ops)))
	for _, o := range m.Ops {
		b = putU64(putU64(putU32(b, o.Kind), o.A), o.B)
	}
	b = putU32(b, uint32(len(m.Rows)))
	for _, rw := range m.Rows {
		b = putU32(putU32(putU64(b, rw.ID), rw.N), rw.Pos)
	}
	return putVec(b, m.X, m.BF16)
}

func (m *stepRequest) unmarshal(r *reader) error {
	m.Round, m.Ring = r.u64(), r.u32()
	m.Ops = grow(m.Ops, r.count(20))
	for i := range m.Ops {
		m.Ops[i] = stateOp{Kind: r.u32(), A: r.u64(), B: r.u64()}
	}
	m.Rows = grow(m.Rows, r.count(16))
	for i := range m.Rows {
		m.Rows[i] = row{ID: r.u64(), N: r.u32(), Pos: r.u32()}
	}
	m.X, m.BF16 = r.vec(m.X)
	return r.err
}

// stepReply carries the stage's output hidden states, the bytes the
// leader exchanged with its expert peers (sp: sent to the next rank of the
// ring) for this step, and how the worker spent the step: nanoseconds
// computing, and blocked waiting for expert peers or the ring.
type stepReply struct {
	X                  []float32
	BF16               bool // X crosses as bf16 (as the request's did)
	PeerSent, PeerRecv uint64
	Compute, Blocked   uint64 // ns
}

func (m *stepReply) marshal(b []byte) []byte {
	b = putU64(putU64(putVec(b, m.X, m.BF16), m.PeerSent), m.PeerRecv)
	return putU64(putU64(b, m.Compute), m.Blocked)
}

func (m *stepReply) unmarshal(r *reader) error {
	m.X, m.BF16 = r.vec(m.X)
	m.PeerSent, m.PeerRecv = r.u64(), r.u64()
	m.Compute, m.Blocked = r.u64(), r.u64()
	return r.err
}

// expertRequest asks an expert peer for its experts' weighted sum on the T
// rows of H ([T, dim]) of layer Layer, with the rows' top-k IDs and Weights
// ([T, topK]).
type expertRequest struct {
	Layer   uint32
	IDs     []int32
	Weights []float32
	H       []float32
}

func (m *expertRequest) marshal(b []byte) []byte {
	return putF32s(putF32s(putI32s(putU32(b, m.Layer), m.IDs), m.Weights), m.H)
}

func (m *expertRequest) unmarshal(r *reader) error {
	m.Layer = r.u32()
	m.IDs = r.i32s(m.IDs)
	m.Weights = r.f32s(m.Weights)
	m.H = r.f32s(m.H)
	return r.err
}

// expertReply is the peer's weighted expert sum ([T, dim]).
type expertReply struct{ Out []float32 }

func (m *expertReply) marshal(b []byte) []byte   { return putF32s(b, m.Out) }
func (m *expertReply) unmarshal(r *reader) error { m.Out = r.f32s(m.Out); return r.err }

// ringMsg goes from a rank to the next in a sequence-parallel prefill:
// lightning layer Layer's state after the sender's chunk (Kind ringState,
// Data [heads, hd, hd]) or a block of softmax layer Layer's keys and values
// at positions [Pos, Pos+N) (Kind ringKV, Data = keys then values, each
// [N, kvHeads·hd]).
type ringMsg struct {
	Round       uint64
	Layer, Kind uint32
	Pos, N      uint32
	Data        []float32
}

// Kinds of ringMsg.
const (
	ringState = 1
	ringKV    = 2
)

func (m *ringMsg) marshal(b []byte) []byte {
	b = putU32(putU32(putU32(putU32(putU64(b, m.Round), m.Layer), m.Kind), m.Pos), m.N)
	return putF32s(b, m.Data)
}

func (m *ringMsg) unmarshal(r *reader) error {
	m.Round, m.Layer, m.Kind, m.Pos, m.N = r.u64(), r.u32(), r.u32(), r.u32(), r.u32()
	m.Data = r.f32s(m.Data)
	return r.err
}
