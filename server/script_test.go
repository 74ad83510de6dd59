package server_test

import (
	"github.com/lightninglm/lightning/model"
)

// scriptModel is a model.Model that, after any prompt, "generates" a fixed
// token script and then EOS: its logits put all mass on the next script
// token. It lets tests drive exact outputs (tool calls, stop strings)
// through the real engine and server.
type scriptModel struct {
	vocab  int
	script []int32
	eos    int32
}

type scriptState struct {
	n      int // tokens absorbed
	prompt int // tokens absorbed when logits were first asked for; -1 before
}

func (s *scriptState) Len() int           { return s.n }
func (s *scriptState) Bytes() int64       { return 64 }
func (s *scriptState) Clone() model.State { c := *s; return &c }
func (s *scriptState) Reset()             { *s = scriptState{prompt: -1} }

func (m *scriptModel) Info() model.Info {
	return model.Info{VocabSize: m.vocab, StateBytes: 64, BytesPerTok: 1}
}

func (m *scriptModel) NewState() model.State { return &scriptState{prompt: -1} }

func (m *scriptModel) Forward(seqs []model.Seq, logits []float32) {
	row := 0
	for _, sq := range seqs {
		st := sq.State.(*scriptState)
		st.n += len(sq.Tokens)
		if sq.Rows() == 0 {
			continue
		}
		if st.prompt < 0 {
			st.prompt = st.n
		}
		next := m.eos
		if k := st.n - st.prompt; k < len(m.script) {
			next = m.script[k]
		}
		out := logits[row*m.vocab : (row+1)*m.vocab]
		clear(out)
		out[next] = 20
		row++
	}
}
