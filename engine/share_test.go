package engine

import (
	"slices"
	"testing"

	"github.com/lightninglm/lightning/model"
)

// TestShareBudget checks the split of a step's prefill budget by hand-worked
// cases: small wishes are granted whole, the rest is shared equally, and the
// tokens that do not divide go to the oldest wishes first.
func TestShareBudget(t *testing.T) {
	cases := []struct {
		wants  []int
		budget int
		want   []int
	}{
		{[]int{10000, 3}, 64, []int{61, 3}},           // a short prompt beside a long one is read at once
		{[]int{3, 10000}, 64, []int{3, 61}},           // whatever their order
		{[]int{100, 100}, 64, []int{32, 32}},          // equal shares
		{[]int{100, 100, 100}, 64, []int{22, 21, 21}}, // 64 = 3·21 + 1, the extra token to the oldest
		{[]int{10, 20, 100}, 64, []int{10, 20, 34}},   // water filling: 10 and 20 fit the share of 21, the last gets the rest
		{[]int{5, 6}, 64, []int{5, 6}},                // everything fits
		{[]int{9, 9, 9}, 2, []int{1, 1, 0}},           // fewer tokens than wishes: oldest first
		{nil, 64, nil},
	}
	for _, c := range cases {
		ws := make([]chunkWant, len(c.wants))
		for i, n := range c.wants {
			ws[i].n = n
		}
		granted := shareBudget(ws, c.budget)
		var got []int
		sum := 0
		for _, w := range ws {
			got = append(got, w.n)
			sum += w.n
		}
		if !slices.Equal(got, c.want) || granted != sum {
			t.Errorf("wants %v, budget %d: got %v (granted %d), want %v", c.wants, c.budget, got, granted, c.want)
		}
	}
}

// infoModel is a model that only describes itself (MemoryBound reads no
// more).
type infoModel struct{ info model.Info }

func (m infoModel) Info() model.Info                      { return m.info }
func (m infoModel) NewState() model.State                 { panic("infoModel: no states") }
func (m infoModel) Forward(seqs []model.Seq, _ []float32) { panic("infoModel: no forward") }

// TestMemoryBound checks the engine's memory bound against the sum worked
// by hand: budget + spares + prefix cache + logits.
func TestMemoryBound(t *testing.T) {
	m := infoModel{model.Info{VocabSize: 10, StateBytes: 1000, BytesPerTok: 2}}
	e, err := New(m, Config{MaxSeqs: 4, MaxMemory: 1_000_000, PrefixCacheBytes: 5000})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// 1e6 + 4·(1000 + 2·4096) + 5000 + 4 seqs · 10 logits · 4 bytes
	if got, want := e.MemoryBound(), int64(1_000_000+4*(1000+2*4096)+5000+4*10*4); got != want {
		t.Errorf("MemoryBound = %d, want %d", got, want)
	}
	u, err := New(m, Config{MaxSeqs: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if got := u.MemoryBound(); got != 0 {
		t.Errorf("unbounded engine: MemoryBound = %d, want 0", got)
	}
}
