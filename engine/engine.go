// Package engine runs generation requests on a model.Model with continuous
// batching. It knows nothing about tokenization: requests are token ids in,
// token ids out.
//
// One goroutine drives the model. Every step it packs all running sequences
// into a single Forward call, so the weights stream from memory once per step
// however many sequences decode: each decoding sequence contributes its next
// token, and the rest of the step's token budget (Config.BatchTokens) is
// shared between the prompts still prefilling (each gets an equal share, and
// what a short prompt leaves goes to the others). A long prompt is therefore
// prefilled in chunks between decode steps instead of stalling every other
// stream, and a short prompt that arrives behind it starts at the next step.
//
// Requests wait in a bounded queue until a sequence slot and enough memory
// are free. Memory is reserved at admission from the model's figures
// (model.Info: fixed state bytes plus KV bytes per token, for the prompt and
// every token the request may generate), so a running sequence never runs
// out. A request that can never fit, or that arrives with a full queue, is
// refused at once with an error: nothing is dropped silently.
//
// Prefix reuse: recurrent (lightning) state cannot be rewound, so the engine
// snapshots states (model.State.Clone) at chosen token boundaries into a
// prefix cache (a token trie with an LRU byte budget). A request whose prompt
// extends a cached prefix starts from a copy of the longest such snapshot and
// prefills only the rest. Snapshots are taken at the ends of prompts (with
// the logits that follow, so an identical prompt needs no forward at all), at
// the positions a request names (Request.Checkpoints: ends of chat turns or
// of a shared system prompt), every Config.CheckpointEvery prompt tokens, and
// at the end of every sequence (for the next turn of a conversation).
//
// Sessions: Request.KeepState hands a finished sequence's state back, and
// Request.Resume starts a sequence from such a state (e.g. one loaded from
// disk). Request.Constraint restricts sampling to a grammar (JSON mode).
package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/sample"
)

// Config sizes an engine. Zero fields take the defaults noted.
type Config struct {
	// MaxSeqs is the number of sequences running (prefilling or decoding) at
	// once. Default 8.
	MaxSeqs int
	// MaxQueue is the number of requests that may wait for a slot or memory;
	// Submit fails with ErrQueueFull beyond it. Default 64; negative means no
	// waiting (a request runs at once or is refused).
	MaxQueue int
	// BatchTokens is the token budget of one step: decode tokens plus prefill
	// chunks. It should match the model's internal step size so one step is
	// one pass over the weights. Must exceed MaxSeqs. Default 512.
	BatchTokens int
	// MaxMemory is the byte budget of running sequences' states; 0 means no
	// limit. Up to MaxSeqs states of ended sequences are kept outside it for
	// reuse (Stats.SpareBytes), each no larger than a fresh state plus
	// spareKVTokens tokens of KV cache.
	MaxMemory int64
	// PrefixCacheBytes is the byte budget of the prefix cache; 0 turns prefix
	// reuse off.
	PrefixCacheBytes int64
	// CheckpointEvery snapshots a prefilling sequence at the first chunk end
	// after every CheckpointEvery prompt tokens. Default 2048.
	CheckpointEvery int
	// CacheMinTokens is the shortest prefix worth a snapshot that copies a
	// state (inside or at the end of a prompt): shorter ones are cheaper to
	// prefill again than to copy. The snapshot at the end of a sequence hands
	// the finished state to the cache without a copy, so it is kept whatever
	// its length (a short chat's next turn reuses it). Default 1.
	CacheMinTokens int
}

func (c *Config) defaults() error {
	if c.MaxSeqs == 0 {
		c.MaxSeqs = 8
	}
	switch {
	case c.MaxQueue == 0:
		c.MaxQueue = 64
	case c.MaxQueue < 0:
		c.MaxQueue = 0
	}
	if c.BatchTokens == 0 {
		c.BatchTokens = 512
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = 2048
	}
	if c.CacheMinTokens == 0 {
		c.CacheMinTokens = 1
	}
	switch {
	case c.MaxSeqs < 1:
		return fmt.Errorf("engine: MaxSeqs = %d, want ≥ 1", c.MaxSeqs)
	case c.BatchTokens <= c.MaxSeqs:
		return fmt.Errorf("engine: BatchTokens = %d must exceed MaxSeqs = %d, or prefill could starve", c.BatchTokens, c.MaxSeqs)
	case c.MaxMemory < 0 || c.PrefixCacheBytes < 0:
		return fmt.Errorf("engine: negative memory budget")
	case c.CheckpointEvery < 1 || c.CacheMinTokens < 1:
		return fmt.Errorf("engine: CheckpointEvery and CacheMinTokens must be ≥ 1")
	}
	return nil
}

// Engine schedules requests onto a model. It is safe for concurrent use.
type Engine struct {
	m    model.Model
	info model.Info
	cfg  Config

	mu       sync.Mutex
	cond     *sync.Cond // signalled on new work, Close
	queue    []*seq
	ready    []*seq // admitted (slot and memory reserved), not yet started by the loop
	reserved int64  // memory reserved by running sequences
	draining bool
	closed   bool
	stats    Stats
	rate     rateMeter     // tokens generated
	prefill  float64       // measured prefill rate, tokens/s (0 = none yet); written by the loop
	idle     chan struct{} // closed and replaced whenever the engine goes idle

	exited chan struct{} // closed when the loop exits

	// Owned by the loop goroutine.
	running []*seq
	cache   *prefixCache
	batch   []model.Seq
	owners  []*seq
	wants   []chunkWant
	logits  []float32 // [MaxSeqs, vocab]
	draws   []draw
	spares  []model.State // reset states of ended sequences, for new ones
}

// spareKVTokens bounds the KV cache a spare state may keep: a state that
// served a longer context is dropped rather than kept holding its memory.
const spareKVTokens = 4096

// New starts an engine on m. Call Close to stop it.
func New(m model.Model, cfg Config) (*Engine, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	info := m.Info()
	if info.VocabSize < 1 {
		return nil, fmt.Errorf("engine: model reports vocabulary size %d", info.VocabSize)
	}
	e := &Engine{
		m: m, info: info, cfg: cfg,
		idle:   make(chan struct{}),
		exited: make(chan struct{}),
		spares: make([]model.State, 0, cfg.MaxSeqs),
		logits: make([]float32, cfg.MaxSeqs*info.VocabSize),
	}
	e.cache = newPrefixCache(cfg.PrefixCacheBytes, e.recycle)
	e.cond = sync.NewCond(&e.mu)
	go e.loop()
	return e, nil
}

// Info returns the model's description.
func (e *Engine) Info() model.Info { return e.info }

// Model returns the model the engine runs (e.g. to save or load states
// through an optional interface such as model.StateStore).
func (e *Engine) Model() model.Model { return e.m }

// MemoryBound returns the most memory the engine's states may hold at
// once: running sequences (MaxMemory), spare states (MaxSeqs of at most a
// fresh state plus spareKVTokens tokens) and the prefix cache, plus the
// step's logits. It is 0 when MaxMemory is 0 (no bound).
func (e *Engine) MemoryBound() int64 {
	if e.cfg.MaxMemory == 0 {
		return 0
	}
	spare := int64(e.cfg.MaxSeqs) * (e.info.StateBytes + e.info.BytesPerTok*spareKVTokens)
	return e.cfg.MaxMemory + spare + e.cfg.PrefixCacheBytes + int64(len(e.logits))*4
}

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// seq is one request in flight.
type seq struct {
	req    Request
	ctx    context.Context
	stream *Stream
	need   int64 // reserved memory

	sampler *sample.Sampler
	state   model.State
	toks    []int32       // known tokens: prompt then generated
	fed     int           // toks[:fed] are absorbed by state
	prompt  int           // len(prompt)
	cached  int           // prompt tokens restored from the cache
	gen     int           // tokens sampled
	pend    []float32     // [vocab] first logits restored from the cache, not yet sampled
	marks   []int         // checkpoint positions still ahead, ascending
	masked  []maskedLogit // scratch of sample: logits set aside by the constraint
	lastCk  int           // position of the last periodic checkpoint
	cache   bool          // the sequence uses the prefix cache
	topBuf  []sample.Logprob

	submitted time.Time     // when Submit accepted it
	wait      time.Duration // from submitted to its first prompt chunk (or a start from the cache with nothing to read); -1 before
}

// maskedLogit is a logit sample set aside to enforce a constraint.
type maskedLogit struct {
	id    int32
	logit float32
}

// Submit queues a request. The context bounds the request's whole life:
// when it ends, the sequence is cancelled and its slot freed within one
// step. Errors wrap ErrInvalid, ErrTokenInvalid, ErrContextLen, ErrTooLarge,
// ErrQueueFull, ErrDraining or ErrClosed, or are a *sample.ParamError.
func (e *Engine) Submit(ctx context.Context, req Request) (*Stream, error) {
	if err := e.validate(&req); err != nil {
		return nil, err
	}
	sampler, err := sample.NewSampler(req.Params, e.info.VocabSize)
	if err != nil {
		return nil, err
	}
	base := 0
	if req.Resume != nil {
		base = req.Resume.Len()
	}
	total := base + len(req.Prompt) + req.MaxTokens
	if e.info.ContextLen > 0 && total > e.info.ContextLen {
		return nil, fmt.Errorf("%w: %d + %d tokens > %d", ErrContextLen, base+len(req.Prompt), req.MaxTokens, e.info.ContextLen)
	}
	need := e.info.StateBytes + e.info.BytesPerTok*int64(total)
	if e.cfg.MaxMemory > 0 && need > e.cfg.MaxMemory {
		return nil, fmt.Errorf("%w: %d MiB for %d tokens, budget %d MiB", ErrTooLarge, need>>20, total, e.cfg.MaxMemory>>20)
	}
	if err := e.checkPrefillTime(ctx, &req); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &seq{
		req: req, ctx: ctx, stream: newStream(cancel), need: need, sampler: sampler,
		toks: slices.Clone(req.Prompt), prompt: len(req.Prompt), submitted: time.Now(), wait: -1,
	}
	s.toks = slices.Grow(s.toks, min(req.MaxTokens, 4096))
	if req.Params.RepetitionPenalty != 1 {
		p := make([]int, len(req.Prompt))
		for i, t := range req.Prompt {
			p[i] = int(t)
		}
		sampler.AcceptPrompt(p)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closed:
		cancel()
		return nil, ErrClosed
	case e.draining:
		cancel()
		e.stats.Rejected++
		return nil, ErrDraining
	case len(e.queue) >= e.cfg.MaxQueue && !e.fitsNow(need):
		cancel()
		e.stats.Rejected++
		return nil, fmt.Errorf("%w: %d requests waiting", ErrQueueFull, len(e.queue))
	}
	e.queue = append(e.queue, s)
	e.stats.Submitted++
	e.admit()
	e.cond.Signal()
	return s.stream, nil
}

// checkPrefillTime refuses a request whose prompt, less the part the
// prefix cache holds, cannot be read before ctx's deadline at the measured
// prefill rate. The rate was measured at shorter contexts, so the estimate
// errs on the fast side: only what surely cannot finish is refused.
func (e *Engine) checkPrefillTime(ctx context.Context, req *Request) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	e.mu.Lock()
	rate := e.prefill
	e.mu.Unlock()
	if rate <= 0 {
		return nil
	}
	read := len(req.Prompt)
	if req.Resume == nil && !req.NoCache && e.cache.enabled() {
		read -= e.cache.peek(req.Prompt)
	}
	return tooSlow(read, rate, time.Until(deadline))
}

// tooSlow returns an ErrTooSlow error if reading n prompt tokens at rate
// tokens/s takes longer than left. Once the deadline has passed it returns
// nil: that is the context's timeout, not a prompt too long for it.
func tooSlow(n int, rate float64, left time.Duration) error {
	need := time.Duration(float64(n) / rate * float64(time.Second))
	if need <= left || left <= 0 {
		return nil
	}
	return fmt.Errorf("%w: %d prompt tokens at the measured %.0f tokens/s take at least %v, and the deadline is in %v",
		ErrTooSlow, n, rate, need.Round(time.Second), left.Round(time.Second))
}

// fitsNow reports whether a request needing need bytes would be admitted at
// the next step without waiting. Called with e.mu held.
func (e *Engine) fitsNow(need int64) bool {
	return e.stats.Running < e.cfg.MaxSeqs && (e.cfg.MaxMemory == 0 || e.reserved+need <= e.cfg.MaxMemory)
}

func (e *Engine) validate(r *Request) error {
	switch {
	case len(r.Prompt) == 0 && r.Resume == nil:
		return fmt.Errorf("%w: empty prompt", ErrInvalid)
	case r.MaxTokens < 1:
		return fmt.Errorf("%w: MaxTokens = %d, want ≥ 1", ErrInvalid, r.MaxTokens)
	case r.TopLogprobs < 0 || r.TopLogprobs > sample.MaxTopLogprobs:
		return fmt.Errorf("%w: TopLogprobs = %d, want 0…%d", ErrInvalid, r.TopLogprobs, sample.MaxTopLogprobs)
	}
	if r.Resume != nil && len(r.Prompt) == 0 {
		return fmt.Errorf("%w: a resumed state needs at least one prompt token to produce logits", ErrInvalid)
	}
	V := int32(e.info.VocabSize)
	for i, t := range r.Prompt {
		if t < 0 || t >= V {
			return fmt.Errorf("%w: prompt token %d at position %d (vocabulary %d)", ErrTokenInvalid, t, i, V)
		}
	}
	for _, t := range r.StopTokens {
		if t < 0 || t >= V {
			return fmt.Errorf("%w: stop token %d (vocabulary %d)", ErrTokenInvalid, t, V)
		}
	}
	for _, p := range r.Checkpoints {
		if p <= 0 || p >= len(r.Prompt) {
			return fmt.Errorf("%w: checkpoint position %d outside (0, %d)", ErrInvalid, p, len(r.Prompt))
		}
	}
	return nil
}

// Drain stops accepting requests: Submit returns ErrDraining from now on,
// while queued and running sequences continue. Wait tells when they are done.
func (e *Engine) Drain() {
	e.mu.Lock()
	e.draining = true
	e.mu.Unlock()
}

// Wait blocks until no request is queued or running, or ctx ends.
func (e *Engine) Wait(ctx context.Context) error {
	for {
		e.mu.Lock()
		busy := len(e.queue) > 0 || e.stats.Running > 0
		idle := e.idle
		e.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close aborts every queued and running sequence (Reason FinishAborted) and
// stops the engine. It returns when the loop has exited.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	e.cond.Broadcast()
	e.mu.Unlock()
	<-e.exited
}

// loop is the engine's one goroutine: admit, step, repeat.
func (e *Engine) loop() {
	defer close(e.exited)
	for {
		e.mu.Lock()
		for !e.closed && len(e.queue) == 0 && len(e.ready) == 0 && len(e.running) == 0 {
			e.stats.Running = 0
			close(e.idle)
			e.idle = make(chan struct{})
			e.cond.Wait()
		}
		if e.closed {
			for _, s := range slices.Concat(e.queue, e.ready, e.running) {
				e.finishLocked(s, FinishAborted, -1, ErrClosed)
			}
			e.queue, e.ready, e.running, e.reserved = nil, nil, nil, 0
			st := &e.stats
			st.Queued, st.Running, st.Prefilling, st.Reserved, st.StateBytes = 0, 0, 0, 0, 0
			close(e.idle)
			e.idle = make(chan struct{})
			e.mu.Unlock()
			return
		}
		e.admit()
		ready := e.ready
		e.ready = nil
		e.mu.Unlock()
		for _, s := range ready {
			e.start(s)
		}
		e.safeStep()
	}
}

// safeStep runs a step; if the model or a sampler panics (a bug, or a
// worker process of the model failed: model.ErrUnavailable), the sequences
// of that step end with ErrPanic instead of taking the server down, and the
// engine carries on with the next requests. A failed worker also empties
// the prefix cache.
func (e *Engine) safeStep() {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("%w: %v", ErrPanic, r)
			if e, ok := r.(error); ok { // keep its chain (model.ErrUnavailable)
				err = fmt.Errorf("%w: %w", ErrPanic, e)
			}
			for _, s := range e.running {
				if s.state != nil {
					e.finish(s, FinishAborted, -1, err)
				}
			}
			if errors.Is(err, model.ErrUnavailable) {
				// A worker process failed, and one that restarted has lost
				// the states it held: a cached prefix would fail every
				// request that resumes from it.
				e.cache.clear()
			}
			e.reap()
			e.publish(time.Now(), 0, 0)
		}
	}()
	e.step()
}

// admit moves queued requests into free slots (e.ready) while memory
// allows, oldest first, and drops queued requests whose context ended.
// Called with e.mu held.
func (e *Engine) admit() {
	q := e.queue[:0]
	for i, s := range e.queue {
		switch {
		case s.ctx.Err() != nil:
			e.finishLocked(s, FinishCancelled, -1, s.ctx.Err())
		case len(q) == 0 && e.fitsNow(s.need):
			e.reserved += s.need
			e.stats.Running++
			e.ready = append(e.ready, s)
		default:
			q = append(q, e.queue[i])
		}
	}
	clear(e.queue[len(q):])
	e.queue = q
	e.stats.Queued = len(q)
	e.stats.Reserved = e.reserved
}

// start gives an admitted sequence its state: a resumed one, a copy of the
// longest cached prefix, or a fresh one.
func (e *Engine) start(s *seq) {
	e.running = append(e.running, s)
	switch {
	case s.req.Resume != nil:
		s.state = s.req.Resume
		s.req.Resume = nil
		return
	case !s.req.NoCache && e.cache.enabled():
		s.cache = true
		s.marks = slices.Compact(slices.Sorted(slices.Values(s.req.Checkpoints)))
		if ck, n := e.cache.lookup(s.toks); ck != nil {
			s.state = ck.state.Clone()
			s.fed, s.cached, s.lastCk = n, n, n
			if n == len(s.toks) {
				s.pend = slices.Clone(ck.logits) // sampling edits logits in place for a while
				s.firstChunk(time.Now())         // nothing to read
			}
			for len(s.marks) > 0 && s.marks[0] <= n {
				s.marks = s.marks[1:]
			}
			e.mu.Lock()
			e.stats.CacheHits++
			e.mu.Unlock()
			return
		}
	}
	s.state = e.newState()
}

// newState returns a spare state if there is one, else a fresh state. A
// spare saves the page faults of first touching a fresh state's memory
// (b2 preset, 14.7 MB: 0–100 ms per state on these VMs, as much as the
// prefill of a short prompt).
func (e *Engine) newState() model.State {
	n := len(e.spares)
	if n == 0 {
		return e.m.NewState()
	}
	st := e.spares[n-1]
	e.spares[n-1] = nil
	e.spares = e.spares[:n-1]
	return st
}

// recycle keeps st, reset, as a spare if there are fewer than MaxSeqs and
// it holds no more than a fresh state plus spareKVTokens tokens of KV cache;
// otherwise st is left to the garbage collector. The caller must own st.
func (e *Engine) recycle(st model.State) {
	if st == nil || len(e.spares) >= e.cfg.MaxSeqs || st.Bytes() > e.info.StateBytes+e.info.BytesPerTok*spareKVTokens {
		return
	}
	st.Reset()
	e.spares = append(e.spares, st)
}

// step runs one forward pass over every running sequence and emits the
// tokens it yields.
func (e *Engine) step() {
	e.reap()
	if len(e.running) == 0 {
		return
	}
	e.batch, e.owners = e.batch[:0], e.owners[:0]
	budget := e.cfg.BatchTokens
	// Decoding sequences first: one token each.
	decoding := 0
	for _, s := range e.running {
		if s.pend == nil && s.fed >= s.prompt {
			e.batch = append(e.batch, model.Seq{State: s.state, Tokens: s.toks[s.fed : s.fed+1], Logits: model.LogitsLast})
			e.owners = append(e.owners, s)
			budget--
			decoding++
		}
	}
	// Then prompt chunks, the rest of the budget shared between prompts.
	t0 := time.Now()
	e.wants = e.wants[:0]
	for _, s := range e.running {
		if s.pend != nil || s.fed >= s.prompt {
			continue
		}
		end := s.prompt
		if len(s.marks) > 0 && s.marks[0] < end {
			end = s.marks[0]
		}
		e.wants = append(e.wants, chunkWant{s: s, n: end - s.fed})
	}
	budget -= shareBudget(e.wants, budget)
	for _, w := range e.wants {
		s := w.s
		if w.n == 0 {
			continue
		}
		end := s.fed + w.n
		mode := model.LogitsNone
		if end == s.prompt {
			mode = model.LogitsLast
		}
		e.batch = append(e.batch, model.Seq{State: s.state, Tokens: s.toks[s.fed:end], Logits: mode})
		e.owners = append(e.owners, s)
		s.firstChunk(t0)
	}
	var fed int
	if len(e.batch) > 0 {
		fed = e.cfg.BatchTokens - budget
		e.m.Forward(e.batch, e.logits)
		if prompt := fed - decoding; prompt >= e.cfg.BatchTokens/2 {
			e.measurePrefill(prompt, time.Since(t0))
		}
	}
	row := 0
	V := e.info.VocabSize
	e.draws = e.draws[:0]
	for i, b := range e.batch {
		s := e.owners[i]
		s.fed += len(b.Tokens)
		if b.Logits == model.LogitsNone {
			e.checkpoint(s, nil)
			continue
		}
		logits := e.logits[row*V : (row+1)*V]
		row++
		if !model.AllFinite(logits) { // corrupt weights or an overflow: every later token would be garbage
			e.finish(s, FinishAborted, -1, model.NonFiniteError(e.m, b))
			continue
		}
		if s.gen == 0 {
			e.checkpoint(s, logits) // end of prompt, with the logits that follow
		}
		e.draws = append(e.draws, draw{s: s, logits: logits})
	}
	// Sequences whose first logits came from the cache.
	for _, s := range e.running {
		if s.pend != nil {
			e.draws = append(e.draws, draw{s: s, logits: s.pend})
			s.pend = nil
		}
	}
	drawAll(e.draws)
	for i := range e.draws {
		e.record(&e.draws[i])
	}
	e.endTooSlow()
	e.reap()
	e.publish(t0, fed, len(e.draws))
}

// prefillDecay is how much the prefill rate, the fastest recent step's,
// falls per step that measures slower: a step slowed by a busy machine is
// ignored, while a rate that stays lower (a long prompt's later chunks) is
// followed within tens of steps.
const prefillDecay = 0.05

// measurePrefill folds a step that read n prompt tokens in d into the
// prefill rate: the fastest recent rate, so estimates err on the fast side.
func (e *Engine) measurePrefill(n int, d time.Duration) {
	if d <= 0 {
		return
	}
	r := float64(n) / d.Seconds()
	e.mu.Lock()
	e.prefill = max(r, e.prefill*(1-prefillDecay))
	e.mu.Unlock()
}

// endTooSlow ends the prefilling sequences that the measured rate says
// cannot finish reading their prompt before their deadline (a prompt that
// arrived before any rate was measured), rather than let them run into it.
func (e *Engine) endTooSlow() {
	e.mu.Lock()
	rate := e.prefill
	e.mu.Unlock()
	if rate <= 0 {
		return
	}
	for _, s := range e.running {
		if s.state == nil || s.fed >= s.prompt {
			continue
		}
		if deadline, ok := s.ctx.Deadline(); ok {
			if err := tooSlow(s.prompt-s.fed, rate, time.Until(deadline)); err != nil {
				st := s.state
				e.finish(s, FinishAborted, -1, err)
				e.recycle(st)
			}
		}
	}
}

// chunkWant is a prefilling sequence's wish for a step: n prompt tokens
// (up to its next checkpoint), cut to its share by shareBudget.
type chunkWant struct {
	s       *seq
	n       int
	granted bool // n is final (shareBudget's bookkeeping)
}

// shareBudget cuts the wishes to fit budget tokens and returns how many it
// grants. Every wish gets an equal share; a wish smaller than its share is
// granted whole and the rest is shared again among the others (water
// filling), and the last tokens that do not divide go to the oldest
// sequences first. So a short prompt is read at once beside a long one
// instead of waiting for all of it.
func shareBudget(wants []chunkWant, budget int) int {
	granted := 0
	open := len(wants)
	for open > 0 && budget > 0 {
		share := budget / open
		progress := false
		for i := range wants {
			if w := &wants[i]; !w.granted && w.n <= share {
				w.granted = true
				budget -= wants[i].n
				granted += wants[i].n
				open--
				progress = true
			}
		}
		if progress {
			continue
		}
		// Every open wish exceeds the share: each gets the share, the
		// remainder one token each, oldest first.
		extra := budget - share*open
		for i := range wants {
			w := &wants[i]
			if w.granted {
				continue
			}
			n := share
			if extra > 0 {
				n++
				extra--
			}
			w.n, w.granted = n, true
			budget -= n
			granted += n
		}
		open = 0
	}
	for i := range wants {
		if !wants[i].granted {
			wants[i].n = 0
		}
	}
	return granted
}

// firstChunk records, at the step that reads a sequence's first prompt
// chunk, how long it waited for it.
func (s *seq) firstChunk(t time.Time) {
	if s.wait < 0 {
		s.wait = max(t.Sub(s.submitted), 0)
	}
}

// draw is one sequence's sampling in a step.
type draw struct {
	s      *seq
	logits []float32 // [vocab]
	tok    int       // sampled token; -1 if the constraint allowed none
	stop   bool      // tok is a stop token
	t      Token
}

// drawAll samples every draw, in parallel across sequences when there are
// several: with a large vocabulary, temperature sampling (an exp per logit)
// costs milliseconds per sequence, which would otherwise add up serially.
// Each draw touches only its own sequence.
func drawAll(ds []draw) {
	workers := min(len(ds), runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range ds {
			ds[i].run()
		}
		return
	}
	var wg sync.WaitGroup
	var failure atomic.Value // a worker's panic, re-raised on the loop goroutine
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					failure.Store(fmt.Sprint(r))
				}
			}()
			for i := w; i < len(ds); i += workers {
				ds[i].run()
			}
		}()
	}
	wg.Wait()
	if r := failure.Load(); r != nil {
		panic(r)
	}
}

// run samples the draw's token and advances its sequence's sampler and
// constraint; everything it touches belongs to d.s.
func (d *draw) run() {
	s := d.s
	d.tok = s.sample(d.logits)
	if d.tok < 0 {
		return
	}
	if slices.Contains(s.req.StopTokens, int32(d.tok)) {
		d.stop = true
		return
	}
	s.sampler.Accept(d.tok)
	if c := s.req.Constraint; c != nil {
		c.Accept(int32(d.tok))
	}
	d.t = Token{ID: int32(d.tok)}
	if s.req.Logprobs || s.req.TopLogprobs > 0 {
		var top []sample.Logprob
		d.t.Logprob, top = sample.TopLogprobs(s.topBuf, d.logits, d.tok, s.req.TopLogprobs)
		if len(top) > 0 {
			d.t.Top = slices.Clone(top)
		}
		s.topBuf = top
	}
}

// checkpoint snapshots s into the prefix cache if it just reached a
// boundary: a requested position, a periodic one, or the end of its prompt
// (when logits is non-nil, which it is exactly then).
func (e *Engine) checkpoint(s *seq, logits []float32) {
	if !s.cache {
		return
	}
	mark := false
	for len(s.marks) > 0 && s.marks[0] <= s.fed {
		mark = mark || s.marks[0] == s.fed
		s.marks = s.marks[1:]
	}
	if s.fed-s.lastCk >= e.cfg.CheckpointEvery {
		mark = true
	}
	if !mark && logits == nil || s.fed < e.cfg.CacheMinTokens {
		return
	}
	s.lastCk = s.fed
	key := s.toks[:s.fed]
	var l []float32
	if logits != nil {
		l = slices.Clone(logits)
	}
	if ck := e.cache.exact(key); ck != nil {
		e.cache.addLogits(ck, l)
		return
	}
	if st := s.state.Clone(); !e.cache.insert(key, st, l) {
		e.recycle(st)
	}
}

// record applies a drawn token to its sequence: the stream gets it, and a
// stop token or the length limit ends the sequence.
func (e *Engine) record(d *draw) {
	s := d.s
	switch {
	case d.tok < 0: // the constraint allows nothing more
		e.done(s, FinishStop, -1)
		return
	case d.stop:
		s.gen++
		s.toks = append(s.toks, int32(d.tok))
		e.done(s, FinishStop, int32(d.tok))
		return
	}
	s.gen++
	s.toks = append(s.toks, int32(d.tok))
	s.stream.push(d.t)
	if s.gen >= s.req.MaxTokens {
		e.done(s, FinishLength, -1)
	}
}

// rejectTries is how many disallowed tokens sample rejects one at a time
// before it masks the whole vocabulary.
const rejectTries = 4

// sample draws s's next token from logits, honouring its constraint: a
// disallowed draw is masked (-Inf) and redrawn, a few times one by one (the
// common case, where the model mostly follows the constraint), then by
// checking every token once. logits are restored before it returns. It
// returns -1 if the constraint allows no token at all.
func (s *seq) sample(logits []float32) int {
	tok := s.sampler.Sample(logits)
	c := s.req.Constraint
	if c == nil || c.Allowed(int32(tok)) {
		return tok
	}
	masked := s.masked[:0]
	defer func() {
		for _, m := range masked {
			logits[m.id] = m.logit
		}
		s.masked = masked[:0]
	}()
	mask := func(id int) {
		masked = append(masked, maskedLogit{int32(id), logits[id]})
		logits[id] = float32(math.Inf(-1))
	}
	for range rejectTries {
		mask(tok)
		tok = s.sampler.Sample(logits)
		if !math.IsInf(float64(logits[tok]), -1) && c.Allowed(int32(tok)) {
			return tok
		}
	}
	allowed := 0
	for id, l := range logits {
		switch {
		case math.IsInf(float64(l), -1):
		case c.Allowed(int32(id)):
			allowed++
		default:
			mask(id)
		}
	}
	if allowed == 0 {
		return -1
	}
	return s.sampler.Sample(logits)
}

// done ends a sequence normally; reap removes it from running. Its state
// goes to the prefix cache (for the conversation's next turn) or back to the
// caller.
func (e *Engine) done(s *seq, why FinishReason, stop int32) {
	r := e.result(s, why, stop, nil)
	st := s.state
	if s.req.KeepState {
		r.State = s.state
		r.Pending = []int32{s.toks[len(s.toks)-1]}
		st = nil // cloned below only if the cache wants it
	}
	// Handing st over costs nothing; a kept state must be copied, which is
	// worth it only from CacheMinTokens on.
	worth := st != nil || s.fed >= e.cfg.CacheMinTokens
	if key := s.toks[:s.fed]; s.cache && s.fed > 0 && worth && e.cache.exact(key) == nil {
		if st == nil {
			st = s.state.Clone()
		}
		if e.cache.insert(key, st, nil) {
			st = nil // the cache owns it now
		}
	}
	e.recycle(st)
	s.state = nil
	e.mu.Lock()
	e.count(r)
	e.mu.Unlock()
	s.stream.finish(r)
}

// reap removes finished and cancelled sequences from running and returns
// their memory.
func (e *Engine) reap() {
	live := e.running[:0]
	var freed int64
	for _, s := range e.running {
		switch {
		case s.state == nil: // finished in emit
			freed += s.need
		case s.ctx.Err() != nil:
			st := s.state
			e.finish(s, FinishCancelled, -1, s.ctx.Err())
			e.recycle(st)
			freed += s.need
		default:
			live = append(live, s)
		}
	}
	clear(e.running[len(live):])
	e.running = live
	e.mu.Lock()
	e.reserved -= freed
	e.stats.Reserved = e.reserved
	e.stats.Running = len(live) + len(e.ready)
	e.mu.Unlock()
}

func (e *Engine) result(s *seq, why FinishReason, stop int32, err error) *Result {
	return &Result{
		Reason: why, StopToken: stop, Err: err,
		PromptTokens: s.prompt, CachedTokens: s.cached, CompletionTokens: s.gen,
		Seed: s.sampler.Seed(), PrefillWait: s.wait,
	}
}

// finish ends a sequence abnormally (cancelled, aborted).
func (e *Engine) finish(s *seq, why FinishReason, stop int32, err error) {
	e.mu.Lock()
	e.finishLocked(s, why, stop, err)
	e.mu.Unlock()
}

func (e *Engine) finishLocked(s *seq, why FinishReason, stop int32, err error) {
	r := e.result(s, why, stop, err)
	s.state = nil
	e.count(r)
	s.stream.finish(r)
}

// count records a finished sequence in the stats. Called with e.mu held.
func (e *Engine) count(r *Result) {
	e.stats.Finished++
	switch r.Reason {
	case FinishCancelled:
		e.stats.Cancelled++
	case FinishAborted:
		e.stats.Aborted++
	}
	e.stats.PromptTokens += int64(r.PromptTokens)
	e.stats.CachedTokens += int64(r.CachedTokens)
	e.stats.GeneratedTokens += int64(r.CompletionTokens)
}

// publish copies the loop's figures into the shared stats.
func (e *Engine) publish(t time.Time, fed, generated int) {
	var inUse, spare int64
	for _, st := range e.spares {
		spare += st.Bytes()
	}
	prefilling := 0
	for _, s := range e.running {
		inUse += s.state.Bytes()
		if s.fed < s.prompt {
			prefilling++
		}
	}
	e.mu.Lock()
	e.stats.Running = len(e.running) + len(e.ready)
	e.stats.Prefilling = prefilling
	e.stats.StateBytes = inUse
	e.stats.SpareStates, e.stats.SpareBytes = len(e.spares), spare
	e.stats.CacheBytes = e.cache.bytes
	e.stats.CacheEntries = e.cache.entries()
	e.stats.StepTokens += int64(fed)
	if fed > 0 {
		e.stats.Steps++
	}
	e.stats.Checkpoints = e.cache.inserts
	e.stats.Evictions = e.cache.evictions
	e.rate.add(t, generated)
	e.mu.Unlock()
}
