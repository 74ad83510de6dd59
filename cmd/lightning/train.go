package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/tokenizer"
	"github.com/lightninglm/lightning/train"
	"github.com/lightninglm/lightning/train/data"
)

func init() {
	register(&command{
		name:    "train",
		summary: "train a MiniMax-01 model on text, from random weights or a checkpoint",
		usage:   "-data PATH [-data PATH…] -tokenizer DIR (-preset NAME | -config FILE | -init DIR) -steps N -seq-len N -o DIR [flags]\n       lightning train -resume DIR [-steps N] [flags]",
		help: `Trains a MiniMax-01 model (lightning and softmax attention, MoE) on a CPU, in fp32 with AdamW.

Data (-data, repeatable): text files (one document each), folders of them (read recursively in sorted
order; hidden and binary files are skipped) and .jsonl files (one document per line, in a "text" field);
files ending in .gz are decompressed (x.jsonl.gz is JSONL).
Training documents come in the order of the files, shuffled within windows of -shuffle documents (a
new order each epoch, drawn from -seed); they are tokenized as they are needed, each ending with the
tokenizer's EOS, and packed back to back into sequences of -seq-len tokens. A document that does not
fit continues in the next sequence, where it starts afresh (positions and attention restart at every
document start, and no loss crosses one). -eval-frac of the documents, chosen by a hash of each one's
name, are held out for the eval loss; or -eval-data names held-out files of its own (then -data is
used whole).

Model: -preset NAME (a random-model shape, below) or -config FILE (any config.json) with fresh weights
drawn from -seed, or -init DIR to start from a checkpoint's weights. The vocabulary follows the
tokenizer (its size rounded up to a multiple of 64).

Steps: each optimizer step reads -batch-tokens tokens (-batch-tokens ÷ -seq-len sequences whose
gradients are accumulated), clips the gradient to a global norm of -clip, and takes an AdamW step at a
learning rate that warms up linearly over -warmup steps to -lr, then follows a cosine to -min-lr at
-steps. Runs are deterministic for a given seed and -threads.

Output, in -o DIR:
  step-00000100/       a checkpoint every -save-every steps and at the end: a Hugging Face model folder
                       (config.json, model.safetensors in fp32, the tokenizer's files) that run, chat,
                       serve, quantize, eval and perplexity load as it is, plus optimizer/ (AdamW's
                       moments) and trainer_state.json (step, tokens, data position, flags, loss curve)
  metrics.jsonl        one JSON object per step: step, tokens, loss, aux_loss, lr, grad_norm, tok_per_s,
                       mfu, elapsed_s, and eval_loss on evaluation steps
  loss.svg             training and eval loss against tokens, redrawn at every checkpoint
Progress goes to stderr: step, loss, eval loss, tokens/s, MFU (training FLOPs ÷ the FMA peak measured
at start), learning rate and ETA.

Ctrl-C or SIGTERM finishes the step in progress, writes a checkpoint and exits (status 130 or 143); a
second one exits at once without saving. -resume DIR (a checkpoint, or a run folder: its last
checkpoint) continues exactly where it stopped, with the run's own flags: the same losses as an
uninterrupted run. With -resume only -steps, -eval-every, -save-every, -keep, -threads, -data and -o
may be given; a larger -steps extends the run (its cosine then follows the new length), and another
-threads count may change the last bits of the losses.

Presets:
` + presetHelp() + `

Examples:
  lightning train -data corpus/ -tokenizer tok/ -preset tiny -steps 2000 -seq-len 512 -o runs/tiny
  lightning train -data a.jsonl -data b.jsonl -tokenizer tok/ -config my-config.json \
      -steps 20000 -seq-len 2048 -batch-tokens 65536 -lr 6e-4 -warmup 500 -o runs/m
  lightning train -resume runs/tiny                    # after Ctrl-C: continue the same run
  lightning run -model runs/tiny/step-00002000 -raw "Once upon a time"`,
		run: runTrain,
	})
}

// trainFlags are the flags of a run, saved in trainer_state.json so that
// -resume continues with the same ones.
type trainFlags struct {
	Data        []string `json:"data"`
	Tokenizer   string   `json:"tokenizer"`
	Preset      string   `json:"preset,omitempty"`
	Config      string   `json:"config,omitempty"`
	Init        string   `json:"init,omitempty"`
	Steps       int      `json:"steps"`
	SeqLen      int      `json:"seq_len"`
	BatchTokens int      `json:"batch_tokens"`
	LR          float64  `json:"lr"`
	MinLR       float64  `json:"min_lr"`
	Warmup      int      `json:"warmup"`
	WeightDecay float64  `json:"weight_decay"`
	Beta1       float64  `json:"beta1"`
	Beta2       float64  `json:"beta2"`
	Clip        float64  `json:"clip"`
	EvalEvery   int      `json:"eval_every"`
	EvalFrac    float64  `json:"eval_frac"`
	EvalData    []string `json:"eval_data,omitempty"`
	EvalTokens  int      `json:"eval_tokens"`
	Shuffle     int      `json:"shuffle"`
	SaveEvery   int      `json:"save_every"`
	Keep        int      `json:"keep"`
	Seed        uint64   `json:"seed"`
	Threads     int      `json:"threads"`
}

// resumableFlags may differ on -resume without changing the losses of the
// steps both runs take (-steps changes the schedule from the first step
// past the old end, and only if it grows).
var resumableFlags = map[string]bool{"steps": true, "eval-every": true, "save-every": true, "keep": true, "threads": true, "data": true, "o": true, "resume": true}

// pathsFlag is a repeatable path flag.
type pathsFlag []string

func (p *pathsFlag) String() string { return strings.Join(*p, " ") }
func (p *pathsFlag) Set(s string) error {
	*p = append(*p, s)
	return nil
}

// trainState is trainer_state.json.
type trainState struct {
	Format   string        `json:"format"`
	Step     int           `json:"step"`
	Tokens   int64         `json:"tokens"`
	Data     data.Position `json:"data_position"`
	AdamT    int           `json:"adamw_step"` // AdamW's step count (bias correction)
	Flags    trainFlags    `json:"flags"`
	Curve    train.Curve   `json:"curve"`
	Elapsed  float64       `json:"elapsed_s"` // training wall time over all sessions
	Saved    string        `json:"saved"`     // time of the save, RFC 3339
	RNG      string        `json:"rng"`
	loadedAt string        // the checkpoint folder it was read from
}

const trainStateFormat = "lightning-trainer-state/1"

// rngNote records, in trainer_state.json, why the seed is the whole random
// state: the only draws are the initial weights and the shuffle, which is a
// function of (seed, epoch, window).
const rngNote = "seed only: the seed draws the initial weights and each epoch's document order (data_position says where in it); the loop draws nothing else (no dropout)"

func runTrain(fs *flag.FlagSet, args []string) error {
	var f trainFlags
	var dataPaths, evalPaths pathsFlag
	fs.Var(&dataPaths, "data", "a text file, a folder of text files, or a .jsonl file with a \"text\" field (repeatable)")
	fs.Var(&evalPaths, "eval-data", "held-out data for the eval loss, read like -data (repeatable); instead of -eval-frac")
	fs.StringVar(&f.Tokenizer, "tokenizer", "", "tokenizer folder (tokenizer.json, tokenizer_config.json naming the EOS); copied into each checkpoint")
	fs.StringVar(&f.Preset, "preset", "", "model shape: a random-model preset (see the list above)")
	fs.StringVar(&f.Config, "config", "", "model shape: a config.json file (its vocab_size is replaced by the tokenizer's)")
	fs.StringVar(&f.Init, "init", "", "start from this checkpoint's weights and config (a new run: step 0, fresh optimizer)")
	resume := fs.String("resume", "", "continue the run saved in this checkpoint folder (or the last checkpoint of this run folder)")
	out := fs.String("o", "", "run folder for checkpoints, metrics.jsonl and loss.svg (new or empty; with -resume: the checkpoint's run folder)")
	fs.IntVar(&f.Steps, "steps", 0, "optimizer steps of the whole run")
	fs.IntVar(&f.SeqLen, "seq-len", 0, "tokens per packed sequence (the model's context in training)")
	fs.IntVar(&f.BatchTokens, "batch-tokens", 0, "tokens per optimizer step, a multiple of -seq-len (default: one sequence)")
	fs.Float64Var(&f.LR, "lr", 3e-4, "peak learning rate")
	fs.Float64Var(&f.MinLR, "min-lr", 0, "learning rate at the end of the cosine decay (default: -lr ÷ 10)")
	fs.IntVar(&f.Warmup, "warmup", 100, "steps of linear learning-rate warmup (when not given: 100, or a tenth of -steps if that is fewer)")
	fs.Float64Var(&f.WeightDecay, "weight-decay", 0.1, "AdamW decoupled weight decay, on matrices only (not norms)")
	fs.Float64Var(&f.Beta1, "beta1", 0.9, "AdamW β1")
	fs.Float64Var(&f.Beta2, "beta2", 0.95, "AdamW β2")
	fs.Float64Var(&f.Clip, "clip", 1, "clip the gradient to this global norm (0: no clipping)")
	fs.IntVar(&f.EvalEvery, "eval-every", 100, "measure the eval loss every this many steps and at the end (0: never)")
	fs.Float64Var(&f.EvalFrac, "eval-frac", 0.05, "fraction of the -data documents held out for the eval loss (0 with -eval-data)")
	fs.IntVar(&f.EvalTokens, "eval-tokens", 16384, "tokens of held-out text each evaluation reads (the same ones every time)")
	fs.IntVar(&f.Shuffle, "shuffle", 1024, "shuffle the training documents within windows of this many (a new order each epoch, from -seed; 0: file order)")
	fs.IntVar(&f.SaveEvery, "save-every", 500, "write a checkpoint every this many steps (and always at the end)")
	fs.IntVar(&f.Keep, "keep", 0, "keep only the last this many checkpoints, deleting older ones after each save (0: keep all)")
	fs.Uint64Var(&f.Seed, "seed", 1, "seed of the initial weights and of the document order")
	fs.IntVar(&f.Threads, "threads", kernels.Threads(), "worker threads (results are bitwise reproducible for a given count; -resume keeps the run's unless given)")
	if err := parseFlags(fs, args, false); err != nil {
		if errors.Is(err, errUsage) && fs.NArg() > 0 {
			return fmt.Errorf("%w (give each data path with its own -data)", err)
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (give each data path with its own -data)", errUsage, fs.Arg(0))
	}
	f.Data, f.EvalData = dataPaths, evalPaths
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["eval-data"] {
		if set["eval-frac"] {
			return fmt.Errorf("%w: give -eval-data (held-out files) or -eval-frac (a split of -data), not both", errUsage)
		}
		f.EvalFrac = 0
	}
	if !set["min-lr"] {
		f.MinLR = f.LR / 10
	}
	if !set["warmup"] {
		f.Warmup = min(f.Warmup, f.Steps/10)
	}

	var st *trainState
	if *resume != "" {
		var err error
		if st, err = loadTrainState(*resume); err != nil {
			return err
		}
		for name := range set {
			if !resumableFlags[name] {
				return fmt.Errorf("%w: -%s cannot change when resuming (the run keeps its own flags, see %s); to start a new run from these weights use -init", errUsage, name, filepath.Join(st.loadedAt, "trainer_state.json"))
			}
		}
		saved := st.Flags
		if set["steps"] {
			if f.Steps < st.Step {
				return fmt.Errorf("%w: -steps %d is below the checkpoint's step %d", errUsage, f.Steps, st.Step)
			}
			saved.Steps = f.Steps
		}
		if set["eval-every"] {
			saved.EvalEvery = f.EvalEvery
		}
		if set["save-every"] {
			saved.SaveEvery = f.SaveEvery
		}
		if set["keep"] {
			saved.Keep = f.Keep
		}
		if set["threads"] {
			saved.Threads = f.Threads
		}
		if set["data"] {
			saved.Data = f.Data
		}
		f = saved
		if *out == "" {
			*out = filepath.Dir(st.loadedAt)
		}
	}
	if err := f.check(st != nil, *out); err != nil {
		return err
	}
	return trainRun(fs.Output(), f, st, *out)
}

// check reports bad flags before anything is loaded.
func (f *trainFlags) check(resuming bool, out string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
	}
	shapes := 0
	for _, s := range []string{f.Preset, f.Config, f.Init} {
		if s != "" {
			shapes++
		}
	}
	switch {
	case len(f.Data) == 0:
		return bad("-data PATH is required (text files, folders of them, or .jsonl files with a \"text\" field)")
	case f.Tokenizer == "" && f.Init == "":
		return bad("-tokenizer DIR is required (a folder with tokenizer.json; 'lightning train-tokenizer' makes one)")
	case shapes != 1:
		return bad("choose the model with exactly one of -preset NAME, -config FILE or -init DIR")
	case out == "":
		return bad("-o DIR is required (the run folder for checkpoints and logs)")
	case f.Steps < 1:
		return bad("-steps N is required (optimizer steps, at least 1)")
	case f.SeqLen < 2:
		return bad("-seq-len %d: need at least 2 tokens (one prediction per sequence)", f.SeqLen)
	case f.BatchTokens < 0 || f.BatchTokens%f.SeqLen != 0:
		return bad("-batch-tokens %d must be a positive multiple of -seq-len %d", f.BatchTokens, f.SeqLen)
	case !(f.LR > 0) || f.MinLR < 0 || f.MinLR > f.LR:
		return bad("learning rates: need -lr > 0 and 0 ≤ -min-lr ≤ -lr (got %v and %v)", f.LR, f.MinLR)
	case f.Warmup < 0:
		return bad("-warmup %d is negative", f.Warmup)
	case f.WeightDecay < 0 || !(f.Beta1 >= 0 && f.Beta1 < 1) || !(f.Beta2 >= 0 && f.Beta2 < 1):
		return bad("AdamW: need -weight-decay ≥ 0 and 0 ≤ β < 1 (got %v, %v, %v)", f.WeightDecay, f.Beta1, f.Beta2)
	case f.Clip < 0:
		return bad("-clip %v is negative", f.Clip)
	case f.EvalEvery < 0 || f.SaveEvery < 0 || f.Keep < 0 || f.Shuffle < 0:
		return bad("-eval-every, -save-every, -keep and -shuffle must be ≥ 0")
	case !(f.EvalFrac >= 0 && f.EvalFrac < 1):
		return bad("-eval-frac %v: need 0 ≤ fraction < 1", f.EvalFrac)
	case f.EvalEvery > 0 && (f.EvalFrac > 0 || len(f.EvalData) > 0) && f.EvalTokens < 2:
		return bad("-eval-tokens %d: need at least 2", f.EvalTokens)
	case f.Threads < 1:
		return bad("-threads %d: need at least 1", f.Threads)
	}
	if f.BatchTokens == 0 {
		f.BatchTokens = f.SeqLen
	}
	if f.Preset != "" {
		if _, err := minimax01.PresetConfig(f.Preset); err != nil {
			return bad("-preset %q: %v", f.Preset, err)
		}
	}
	for i, p := range f.Data {
		if _, err := os.Stat(p); err != nil {
			return bad("-data: %v", err)
		}
		f.Data[i] = absPath(p) // saved in trainer_state.json: -resume works from any folder
	}
	for i, p := range f.EvalData {
		if _, err := os.Stat(p); err != nil {
			return bad("-eval-data: %v", err)
		}
		f.EvalData[i] = absPath(p)
	}
	f.Tokenizer, f.Config, f.Init = absPath(f.Tokenizer), absPath(f.Config), absPath(f.Init)
	if !resuming {
		if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
			return bad("-o %s is not empty: choose a new folder, or continue its run with -resume %s", out, out)
		}
	}
	return nil
}

// absPath makes p absolute, leaving "" and unresolvable paths as they are.
func absPath(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// trainSession is everything a run holds while it trains.
type trainSession struct {
	f        trainFlags
	out      string
	cfg      *minimax01.Config
	params   []float32
	model    *train.Model
	opt      *train.AdamW
	stream   *data.Stream
	trainer  *train.Trainer
	curve    train.Curve
	tokDir   string            // where the tokenizer was read from
	tokFiles map[string][]byte // its files by name, written into each checkpoint
	elapsed  float64
	started  time.Time
}

// trainStepHook, when set (by tests), is called after each logged step.
var trainStepHook func(train.Record)

func trainRun(stderr io.Writer, f trainFlags, st *trainState, out string) error {
	defer kernels.SetThreads(kernels.Threads())
	kernels.SetThreads(f.Threads)
	s := &trainSession{f: f, out: out}

	// The tokenizer: -tokenizer, or the files inside the checkpoint.
	s.tokDir = f.Tokenizer
	if st != nil {
		s.tokDir = st.loadedAt
	} else if s.tokDir == "" {
		s.tokDir = f.Init
	}
	tok, err := tokenizer.Load(s.tokDir)
	if err != nil {
		return fmt.Errorf("-tokenizer: %w", err)
	}
	nTok, files, err := tokenizerVocab(s.tokDir)
	if err != nil {
		return err
	}
	// Read once: the folder may be a checkpoint that -keep deletes later.
	s.tokFiles = map[string][]byte{}
	for _, p := range files {
		if s.tokFiles[filepath.Base(p)], err = os.ReadFile(p); err != nil {
			return err
		}
	}
	if _, ok := tok.EOS(); !ok {
		fmt.Fprintf(stderr, "warning: %s names no EOS token (tokenizer_config.json eos_token): documents are packed without an end marker\n", s.tokDir)
	}

	// The data, before the model so that bad data is reported at once: the
	// training stream and the fixed held-out sequences.
	s.stream, err = data.NewStream(tok, data.Options{Paths: f.Data, SeqLen: f.SeqLen, EvalFrac: f.EvalFrac, Split: data.TrainSplit,
		Wrap: true, ShuffleWindow: f.Shuffle, Seed: f.Seed})
	if err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	defer s.stream.Close()
	var eval []train.Batch
	if f.EvalEvery > 0 && (f.EvalFrac > 0 || len(f.EvalData) > 0) {
		what, opt := "-data (held-out split)", data.Options{Paths: f.Data, SeqLen: f.SeqLen, EvalFrac: f.EvalFrac, Split: data.EvalSplit}
		if len(f.EvalData) > 0 {
			what, opt = "-eval-data", data.Options{Paths: f.EvalData, SeqLen: f.SeqLen}
		}
		seqs, err := data.ReadSequences(tok, opt, f.EvalTokens)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		for _, q := range seqs {
			eval = append(eval, train.Batch{Tokens: q.Tokens, DocStarts: q.DocStarts})
		}
	}

	// The model's shape and weights.
	var w *minimax01.Weights
	switch {
	case st != nil, f.Init != "":
		dir, what := f.Init, "-init"
		if st != nil {
			dir, what = st.loadedAt, "-resume"
		}
		c, err := minimax01.LoadConfig(dir)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := checkTrainMemory(c); err != nil {
			return err
		}
		if s.cfg, w, s.params, err = minimax01.LoadF32(dir); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	default:
		if f.Preset != "" {
			s.cfg, err = minimax01.PresetConfig(f.Preset)
		} else {
			s.cfg, err = minimax01.LoadConfig(f.Config)
		}
		if err != nil {
			return err
		}
		s.cfg.Vocab = (nTok + 63) / 64 * 64 // as random-model and the real 200,064
		if err := checkTrainMemory(s.cfg); err != nil {
			return err
		}
		w, s.params = minimax01.NewF32Weights(s.cfg)
		minimax01.InitWeights(s.cfg, s.params, f.Seed)
	}
	if s.cfg.Vocab < nTok {
		return fmt.Errorf("the model's vocabulary (%d) is smaller than the tokenizer's %d ids (%s)", s.cfg.Vocab, nTok, s.tokDir)
	}

	s.model = train.NewModel(s.cfg, w, s.params, f.SeqLen)
	s.opt = train.NewAdamW(s.cfg)
	s.opt.Beta1, s.opt.Beta2, s.opt.WeightDecay = f.Beta1, f.Beta2, f.WeightDecay
	s.trainer = &train.Trainer{Model: s.model, Params: s.model.Params, Grads: s.model.Grads, Opt: s.opt, Data: s.stream,
		Schedule: train.Schedule{Peak: f.LR, Min: f.MinLR, Warmup: min(f.Warmup, f.Steps), Steps: f.Steps},
		Accum:    f.BatchTokens / f.SeqLen, Clip: f.Clip}
	if st != nil {
		if err := s.restore(st); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := removePartialSaves(out); err != nil {
		return err
	}
	metrics, err := openMetrics(filepath.Join(out, "metrics.jsonl"), s.trainer.Step)
	if err != nil {
		return err
	}
	defer metrics.Close()

	total, active := s.cfg.Params()
	fmt.Fprintf(stderr, "model: %s parameters (%s active per token), vocab %d; %d × %d-token sequences per step; %d held-out sequences\n",
		human(float64(total), ""), human(float64(active), ""), s.cfg.Vocab, s.trainer.Accum, f.SeqLen, len(eval))
	fmt.Fprintf(stderr, "measuring the FMA peak on %d threads for MFU...\n", f.Threads)
	peak := kernels.FMAPeak(300 * time.Millisecond)
	if s.trainer.Step > 0 {
		fmt.Fprintf(stderr, "resuming at step %d of %d (%s tokens seen)\n", s.trainer.Step, f.Steps, human(float64(s.trainer.Tokens), ""))
	}

	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var caught os.Signal
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case caught = <-sigs:
		case <-done:
			return
		}
		fmt.Fprintf(stderr, "\n%v: finishing the step in progress, then saving a checkpoint (again to quit without saving)\n", caught)
		close(stop)
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "%v again: quitting without saving\n", sig)
			os.Exit(exitStatus(sig))
		case <-done:
		}
	}()

	if s.trainer.Step == 0 && len(eval) > 0 && f.EvalEvery > 0 {
		e := s.trainer.EvalLoss(eval) // the starting point of the eval curve
		s.curve.AddEval(0, 0, e)
		fmt.Fprintf(stderr, "step 0  eval %.4f (before training)\n", e)
	}
	pr := newTrainProgress(stderr, f.Steps, s.trainer.Step)
	s.started = time.Now()
	err = s.trainer.Run(train.RunOptions{
		Steps: f.Steps, EvalEvery: f.EvalEvery, Eval: eval, SaveEvery: f.SaveEvery,
		FLOPsPerToken: trainFlops(s.cfg, f.SeqLen) / float64(f.SeqLen), // the count of bench -train
		PeakFLOPS:     peak, Stop: stop,
		Log: func(r train.Record) {
			s.curve.Add(r)
			metrics.write(r)
			pr.update(r, s.stream.Position().Epoch)
			if trainStepHook != nil {
				trainStepHook(r)
			}
		},
		Save: func() error {
			dir, err := s.save()
			if err == nil {
				pr.note(fmt.Sprintf("saved %s", dir))
			}
			return err
		},
	})
	pr.finish()
	if errors.Is(err, train.ErrStopped) {
		return exitError{code: exitStatus(caught), msg: fmt.Sprintf("stopped by %v after step %d; continue with: lightning train -resume %s", caught, s.trainer.Step, out)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "done: %d steps, %s tokens; last checkpoint %s\n", s.trainer.Step, human(float64(s.trainer.Tokens), ""), checkpointDir(out, s.trainer.Step))
	return nil
}

// checkTrainMemory refuses a model whose fp32 weights, gradients and AdamW
// moments (16 bytes a parameter, as bench -train counts) exceed the memory
// available, before any of it is allocated.
func checkTrainMemory(c *minimax01.Config) error {
	total, _ := c.Params()
	if need, avail := 16*total, memAvailable(); avail > 0 && need > avail {
		return fmt.Errorf("the model has %s parameters: its fp32 weights, gradients and AdamW moments need %s, and %s of memory is available (choose a smaller -preset or -config)",
			human(float64(total), ""), human(float64(need), "B"), human(float64(avail), "B"))
	}
	return nil
}

// exitStatus is the shell's status for death by sig: 128 + its number.
func exitStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// checkpointDir is the folder of the checkpoint of step.
func checkpointDir(out string, step int) string {
	return filepath.Join(out, fmt.Sprintf("step-%08d", step))
}

// save writes the checkpoint of the current step into a temporary folder
// and renames it into place, so a checkpoint folder is complete or absent;
// then redraws loss.svg.
func (s *trainSession) save() (string, error) {
	t := s.trainer
	dir := checkpointDir(s.out, t.Step)
	tmp := dir + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := minimax01.SaveCheckpoint(tmp, s.cfg, s.params); err != nil {
		return "", err
	}
	for name, b := range s.tokFiles {
		if err := writeFileSync(filepath.Join(tmp, name), b); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Join(tmp, "optimizer"), 0o755); err != nil {
		return "", err
	}
	if err := minimax01.SaveSlab(filepath.Join(tmp, "optimizer", "adamw_m.safetensors"), s.cfg, s.opt.M); err != nil {
		return "", err
	}
	if err := minimax01.SaveSlab(filepath.Join(tmp, "optimizer", "adamw_v.safetensors"), s.cfg, s.opt.V); err != nil {
		return "", err
	}
	st := trainState{Format: trainStateFormat, Step: t.Step, Tokens: t.Tokens, Data: s.stream.Position(), AdamT: s.opt.T,
		Flags: s.f, Curve: s.curve, Elapsed: s.elapsed + time.Since(s.started).Seconds(),
		Saved: time.Now().UTC().Format(time.RFC3339), RNG: rngNote}
	b, err := json.MarshalIndent(&st, "", "  ")
	if err != nil {
		return "", err
	}
	if err := writeFileSync(filepath.Join(tmp, "trainer_state.json"), append(b, '\n')); err != nil {
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil { // a checkpoint of this step saved before (a resumed run's first)
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	if err := syncDir(s.out); err != nil {
		return "", err
	}
	if err := pruneCheckpoints(s.out, s.f.Keep); err != nil {
		return "", err
	}
	return dir, s.drawCurve()
}

// checkpointDirs lists the complete checkpoints of a run folder, oldest
// first (zero-padded step numbers sort in order).
func checkpointDirs(out string) ([]string, error) {
	ents, err := os.ReadDir(out)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "step-") && !strings.HasSuffix(e.Name(), ".partial") {
			if _, err := os.Stat(filepath.Join(out, e.Name(), "trainer_state.json")); err == nil {
				dirs = append(dirs, filepath.Join(out, e.Name()))
			}
		}
	}
	sort.Strings(dirs)
	return dirs, nil
}

// removePartialSaves deletes what a save cut short by a crash leaves in a
// run folder: step-N.partial and the hidden .step-N… folders that
// minimax01.SaveCheckpoint writes before renaming.
func removePartialSaves(out string) error {
	ents, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".step-") || (strings.HasPrefix(n, "step-") && strings.HasSuffix(n, ".partial")) {
			if err := os.RemoveAll(filepath.Join(out, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// pruneCheckpoints deletes all but the last keep checkpoints (none when
// keep is 0).
func pruneCheckpoints(out string, keep int) error {
	if keep == 0 {
		return nil
	}
	dirs, err := checkpointDirs(out)
	if err != nil {
		return err
	}
	for _, d := range dirs[:max(len(dirs)-keep, 0)] {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}

func (s *trainSession) drawCurve() error {
	path := filepath.Join(s.out, "loss.svg")
	tmp := path + ".partial"
	fh, err := os.Create(tmp)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("lightning train: %s, step %d of %d", filepath.Base(s.out), s.trainer.Step, s.f.Steps)
	if err := s.curve.WriteSVG(fh, title); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// restore puts the session where checkpoint st left its run.
func (s *trainSession) restore(st *trainState) error {
	if err := minimax01.LoadSlab(filepath.Join(st.loadedAt, "optimizer", "adamw_m.safetensors"), s.cfg, s.opt.M); err != nil {
		return fmt.Errorf("-resume: %w", err)
	}
	if err := minimax01.LoadSlab(filepath.Join(st.loadedAt, "optimizer", "adamw_v.safetensors"), s.cfg, s.opt.V); err != nil {
		return fmt.Errorf("-resume: %w", err)
	}
	s.opt.T = st.AdamT
	if err := s.stream.Seek(st.Data); err != nil {
		return fmt.Errorf("-resume: %w", err)
	}
	s.trainer.Step, s.trainer.Tokens = st.Step, st.Tokens
	s.curve, s.elapsed = st.Curve, st.Elapsed
	return nil
}

// loadTrainState reads trainer_state.json from a checkpoint folder, or from
// the last checkpoint of a run folder.
func loadTrainState(path string) (*trainState, error) {
	dir := path
	if _, err := os.Stat(filepath.Join(dir, "trainer_state.json")); err != nil {
		dirs, err := checkpointDirs(path)
		if err != nil {
			return nil, fmt.Errorf("-resume: %w", err)
		}
		if len(dirs) == 0 {
			return nil, fmt.Errorf("-resume %s: no trainer_state.json there nor in a step-* checkpoint inside it", path)
		}
		dir = dirs[len(dirs)-1]
	}
	b, err := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
	if err != nil {
		return nil, fmt.Errorf("-resume: %w", err)
	}
	var st trainState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("-resume: %s/trainer_state.json: %w", dir, err)
	}
	if st.Format != trainStateFormat {
		return nil, fmt.Errorf("-resume: %s/trainer_state.json has format %q, want %q", dir, st.Format, trainStateFormat)
	}
	st.loadedAt = dir
	return &st, nil
}

// metricsLog appends Records to metrics.jsonl.
type metricsLog struct {
	f *os.File
	w *bufio.Writer
}

// openMetrics opens metrics.jsonl for appending after dropping any records
// past step from (those of a session that stopped without saving them), so
// the log of a resumed run reads as that of an uninterrupted one.
func openMetrics(path string, from int) (*metricsLog, error) {
	if b, err := os.ReadFile(path); err == nil {
		var keep []byte
		for _, line := range strings.SplitAfter(string(b), "\n") {
			var r struct {
				Step *int `json:"step"`
			}
			if json.Unmarshal([]byte(line), &r) == nil && r.Step != nil && *r.Step <= from {
				keep = append(keep, line...)
			}
		}
		if err := writeFileSync(path+".partial", keep); err != nil {
			return nil, err
		}
		if err := os.Rename(path+".partial", path); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &metricsLog{f: f, w: bufio.NewWriter(f)}, nil
}

func (m *metricsLog) write(r train.Record) {
	b, _ := json.Marshal(finiteRecord(r))
	m.w.Write(append(b, '\n'))
	m.w.Flush() // one line per step: a crash loses at most the step in progress
}

func (m *metricsLog) Close() error {
	m.w.Flush()
	return m.f.Close()
}

// finiteRecord replaces NaN and infinities, which JSON cannot hold, by 0.
func finiteRecord(r train.Record) train.Record {
	fix := func(v *float64) {
		if math.IsNaN(*v) || math.IsInf(*v, 0) {
			*v = 0
		}
	}
	fix(&r.Loss)
	fix(&r.Aux)
	fix(&r.GradNorm)
	if r.EvalLoss != nil {
		e := *r.EvalLoss
		fix(&e)
		r.EvalLoss = &e
	}
	return r
}

// trainProgress prints the progress line: redrawn in place on a terminal,
// a line at a time otherwise (at evaluations, saves, the first and last
// steps and every 30 seconds).
type trainProgress struct {
	w        io.Writer
	tty      bool
	steps    int
	first    int
	start    time.Time
	lastLine time.Time
	lastEval string
	drawn    bool // a line without its newline is on the terminal
}

func newTrainProgress(w io.Writer, steps, first int) *trainProgress {
	f, ok := w.(*os.File)
	return &trainProgress{w: w, tty: ok && isTerminal(f), steps: steps, first: first, start: time.Now()}
}

func (p *trainProgress) line(r train.Record, epoch int) string {
	eval := p.lastEval
	if r.EvalLoss != nil {
		eval = fmt.Sprintf("%.4f", *r.EvalLoss)
		p.lastEval = eval
	}
	if eval == "" {
		eval = "-"
	}
	eta := "-"
	if done := r.Step - p.first; done > 0 {
		left := time.Duration(float64(time.Since(p.start)) / float64(done) * float64(p.steps-r.Step))
		eta = left.Round(time.Second).String()
	}
	return fmt.Sprintf("step %d/%d  loss %.4f  eval %s  lr %.3g  %s tok/s  MFU %.1f%%  epoch %d  ETA %s",
		r.Step, p.steps, r.Loss, eval, r.LR, strings.TrimSpace(human(r.TokPerS, "")), 100*r.MFU, epoch+1, eta)
}

// update shows step r, taken in epoch epoch (counted from 0) of the data.
func (p *trainProgress) update(r train.Record, epoch int) {
	s := p.line(r, epoch)
	now := time.Now()
	important := r.EvalLoss != nil || r.Step == p.first+1 || r.Step == p.steps
	if p.tty {
		if important {
			fmt.Fprintf(p.w, "\r\033[K%s\n", s)
			p.drawn = false
		} else if now.Sub(p.lastLine) >= 200*time.Millisecond {
			fmt.Fprintf(p.w, "\r\033[K%s", s)
			p.drawn, p.lastLine = true, now
		}
		return
	}
	if important || now.Sub(p.lastLine) >= 30*time.Second {
		fmt.Fprintln(p.w, s)
		p.lastLine = now
	}
}

// note prints a message on its own line.
func (p *trainProgress) note(msg string) {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
	fmt.Fprintln(p.w, msg)
}

func (p *trainProgress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// writeFileSync writes a file and syncs it to disk.
func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a rename inside dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
