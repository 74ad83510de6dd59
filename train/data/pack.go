package data

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"iter"
	"math/rand/v2"
	"strconv"

	"github.com/lightninglm/lightning/tokenizer"
)

// Split chooses the documents a Stream reads.
type Split int

const (
	TrainSplit Split = iota // documents not held out
	EvalSplit               // documents held out for the eval loss
)

func (s Split) String() string {
	if s == EvalSplit {
		return "held-out"
	}
	return "training"
}

// HeldOut reports whether the document named (name, index) (Doc.Name,
// Doc.Index) belongs to the held-out split of fraction frac: the top 53 bits
// of its FNV-1a hash, as a number in [0, 1), are below frac. The choice is
// fixed by the document's name, so it does not depend on the order or number
// of the other documents, the seed or the path the data is reached by.
func HeldOut(name string, index int, frac float64) bool {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(index), 10))
	return float64(h.Sum64()>>11)/(1<<53) < frac
}

// Options configure a Stream.
type Options struct {
	Paths    []string // -data paths, read with ReadDocs
	SeqLen   int      // tokens per sequence, at least 2
	EvalFrac float64  // fraction of documents held out, in [0, 1)
	Split    Split
	// Wrap starts the documents again after the last one (training reads
	// epoch after epoch). Without it the stream ends: the last sequence may
	// be short, and Next then returns io.EOF.
	Wrap bool
	// ShuffleWindow, when above 1, shuffles the split's documents within
	// consecutive windows of this many, by a permutation drawn from Seed,
	// the epoch and the window's index: each epoch sees the documents in
	// another order, mixed across files but only locally, and memory holds
	// one window's texts. 0 or 1 keeps the order of the files.
	ShuffleWindow int
	Seed          uint64
}

// Position is where a Stream is in its documents: the next token it gives
// is token Offset of document Doc of epoch Epoch, counting the split's
// documents from 0 in the stream's order (shuffled, with a ShuffleWindow). It is saved in trainer_state.json; Name and Index
// identify document Doc when it is partly read, and restoring checks them,
// so a run resumed on changed data stops with an error instead of
// continuing elsewhere.
type Position struct {
	Epoch  int    `json:"epoch"`
	Doc    int    `json:"doc"`
	Offset int    `json:"offset"`
	Name   string `json:"name,omitempty"`
	Index  int    `json:"index,omitempty"`
}

// A Stream tokenizes documents one at a time as they are needed and packs
// them into sequences of SeqLen tokens.
//
// Each document is encoded with the tokenizer's special tokens (a BOS, if
// its post-processor adds one) and ends with the EOS token if the tokenizer
// names one, so a model learns where documents end. Sequences are filled
// completely: a document that does not fit in what is left of a sequence
// fills it, and its remaining tokens start the next sequence as a new
// segment (a DocStarts entry at 0), which the model treats as a document of
// its own (positions and lightning state restart). No token is dropped or
// padded; only the prediction across each cut is lost.
type Stream struct {
	tok  *tokenizer.Tokenizer
	opt  Options
	eos  int
	next func() (Doc, error, bool) // pulls the next document of the data
	stop func()

	pos     Position
	cur     []int32 // tokens of document pos.Doc
	curDoc  Doc
	inDoc   bool // cur holds document pos.Doc
	ended   bool // no Wrap, and the documents ran out
	seenDoc bool // a document of either split was read

	window  []Doc // the current shuffle window, permuted
	wNext   int   // next document of window to give
	wNumber int   // windows filled in this epoch

	tokens    []int32 // [SeqLen] the sequence Next returns
	docStarts []int
	ids       []int32
}

// NewStream opens a stream at the start of the split and reads up to its
// first document, so an empty split is an error here rather than later.
func NewStream(tok *tokenizer.Tokenizer, opt Options) (*Stream, error) {
	if opt.SeqLen < 2 {
		return nil, fmt.Errorf("sequence length %d: need at least 2 tokens (one prediction)", opt.SeqLen)
	}
	if !(opt.EvalFrac >= 0 && opt.EvalFrac < 1) {
		return nil, fmt.Errorf("held-out fraction %v: need 0 ≤ fraction < 1", opt.EvalFrac)
	}
	s := &Stream{tok: tok, opt: opt, eos: -1, tokens: make([]int32, 0, opt.SeqLen)}
	if id, ok := tok.EOS(); ok {
		s.eos = id
	}
	if err := s.Seek(Position{}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops reading the documents.
func (s *Stream) Close() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// Position returns where the next sequence starts.
func (s *Stream) Position() Position { return s.pos }

// Seek moves the stream to p, a Position it returned before on the same
// data and options: the next sequence is the one that followed p then. It
// reads (without tokenizing) the documents before p.
func (s *Stream) Seek(p Position) error {
	if p.Epoch < 0 || p.Doc < 0 || p.Offset < 0 {
		return fmt.Errorf("data position %+v: negative", p)
	}
	s.restart()
	s.pos = Position{Epoch: p.Epoch}
	for s.pos.Doc < p.Doc {
		d, err := s.pull()
		if err != nil {
			return err
		}
		if d == nil {
			return fmt.Errorf("data position: document %d of epoch %d is past the %d %s documents in the data (did the data change?)", p.Doc, p.Epoch, s.pos.Doc, s.opt.Split)
		}
		s.pos.Doc++
	}
	if err := s.load(); err != nil {
		return err
	}
	if !s.inDoc {
		if s.pos.Epoch == 0 && s.pos.Doc == 0 {
			return s.noDocuments()
		}
		if p.Offset > 0 {
			return fmt.Errorf("data position: document %d of epoch %d is past the end of the %s documents (did the data change?)", p.Doc, p.Epoch, s.opt.Split)
		}
		return nil // at the end of the data: Next wraps or ends
	}
	if p.Offset > 0 {
		if p.Name != s.curDoc.Name || p.Index != s.curDoc.Index {
			return fmt.Errorf("data position: document %d of epoch %d is %s#%d, but the checkpoint was in %s#%d (did the data change?)", p.Doc, p.Epoch, s.curDoc.Name, s.curDoc.Index, p.Name, p.Index)
		}
		if p.Offset > len(s.cur) {
			return fmt.Errorf("data position: offset %d is past the %d tokens of %s#%d (did the data or tokenizer change?)", p.Offset, len(s.cur), p.Name, p.Index)
		}
	}
	s.setOffset(p.Offset)
	return nil
}

func (s *Stream) noDocuments() error {
	if !s.seenDoc {
		return fmt.Errorf("no documents with text in %v", s.opt.Paths)
	}
	if s.opt.Split == TrainSplit {
		return fmt.Errorf("no training documents in %v: every document with text is held out (lower -eval-frac or add documents)", s.opt.Paths)
	}
	return fmt.Errorf("no held-out documents in %v at -eval-frac %v (raise it or add documents: the split is by whole document)", s.opt.Paths, s.opt.EvalFrac)
}

// restart opens the documents from the beginning.
func (s *Stream) restart() {
	s.Close()
	s.next, s.stop = iter.Pull2(Docs(s.opt.Paths))
	s.inDoc, s.ended, s.cur = false, false, s.cur[:0]
	s.window, s.wNext, s.wNumber = s.window[:0], 0, 0
}

// pull returns the next document of the split in stream order (shuffled
// within windows when asked), or nil at the end.
func (s *Stream) pull() (*Doc, error) {
	if s.opt.ShuffleWindow <= 1 {
		return s.pullSplit()
	}
	if s.wNext == len(s.window) {
		clear(s.window) // drop the texts
		s.window, s.wNext = s.window[:0], 0
		for len(s.window) < s.opt.ShuffleWindow {
			d, err := s.pullSplit()
			if err != nil {
				return nil, err
			}
			if d == nil {
				break
			}
			s.window = append(s.window, *d)
		}
		if len(s.window) == 0 {
			return nil, nil
		}
		r := rand.New(rand.NewPCG(s.opt.Seed, uint64(s.pos.Epoch)<<32|uint64(s.wNumber)))
		r.Shuffle(len(s.window), func(i, j int) { s.window[i], s.window[j] = s.window[j], s.window[i] })
		s.wNumber++
	}
	s.wNext++
	return &s.window[s.wNext-1], nil
}

// pullSplit returns the next document of the split in file order, or nil
// at the end.
func (s *Stream) pullSplit() (*Doc, error) {
	for {
		d, err, ok := s.next()
		if !ok {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		s.seenDoc = true
		if HeldOut(d.Name, d.Index, s.opt.EvalFrac) == (s.opt.Split == EvalSplit) {
			return &d, nil
		}
	}
}

// load reads and tokenizes document s.pos.Doc; inDoc is false at the end of
// the data.
func (s *Stream) load() error {
	d, err := s.pull()
	if err != nil {
		return err
	}
	s.inDoc = d != nil
	s.cur = s.cur[:0]
	if d == nil {
		return nil
	}
	s.curDoc = *d
	for _, id := range s.tok.Encode(d.Text, true) {
		s.cur = append(s.cur, int32(id))
	}
	if s.eos >= 0 && (len(s.cur) == 0 || s.cur[len(s.cur)-1] != int32(s.eos)) {
		s.cur = append(s.cur, int32(s.eos))
	}
	return nil
}

func (s *Stream) setOffset(off int) {
	s.pos.Offset = off
	s.pos.Name, s.pos.Index = "", 0
	if off > 0 {
		s.pos.Name, s.pos.Index = s.curDoc.Name, s.curDoc.Index
	}
}

// advance moves to the next document with tokens, wrapping to a new epoch
// at the end of the data (or ending the stream without Wrap).
func (s *Stream) advance() error {
	wraps := 0
	for {
		s.pos.Doc++
		s.setOffset(0)
		if err := s.load(); err != nil {
			return err
		}
		if s.inDoc {
			if len(s.cur) > 0 {
				return nil
			}
			continue
		}
		if !s.opt.Wrap {
			s.ended = true
			return nil
		}
		if wraps++; wraps > 1 {
			return fmt.Errorf("%w in the %s documents of %v", ErrNoTokens, s.opt.Split, s.opt.Paths)
		}
		s.restart()
		s.pos = Position{Epoch: s.pos.Epoch + 1, Doc: -1}
	}
}

// Next returns the next packed sequence: tokens [SeqLen] (shorter only at
// the end of a stream without Wrap) and the offsets in it where document
// segments start (the first is 0). The slices are the stream's own and
// change at the next call. At the end of a stream without Wrap it returns
// io.EOF.
func (s *Stream) Next() (tokens []int32, docStarts []int, err error) {
	s.tokens, s.docStarts = s.tokens[:0], s.docStarts[:0]
	for len(s.tokens) < s.opt.SeqLen {
		if !s.inDoc || s.pos.Offset == len(s.cur) {
			if s.ended {
				break
			}
			if err := s.advance(); err != nil {
				return nil, nil, err
			}
			if s.ended {
				break
			}
		}
		n := min(s.opt.SeqLen-len(s.tokens), len(s.cur)-s.pos.Offset)
		s.docStarts = append(s.docStarts, len(s.tokens))
		s.tokens = append(s.tokens, s.cur[s.pos.Offset:s.pos.Offset+n]...)
		s.setOffset(s.pos.Offset + n)
	}
	if len(s.tokens) == 0 {
		return nil, nil, io.EOF
	}
	return s.tokens, s.docStarts, nil
}

// ErrNoTokens means the split has documents but none gives a token.
var ErrNoTokens = errors.New("no tokens")

// Sequence is one packed sequence, owning its slices.
type Sequence struct {
	Tokens    []int32 // [≤ SeqLen]
	DocStarts []int   // first is 0
}

// ReadSequences packs the split once, without wrapping, into at most
// maxTokens tokens of sequences (the last may be short): the fixed
// held-out set the eval loss is measured on.
func ReadSequences(tok *tokenizer.Tokenizer, opt Options, maxTokens int) ([]Sequence, error) {
	opt.Wrap = false
	s, err := NewStream(tok, opt)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var seqs []Sequence
	for n := 0; n < maxTokens; {
		toks, starts, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		toks = toks[:min(len(toks), maxTokens-n)]
		n += len(toks)
		cut := len(starts)
		for cut > 0 && starts[cut-1] >= len(toks) {
			cut--
		}
		seqs = append(seqs, Sequence{Tokens: append([]int32(nil), toks...), DocStarts: append([]int(nil), starts[:cut]...)})
	}
	if len(seqs) == 0 {
		return nil, ErrNoTokens
	}
	return seqs, nil
}
