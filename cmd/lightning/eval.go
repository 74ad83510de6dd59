package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/builtin"
	"github.com/lightninglm/lightning/model/minimax01"
)

func init() {
	register(&command{
		name:    "eval",
		summary: "compare a (quantized) model's logits with a reference: KL divergence, top-1 agreement, speed",
		usage:   "[-model A] [-quant FORMAT,...] [-ref B] [-prompts FILE | -text FILE] [-speed N]",
		help: `Runs every prompt through model A and the reference B (default: A as stored) and reports, over all
positions: the mean, median and largest KL divergence KL(B‖A) of the next-token distributions, the top-1
(argmax) agreement, and the largest absolute logit difference.

-quant q8,q4g64 evaluates A quantized at load in each listed format (same defaults as 'lightning quantize'),
so 'eval -model DIR -quant q8' measures what int8 costs against the float model without writing a copy.

Prompts come from -prompts FILE, either a golden manifest.json (its "prompts" object) or token ids, one prompt
per line (comma- or space-separated); or from -text FILE, tokenized with B's tokenizer and cut into windows
of -ctx tokens. Without either, A's folder's manifest.json is used if it has one.

-speed N also times N greedy decode steps of every model after a short prompt, in interleaved rounds
(CPU time is shared: read the load average printed with it), and reports tok/s, the ratio to the reference,
the active weight bytes per token and the roofline ratio: bytes/token × tok/s ÷ measured read bandwidth.

Without -model, A is the built-in model mini, embedded in this binary.`,
		run: runEval,
	})
}

// variant is one model under evaluation.
type variant struct {
	name string
	m    *minimax01.Model
}

// evalStats accumulates the comparison of one variant with the reference.
type evalStats struct {
	positions int
	kl        []float64 // per position
	klSum     float64
	klMax     float64
	agree     int
	maxAbs    float64
}

func runEval(fs *flag.FlagSet, args []string) error {
	dir := fs.String("model", "", "model folder A (default: the built-in model)")
	quantList := fs.String("quant", "", "comma-separated formats to quantize A to at load (each is evaluated)")
	ref := fs.String("ref", "", "reference model folder B (default: A as stored)")
	prompts := fs.String("prompts", "", "golden manifest.json or token-id file (one prompt per line)")
	text := fs.String("text", "", "text file, tokenized with the reference's tokenizer")
	ctx := fs.Int("ctx", 512, "window length in tokens for -text")
	maxPrompts := fs.Int("max-prompts", 0, "use at most this many prompts (0 = all)")
	speed := fs.Int("speed", 0, "also time this many decode steps per model (0 = off)")
	bwMB := fs.Int("bw-mb", 1024, "buffer size in MiB of the read-bandwidth probe (-speed)")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	stderr := fs.Output()
	if *ref == "" {
		*ref = *dir
	}
	// Check the formats and read the prompts before the slow part.
	formats := strings.Split(*quantList, ",")
	if *quantList == "" {
		formats = []string{""}
	}
	var specs []*minimax01.QuantSpec
	for _, f := range formats {
		spec, err := quantOption(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		specs = append(specs, spec)
	}
	ps, err := readPrompts(*prompts, *text, *dir, *ref, *ctx)
	if err != nil {
		return err
	}
	if *maxPrompts > 0 && len(ps) > *maxPrompts {
		ps = ps[:*maxPrompts]
	}
	refModel, err := loadModel(*ref, minimax01.Options{}, stderr)
	if err != nil {
		return err
	}
	defer refModel.Close()
	var vs []variant
	for _, spec := range specs {
		start := time.Now()
		m, err := loadModel(*dir, minimax01.Options{Quant: spec}, stderr)
		if err != nil {
			return err
		}
		defer m.Close()
		name := filepath.Base(*dir)
		if *dir == "" {
			name = builtin.Name
		}
		if spec != nil {
			name = spec.Format.String()
			fmt.Fprintf(stderr, "quantized %s to %s at load in %v\n", modelLabel(*dir), spec, time.Since(start).Round(time.Millisecond))
		}
		if m.Config.Vocab != refModel.Config.Vocab {
			return fmt.Errorf("%s has vocabulary %d, the reference %d", modelLabel(*dir), m.Config.Vocab, refModel.Config.Vocab)
		}
		vs = append(vs, variant{name, m})
	}
	V := refModel.Config.Vocab
	for i, p := range ps {
		if err := checkIDs(p, V); err != nil {
			return fmt.Errorf("prompt %d: %w", i, err)
		}
	}
	stats := make([]evalStats, len(vs))
	for _, p := range ps {
		want := allLogits(refModel, p)
		for i, v := range vs {
			stats[i].add(allLogits(v.m, p), want, V)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\tpositions\tKL mean\tKL median\tKL max\ttop-1 agree\tmax |Δlogit|\tweights\n")
	for i, v := range vs {
		s := stats[i]
		slices.Sort(s.kl)
		var med float64
		if len(s.kl) > 0 {
			med = s.kl[len(s.kl)/2]
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3g\t%.3g\t%.3g\t%.2f%%\t%.3g\t%s\n", v.name, s.positions, s.klSum/float64(max(s.positions, 1)),
			med, s.klMax, 100*float64(s.agree)/float64(max(s.positions, 1)), s.maxAbs, human(float64(v.m.Info().WeightBytes), "B"))
	}
	tw.Flush()
	if *speed > 0 {
		return evalSpeed(append([]variant{{"reference", refModel}}, vs...), *speed, *bwMB, stderr)
	}
	return nil
}

// add compares one prompt's logits [T, V] with the reference's.
func (s *evalStats) add(got, want []float32, V int) {
	for r := 0; r < len(want)/V; r++ {
		g, w := got[r*V:(r+1)*V], want[r*V:(r+1)*V]
		kl := klDiv(w, g)
		s.kl = append(s.kl, kl)
		s.klSum += kl
		s.klMax = max(s.klMax, kl)
		if argmax(g) == argmax(w) {
			s.agree++
		}
		for i := range w {
			s.maxAbs = max(s.maxAbs, math.Abs(float64(g[i])-float64(w[i])))
		}
		s.positions++
	}
}

// klDiv returns KL(softmax(p) ‖ softmax(q)) in nats, in float64.
func klDiv(p, q []float32) float64 {
	lp, lq := logSoftmax(p), logSoftmax(q)
	var kl float64
	for i := range lp {
		kl += math.Exp(lp[i]) * (lp[i] - lq[i])
	}
	return max(kl, 0)
}

func logSoftmax(x []float32) []float64 {
	m := float64(x[argmax(x)])
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	ls := m + math.Log(s)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) - ls
	}
	return out
}

// argmax returns the index of the largest value (the lowest on ties).
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// allLogits runs ids from a fresh state and returns the logits at every
// position, [len(ids), vocab].
func allLogits(m *minimax01.Model, ids []int32) []float32 {
	out := make([]float32, len(ids)*m.Config.Vocab)
	m.Forward([]model.Seq{{State: m.NewState(), Tokens: ids, Logits: model.LogitsAll}}, out)
	return out
}

// readPrompts returns the prompts of -prompts or -text, or of A's (or B's)
// golden manifest.json when neither is given.
func readPrompts(prompts, text, dirA, dirB string, ctx int) ([][]int32, error) {
	if prompts != "" && text != "" {
		return nil, fmt.Errorf("%w: give -prompts or -text, not both", errUsage)
	}
	if text != "" {
		if ctx < 2 {
			return nil, fmt.Errorf("%w: -ctx must be at least 2", errUsage)
		}
		ids, err := textIDs(text, dirB)
		if err != nil {
			return nil, err
		}
		var out [][]int32
		for i := 0; i+1 < len(ids); i += ctx {
			out = append(out, ids[i:min(i+ctx, len(ids))])
		}
		return out, nil
	}
	if prompts == "" {
		for _, d := range []string{dirA, dirB} {
			if p := filepath.Join(d, "manifest.json"); d != "" && fileExists(p) {
				prompts = p
				break
			}
		}
		if prompts == "" {
			return nil, fmt.Errorf("%w: give -prompts FILE or -text FILE (the model folder has no manifest.json)", errUsage)
		}
	}
	return readIDFile(prompts)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// readIDFile reads a golden manifest's prompts (sorted by name) or a file of
// token ids, one prompt per line.
func readIDFile(path string) ([][]int32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		var m struct {
			Prompts map[string][]int32 `json:"prompts"`
		}
		if err := json.Unmarshal(b, &m); err != nil || len(m.Prompts) == 0 {
			return nil, fmt.Errorf("%s: not a manifest with a \"prompts\" object (%v)", path, err)
		}
		names := make([]string, 0, len(m.Prompts))
		for n := range m.Prompts {
			names = append(names, n)
		}
		sort.Strings(names)
		var out [][]int32
		for _, n := range names {
			if len(m.Prompts[n]) > 0 {
				out = append(out, m.Prompts[n])
			}
		}
		return out, nil
	}
	var out [][]int32
	for i, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		ids, err := parseIDs(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		out = append(out, ids)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no token ids", path)
	}
	return out, nil
}

// textIDs tokenizes a text file with the tokenizer of model folder (or
// GGUF file) dir.
func textIDs(path, dir string) ([]int32, error) {
	tok, err := loadTokenizer(dir)
	if err != nil {
		return nil, fmt.Errorf("-text needs the model's tokenizer: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ids := tok.Encode(string(b), true)
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("%s: fewer than 2 tokens", path)
	}
	return out, nil
}

// evalSpeed times n decode steps of every model in interleaved rounds,
// each round starting with a read-bandwidth probe, and prints tok/s
// (median and best of the rounds), the ratio to the first model's, and the
// roofline ratio: active bytes per token × tok/s ÷ read bandwidth, taken
// per round against that round's probe (CPU time is shared, so a round's
// rate and its probe see the same load), with the median and best of the
// rounds' ratios.
func evalSpeed(vs []variant, n, bwMB int, stderr io.Writer) error {
	steps := roundSteps(n, 7)
	buf := make([]byte, bwMB<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	fmt.Fprintf(stderr, "decode speed: %d steps per model in %d rounds of %d–%d, read-bandwidth probe of %d MiB per round on %d threads; load average %.2f\n",
		n, len(steps), slices.Min(steps), slices.Max(steps), bwMB, kernels.Threads(), loadAvg())
	type run struct {
		st     model.State
		logits []float32
		rates  []float64 // tok/s per round
		next   int32
	}
	runs := make([]run, len(vs))
	prompt := []int32{1, 2, 3, 4, 5, 6, 7, 8}
	for i, v := range vs {
		V := v.m.Config.Vocab
		runs[i] = run{st: v.m.NewState(), logits: make([]float32, V)}
		v.m.Forward([]model.Seq{{State: runs[i].st, Tokens: prompt, Logits: model.LogitsLast}}, runs[i].logits)
		for range 2 { // warm up: page in the weights, fill the pools
			v.m.Forward([]model.Seq{{State: runs[i].st, Tokens: []int32{9}, Logits: model.LogitsLast}}, runs[i].logits)
		}
	}
	var bws []float64
	for _, per := range steps {
		bws = append(bws, kernels.ReadBandwidth(buf, 2))
		for i, v := range vs {
			r := &runs[i]
			start := time.Now()
			for range per {
				// Greedy from the model's own logits, as generate does; the
				// token picked does not change the work of a step.
				v.m.Forward([]model.Seq{{State: r.st, Tokens: []int32{r.next}, Logits: model.LogitsLast}}, r.logits)
				r.next = int32(argmax(r.logits))
			}
			r.rates = append(r.rates, float64(per)/time.Since(start).Seconds())
		}
	}
	fmt.Fprintf(stderr, "load average after: %.2f\n", loadAvg())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\tdecode tok/s median\tbest\t× ref median\t× ref best\tactive MB/token\troofline median\tbest\n")
	var ref speedSummary
	for i, v := range vs {
		ab := float64(v.m.Weights.Bytes(v.m.Config).PerToken)
		s := summarizeSpeed(runs[i].rates, bws, ab)
		if i == 0 {
			ref = s
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.2f\t%.2f\n", v.name, s.med, s.best, s.med/ref.med, s.best/ref.best, ab/1e6, s.rooflineMed, s.rooflineBest)
	}
	bw := summarizeSpeed(bws, bws, 0)
	fmt.Fprintf(tw, "read bandwidth GB/s\t%.2f\t%.2f\t\t\t\t\t\n", bw.med/1e9, bw.best/1e9)
	return tw.Flush()
}

// roundSteps splits n steps over at most rounds rounds, as evenly as
// possible, every round getting at least one.
func roundSteps(n, rounds int) []int {
	rounds = min(rounds, n)
	steps := make([]int, rounds)
	for i := range steps {
		steps[i] = n*(i+1)/rounds - n*i/rounds
	}
	return steps
}

// speedSummary is one model's decode speed over the rounds.
type speedSummary struct {
	med, best                 float64 // tok/s
	rooflineMed, rooflineBest float64 // active bytes × tok/s ÷ the same round's bandwidth
}

// summarizeSpeed takes each round's tok/s and read bandwidth (bytes/s) and
// the active bytes per token.
func summarizeSpeed(rates, bws []float64, activeBytes float64) speedSummary {
	roof := make([]float64, len(rates))
	for i, r := range rates {
		roof[i] = activeBytes * r / bws[i]
	}
	rs := slices.Sorted(slices.Values(rates))
	slices.Sort(roof)
	return speedSummary{med: rs[len(rs)/2], best: rs[len(rs)-1], rooflineMed: roof[len(roof)/2], rooflineBest: roof[len(roof)-1]}
}
