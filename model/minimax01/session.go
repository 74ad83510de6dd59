package minimax01

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/tensor"
)

// Session files hold one sequence's State so a conversation resumes without
// re-reading its prompt. Layout (little-endian):
//
//	magic    [8]byte  "LTNGSESS"
//	version  uint32   sessionVersion
//	model    [32]byte Fingerprint of the model that wrote it
//	tokens   uint64   tokens absorbed (State.Len)
//	metaLen  uint32, meta [metaLen]byte  caller's data (e.g. the chat history)
//	for each layer in order:
//	  lightning: heads·hd·hd float32 state
//	  softmax:   the KV cache as attention.KVCache.Save writes it (type byte,
//	             length, then keys and values in the cache's element type)
//	crc      uint32   CRC-32C of every byte before it
//
// Readers check the magic, version, fingerprint, every length against the
// config, and the checksum before returning a State.
const (
	sessionMagic   = "LTNGSESS"
	sessionVersion = 1
	maxSessionMeta = 64 << 20
)

// ErrSession wraps every problem with a session file.
var ErrSession = errors.New("minimax01: bad session file")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Fingerprint identifies the model a state belongs to: a SHA-256 of the
// configuration's shape fields and of a sample of the weights (the first
// 4 KiB of the embedding, the LM head and each layer's first attention
// matrix), so same-shaped models with different weights differ too.
func (m *Model) Fingerprint() [32]byte {
	h := sha256.New()
	c := m.Config
	fmt.Fprintf(h, "minimax01 v%d %d %d %d %d %d %d %d %g %d %d %d %v %v %g %g %g %g %g %g %d",
		sessionVersion, c.Vocab, c.Dim, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.RopeDim, c.RopeTheta, c.FFN,
		c.Experts, c.TopK, c.LayerKinds, c.PostNorm, c.LinearAlpha, c.LinearBeta, c.FullAlpha, c.FullBeta,
		c.MLPAlpha, c.MLPBeta, c.BlockLen)
	sample := func(t tensor.Mat) { h.Write(t.Data[:min(len(t.Data), 4096)]) }
	w := m.Weights
	sample(w.Embed)
	sample(w.LMHead)
	for _, lw := range w.Layers {
		if len(lw.QKV.Data) > 0 {
			sample(lw.QKV)
		} else {
			sample(lw.Q)
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// crcWriter checksums everything written through it.
type crcWriter struct {
	w io.Writer
	h hash.Hash32
}

func (c *crcWriter) Write(p []byte) (int, error) {
	c.h.Write(p)
	return c.w.Write(p)
}

func f32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}

// SaveState writes st (which must belong to m) and the caller's meta bytes
// (model.StateStore).
func (m *Model) SaveState(w io.Writer, ms model.State, meta []byte) error {
	st, ok := ms.(*State)
	if !ok || st.m != m {
		return fmt.Errorf("%w: the state belongs to another model", ErrSession)
	}
	if len(meta) > maxSessionMeta {
		return fmt.Errorf("%w: metadata of %d bytes exceeds %d", ErrSession, len(meta), maxSessionMeta)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &crcWriter{w: bw, h: crc32.New(castagnoli)}
	fp := m.Fingerprint()
	var hdr bytes.Buffer
	hdr.WriteString(sessionMagic)
	binary.Write(&hdr, binary.LittleEndian, uint32(sessionVersion))
	hdr.Write(fp[:])
	binary.Write(&hdr, binary.LittleEndian, uint64(st.n))
	binary.Write(&hdr, binary.LittleEndian, uint32(len(meta)))
	hdr.Write(meta)
	if _, err := cw.Write(hdr.Bytes()); err != nil {
		return err
	}
	for l, k := range m.Config.LayerKinds {
		if k == Lightning {
			if _, err := cw.Write(f32Bytes(st.lin[l])); err != nil {
				return err
			}
			continue
		}
		if err := st.kv[l].Save(cw); err != nil {
			return err
		}
	}
	if err := binary.Write(bw, binary.LittleEndian, cw.h.Sum32()); err != nil {
		return err
	}
	return bw.Flush()
}

// crcReader checksums everything read through it.
type crcReader struct {
	r io.Reader
	h hash.Hash32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	return n, err
}

// LoadState reads a state written by SaveState for this model and returns it
// with the meta bytes (model.StateStore). Truncated or corrupted data,
// another model's state and unknown versions are errors wrapping ErrSession.
func (m *Model) LoadState(r io.Reader) (model.State, []byte, error) {
	st, meta, err := m.loadState(r)
	if err != nil {
		return nil, nil, err
	}
	return st, meta, nil
}

func (m *Model) loadState(r io.Reader) (*State, []byte, error) {
	cr := &crcReader{r: bufio.NewReaderSize(r, 1<<20), h: crc32.New(castagnoli)}
	short := func(what string, err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: truncated in %s", ErrSession, what)
		}
		return fmt.Errorf("%w: reading %s: %v", ErrSession, what, err)
	}
	var magic [8]byte
	if _, err := io.ReadFull(cr, magic[:]); err != nil {
		return nil, nil, short("the header", err)
	}
	if string(magic[:]) != sessionMagic {
		return nil, nil, fmt.Errorf("%w: not a Lightning session (bad magic %q)", ErrSession, magic[:])
	}
	var version uint32
	if err := binary.Read(cr, binary.LittleEndian, &version); err != nil {
		return nil, nil, short("the header", err)
	}
	if version != sessionVersion {
		return nil, nil, fmt.Errorf("%w: format version %d, this build reads version %d", ErrSession, version, sessionVersion)
	}
	var fp [32]byte
	if _, err := io.ReadFull(cr, fp[:]); err != nil {
		return nil, nil, short("the header", err)
	}
	if own := m.Fingerprint(); fp != own {
		return nil, nil, fmt.Errorf("%w: it was saved by a different model (fingerprint %x…, this model %x…)", ErrSession, fp[:6], own[:6])
	}
	var n uint64
	var metaLen uint32
	if err := binary.Read(cr, binary.LittleEndian, &n); err != nil {
		return nil, nil, short("the header", err)
	}
	if err := binary.Read(cr, binary.LittleEndian, &metaLen); err != nil {
		return nil, nil, short("the header", err)
	}
	if metaLen > maxSessionMeta || n > math.MaxInt32 {
		return nil, nil, fmt.Errorf("%w: implausible header (tokens %d, metadata %d bytes)", ErrSession, n, metaLen)
	}
	meta := make([]byte, metaLen)
	if _, err := io.ReadFull(cr, meta); err != nil {
		return nil, nil, short("the metadata", err)
	}
	st := m.newState(0)
	st.n = int(n)
	for l, k := range m.Config.LayerKinds {
		if k == Lightning {
			if _, err := io.ReadFull(cr, f32Bytes(st.lin[l])); err != nil {
				return nil, nil, short(fmt.Sprintf("layer %d", l), err)
			}
			continue
		}
		kv := &st.kv[l]
		if err := kv.Load(cr, int(n)); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, nil, short(fmt.Sprintf("layer %d KV cache", l), err)
			}
			return nil, nil, fmt.Errorf("%w: layer %d: %v", ErrSession, l, err)
		}
		if kv.Len != int(n) {
			return nil, nil, fmt.Errorf("%w: layer %d holds %d tokens of KV cache, header says %d", ErrSession, l, kv.Len, n)
		}
	}
	want := cr.h.Sum32()
	var got uint32
	if err := binary.Read(cr.r, binary.LittleEndian, &got); err != nil {
		return nil, nil, short("the checksum", err)
	}
	if got != want {
		return nil, nil, fmt.Errorf("%w: checksum mismatch (file %08x, computed %08x): the file is corrupted", ErrSession, got, want)
	}
	if _, err := cr.r.Read(make([]byte, 1)); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: trailing data after the checksum", ErrSession)
	}
	return st, meta, nil
}

// SaveStateFile writes a session file atomically: to a temporary file in the
// same folder, synced, then renamed over path, so a crash mid-write never
// leaves a corrupt or half-written session behind.
func (m *Model) SaveStateFile(path string, st *State, meta []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := m.SaveState(f, st, meta); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadStateFile reads a session file written by SaveStateFile.
func (m *Model) LoadStateFile(path string) (*State, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, meta, err := m.loadState(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return st, meta, nil
}

var _ model.StateStore = (*Model)(nil)
