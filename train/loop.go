package train

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/lightninglm/lightning/kernels"
)

// The training loop around the model and the optimizer: the learning-rate
// schedule, gradient accumulation, global-norm clipping, the eval loss and
// the cadence of evaluations and checkpoints. It takes its batches through
// Batches and knows nothing of text or files; lightning train wires a
// train/data stream and the checkpoint writer into it.

// StepModel is the training model as the loop drives it (*Model satisfies
// it).
type StepModel interface {
	// ForwardBackward adds weight·∇(loss of b) into the gradient slab and
	// returns b's loss.
	ForwardBackward(b Batch, weight float32) Loss
	// Evaluate returns b's loss without touching the gradients.
	Evaluate(b Batch) Loss
	// ZeroGrads clears the gradient slab.
	ZeroGrads()
}

// Optimizer updates parameters from gradients (*AdamW satisfies it).
type Optimizer interface {
	Step(params, grads []float32, lr float64)
}

// Batches is an endless stream of packed training sequences (a
// train/data.Stream with Wrap satisfies it). The returned slices may be
// reused by the next call.
type Batches interface {
	Next() (tokens []int32, docStarts []int, err error)
}

// Schedule is the learning rate: a linear warmup from Peak/Warmup to Peak
// over the first Warmup steps, then a cosine decay from Peak to Min that
// reaches Min at step Steps.
type Schedule struct {
	Peak, Min float64
	Warmup    int // steps of linear warmup
	Steps     int // total optimizer steps of the run
}

// LR returns the learning rate of optimizer step step (0-based).
func (s Schedule) LR(step int) float64 {
	if step < s.Warmup {
		return s.Peak * float64(step+1) / float64(s.Warmup)
	}
	decay := s.Steps - s.Warmup
	if decay <= 0 || step >= s.Steps {
		return s.Min
	}
	progress := float64(step-s.Warmup) / float64(decay) // in [0, 1)
	return s.Min + (s.Peak-s.Min)*0.5*(1+math.Cos(math.Pi*progress))
}

// Trainer runs optimizer steps. Step and Tokens, with the parameters, the
// optimizer's state and the data stream's position, are all the state of
// a run: restoring them continues it exactly.
type Trainer struct {
	Model         StepModel
	Params, Grads []float32 // the model's slabs
	Opt           Optimizer
	Data          Batches
	Schedule      Schedule
	Accum         int     // sequences per optimizer step (-batch-tokens ÷ -seq-len)
	Clip          float64 // limit on the global gradient norm; 0 turns clipping off

	Step   int   // optimizer steps done
	Tokens int64 // training tokens consumed

	batches []Batch // [Accum] this step's sequences, owning their slices
}

// StepResult is what one optimizer step measured.
type StepResult struct {
	Loss     float64 // mean cross-entropy over the step's predictions
	Aux      float64 // mean router load-balancing loss of its sequences
	LR       float64 // learning rate it used
	GradNorm float64 // global gradient norm before clipping
	Tokens   int     // tokens it consumed
}

// ErrNonFinite is returned when a step's loss or gradient norm is NaN or
// infinite; the parameters are left as they were before the step.
var ErrNonFinite = errors.New("train: loss or gradient is not finite")

// TrainStep runs one optimizer step: Accum sequences forward and backward,
// their gradients weighted by their share of the step's predictions (so
// the step's gradient is that of the mean cross-entropy over all its
// predictions, whatever their split into sequences), clipped to a global
// norm of Clip, then the optimizer at the scheduled learning rate.
func (t *Trainer) TrainStep() (StepResult, error) {
	if t.Accum < 1 {
		panic("train: Trainer.Accum < 1")
	}
	if len(t.batches) != t.Accum {
		t.batches = make([]Batch, t.Accum)
	}
	total := 0 // predictions in the step
	var res StepResult
	for i := range t.batches {
		toks, starts, err := t.Data.Next()
		if err != nil {
			return StepResult{}, fmt.Errorf("reading training data: %w", err)
		}
		b := &t.batches[i]
		b.Tokens = append(b.Tokens[:0], toks...)
		b.DocStarts = append(b.DocStarts[:0], starts...)
		total += Predictions(*b)
		res.Tokens += len(toks)
	}
	t.Model.ZeroGrads()
	for _, b := range t.batches {
		var w float64
		if total > 0 {
			w = float64(Predictions(b)) / float64(total)
		}
		l := t.Model.ForwardBackward(b, float32(w))
		res.Loss += w * l.CE
		res.Aux += l.Aux / float64(t.Accum)
	}
	res.GradNorm = GlobalNorm(t.Grads)
	if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) || math.IsNaN(res.GradNorm) || math.IsInf(res.GradNorm, 0) {
		return res, fmt.Errorf("%w at step %d (loss %v, gradient norm %v): lower -lr or raise -warmup", ErrNonFinite, t.Step+1, res.Loss, res.GradNorm)
	}
	if t.Clip > 0 && res.GradNorm > t.Clip {
		scaleSlab(t.Grads, float32(t.Clip/res.GradNorm))
	}
	res.LR = t.Schedule.LR(t.Step)
	t.Opt.Step(t.Params, t.Grads, res.LR)
	t.Step++
	t.Tokens += int64(res.Tokens)
	return res, nil
}

// Predictions is the number of next-token predictions inside b's
// documents: each segment of n tokens gives n−1.
func Predictions(b Batch) int {
	p := 0
	for i, s := range b.DocStarts {
		end := len(b.Tokens)
		if i+1 < len(b.DocStarts) {
			end = b.DocStarts[i+1]
		}
		p += max(end-s-1, 0)
	}
	return p
}

// EvalLoss returns the mean cross-entropy over all predictions of batches.
func (t *Trainer) EvalLoss(batches []Batch) float64 {
	sum, n := 0.0, 0
	for _, b := range batches {
		l := t.Model.Evaluate(b)
		sum += l.CE * float64(l.Predictions)
		n += l.Predictions
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// normChunk is the number of elements per partial sum of GlobalNorm: fixed,
// so the sum's order, and so its value, does not depend on the thread count.
const normChunk = 1 << 16

// GlobalNorm returns the Euclidean norm of g, summed in float64 over fixed
// chunks, the chunks' sums added in order.
func GlobalNorm(g []float32) float64 {
	parts := make([]float64, (len(g)+normChunk-1)/normChunk)
	kernels.ParallelFor(len(parts), 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			s := 0.0
			for _, v := range g[c*normChunk : min((c+1)*normChunk, len(g))] {
				s += float64(v) * float64(v)
			}
			parts[c] = s
		}
	})
	s := 0.0
	for _, p := range parts {
		s += p
	}
	return math.Sqrt(s)
}

// scaleSlab multiplies g by f.
func scaleSlab(g []float32, f float32) {
	kernels.ParallelFor((len(g)+normChunk-1)/normChunk, 1, func(lo, hi int) {
		for i := range g[lo*normChunk : min(hi*normChunk, len(g))] {
			g[lo*normChunk+i] *= f
		}
	})
}

// Record is one logged step: a line of metrics.jsonl.
type Record struct {
	Step     int      `json:"step"`
	Tokens   int64    `json:"tokens"`   // training tokens consumed after the step
	Loss     float64  `json:"loss"`     // the step's mean cross-entropy
	Aux      float64  `json:"aux_loss"` // its router load-balancing loss
	EvalLoss *float64 `json:"eval_loss,omitempty"`
	LR       float64  `json:"lr"`
	GradNorm float64  `json:"grad_norm"` // before clipping
	TokPerS  float64  `json:"tok_per_s"` // training tokens per second of this step (evaluation excluded)
	MFU      float64  `json:"mfu"`       // model FLOPs utilization of this step
	Elapsed  float64  `json:"elapsed_s"` // wall seconds since the run (or its resumption) started
}

// RunOptions are the cadence and hooks of Run.
type RunOptions struct {
	Steps     int     // run until Trainer.Step reaches this
	EvalEvery int     // evaluate every this many steps and after the last; 0: never
	Eval      []Batch // the held-out sequences
	SaveEvery int     // checkpoint every this many steps; 0: only at the end

	// FLOPsPerToken and PeakFLOPS give Record.MFU: FLOPsPerToken·tokens/s
	// ÷ PeakFLOPS. Either zero leaves MFU zero.
	FLOPsPerToken, PeakFLOPS float64

	// Stop, when it becomes readable, ends the run after the step in
	// progress, with a checkpoint: Run then returns ErrStopped (or nil if
	// that step was the last).
	Stop <-chan struct{}
	// Log is called after every step.
	Log func(Record)
	// Save writes a checkpoint of the trainer's current state.
	Save func() error
}

// ErrStopped is returned by Run when RunOptions.Stop ended it (after
// saving).
var ErrStopped = errors.New("train: stopped")

// Run trains until opt.Steps, evaluating and saving at their cadence, and
// saves at the end (or when stopped). A step that fails leaves the last
// checkpoint as the place to resume from.
func (t *Trainer) Run(opt RunOptions) error {
	start := time.Now()
	for t.Step < opt.Steps {
		t0 := time.Now()
		res, err := t.TrainStep()
		if err != nil {
			return err
		}
		secs := time.Since(t0).Seconds()
		rec := Record{Step: t.Step, Tokens: t.Tokens, Loss: res.Loss, Aux: res.Aux, LR: res.LR, GradNorm: res.GradNorm}
		if secs > 0 {
			rec.TokPerS = float64(res.Tokens) / secs
		}
		if opt.PeakFLOPS > 0 {
			rec.MFU = opt.FLOPsPerToken * rec.TokPerS / opt.PeakFLOPS
		}
		if opt.EvalEvery > 0 && len(opt.Eval) > 0 && (t.Step%opt.EvalEvery == 0 || t.Step == opt.Steps) {
			e := t.EvalLoss(opt.Eval)
			rec.EvalLoss = &e
		}
		rec.Elapsed = time.Since(start).Seconds()
		if opt.Log != nil {
			opt.Log(rec)
		}
		stopped := false
		select {
		case <-opt.Stop:
			stopped = true
		default:
		}
		if stopped || t.Step == opt.Steps || (opt.SaveEvery > 0 && t.Step%opt.SaveEvery == 0) {
			if opt.Save != nil {
				if err := opt.Save(); err != nil {
					return fmt.Errorf("saving the checkpoint of step %d: %w", t.Step, err)
				}
			}
		}
		if stopped && t.Step < opt.Steps {
			return ErrStopped
		}
	}
	return nil
}
