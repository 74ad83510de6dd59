package minimax01

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lightninglm/lightning/model"
)

// chanRing is an in-process ChunkRing: rank r's sends go to rank r+1's
// channels.
type chanRing struct {
	prev, next       bool
	inState, toState chan []float32
	inKV, toKV       chan kvBlock
}

type kvBlock struct {
	pos, n int
	k, v   []float32
}

func (r *chanRing) Prev() bool                   { return r.prev }
func (r *chanRing) Next() bool                   { return r.next }
func (r *chanRing) RecvState(int) []float32      { return <-r.inState }
func (r *chanRing) SendState(_ int, s []float32) { r.toState <- append([]float32(nil), s...) }
func (r *chanRing) RecvKV(int) (int, int, []float32, []float32) {
	b := <-r.inKV
	return b.pos, b.n, b.k, b.v
}
func (r *chanRing) SendKV(_ int, pos, n int, k, v []float32) {
	r.toKV <- kvBlock{pos, n, append([]float32(nil), k...), append([]float32(nil), v...)}
}

// runChunks prefills tokens on a state of ranks[0] holding prior tokens
// already (st), cut into len(ranks) chunks run at once, each rank a model
// sharing the weights; it returns the hidden states of every token and the
// last rank's state, which then holds the whole sequence.
func runChunks(ranks []*Model, st *State, x []float32, n int) ([]float32, *State) {
	N, dim := len(ranks), ranks[0].Config.Dim
	rings := make([]*chanRing, N)
	for r := range rings {
		rings[r] = &chanRing{prev: r > 0, next: r < N-1}
	}
	for r := 0; r+1 < N; r++ {
		s, kv := make(chan []float32, 1024), make(chan kvBlock, 1024)
		rings[r].toState, rings[r].toKV = s, kv
		rings[r+1].inState, rings[r+1].inKV = s, kv
	}
	var wg sync.WaitGroup
	states := make([]*State, N)
	pos0 := st.Len()
	for r := range ranks {
		lo, hi := r*n/N, (r+1)*n/N
		states[r] = st
		if r > 0 {
			states[r] = ranks[r].NewStateAt(pos0 + lo)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ranks[r].RunChunk(x[lo*dim:hi*dim], states[r], hi-lo, rings[r])
		}()
	}
	wg.Wait()
	return x, states[N-1]
}

// TestChunksEqualOneProcess runs the golden prompts of tiny-a and tiny-b
// (a prior prompt, then a long one cut into 2 and 4 chunks on as many
// in-process ranks) and compares every logit with one process running the
// same tokens, then greedy-decodes on the last rank's state. The
// difference is only summation order (LASP combination, ring attention),
// so the golden tolerance logitTol applies; greedy tokens must agree.
func TestChunksEqualOneProcess(t *testing.T) {
	for _, name := range []string{"tiny-a", "tiny-b"} {
		dir := filepath.Join("testdata/golden", name)
		b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		var man manifest
		if err := json.Unmarshal(b, &man); err != nil {
			t.Fatal(err)
		}
		single, err := Load(dir, Options{MaxBatchTokens: 512})
		if err != nil {
			t.Fatal(err)
		}
		V, dim := single.Config.Vocab, single.Config.Dim
		for _, N := range []int{2, 4} {
			for _, c := range []struct{ prior, prompt string }{{"", "p700"}, {"p7", "p257"}, {"", "b1"}} {
				var prior []int32
				if c.prior != "" {
					prior = man.Prompts[c.prior]
				}
				prompt := man.Prompts[c.prompt]
				ref := single.NewState()
				if len(prior) > 0 {
					single.Forward([]model.Seq{{State: ref, Tokens: prior}}, nil)
				}
				want := make([]float32, len(prompt)*V)
				single.Forward([]model.Seq{{State: ref, Tokens: prompt, Logits: model.LogitsAll}}, want)

				ranks := []*Model{}
				for range N {
					ranks = append(ranks, New(single.Config, single.Weights, Options{MaxBatchTokens: 512}))
				}
				st := ranks[0].NewStateCap(0)
				if len(prior) > 0 {
					ranks[0].Forward([]model.Seq{{State: st, Tokens: prior}}, nil)
				}
				x := make([]float32, len(prompt)*dim)
				single.Embed(x, prompt)
				x, last := runChunks(ranks, st, x, len(prompt))
				got := make([]float32, len(prompt)*V)
				single.Head(got, x, len(prompt))
				if d := maxDiff(got, want); d > logitTol {
					t.Errorf("%s sp=%d %s+%s: max |Δlogit| %.3g > %g", name, N, c.prior, c.prompt, d, logitTol)
				}
				if last.Len() != len(prior)+len(prompt) {
					t.Errorf("%s sp=%d: last rank's state has %d tokens, want %d", name, N, last.Len(), len(prior)+len(prompt))
				}
				// Decode on the last rank against the single process.
				lastW, lastG := want[len(want)-V:], got[len(got)-V:]
				for step := range 8 {
					a, b := argmaxF(lastW), argmaxF(lastG)
					if a != b {
						t.Fatalf("%s sp=%d %s: greedy step %d: %d, single process %d", name, N, c.prompt, step, b, a)
					}
					nw, ng := make([]float32, V), make([]float32, V)
					single.Forward([]model.Seq{{State: ref, Tokens: []int32{int32(a)}, Logits: model.LogitsLast}}, nw)
					ranks[N-1].Forward([]model.Seq{{State: last, Tokens: []int32{int32(b)}, Logits: model.LogitsLast}}, ng)
					if d := maxDiff(ng, nw); d > logitTol {
						t.Errorf("%s sp=%d %s: decode step %d: max |Δlogit| %.3g", name, N, c.prompt, step, d)
					}
					lastW, lastG = nw, ng
				}
			}
		}
		single.Close()
	}
}

func maxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, float64(abs32(a[i]-b[i])))
	}
	return d
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

func argmaxF(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
