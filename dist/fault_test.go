package dist

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/stats"

	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
)

// serveRank serves rank r of plan on addr and returns the worker.
func serveRank(t *testing.T, plan Plan, r int, sec Security, addr string) (*Worker, string) {
	t.Helper()
	c, err := minimax01.LoadConfig(tinyA)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := plan.Part(c, r)
	m, err := minimax01.Load(tinyA, minimax01.Options{Part: &part, MaxBatchTokens: testMaxT})
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorker(m, plan, r, sec)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go w.Serve(lis)
	t.Cleanup(func() { w.Stop(); m.Close() })
	return w, lis.Addr().String()
}

// forward runs m.Forward and returns the error a hub panics with.
func forward(m model.Model, seqs []model.Seq, logits []float32) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = r.(error)
		}
	}()
	m.Forward(seqs, logits)
	return nil
}

// TestWorkerFailureAndRecovery kills workers of pp=2,ep=2 and restarts
// them: the steps that need a dead worker fail at once with an error naming
// it; sequences that did not touch it go on; after the restart new
// sequences give the single-process logits again, and a sequence whose
// state the restarted leader lost fails with a clear error.
func TestWorkerFailureAndRecovery(t *testing.T) {
	single, err := minimax01.Load(tinyA, minimax01.Options{MaxBatchTokens: testMaxT})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	p := loadPrompts(t, "p7")[0]
	V := single.Config.Vocab
	want := make([]float32, V)
	single.Forward([]model.Seq{{State: single.NewState(), Tokens: p, Logits: model.LogitsLast}}, want)

	sec := Security{Token: testToken}
	plan, _ := ParsePlan("pp=2,ep=2")
	var workers []*Worker
	var addrs []string
	for r := 0; r < plan.Workers(); r++ {
		w, a := serveRank(t, plan, r, sec, "127.0.0.1:0")
		workers, addrs = append(workers, w), append(addrs, a)
	}
	hub, err := Dial(loadEnds(t), plan, addrs, sec)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	hub.StepTimeout = 5 * time.Second
	got := make([]float32, V)
	run := func(st model.State) error {
		return forward(hub, []model.Seq{{State: st, Tokens: p, Logits: model.LogitsLast}}, got)
	}
	// untilOK retries a new sequence for up to 5 s (the connection
	// backs off up to 1 s between reconnects).
	untilOK := func(what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := run(hub.NewState())
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not recovered after 5 s: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if d := maxAbsDiff(got, want); d > goldenTol {
			t.Errorf("%s: max |Δlogit| %.3g", what, d)
		}
	}
	a := hub.NewState()
	if err := run(a); err != nil {
		t.Fatal(err)
	}

	// An expert peer of stage 1 dies: a step fails fast, naming stage 1.
	workers[3].Stop()
	start := time.Now()
	err = run(hub.NewState())
	if !errors.Is(err, model.ErrUnavailable) || !strings.Contains(err.Error(), "stage 1") || time.Since(start) > 4*time.Second {
		t.Fatalf("dead expert peer: error %v after %v", err, time.Since(start))
	}
	t.Logf("dead expert peer: %v", err)
	workers[3], _ = serveRank(t, plan, 3, sec, addrs[3])
	untilOK("expert peer restarted")
	// a did not run in the failed step: it goes on.
	if err := forward(hub, []model.Seq{{State: a, Tokens: []int32{1}, Logits: model.LogitsLast}}, got); err != nil {
		t.Errorf("sequence untouched by the failure: %v", err)
	}

	// The stage 1 leader dies and restarts: a's state there is gone.
	workers[2].Stop()
	if err := run(hub.NewState()); err == nil {
		t.Fatal("dead leader: step succeeded")
	}
	workers[2], _ = serveRank(t, plan, 2, sec, addrs[2])
	untilOK("leader restarted")
	err = forward(hub, []model.Seq{{State: a, Tokens: []int32{2}, Logits: model.LogitsLast}}, got)
	if err == nil || !strings.Contains(err.Error(), "restarted") {
		t.Errorf("sequence whose state the leader lost: %v", err)
	}
}

// TestSlowWorkerTimesOut delays a stage leader beyond the hub's step
// timeout: the step fails with ErrTimeout after about the timeout, and once
// the worker is fast again a new sequence runs.
func TestSlowWorkerTimesOut(t *testing.T) {
	sec := Security{Token: testToken}
	plan, _ := ParsePlan("pp=2")
	w0, a0 := serveRank(t, plan, 0, sec, "127.0.0.1:0")
	w1, a1 := serveRank(t, plan, 1, sec, "127.0.0.1:0")
	_ = w0
	hub, err := Dial(loadEnds(t), plan, []string{a0, a1}, sec)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	const timeout = 300 * time.Millisecond
	hub.StepTimeout = timeout
	logits := make([]float32, hub.Info().VocabSize)
	seq := func() []model.Seq {
		return []model.Seq{{State: hub.NewState(), Tokens: []int32{1, 2, 3}, Logits: model.LogitsLast}}
	}
	w1.mu.Lock()
	w1.delay = 3 * timeout
	w1.mu.Unlock()
	start := time.Now()
	err = forward(hub, seq(), logits)
	el := time.Since(start)
	if !errors.Is(err, ErrTimeout) || el < timeout || el > 2*timeout+time.Second {
		t.Fatalf("slow worker: %v after %v, want ErrTimeout after ~%v", err, el, timeout)
	}
	t.Logf("slow worker: %v after %v", err, el.Round(time.Millisecond))
	w1.mu.Lock()
	w1.delay = 0
	w1.mu.Unlock()
	if err := forward(hub, seq(), logits); err != nil {
		t.Errorf("after the delay: %v", err)
	}
}

// TestDroppedStatesAreReleased checks that the states of sequences the hub
// no longer references are dropped on the leaders with the next step, and
// that clones and resets are applied there.
func TestDroppedStatesAreReleased(t *testing.T) {
	sec := Security{Token: testToken}
	plan, _ := ParsePlan("pp=2")
	w0, a0 := serveRank(t, plan, 0, sec, "127.0.0.1:0")
	w1, a1 := serveRank(t, plan, 1, sec, "127.0.0.1:0")
	hub, err := Dial(loadEnds(t), plan, []string{a0, a1}, sec)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	logits := make([]float32, hub.Info().VocabSize)
	held := func() (int, int) {
		w0.mu.Lock()
		defer w0.mu.Unlock()
		w1.mu.Lock()
		defer w1.mu.Unlock()
		return len(w0.states), len(w1.states)
	}
	keep := hub.NewState()
	step := func(st model.State) {
		hub.Forward([]model.Seq{{State: st, Tokens: []int32{1, 2}, Logits: model.LogitsLast}}, logits)
	}
	step(keep)
	// live keeps the ten states reachable until they are counted: a GC
	// during the loop would otherwise queue their drops early.
	var live []model.State
	for range 5 {
		st := hub.NewState()
		step(st)
		c := st.Clone()
		step(c)
		live = append(live, st, c)
	}
	if n0, n1 := held(); n0 != 11 || n1 != 11 {
		t.Fatalf("leaders hold %d and %d states, want 11 (1 kept + 5 + 5 clones)", n0, n1)
	}
	runtime.KeepAlive(live)
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		step(keep) // carries the queued drops
		if n0, n1 := held(); n0 == 1 && n1 == 1 {
			break
		}
		if time.Now().After(deadline) {
			n0, n1 := held()
			t.Fatalf("after GC the leaders still hold %d and %d states, want 1", n0, n1)
		}
	}
}

// TestStagesOverlap checks that pp=2 pipelines micro-batches: with each
// step slowed to 30 ms, the two stages are busy at the same time during a
// Forward of four micro-batches, and the logits equal the single process.
func TestStagesOverlap(t *testing.T) {
	single, err := minimax01.Load(tinyA, minimax01.Options{MaxBatchTokens: testMaxT})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	p := loadPrompts(t, "p257")[0][:40]
	V := single.Config.Vocab
	want := make([]float32, len(p)*V)
	single.Forward([]model.Seq{{State: single.NewState(), Tokens: p, Logits: model.LogitsAll}}, want)

	sec := Security{Token: testToken}
	plan, _ := ParsePlan("pp=2")
	w0, a0 := serveRank(t, plan, 0, sec, "127.0.0.1:0")
	w1, a1 := serveRank(t, plan, 1, sec, "127.0.0.1:0")
	busy := &busyCounter{}
	for _, w := range []*Worker{w0, w1} {
		w.mu.Lock()
		w.delay, w.busy = 30*time.Millisecond, busy
		w.mu.Unlock()
	}
	hub, err := Dial(loadEnds(t), plan, []string{a0, a1}, sec)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	hub.MicroBatches = 4
	got := make([]float32, len(p)*V)
	hub.Forward([]model.Seq{{State: hub.NewState(), Tokens: p, Logits: model.LogitsAll}}, got)
	if d := maxAbsDiff(got, want); d > goldenTol {
		t.Errorf("max |Δlogit| %.3g", d)
	}
	if st := hub.Stats(); st.Steps != 4 {
		t.Errorf("%d micro-batches, want 4", st.Steps)
	}
	busy.mu.Lock()
	defer busy.mu.Unlock()
	if busy.most != 2 {
		t.Errorf("at most %d stages busy at once, want 2", busy.most)
	}
}

// TestDialWaitsForWorkers starts the hub before its second worker listens
// (as pods of a group start at once): Dial fails at once, DialWait connects
// once the worker is up, and a wrong token still fails DialWait at once.
func TestDialWaitsForWorkers(t *testing.T) {
	sec := Security{Token: testToken}
	plan, _ := ParsePlan("pp=2")
	_, a0 := serveRank(t, plan, 0, sec, "127.0.0.1:0")
	lis, err := net.Listen("tcp", "127.0.0.1:0") // reserve a port for rank 1, then free it
	if err != nil {
		t.Fatal(err)
	}
	a1 := lis.Addr().String()
	lis.Close()
	addrs := []string{a0, a1}
	if _, err := Dial(loadEnds(t), plan, addrs, sec); err == nil {
		t.Fatal("Dial connected to a worker that is not listening")
	}
	type dialed struct {
		hub *Model
		err error
	}
	done := make(chan dialed, 1)
	ends := loadEnds(t)
	go func() {
		hub, err := DialWait(ends, plan, addrs, sec, time.Minute)
		done <- dialed{hub, err}
	}()
	time.Sleep(700 * time.Millisecond)
	select {
	case d := <-done:
		t.Fatalf("DialWait returned before the worker started: %v", d.err)
	default:
	}
	serveRank(t, plan, 1, sec, a1)
	d := <-done
	if d.err != nil {
		t.Fatal(d.err)
	}
	hub := d.hub
	defer hub.Close()
	logits := make([]float32, hub.Info().VocabSize)
	if err := forward(hub, []model.Seq{{State: hub.NewState(), Tokens: []int32{1, 2, 3}, Logits: model.LogitsLast}}, logits); err != nil {
		t.Errorf("step after DialWait: %v", err)
	}
	start := time.Now()
	if _, err := DialWait(loadEnds(t), plan, addrs, Security{Token: "wrong-token"}, time.Minute); err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("wrong token with DialWait: %v after %v, want a refusal at once", err, time.Since(start))
	}
}

// TestStatesReleasedWhenHubDisconnects checks that a worker releases the
// sequence states of a hub whose connection ends, and only those: two hubs
// share the workers of pp=2 and of sp=2; the first disconnects mid-sequence
// (its state still referenced, so no drop was ever queued) and the workers'
// held states return to the second hub's alone, whose sequence goes on.
// Then a hub that disconnects while a step of a new sequence is running
// (the worker slowed to 300 ms) leaves nothing behind either, nor does a
// step whose request arrived just before its connection ended but that ran
// after the release.
func TestStatesReleasedWhenHubDisconnects(t *testing.T) {
	sec := Security{Token: testToken}
	prompt := loadPrompts(t, "p257")[0]
	for _, ps := range []string{"pp=2", "sp=2"} {
		t.Run(ps, func(t *testing.T) {
			plan, _ := ParsePlan(ps)
			var workers []*Worker
			var addrs []string
			for r := range plan.Workers() {
				w, a := serveRank(t, plan, r, sec, "127.0.0.1:0")
				workers, addrs = append(workers, w), append(addrs, a)
			}
			held := func() int {
				n := 0
				for _, w := range workers {
					n += w.heldStates()
				}
				return n
			}
			// waitHeld polls until the workers hold want states.
			waitHeld := func(want int, what string) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for held() != want {
					if time.Now().After(deadline) {
						t.Fatalf("%s: the workers hold %d states, want %d", what, held(), want)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			perSeq := plan.PP // every stage leader holds a sequence's layers; sp: its home alone
			dial := func() *Model {
				h, err := Dial(loadEnds(t), plan, addrs, sec)
				if err != nil {
					t.Fatal(err)
				}
				return h
			}
			a, b := dial(), dial()
			defer b.Close()
			logits := make([]float32, a.cfg.Vocab)
			sa, sb := a.NewState(), b.NewState()
			for _, x := range []struct {
				h  *Model
				st model.State
			}{{a, sa}, {b, sb}} {
				x.h.Forward([]model.Seq{{State: x.st, Tokens: prompt[:100], Logits: model.LogitsLast}}, logits)
				x.h.Forward([]model.Seq{{State: x.st, Tokens: []int32{1}, Logits: model.LogitsLast}}, logits)
			}
			if n := held(); n != 2*perSeq {
				t.Fatalf("the workers hold %d states for two sequences, want %d", n, 2*perSeq)
			}
			a.Close()
			waitHeld(perSeq, "after the first hub disconnected")
			runtime.KeepAlive(sa)
			if err := forward(b, []model.Seq{{State: sb, Tokens: []int32{2}, Logits: model.LogitsLast}}, logits); err != nil {
				t.Fatalf("the second hub's sequence after the first hub left: %v", err)
			}

			// A hub that leaves during a step that creates a state.
			for _, w := range workers {
				w.mu.Lock()
				w.delay = 300 * time.Millisecond
				w.mu.Unlock()
			}
			c := dial()
			done := make(chan error, 1)
			go func() {
				done <- forward(c, []model.Seq{{State: c.NewState(), Tokens: []int32{3, 4}, Logits: model.LogitsLast}}, make([]float32, c.cfg.Vocab))
			}()
			time.Sleep(100 * time.Millisecond)
			for _, cn := range c.conns { // as when the hub's process dies; Close must not run during a Forward
				cn.Close()
			}
			<-done
			c.Close()
			waitHeld(perSeq, "after a hub disconnected during a step")
			for _, w := range workers {
				w.mu.Lock()
				w.delay = 0
				w.mu.Unlock()
			}
			w := workers[0]
			ctx := w.conns.TagConn(context.Background(), &stats.ConnTagInfo{})
			w.conns.HandleConn(ctx, &stats.ConnEnd{})
			dim := w.m.Config.Dim
			req := &stepRequest{Rows: []row{{ID: 42, N: 1}}, X: make([]float32, dim)}
			if _, err := w.step(req, &stepReply{}, nil, dim, connOf(ctx)); err != nil {
				t.Fatal(err)
			}
			if n := held(); n != perSeq {
				t.Errorf("a step run after its connection ended left %d states, want %d", n, perSeq)
			}
			runtime.KeepAlive(sb)
		})
	}
}
