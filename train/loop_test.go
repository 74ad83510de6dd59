package train

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lightninglm/lightning/kernels"
)

// The loop is tested on a model small enough to check by hand: a bigram
// model whose parameters are a [V, V] table of logits (row = current
// token), trained by momentum SGD on a stream of a noisy cyclic pattern. It
// satisfies StepModel exactly as the real model does (mean cross-entropy
// over the predictions inside documents, gradients weighted and added).

const toyV = 8

type bigram struct {
	params, grads []float32 // [toyV, toyV]
	nanAt         int       // ForwardBackward call (1-based) that returns NaN; 0: never
	calls         int
}

func newBigram() *bigram {
	return &bigram{params: make([]float32, toyV*toyV), grads: make([]float32, toyV*toyV)}
}

// lossGrad returns the summed cross-entropy of b's predictions and, when
// grad is not nil, adds scale·∂(sum)/∂params into it. It is also the
// test's independent reference for accumulation.
func (m *bigram) lossGrad(b Batch, grad []float32, scale float64) (sum float64, n int) {
	for i, s := range b.DocStarts {
		end := len(b.Tokens)
		if i+1 < len(b.DocStarts) {
			end = b.DocStarts[i+1]
		}
		for t := s; t+1 < end; t++ {
			row := m.params[int(b.Tokens[t])*toyV:][:toyV]
			mx := slices.Max(row)
			z := 0.0
			for _, v := range row {
				z += math.Exp(float64(v - mx))
			}
			target := int(b.Tokens[t+1])
			sum += math.Log(z) - float64(row[target]-mx)
			n++
			if grad != nil {
				g := grad[int(b.Tokens[t])*toyV:][:toyV]
				for j := range g {
					p := math.Exp(float64(row[j]-mx)) / z
					if j == target {
						p--
					}
					g[j] += float32(scale * p)
				}
			}
		}
	}
	return sum, n
}

func (m *bigram) ForwardBackward(b Batch, weight float32) Loss {
	m.calls++
	if m.calls == m.nanAt {
		return Loss{CE: math.NaN(), Predictions: 1}
	}
	sum, n := m.lossGrad(b, nil, 0)
	if n > 0 {
		m.lossGrad(b, m.grads, float64(weight)/float64(n))
		sum /= float64(n)
	}
	return Loss{CE: sum, Total: sum, Predictions: n}
}

func (m *bigram) Evaluate(b Batch) Loss {
	sum, n := m.lossGrad(b, nil, 0)
	if n > 0 {
		sum /= float64(n)
	}
	return Loss{CE: sum, Total: sum, Predictions: n}
}

func (m *bigram) ZeroGrads() { clear(m.grads) }

// momentum is SGD with momentum 0.9; vel is its whole state.
type momentum struct{ vel []float32 }

func (o *momentum) Step(params, grads []float32, lr float64) {
	for i := range params {
		o.vel[i] = 0.9*o.vel[i] + grads[i]
		params[i] -= float32(lr) * o.vel[i]
	}
}

// pattern is a Batches of sequences of seqLen tokens cut from the cycle
// 0 1 2 … V−1 0 1 …, each token replaced by a random one with probability
// 1/5, with a document boundary every 11 tokens. Pos is its whole state.
type pattern struct {
	seqLen int
	Pos    uint64 // sequences given
	toks   []int32
	starts []int
}

func (p *pattern) Next() ([]int32, []int, error) {
	r := rand.New(rand.NewPCG(p.Pos, 7))
	p.toks, p.starts = p.toks[:0], p.starts[:0]
	for i := range p.seqLen {
		abs := int(p.Pos)*p.seqLen + i
		tok := int32(abs % toyV)
		if r.IntN(5) == 0 {
			tok = int32(r.IntN(toyV))
		}
		if i == 0 || abs%11 == 0 {
			p.starts = append(p.starts, i)
		}
		p.toks = append(p.toks, tok)
	}
	p.Pos++
	return p.toks, p.starts, nil
}

func newToyTrainer(accum int) (*Trainer, *bigram, *pattern) {
	m := newBigram()
	data := &pattern{seqLen: 16}
	return &Trainer{Model: m, Params: m.params, Grads: m.grads, Opt: &momentum{vel: make([]float32, len(m.params))},
		Data: data, Schedule: Schedule{Peak: 0.5, Min: 0.05, Warmup: 3, Steps: 40}, Accum: accum, Clip: 1}, m, data
}

func heldOut() []Batch {
	p := &pattern{seqLen: 64, Pos: 1 << 40} // far from the training positions
	var bs []Batch
	for range 4 {
		t, s, _ := p.Next()
		bs = append(bs, Batch{Tokens: slices.Clone(t), DocStarts: slices.Clone(s)})
	}
	return bs
}

func TestScheduleLR(t *testing.T) {
	s := Schedule{Peak: 1, Min: 0.1, Warmup: 4, Steps: 14}
	// Warmup: (step+1)/4; then 0.1 + 0.9·(1+cos(π·(step−4)/10))/2.
	for _, tc := range []struct {
		step int
		want float64
	}{
		{0, 0.25}, {1, 0.5}, {3, 1}, {4, 1}, {9, 0.55},
		{13, 0.1 + 0.45*(1+math.Cos(0.9*math.Pi))}, {14, 0.1}, {20, 0.1},
	} {
		if got := s.LR(tc.step); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("LR(%d) = %v, want %v", tc.step, got, tc.want)
		}
	}
	if got := (Schedule{Peak: 2, Min: 0.5, Steps: 10}).LR(0); got != 2 {
		t.Errorf("no warmup: LR(0) = %v, want the peak 2", got)
	}
	if got := (Schedule{Peak: 2, Min: 0.5, Warmup: 10, Steps: 10}).LR(10); got != 0.5 {
		t.Errorf("warmup as long as the run: LR(10) = %v, want the floor", got)
	}
}

// TestGlobalNorm compares with a float64 sum in index order (the chunked
// sum adds the same float64 squares in another grouping: relative error
// ≤ n·2⁻⁵³ ≈ 2e-11 for these 200003 values), and checks the result is
// bitwise the same on 1 and 2 threads.
func TestGlobalNorm(t *testing.T) {
	g := make([]float32, 200003)
	r := rand.New(rand.NewPCG(1, 2))
	s := 0.0
	for i := range g {
		g[i] = float32(r.NormFloat64())
		s += float64(g[i]) * float64(g[i])
	}
	defer kernels.SetThreads(kernels.Threads())
	kernels.SetThreads(1)
	one := GlobalNorm(g)
	kernels.SetThreads(2)
	two := GlobalNorm(g)
	if one != two {
		t.Errorf("norm on 1 thread %v, on 2 threads %v", one, two)
	}
	if want := math.Sqrt(s); math.Abs(one-want) > 1e-10*want {
		t.Errorf("norm %v, want %v", one, want)
	}
	if GlobalNorm(nil) != 0 {
		t.Error("norm of nothing is not 0")
	}
}

// recorder is an Optimizer that keeps the gradients it is given.
type recorder struct {
	grads [][]float32
	lrs   []float64
}

func (o *recorder) Step(params, grads []float32, lr float64) {
	o.grads = append(o.grads, slices.Clone(grads))
	o.lrs = append(o.lrs, lr)
}

// TestAccumulationAndClipping checks one step over three sequences against
// the gradient of the mean cross-entropy over all their predictions,
// computed directly, with clipping off and with a limit below the norm.
func TestAccumulationAndClipping(t *testing.T) {
	for _, clip := range []float64{0, 0.05} {
		tr, m, _ := newToyTrainer(3)
		r := rand.New(rand.NewPCG(3, 4))
		for i := range m.params {
			m.params[i] = float32(r.NormFloat64())
		}
		tr.Clip = clip
		rec := &recorder{}
		tr.Opt = rec
		src := &pattern{seqLen: 16}
		var want []float32 = make([]float32, len(m.params))
		total, sum := 0, 0.0
		var bs []Batch
		for range 3 {
			toks, starts, _ := src.Next()
			b := Batch{Tokens: slices.Clone(toks), DocStarts: slices.Clone(starts)}
			bs = append(bs, b)
			_, n := m.lossGrad(b, nil, 0)
			total += n
		}
		for _, b := range bs {
			s, _ := m.lossGrad(b, want, 1/float64(total))
			sum += s
		}
		res, err := tr.TrainStep()
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(res.Loss-sum/float64(total)) > 1e-12*sum {
			t.Errorf("clip %v: step loss %v, want the mean %v", clip, res.Loss, sum/float64(total))
		}
		norm := GlobalNorm(want)
		if math.Abs(res.GradNorm-norm) > 1e-5*norm {
			t.Errorf("clip %v: gradient norm %v, want %v", clip, res.GradNorm, norm)
		}
		scale := 1.0
		if clip > 0 {
			if norm <= clip {
				t.Fatalf("norm %v is under the clip %v: the test does not clip", norm, clip)
			}
			scale = clip / norm
		}
		// The step's gradient is a float32 sum of three weighted terms, the
		// reference a float32 sum of the same terms scaled differently:
		// a few float32 roundings apart, relative to the largest value.
		tol := 1e-5 * float64(slices.Max(want))
		for i, g := range rec.grads[0] {
			if math.Abs(float64(g)-scale*float64(want[i])) > tol {
				t.Fatalf("clip %v: gradient[%d] = %v, want %v", clip, i, g, scale*float64(want[i]))
			}
		}
		if res.LR != tr.Schedule.LR(0) || tr.Step != 1 || tr.Tokens != 48 || res.Tokens != 48 {
			t.Errorf("after one step: lr %v, step %d, tokens %d", res.LR, tr.Step, tr.Tokens)
		}
	}
}

func TestTrainingLowersEvalLoss(t *testing.T) {
	tr, _, _ := newToyTrainer(2)
	eval := heldOut()
	before := tr.EvalLoss(eval)
	if err := tr.Run(RunOptions{Steps: 40}); err != nil {
		t.Fatal(err)
	}
	after := tr.EvalLoss(eval)
	// Before: uniform logits, ln 8 ≈ 2.079. The pattern's next token is
	// right 4/5 + 1/40 of the time, so the best possible loss is near
	// 0.82; 40 steps must get well below uniform.
	if math.Abs(before-math.Log(toyV)) > 1e-6 || after > 1.5 {
		t.Errorf("eval loss %v before, %v after 40 steps", before, after)
	}
}

// TestResumeIsExact runs 12 steps straight, and 5 steps stopped there, a
// save of the state (through JSON), a new trainer restored from it, and the
// 7 steps left:
// the losses and the final parameters must be bitwise the same.
func TestResumeIsExact(t *testing.T) {
	// run trains to step 12, stopped (as by Ctrl-C) after step stopAt.
	run := func(tr *Trainer, stopAt int) []Record {
		var recs []Record
		stop := make(chan struct{})
		err := tr.Run(RunOptions{Steps: 12, EvalEvery: 4, Eval: heldOut(), Stop: stop, Log: func(r Record) {
			r.TokPerS, r.MFU, r.Elapsed = 0, 0, 0 // timings differ between runs
			recs = append(recs, r)
			if r.Step == stopAt {
				close(stop)
			}
		}})
		if err != nil && !(errors.Is(err, ErrStopped) && tr.Step == stopAt) {
			t.Fatal(err)
		}
		return recs
	}
	straight, sm, _ := newToyTrainer(2)
	want := run(straight, -1)

	first, fm, fdata := newToyTrainer(2)
	got := run(first, 5)
	type saved struct {
		Step   int
		Tokens int64
		Pos    uint64
		Params []float32
		Vel    []float32
	}
	b, err := json.Marshal(saved{first.Step, first.Tokens, fdata.Pos, fm.params, first.Opt.(*momentum).vel})
	if err != nil {
		t.Fatal(err)
	}
	var s saved
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	second, m2, data2 := newToyTrainer(2)
	copy(m2.params, s.Params)
	copy(second.Opt.(*momentum).vel, s.Vel)
	data2.Pos, second.Step, second.Tokens = s.Pos, s.Step, s.Tokens
	got = append(got, run(second, -1)...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resumed run's records differ:\n got %+v\nwant %+v", got, want)
	}
	if !slices.Equal(m2.params, sm.params) {
		t.Error("resumed run's parameters differ from the straight run's")
	}
}

func TestRunCadence(t *testing.T) {
	tr, _, _ := newToyTrainer(1)
	var evals, saves []int
	opt := RunOptions{Steps: 10, EvalEvery: 3, Eval: heldOut(), SaveEvery: 4,
		Log: func(r Record) {
			if r.EvalLoss != nil {
				evals = append(evals, r.Step)
			}
			if r.Tokens != int64(16*r.Step) || r.TokPerS <= 0 {
				t.Errorf("record %+v", r)
			}
		},
		Save: func() error { saves = append(saves, tr.Step); return nil }}
	if err := tr.Run(opt); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(evals, []int{3, 6, 9, 10}) || !slices.Equal(saves, []int{4, 8, 10}) {
		t.Errorf("evaluated after steps %v, saved after %v", evals, saves)
	}

	tr, _, _ = newToyTrainer(1)
	stop := make(chan struct{})
	saves = nil
	opt.Steps, opt.Stop = 100, stop
	opt.Log = func(r Record) {
		if r.Step == 6 {
			close(stop)
		}
	}
	if err := tr.Run(opt); !errors.Is(err, ErrStopped) || tr.Step != 6 || !slices.Equal(saves, []int{4, 6}) {
		t.Errorf("stopped run: %v at step %d, saves %v", err, tr.Step, saves)
	}
	tr, _, _ = newToyTrainer(1)
	saves = nil
	last := make(chan struct{})
	opt.Steps, opt.Stop = 6, last
	opt.Log = func(r Record) {
		if r.Step == 6 {
			close(last)
		}
	}
	if err := tr.Run(opt); err != nil || !slices.Equal(saves, []int{4, 6}) {
		t.Errorf("run stopped at its last step: %v, saves %v", err, saves)
	}
	saveErr := errors.New("disk full")
	opt.Stop, opt.Steps = nil, 8
	opt.Save = func() error { return saveErr }
	if err := tr.Run(opt); !errors.Is(err, saveErr) || !strings.Contains(err.Error(), "step 8") {
		t.Errorf("failing save: %v", err)
	}
}

func TestNonFiniteLossStops(t *testing.T) {
	tr, m, _ := newToyTrainer(2)
	m.nanAt = 5 // the third step's first sequence
	err := tr.Run(RunOptions{Steps: 10})
	if !errors.Is(err, ErrNonFinite) || tr.Step != 2 {
		t.Fatalf("error %v at step %d", err, tr.Step)
	}
	before := slices.Clone(m.params)
	if _, err := tr.TrainStep(); err != nil || slices.Equal(before, m.params) {
		t.Fatalf("the step after: %v", err)
	}
}

func TestPredictions(t *testing.T) {
	for _, tc := range []struct {
		n      int
		starts []int
		want   int
	}{{5, []int{0}, 4}, {5, []int{0, 2}, 3}, {5, []int{0, 1, 2, 3, 4}, 0}, {1, []int{0}, 0}} {
		if got := Predictions(Batch{Tokens: make([]int32, tc.n), DocStarts: tc.starts}); got != tc.want {
			t.Errorf("%d tokens, starts %v: %d predictions, want %d", tc.n, tc.starts, got, tc.want)
		}
	}
}
