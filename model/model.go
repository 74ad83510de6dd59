// Package model is what the engine sees of a language model: a Forward over a
// ragged batch of sequences, each with its own State. It knows nothing about
// any architecture, tokenizer or file format.
package model

import (
	"context"
	"errors"
	"io"
	"time"
)

// LogitsMode says which positions of a sequence's new tokens get logits.
type LogitsMode uint8

const (
	// LogitsNone computes no logits (a prefill chunk that is not the last).
	LogitsNone LogitsMode = iota
	// LogitsLast computes logits for the last new token only.
	LogitsLast
	// LogitsAll computes logits for every new token.
	LogitsAll
)

// Seq is one sequence's share of a batch: its state and the tokens to feed.
type Seq struct {
	State  State
	Tokens []int32
	Logits LogitsMode
}

// Rows returns how many logits rows s produces.
func (s Seq) Rows() int {
	switch s.Logits {
	case LogitsLast:
		if len(s.Tokens) > 0 {
			return 1
		}
	case LogitsAll:
		return len(s.Tokens)
	}
	return 0
}

// LogitRows returns the total logits rows of a batch.
func LogitRows(seqs []Seq) int {
	n := 0
	for _, s := range seqs {
		n += s.Rows()
	}
	return n
}

// Info describes a model to the engine.
type Info struct {
	VocabSize    int
	ContextLen   int   // longest context the model was built for (0 = unbounded)
	StateBytes   int64 // bytes of per-sequence state that do not grow with length
	BytesPerTok  int64 // bytes of per-sequence state added per token (KV cache)
	WeightBytes  int64 // bytes of weights
	ActiveParams int64 // parameters used per token (for roofline figures)
}

// Model runs a causal language model over ragged batches.
type Model interface {
	// Info describes the model.
	Info() Info
	// NewState returns an empty per-sequence state.
	NewState() State
	// Forward feeds every sequence's tokens, in order, updating its state, and
	// writes logits rows to logits ([LogitRows(seqs), VocabSize]) in batch
	// order. Each sequence's result equals running it alone. Every State must
	// come from this model's NewState and appear at most once. Token ids must
	// be in [0, VocabSize); Forward panics otherwise (callers validate input).
	Forward(seqs []Seq, logits []float32)
}

// State is a sequence's decoding state (recurrent states and KV caches).
type State interface {
	// Len is the number of tokens the state has absorbed.
	Len() int
	// Bytes is the memory the state holds now.
	Bytes() int64
	// Clone returns an independent deep copy (a checkpoint).
	Clone() State
	// Reset empties the state for reuse, keeping its memory.
	Reset()
}

// StateStore is implemented by models whose states can be saved to and
// restored from a byte stream (sessions on disk). Load must reject data
// written by another model, a corrupt stream and an unknown version.
type StateStore interface {
	// SaveState writes st (made by this model) and the caller's meta bytes.
	SaveState(w io.Writer, st State, meta []byte) error
	// LoadState reads what SaveState wrote.
	LoadState(r io.Reader) (State, []byte, error)
}

// Workers is implemented by models whose layers run in other processes
// (package dist); the server reports them in /health and /metrics.
type Workers interface {
	// Workers checks every worker (bounded by ctx) and returns their status
	// in rank order.
	Workers(ctx context.Context) []WorkerStatus
}

// WorkerStatus is one worker process as the process that drives it sees it.
type WorkerStatus struct {
	Rank  int
	Addr  string
	Role  string        // e.g. "stage 0 leader, layers [0,4) …"
	Ready bool          // answered the check
	Error string        // why not, when not Ready
	Check time.Duration // the check's round trip
	// Traffic and waiting since start: bytes between this process and the
	// worker, bytes between a stage leader and its expert peers, and the
	// steps sent to a leader with the time spent waiting for their replies.
	BytesSent, BytesRecv         uint64
	PeerBytesSent, PeerBytesRecv uint64
	Steps                        int64
	StepWait                     time.Duration
}

// ErrUnavailable is wrapped by the error value a Forward panics with when
// part of the model runs in other processes (package dist) and one of them
// failed or did not answer in time; the engine ends that step's sequences
// with it and empties its prefix cache (a restarted worker has lost the
// states it held), and the server answers 503.
var ErrUnavailable = errors.New("model: a worker process is unavailable")

// ErrNoCheckpoint is returned when a state must go back to a length for which
// no checkpoint exists: recurrent states cannot be cropped.
var ErrNoCheckpoint = errors.New("model: recurrent state cannot be rewound without a checkpoint")
