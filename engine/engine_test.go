package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
	"github.com/lightninglm/lightning/sample"
)

// tinyModel writes and loads a random f32 model of the tiny preset with a
// 16-token lightning block, so short prompts cross block boundaries.
func tinyModel(t testing.TB, batchTokens int) *minimax01.Model {
	t.Helper()
	cfg, err := minimax01.PresetConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.BlockLen = 16
	dir := t.TempDir()
	if err := minimax01.WriteRandom(dir, cfg, minimax01.RandomOptions{DType: quant.F32, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	m, err := minimax01.Load(dir, minimax01.Options{MaxBatchTokens: batchTokens})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newEngine(t testing.TB, m model.Model, cfg engine.Config) *engine.Engine {
	t.Helper()
	e, err := engine.New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func randomPrompt(r *rand.Rand, n, vocab int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(r.IntN(vocab))
	}
	return p
}

func greedy() sample.Params {
	p := sample.DefaultParams()
	p.Temperature = 0
	return p
}

func ids(toks []engine.Token) []int32 {
	out := make([]int32, len(toks))
	for i, t := range toks {
		out[i] = t.ID
	}
	return out
}

func run(t testing.TB, e *engine.Engine, req engine.Request) ([]engine.Token, *engine.Result) {
	t.Helper()
	s, err := e.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	toks, r, err := s.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return toks, r
}

// reference generates greedily with plain Forward calls, one sequence alone.
func reference(m model.Model, prompt []int32, n int) []int32 {
	V := m.Info().VocabSize
	st := m.NewState()
	logits := make([]float32, V)
	var out []int32
	next := prompt
	for range n {
		m.Forward([]model.Seq{{State: st, Tokens: next, Logits: model.LogitsLast}}, logits)
		best := int32(0)
		for j, v := range logits {
			if v > logits[best] {
				best = int32(j)
			}
		}
		out = append(out, best)
		next = []int32{best}
	}
	return out
}

// TestBatchedEqualsSequential checks the criterion: N sequences
// decoded together give the tokens of N runs alone (greedy), with prompts
// long enough to be prefilled in chunks between other sequences' decode
// steps.
func TestBatchedEqualsSequential(t *testing.T) {
	const batch = 48
	m := tinyModel(t, batch)
	V := m.Info().VocabSize
	r := rand.New(rand.NewPCG(1, 2))
	lens := []int{1, 5, 17, 40, 47, 48, 49, 130}
	const gen = 24
	prompts := make([][]int32, len(lens))
	want := make([][]int32, len(lens))
	for i, n := range lens {
		prompts[i] = randomPrompt(r, n, V)
		want[i] = reference(m, prompts[i], gen)
	}
	e := newEngine(t, m, engine.Config{MaxSeqs: len(lens), BatchTokens: batch})
	streams := make([]*engine.Stream, len(lens))
	for i, p := range prompts {
		s, err := e.Submit(context.Background(), engine.Request{Prompt: p, MaxTokens: gen, Params: greedy()})
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = s
	}
	for i, s := range streams {
		toks, res, err := s.Wait(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Reason != engine.FinishLength || res.CompletionTokens != gen || res.PromptTokens != lens[i] {
			t.Errorf("sequence %d: result %+v", i, res)
		}
		if got := ids(toks); !slices.Equal(got, want[i]) {
			t.Errorf("sequence %d (prompt %d): batched %v\nalone %v", i, lens[i], got, want[i])
		}
	}
	waitIdle(t, e) // results are delivered before the step publishes its figures
	st := e.Stats()
	if st.Running != 0 || st.Queued != 0 || st.Reserved != 0 || st.Finished != int64(len(lens)) {
		t.Errorf("stats after the run: %+v", st)
	}
	// Fewer steps than running them one after another: decode steps were shared.
	if st.Steps >= int64(len(lens)*gen) {
		t.Errorf("%d steps for %d sequences × %d tokens: no batching", st.Steps, len(lens), gen)
	}
}

// TestLongPromptDoesNotStall checks chunked prefill: a sequence that is
// decoding keeps getting a token every step while a long prompt prefills.
func TestLongPromptDoesNotStall(t *testing.T) {
	const batch = 32
	m := tinyModel(t, batch)
	V := m.Info().VocabSize
	r := rand.New(rand.NewPCG(3, 4))
	e := newEngine(t, m, engine.Config{MaxSeqs: 4, BatchTokens: batch})
	short, err := e.Submit(context.Background(), engine.Request{Prompt: randomPrompt(r, 4, V), MaxTokens: 30, Params: greedy()})
	if err != nil {
		t.Fatal(err)
	}
	// Wait for its first token, so it is decoding when the long one arrives.
	for {
		<-short.Ready()
		if toks, _ := short.Take(); len(toks) > 0 {
			break
		}
	}
	long, err := e.Submit(context.Background(), engine.Request{Prompt: randomPrompt(r, 2000, V), MaxTokens: 1, Params: greedy()})
	if err != nil {
		t.Fatal(err)
	}
	_, rs, err := short.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rs.Reason != engine.FinishLength {
		t.Fatalf("short: %+v", rs)
	}
	// The long prompt needs ≥ 2000/31 steps; the short one needed 29 more.
	if toks, rl := long.Take(); rl != nil || len(toks) > 0 {
		t.Errorf("long prompt finished before the short stream: the short stream was stalled")
	}
	if _, rl, _ := long.Wait(context.Background()); rl.Reason != engine.FinishLength {
		t.Errorf("long: %+v", rl)
	}
}

func TestStopTokens(t *testing.T) {
	m := tinyModel(t, 64)
	V := m.Info().VocabSize
	prompt := randomPrompt(rand.New(rand.NewPCG(5, 6)), 10, V)
	want := reference(m, prompt, 8)
	e := newEngine(t, m, engine.Config{})
	stop := want[5]
	k := slices.Index(want, stop)
	toks, r := run(t, e, engine.Request{Prompt: prompt, MaxTokens: 8, Params: greedy(), StopTokens: []int32{stop}})
	if r.Reason != engine.FinishStop || r.StopToken != stop || !slices.Equal(ids(toks), want[:k]) || r.CompletionTokens != k+1 {
		t.Errorf("got %v %+v, want %v then stop %d", ids(toks), r, want[:k], stop)
	}
}

func TestLogprobs(t *testing.T) {
	m := tinyModel(t, 64)
	V := m.Info().VocabSize
	prompt := randomPrompt(rand.New(rand.NewPCG(7, 8)), 10, V)
	e := newEngine(t, m, engine.Config{})
	toks, _ := run(t, e, engine.Request{Prompt: prompt, MaxTokens: 4, Params: greedy(), TopLogprobs: 3})
	for i, tk := range toks {
		if len(tk.Top) != 3 || tk.Top[0].Token != int(tk.ID) || tk.Top[0].Logprob != tk.Logprob || tk.Logprob > 0 {
			t.Errorf("token %d: %+v", i, tk)
		}
	}
}

// TestCancel checks that cancelling frees the slot within a step and the
// stream reports why.
func TestCancel(t *testing.T) {
	m := tinyModel(t, 64)
	V := m.Info().VocabSize
	e := newEngine(t, m, engine.Config{MaxSeqs: 1, MaxQueue: 4})
	r := rand.New(rand.NewPCG(9, 10))
	ctx, cancel := context.WithCancel(context.Background())
	s1, err := e.Submit(ctx, engine.Request{Prompt: randomPrompt(r, 8, V), MaxTokens: 1 << 20, Params: sample.DefaultParams()})
	if err != nil {
		t.Fatal(err)
	}
	// Queued behind s1, cancelled while waiting.
	s2, err := e.Submit(ctx, engine.Request{Prompt: randomPrompt(r, 8, V), MaxTokens: 5, Params: greedy()})
	if err != nil {
		t.Fatal(err)
	}
	<-s1.Ready()
	cancel()
	for _, s := range []*engine.Stream{s1, s2} {
		_, res, err := s.Wait(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Reason != engine.FinishCancelled || !errors.Is(res.Err, context.Canceled) {
			t.Errorf("result %+v, want cancelled", res)
		}
	}
	// Timeout through the context, and Cancel on the stream.
	tctx, tcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer tcancel()
	s3, err := e.Submit(tctx, engine.Request{Prompt: randomPrompt(r, 8, V), MaxTokens: 1 << 20, Params: greedy()})
	if err != nil {
		t.Fatal(err)
	}
	if _, res, _ := s3.Wait(context.Background()); !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("timeout result %+v", res)
	}
	s4, _ := e.Submit(context.Background(), engine.Request{Prompt: randomPrompt(r, 8, V), MaxTokens: 1 << 20, Params: greedy()})
	s4.Cancel()
	if _, res, _ := s4.Wait(context.Background()); res.Reason != engine.FinishCancelled {
		t.Errorf("Cancel result %+v", res)
	}
	waitIdle(t, e)
	st := e.Stats()
	if st.Running != 0 || st.Reserved != 0 || st.Cancelled != 4 || st.Finished != 4 {
		t.Errorf("stats %+v", st)
	}
}

func waitIdle(t testing.TB, e *engine.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCapacity checks the queue limit, memory admission and refusals.
func TestCapacity(t *testing.T) {
	m := tinyModel(t, 64)
	info := m.Info()
	V := info.VocabSize
	r := rand.New(rand.NewPCG(11, 12))
	// Memory for one sequence of up to 100 tokens at a time.
	one := info.StateBytes + info.BytesPerTok*100
	e := newEngine(t, m, engine.Config{MaxSeqs: 4, MaxQueue: 2, MaxMemory: one})
	req := engine.Request{Prompt: randomPrompt(r, 10, V), MaxTokens: 90, Params: greedy()}
	if _, err := e.Submit(context.Background(), engine.Request{Prompt: req.Prompt, MaxTokens: 91, Params: greedy()}); !errors.Is(err, engine.ErrTooLarge) {
		t.Errorf("oversized request: %v, want ErrTooLarge", err)
	}
	var streams []*engine.Stream
	for range 3 { // one runs, two wait for memory
		s, err := e.Submit(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	if _, err := e.Submit(context.Background(), req); !errors.Is(err, engine.ErrQueueFull) {
		t.Errorf("fourth request: %v, want ErrQueueFull", err)
	}
	for _, s := range streams {
		if _, res, _ := s.Wait(context.Background()); res.Reason != engine.FinishLength {
			t.Errorf("%+v", res)
		}
	}
	waitIdle(t, e) // results are delivered before the step publishes its figures
	if st := e.Stats(); st.Rejected != 1 || st.Finished != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestValidation(t *testing.T) {
	m := tinyModel(t, 64)
	V := int32(m.Info().VocabSize)
	e := newEngine(t, m, engine.Config{})
	bad := sample.DefaultParams()
	bad.TopP = 0
	var pe *sample.ParamError
	for _, c := range []struct {
		req  engine.Request
		want error
	}{
		{engine.Request{MaxTokens: 1, Params: greedy()}, engine.ErrInvalid},
		{engine.Request{Prompt: []int32{1}, Params: greedy()}, engine.ErrInvalid},
		{engine.Request{Prompt: []int32{V}, MaxTokens: 1, Params: greedy()}, engine.ErrTokenInvalid},
		{engine.Request{Prompt: []int32{-1}, MaxTokens: 1, Params: greedy()}, engine.ErrTokenInvalid},
		{engine.Request{Prompt: []int32{1}, MaxTokens: 1, Params: greedy(), StopTokens: []int32{V}}, engine.ErrTokenInvalid},
		{engine.Request{Prompt: []int32{1, 2}, MaxTokens: 1, Params: greedy(), Checkpoints: []int{2}}, engine.ErrInvalid},
		{engine.Request{Prompt: []int32{1}, MaxTokens: 1, Params: greedy(), TopLogprobs: 21}, engine.ErrInvalid},
		{engine.Request{Resume: m.NewState(), MaxTokens: 1, Params: greedy()}, engine.ErrInvalid},
	} {
		if _, err := e.Submit(context.Background(), c.req); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.req, err, c.want)
		}
	}
	if _, err := e.Submit(context.Background(), engine.Request{Prompt: []int32{1}, MaxTokens: 1, Params: bad}); !errors.As(err, &pe) || pe.Field != "top_p" {
		t.Errorf("bad top_p: %v", err)
	}
}

// TestDrainAndClose checks draining (in-flight work finishes, new work is
// refused) and Close (everything left is aborted).
func TestDrainAndClose(t *testing.T) {
	m := tinyModel(t, 64)
	V := m.Info().VocabSize
	r := rand.New(rand.NewPCG(13, 14))
	e, err := engine.New(m, engine.Config{MaxSeqs: 2})
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := e.Submit(context.Background(), engine.Request{Prompt: randomPrompt(r, 8, V), MaxTokens: 20, Params: greedy()})
	e.Drain()
	if _, err := e.Submit(context.Background(), engine.Request{Prompt: []int32{1}, MaxTokens: 1, Params: greedy()}); !errors.Is(err, engine.ErrDraining) {
		t.Errorf("submit while draining: %v", err)
	}
	waitIdle(t, e)
	if _, res, _ := s1.Wait(context.Background()); res.Reason != engine.FinishLength || res.CompletionTokens != 20 {
		t.Errorf("in-flight request after drain: %+v", res)
	}
	e2 := newEngine(t, m, engine.Config{MaxSeqs: 1})
	var streams []*engine.Stream
	for range 3 {
		s, err := e2.Submit(context.Background(), engine.Request{Prompt: randomPrompt(r, 8, V), MaxTokens: 1 << 20, Params: greedy()})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	<-streams[0].Ready()
	e2.Close()
	for _, s := range streams {
		if _, res, _ := s.Wait(context.Background()); res.Reason != engine.FinishAborted || !errors.Is(res.Err, engine.ErrClosed) {
			t.Errorf("after Close: %+v", res)
		}
	}
	if _, err := e2.Submit(context.Background(), engine.Request{Prompt: []int32{1}, MaxTokens: 1, Params: greedy()}); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("submit after Close: %v", err)
	}
	e.Close()
}

// TestKeepStateResume checks the session hooks: a kept final state resumed
// with the pending token continues exactly like one uninterrupted run.
func TestKeepStateResume(t *testing.T) {
	m := tinyModel(t, 64)
	V := m.Info().VocabSize
	prompt := randomPrompt(rand.New(rand.NewPCG(15, 16)), 20, V)
	want := reference(m, prompt, 12)
	e := newEngine(t, m, engine.Config{})
	toks, r := run(t, e, engine.Request{Prompt: prompt, MaxTokens: 5, Params: greedy(), KeepState: true})
	if r.State == nil || r.State.Len() != len(prompt)+4 || !slices.Equal(r.Pending, want[4:5]) {
		t.Fatalf("kept state: len %v pending %v", r.State, r.Pending)
	}
	more, _ := run(t, e, engine.Request{Prompt: r.Pending, Resume: r.State, MaxTokens: 7, Params: greedy()})
	if got := append(ids(toks), ids(more)...); !slices.Equal(got, want) {
		t.Errorf("resumed %v, want %v", got, want)
	}
}

// TestConcurrentSubmitters hammers Submit, Take and Cancel from many
// goroutines (run with -race).
func TestConcurrentSubmitters(t *testing.T) {
	m := tinyModel(t, 64)
	V := m.Info().VocabSize
	e := newEngine(t, m, engine.Config{MaxSeqs: 4, MaxQueue: 8, PrefixCacheBytes: 8 << 20, CheckpointEvery: 16})
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 99))
			shared := randomPrompt(rand.New(rand.NewPCG(1, 1)), 24, V)
			for range 6 {
				p := append(slices.Clone(shared[:r.IntN(len(shared))]), randomPrompt(r, 1+r.IntN(30), V)...)
				ctx, cancel := context.WithCancel(context.Background())
				s, err := e.Submit(ctx, engine.Request{Prompt: p, MaxTokens: 1 + r.IntN(20), Params: sample.DefaultParams()})
				if err != nil {
					cancel()
					mu.Lock()
					counts[fmt.Sprint(errors.Is(err, engine.ErrQueueFull))]++
					mu.Unlock()
					continue
				}
				if r.IntN(3) == 0 {
					go func() { time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond); cancel() }()
				}
				_, res, err := s.Wait(context.Background())
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counts[string(res.Reason)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	waitIdle(t, e)
	st := e.Stats()
	if st.Running != 0 || st.Queued != 0 || st.Reserved != 0 || st.Submitted != st.Finished {
		t.Errorf("leak: %+v", st)
	}
	if counts["false"] > 0 {
		t.Errorf("unexpected submit errors: %v", counts)
	}
	t.Logf("outcomes %v, cache hits %d, checkpoints %d, evictions %d", counts, st.CacheHits, st.Checkpoints, st.Evictions)
}

// TestPrefixReuse checks that requests resume from the prefix cache where
// they should (shared prefix at a named checkpoint, an identical prompt,
// the next turn of a conversation) and produce what an uncached run does.
func TestPrefixReuse(t *testing.T) {
	m := tinyModel(t, 32)
	V := m.Info().VocabSize
	r := rand.New(rand.NewPCG(17, 18))
	e := newEngine(t, m, engine.Config{PrefixCacheBytes: 64 << 20, BatchTokens: 32, CheckpointEvery: 1000})
	system := randomPrompt(r, 45, V)
	q1 := append(slices.Clone(system), randomPrompt(r, 7, V)...)
	q2 := append(slices.Clone(system), randomPrompt(r, 9, V)...)
	const gen = 10
	check := func(name string, prompt []int32, checkpoints []int, wantCached int) []engine.Token {
		t.Helper()
		want, _ := run(t, e, engine.Request{Prompt: prompt, MaxTokens: gen, Params: greedy(), TopLogprobs: 5, NoCache: true})
		got, res := run(t, e, engine.Request{Prompt: prompt, MaxTokens: gen, Params: greedy(), TopLogprobs: 5, Checkpoints: checkpoints})
		if res.CachedTokens != wantCached {
			t.Errorf("%s: %d cached tokens, want %d", name, res.CachedTokens, wantCached)
		}
		if !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("%s: cached run %v, uncached %v", name, ids(got), ids(want))
		}
		for i := range got {
			for j, a := range got[i].Top {
				if d := math.Abs(float64(a.Logprob - want[i].Top[j].Logprob)); a.Token != want[i].Top[j].Token || d > 2e-4 {
					t.Errorf("%s: token %d alternative %d: %+v vs %+v", name, i, j, a, want[i].Top[j])
				}
			}
		}
		return got
	}
	check("first", q1, []int{len(system)}, 0)
	check("shared system prompt", q2, []int{len(system)}, len(system))
	check("identical prompt", q2, nil, len(q2))
	// Next turn: the previous prompt, its reply (the last generated token was
	// never fed) and a new message.
	reply := check("again", q1, nil, len(q1))
	turn2 := slices.Concat(q1, ids(reply), randomPrompt(r, 5, V))
	check("next turn", turn2, nil, len(q1)+gen-1)
	waitIdle(t, e) // results are delivered before the step publishes its figures
	if st := e.Stats(); st.CacheHits < 4 || st.CacheEntries == 0 {
		t.Errorf("stats %+v", st)
	}
}

// countingModel counts the fresh states the engine asks its model for.
type countingModel struct {
	*minimax01.Model
	mu    sync.Mutex
	fresh int
}

func (m *countingModel) NewState() model.State {
	m.mu.Lock()
	m.fresh++
	m.mu.Unlock()
	return m.Model.NewState()
}

// TestSpareStates checks that ended sequences' states (finished,
// cancelled, or evicted from the prefix cache) are reset and reused, and
// that a reused state gives the tokens of a fresh one.
func TestSpareStates(t *testing.T) {
	m := &countingModel{Model: tinyModel(t, 32)}
	V := m.Info().VocabSize
	r := rand.New(rand.NewPCG(21, 22))
	e := newEngine(t, m, engine.Config{MaxSeqs: 2, BatchTokens: 32})
	const gen = 6
	for i := range 4 {
		prompt := randomPrompt(r, 20+9*i, V) // crosses lightning blocks and chunks
		got, _ := run(t, e, engine.Request{Prompt: prompt, MaxTokens: gen, Params: greedy()})
		if want := reference(m.Model, prompt, gen); !slices.Equal(ids(got), want) {
			t.Fatalf("request %d on a reused state: %v, want %v", i, ids(got), want)
		}
	}
	// A cancelled sequence's state comes back too.
	ctx, cancel := context.WithCancel(context.Background())
	s, err := e.Submit(ctx, engine.Request{Prompt: randomPrompt(r, 30, V), MaxTokens: 1 << 20, Params: greedy()})
	if err != nil {
		t.Fatal(err)
	}
	<-s.Ready()
	cancel()
	if _, res, _ := s.Wait(context.Background()); res.Reason != engine.FinishCancelled {
		t.Fatalf("cancelled stream: %+v", res)
	}
	run(t, e, engine.Request{Prompt: randomPrompt(r, 5, V), MaxTokens: 2, Params: greedy()})
	waitIdle(t, e)
	if st := e.Stats(); m.fresh != 1 || st.SpareStates != 1 || st.SpareBytes <= 0 {
		t.Errorf("%d fresh states, stats %+v; want 1 fresh state and it kept as the one spare", m.fresh, st)
	}

	// With a prefix cache that holds one checkpoint, every insert evicts the
	// previous one, whose state becomes a spare: fresh states are needed only
	// for the checkpoint copies, not for each sequence.
	m.fresh = 0
	one := m.NewState().Bytes() + int64(V)*4
	m.fresh = 0
	e2 := newEngine(t, m, engine.Config{MaxSeqs: 2, BatchTokens: 32, PrefixCacheBytes: one + one/2})
	for range 6 {
		prompt := randomPrompt(r, 12, V)
		got, _ := run(t, e2, engine.Request{Prompt: prompt, MaxTokens: gen, Params: greedy()})
		if want := reference(m.Model, prompt, gen); !slices.Equal(ids(got), want) {
			t.Fatalf("with the prefix cache: %v, want %v", ids(got), want)
		}
	}
	waitIdle(t, e2)
	if st := e2.Stats(); st.Evictions == 0 || m.fresh >= 6 {
		t.Errorf("%d fresh states for 6 requests, stats %+v; want evictions and reuse", m.fresh, st)
	}
}

// modConstraint allows tokens ≡ 3 (mod 7) for n tokens, then only stop.
type modConstraint struct {
	n, seen int
	stop    int32
}

func (c *modConstraint) Allowed(tok int32) bool {
	if c.seen >= c.n {
		return tok == c.stop
	}
	return tok%7 == 3
}

func (c *modConstraint) Accept(tok int32) { c.seen++ }

// TestConstraint checks constrained sampling: only allowed tokens come out,
// greedy picks the best allowed token, and the constraint can end the
// sequence through a stop token.
func TestConstraint(t *testing.T) {
	m := tinyModel(t, 64)
	V := m.Info().VocabSize
	prompt := randomPrompt(rand.New(rand.NewPCG(19, 20)), 12, V)
	e := newEngine(t, m, engine.Config{})
	// Reference: greedy with the mask applied by hand.
	st := m.NewState()
	logits := make([]float32, V)
	var want []int32
	next := prompt
	for range 6 {
		m.Forward([]model.Seq{{State: st, Tokens: next, Logits: model.LogitsLast}}, logits)
		best := int32(-1)
		for j, v := range logits {
			if j%7 == 3 && (best < 0 || v > logits[best]) {
				best = int32(j)
			}
		}
		want = append(want, best)
		next = []int32{best}
	}
	const stop = 5
	toks, r := run(t, e, engine.Request{Prompt: prompt, MaxTokens: 20, Params: greedy(), StopTokens: []int32{stop},
		Constraint: &modConstraint{n: 6, stop: stop}, TopLogprobs: 2})
	if !slices.Equal(ids(toks), want) || r.Reason != engine.FinishStop || r.StopToken != stop {
		t.Errorf("greedy constrained: %v %+v, want %v then stop", ids(toks), r, want)
	}
	// Logprobs stay those of the raw distribution (the mask is undone): the
	// top alternatives include disallowed tokens.
	raw := 0
	for _, tk := range toks {
		if tk.Top[0].Token%7 != 3 {
			raw++
		}
	}
	if raw == 0 {
		t.Errorf("top logprobs only list allowed tokens: the mask leaked into them")
	}
	for seed := range uint64(5) {
		p := sample.DefaultParams()
		p.Seed, p.HasSeed = seed, true
		toks, _ := run(t, e, engine.Request{Prompt: prompt, MaxTokens: 10, Params: p, Constraint: &modConstraint{n: 100}})
		for _, tk := range toks {
			if tk.ID%7 != 3 {
				t.Fatalf("seed %d: sampled disallowed token %d", seed, tk.ID)
			}
		}
	}
	// A constraint that allows nothing ends the sequence.
	toks, r = run(t, e, engine.Request{Prompt: prompt, MaxTokens: 10, Params: greedy(), Constraint: &modConstraint{n: 0, stop: -1}})
	if len(toks) != 0 || r.Reason != engine.FinishStop || r.StopToken != -1 {
		t.Errorf("nothing allowed: %v %+v", ids(toks), r)
	}
}

// panicModel panics in Forward when a sequence feeds token 13.
type panicModel struct{ model.Model }

func (p panicModel) Forward(seqs []model.Seq, logits []float32) {
	for _, s := range seqs {
		if slices.Contains(s.Tokens, 13) {
			panic("poisoned token")
		}
	}
	p.Model.Forward(seqs, logits)
}

// TestPanicIsContained checks that a failing step ends its sequences with
// ErrPanic and the engine keeps serving.
func TestPanicIsContained(t *testing.T) {
	m := tinyModel(t, 64)
	e := newEngine(t, panicModel{m}, engine.Config{})
	_, r := run(t, e, engine.Request{Prompt: []int32{1, 13, 2}, MaxTokens: 3, Params: greedy()})
	if r.Reason != engine.FinishAborted || !errors.Is(r.Err, engine.ErrPanic) {
		t.Errorf("poisoned request: %+v", r)
	}
	toks, r := run(t, e, engine.Request{Prompt: []int32{1, 2, 3}, MaxTokens: 3, Params: greedy()})
	if r.Reason != engine.FinishLength || len(toks) != 3 {
		t.Errorf("request after the panic: %+v", r)
	}
	waitIdle(t, e) // results are delivered before the step publishes its figures
	if st := e.Stats(); st.Running != 0 || st.Reserved != 0 {
		t.Errorf("stats %+v", st)
	}
}

// failingModel panics in Forward, as a model with worker processes does
// when one fails (package dist), while fail is set: with err wrapping
// model.ErrUnavailable, or with a plain string (a bug).
type failingModel struct {
	model.Model
	fail        *atomic.Bool
	unavailable bool
}

func (m failingModel) Forward(seqs []model.Seq, logits []float32) {
	switch {
	case !m.fail.Load():
		m.Model.Forward(seqs, logits)
	case m.unavailable:
		panic(fmt.Errorf("%w: stage 1 (test): EOF", model.ErrUnavailable))
	default:
		panic("a bug")
	}
}

// TestUnavailableWorkerEmptiesPrefixCache checks that a step failing with
// model.ErrUnavailable empties the prefix cache (its states may have been on
// a worker that restarted and lost them), so the next request reads its
// prompt again instead of resuming from a lost state; and that another
// panic leaves the cache alone.
func TestUnavailableWorkerEmptiesPrefixCache(t *testing.T) {
	for _, unavailable := range []bool{true, false} {
		var fail atomic.Bool
		e := newEngine(t, failingModel{tinyModel(t, 64), &fail, unavailable}, engine.Config{PrefixCacheBytes: 64 << 20, CacheMinTokens: 1})
		prompt := []int32{1, 2, 3, 4, 5, 6}
		run(t, e, engine.Request{Prompt: prompt, MaxTokens: 2, Params: greedy()})
		if _, r := run(t, e, engine.Request{Prompt: prompt, MaxTokens: 2, Params: greedy()}); r.CachedTokens != len(prompt) {
			t.Fatalf("the prompt again: %d tokens cached, want %d", r.CachedTokens, len(prompt))
		}
		fail.Store(true)
		if _, r := run(t, e, engine.Request{Prompt: []int32{7, 8}, MaxTokens: 2, Params: greedy()}); r.Reason != engine.FinishAborted ||
			errors.Is(r.Err, model.ErrUnavailable) != unavailable {
			t.Fatalf("unavailable %v: the failing step: %+v", unavailable, r)
		}
		fail.Store(false)
		_, r := run(t, e, engine.Request{Prompt: prompt, MaxTokens: 2, Params: greedy()})
		if want := map[bool]int{true: 0, false: len(prompt)}[unavailable]; r.Reason != engine.FinishLength || r.CachedTokens != want {
			t.Errorf("unavailable %v: after the failure: %+v, want %d tokens cached", unavailable, r, want)
		}
	}
}

// nanModel writes NaN into the logits of sequences that feed token 13, as a
// model whose weights are corrupt on some path would, and locates the fault
// in a made-up layer.
type nanModel struct{ model.Model }

func (p nanModel) Forward(seqs []model.Seq, logits []float32) {
	p.Model.Forward(seqs, logits)
	V := p.Info().VocabSize
	row := 0
	for _, s := range seqs {
		n := s.Rows()
		if slices.Contains(s.Tokens, 13) {
			for i := range logits[row*V : (row+n)*V] {
				logits[row*V+i] = float32(math.NaN())
			}
		}
		row += n
	}
}

func (p nanModel) LocateNonFinite(s model.Seq) string { return "layer 7 of 8 (test)" }

// TestNonFiniteLogitsEndOnlyTheirSequence checks that a sequence whose
// logits are not finite ends with an error naming the layer, while a
// sequence decoded in the same steps carries on.
func TestNonFiniteLogitsEndOnlyTheirSequence(t *testing.T) {
	m := tinyModel(t, 64)
	e := newEngine(t, nanModel{m}, engine.Config{})
	healthy, err := e.Submit(context.Background(), engine.Request{Prompt: []int32{1, 2, 3}, MaxTokens: 40, Params: greedy()})
	if err != nil {
		t.Fatal(err)
	}
	_, r := run(t, e, engine.Request{Prompt: []int32{1, 13, 2}, MaxTokens: 8, Params: greedy()})
	if r.Reason != engine.FinishAborted || !errors.Is(r.Err, model.ErrNonFinite) || !strings.Contains(fmt.Sprint(r.Err), "layer 7 of 8") {
		t.Errorf("poisoned request: %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	toks, hr, err := healthy.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hr.Reason != engine.FinishLength || len(toks) != 40 {
		t.Errorf("healthy request beside the poisoned one: %d tokens, %+v", len(toks), hr)
	}
}

// TestPrefillDeadline checks the refusal of prompts that cannot be read
// before their deadline: after a long prompt has measured the prefill rate,
// another prompt of that length with a deadline of a third of the time it
// took is refused at Submit with ErrTooSlow, while the same prompt extended
// by a few tokens is accepted, because the prefix cache holds all but those.
func TestPrefillDeadline(t *testing.T) {
	const batch = 64
	m := tinyModel(t, batch)
	V := m.Info().VocabSize
	r := rand.New(rand.NewPCG(5, 6))
	e := newEngine(t, m, engine.Config{MaxSeqs: 2, BatchTokens: batch, PrefixCacheBytes: 64 << 20})
	long := randomPrompt(r, 3000, V)
	run(t, e, engine.Request{Prompt: long, MaxTokens: 1, Params: greedy()})
	rate := e.Stats().PrefillTokensPerSec
	if rate <= 0 {
		t.Fatal("no prefill rate measured")
	}
	left := time.Duration(float64(len(long)) / rate / 3 * float64(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), left)
	defer cancel()
	if _, err := e.Submit(ctx, engine.Request{Prompt: randomPrompt(r, len(long), V), MaxTokens: 1, Params: greedy()}); !errors.Is(err, engine.ErrTooSlow) {
		t.Errorf("an uncached prompt of %d tokens at %.0f tokens/s with %v left: %v, want ErrTooSlow", len(long), rate, left, err)
	}
	s, err := e.Submit(ctx, engine.Request{Prompt: append(slices.Clone(long), 1, 2, 3), MaxTokens: 1, Params: greedy()})
	if err != nil {
		t.Fatalf("the cached prompt plus 3 tokens: %v", err)
	}
	if _, res, _ := s.Wait(context.Background()); res.Reason != engine.FinishLength || res.CachedTokens != len(long) {
		t.Errorf("the cached prompt plus 3 tokens: %+v", res)
	}
}
