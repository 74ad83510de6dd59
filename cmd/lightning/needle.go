package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/lightninglm/lightning/engine"
	"github.com/lightninglm/lightning/evalset/passkey"
	"github.com/lightninglm/lightning/kernels"
	"github.com/lightninglm/lightning/sample"
)

func init() {
	register(&command{
		name:    "needle",
		summary: "passkey retrieval (needle in a haystack): accuracy by context length and needle depth, with an SVG heat map",
		usage:   "[-model DIR] [-lengths 512,1024,...] [-depths 0,0.1,...,1] [-per-cell N] [-seed S] [-o heatmap.svg] [-json results.json]",
		help: `The MiniMax-01 report's passkey retrieval test. Each prompt is raw text (no chat template): an
instruction, filler sentences ("The grass is green. The sky is blue. …") with the sentence "The pass key is
KEY. Remember it. KEY is the pass key." hidden among them, and the question "What is the pass key? The pass key
is". The model continues greedily for -n tokens; a prompt counts as a hit when the first number in the
continuation is KEY, digit for digit.

-lengths are context lengths in tokens of the model's tokenizer: every prompt gets the largest number of
filler groups that keeps it within the length (and within the model's context minus the -n answer tokens),
and the actual prompt token counts are reported. -depths place the needle: 0 right after the instruction, 1
right before the question (after round(depth × groups) filler groups). Every (length, depth) cell has
-per-cell prompts with five-digit keys drawn from -seed, so a run is reproducible.

Prints a table of accuracy (%) with lengths as rows and depths as columns, and each length's accuracy over
all depths; progress with ETA goes to stderr. -o writes the heat map as SVG, -json every prompt's key,
length, continuation and score. Prompts run -parallel at a time through the engine's batching.

Examples:
  lightning needle -per-cell 5 -o needle.svg -json needle.json          # the built-in model
  lightning needle -model /models/my-model -per-cell 5 -o needle.svg -json needle.json
  lightning needle -model DIR -lengths 256,512 -depths 0,0.5,1 -per-cell 20 -seed 7
  lightning needle -model DIR -quant q8 -threads 2 -o needle-q8.svg`,
		run: runNeedle,
	})
}

// needleCase is one prompt of the grid and, once run, the model's answer.
type needleCase struct {
	Length       int     `json:"length"` // target context length in tokens
	Depth        float64 `json:"depth"`  // needle depth, 0 (start) to 1 (end)
	Key          int     `json:"key"`
	Groups       int     `json:"groups"` // filler groups in the haystack
	Tokens       int     `json:"tokens"` // prompt tokens
	Continuation string  `json:"continuation"`
	Hit          bool    `json:"hit"`
	ids          []int32 // the prompt
}

// needleSeedStream is the second word of the grid's PCG seed, so that the
// keys for a -seed differ from those of the corpus's passkey streams.
const needleSeedStream = 0x6a09e667f3bcc908

func runNeedle(fs *flag.FlagSet, args []string) error {
	var tf textFlags
	tf.registerModel(fs)
	lengthsFlag := fs.String("lengths", "512,1024,2048,4096,8192", "context lengths in tokens, comma-separated")
	depthsFlag := fs.String("depths", "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1", "needle depths in [0, 1], comma-separated (0 = start, 1 = end)")
	perCell := fs.Int("per-cell", 5, "prompts per (length, depth) cell")
	seed := fs.Uint64("seed", 1, "random seed for the keys")
	n := fs.Int("n", 8, "tokens to generate per prompt (a key is a few tokens)")
	parallel := fs.Int("parallel", 4, "prompts run at once (batched in each forward step)")
	threads := fs.Int("threads", 0, "worker threads (0 = one per core)")
	svgPath := fs.String("o", "", "write the heat map to this SVG file")
	jsonPath := fs.String("json", "", "write the grid, the summary and every prompt's result to this JSON file")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	lengths, err := parseLengths(*lengthsFlag)
	if err != nil {
		return err
	}
	depths, err := parseDepths(*depthsFlag)
	if err != nil {
		return err
	}
	switch {
	case *perCell < 1:
		return fmt.Errorf("%w: -per-cell must be at least 1", errUsage)
	case *n < 1 || *n > 1024:
		return fmt.Errorf("%w: -n must be in [1, 1024]", errUsage)
	case *parallel < 1:
		return fmt.Errorf("%w: -parallel must be at least 1", errUsage)
	case *threads < 0:
		return fmt.Errorf("%w: -threads must be ≥ 0", errUsage)
	}
	if *threads > 0 {
		kernels.SetThreads(*threads)
	}
	stderr := fs.Output()
	t, err := loadText(&tf, engine.Config{MaxSeqs: *parallel, MaxQueue: *parallel}, stderr)
	if err != nil {
		return err
	}
	defer t.close()
	contextLen := t.eng.Info().ContextLen
	limit := func(length int) int {
		if contextLen > 0 {
			return min(length, contextLen-*n)
		}
		return length
	}
	cases, err := needleGrid(lengths, depths, *perCell, *seed, limit, func(s string) []int32 { return t.encode(s, true) })
	if err != nil {
		return err
	}
	name := servedName(tf.dir)
	if tf.quant != "" {
		name += " (" + tf.quant + ")"
	}
	rep := summarizeNeedle(cases, lengths, depths, limit)
	total := 0
	for _, c := range cases {
		total += c.Tokens
	}
	fmt.Fprintf(stderr, "needle: %d lengths × %d depths × %d prompts = %d prompts, %s prompt tokens\n",
		len(lengths), len(depths), *perCell, len(cases), human(float64(total), "tok"))
	for _, r := range rep.Lengths {
		note := ""
		if r.Limit < r.Length {
			note = fmt.Sprintf(" (capped at %d: the model's context is %d and the answer needs %d)", r.Limit, contextLen, *n)
		}
		fmt.Fprintf(stderr, "  length %d: %s prompt tokens, %s filler groups%s\n", r.Length, span(r.TokensMin, r.TokensMax), span(r.GroupsMin, r.GroupsMax), note)
	}
	ctx, stop := interruptContext()
	defer stop()
	if err := t.runNeedleCases(ctx, cases, *n, *parallel, newProgress(stderr, "needle", "tok")); err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	rep = summarizeNeedle(cases, lengths, depths, limit)
	rep.Model, rep.Seed, rep.PerCell, rep.MaxNewTokens, rep.Cases = name, *seed, *perCell, *n, cases
	rep.writeTable(stdout)
	if *svgPath != "" {
		f, err := os.Create(*svgPath)
		if err != nil {
			return err
		}
		if err := writeNeedleSVG(f, &rep); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "heat map written to %s\n", *svgPath)
	}
	if *jsonPath != "" {
		b, err := json.MarshalIndent(&rep, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "results written to %s\n", *jsonPath)
	}
	return nil
}

// span formats a range of counts: "12" or "12–14".
func span(lo, hi int) string {
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

// parseLengths reads -lengths: distinct positive token counts.
func parseLengths(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%w: -lengths: %q is not a positive token count", errUsage, f)
		}
		if slices.Contains(out, v) {
			return nil, fmt.Errorf("%w: -lengths: %d given twice", errUsage, v)
		}
		out = append(out, v)
	}
	return out, nil
}

// parseDepths reads -depths: distinct fractions in [0, 1].
func parseDepths(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(v >= 0 && v <= 1) {
			return nil, fmt.Errorf("%w: -depths: %q is not a depth in [0, 1]", errUsage, f)
		}
		if slices.Contains(out, v) {
			return nil, fmt.Errorf("%w: -depths: %v given twice", errUsage, v)
		}
		out = append(out, v)
	}
	return out, nil
}

// needleGrid builds the prompts of every (length, depth) cell, perCell each,
// in that order, with keys drawn from seed. Each prompt has the most filler
// groups whose encoding (encode, special tokens included) stays within
// limit(length) tokens.
func needleGrid(lengths []int, depths []float64, perCell int, seed uint64, limit func(int) int, encode func(string) []int32) ([]needleCase, error) {
	r := rand.New(rand.NewPCG(seed, needleSeedStream))
	var out []needleCase
	for _, length := range lengths {
		lim := limit(length)
		guess := 0 // the previous prompt's groups: the next one needs about as many
		for _, depth := range depths {
			for range perCell {
				key := passkey.Key(r)
				encoded := map[int][]int32{}
				count := func(groups int) int {
					ids := encode(passkey.Prompt(key, depth, groups))
					encoded[groups] = ids
					return len(ids)
				}
				groups, ok := fitGroups(count, lim, guess)
				if !ok {
					return nil, fmt.Errorf("%w: length %d: the prompt without filler already has %d tokens, more than the %d available",
						errUsage, length, len(encoded[0]), lim)
				}
				guess = groups
				ids := encoded[groups]
				out = append(out, needleCase{Length: length, Depth: depth, Key: key, Groups: groups, Tokens: len(ids), ids: ids})
			}
		}
	}
	return out, nil
}

// fitGroups returns the largest g ≥ 0 with count(g) ≤ limit, for a count
// that grows with g, searching outwards from guess; ok is false when even
// count(0) is over the limit.
func fitGroups(count func(int) int, limit, guess int) (g int, ok bool) {
	if count(0) > limit {
		return 0, false
	}
	lo, hi := 0, -1 // count(lo) ≤ limit < count(hi); hi < 0 while unknown
	if guess > 0 {
		if count(guess) <= limit {
			lo = guess
		} else {
			hi = guess
		}
	}
	if hi < 0 { // gallop up
		for step := 1; hi < 0; step *= 2 {
			if g := lo + step; count(g) <= limit {
				lo = g
			} else {
				hi = g
			}
		}
	} else { // gallop down
		for step := 1; hi-step > lo; step *= 2 {
			if g := hi - step; count(g) <= limit {
				lo = g
				break
			} else {
				hi = g
			}
		}
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if count(mid) <= limit {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, true
}

// runNeedleCases generates greedily for every case, parallel at a time, and
// fills in its continuation and score; bar counts prompt tokens done.
func (t *textModel) runNeedleCases(ctx context.Context, cases []needleCase, maxNew, parallel int, bar *progress) error {
	params := sample.DefaultParams()
	params.Temperature = 0
	total := int64(0)
	for _, c := range cases {
		total += int64(c.Tokens)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		done     int64
		firstErr error
		wg       sync.WaitGroup
	)
	slots := make(chan struct{}, parallel)
	bar.update(0, total)
	for i := range cases {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(c *needleCase) {
			defer wg.Done()
			defer func() { <-slots }()
			err := t.answerNeedle(ctx, c, engine.Request{Prompt: c.ids, MaxTokens: maxNew, Params: params, StopTokens: t.stops, NoCache: true})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("length %d, depth %v, key %d: %w", c.Length, c.Depth, c.Key, err)
				}
				cancel()
				return
			}
			done += int64(c.Tokens)
			bar.update(done, total)
		}(&cases[i])
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// answerNeedle runs one prompt and scores its continuation.
func (t *textModel) answerNeedle(ctx context.Context, c *needleCase, req engine.Request) error {
	st, err := t.eng.Submit(ctx, req)
	if err != nil {
		return err
	}
	toks, res, err := st.Wait(ctx)
	if err != nil {
		st.Cancel()
		return err
	}
	if res.Err != nil {
		return res.Err
	}
	ids := make([]int, len(toks))
	for i, tk := range toks {
		ids[i] = int(tk.ID)
	}
	c.Continuation = t.tok.Decode(ids, true)
	c.Hit = passkey.Hit(c.Continuation, c.Key)
	return nil
}

// needleReport is the outcome of a grid: accuracy per cell and per length
// (what the table, the heat map and -json show).
type needleReport struct {
	Model        string         `json:"model"`
	Seed         uint64         `json:"seed"`
	PerCell      int            `json:"per_cell"`
	MaxNewTokens int            `json:"max_new_tokens"`
	Depths       []float64      `json:"depths"`
	Lengths      []needleLength `json:"lengths"`
	Hits         int            `json:"hits"`
	N            int            `json:"n"`
	Accuracy     float64        `json:"accuracy"` // over every prompt, 0 to 1
	Cases        []needleCase   `json:"cases,omitempty"`
}

// needleLength is one row of the grid: its prompts' sizes and accuracy.
type needleLength struct {
	Length    int           `json:"length"` // target
	Limit     int           `json:"limit"`  // the tokens prompts could use (the target, or less for a short model context)
	TokensMin int           `json:"tokens_min"`
	TokensMax int           `json:"tokens_max"`
	GroupsMin int           `json:"groups_min"`
	GroupsMax int           `json:"groups_max"`
	Hits      int           `json:"hits"`
	N         int           `json:"n"`
	Accuracy  float64       `json:"accuracy"` // over all depths, 0 to 1
	Cells     []needleScore `json:"cells"`    // one per depth, in -depths order
}

// needleScore is one cell's result.
type needleScore struct {
	Depth    float64 `json:"depth"`
	Hits     int     `json:"hits"`
	N        int     `json:"n"`
	Accuracy float64 `json:"accuracy"`
}

// summarizeNeedle counts hits per cell, per length and overall; limit gives
// the tokens a length's prompts could use.
func summarizeNeedle(cases []needleCase, lengths []int, depths []float64, limit func(int) int) needleReport {
	rep := needleReport{Depths: depths}
	for _, length := range lengths {
		row := needleLength{Length: length, Limit: limit(length), TokensMin: -1, GroupsMin: -1}
		for _, depth := range depths {
			s := needleScore{Depth: depth}
			for _, c := range cases {
				if c.Length != length || c.Depth != depth {
					continue
				}
				s.N++
				if c.Hit {
					s.Hits++
				}
				if row.TokensMin < 0 || c.Tokens < row.TokensMin {
					row.TokensMin = c.Tokens
				}
				if row.GroupsMin < 0 || c.Groups < row.GroupsMin {
					row.GroupsMin = c.Groups
				}
				row.TokensMax, row.GroupsMax = max(row.TokensMax, c.Tokens), max(row.GroupsMax, c.Groups)
			}
			s.Accuracy = ratio(s.Hits, s.N)
			row.Hits += s.Hits
			row.N += s.N
			row.Cells = append(row.Cells, s)
		}
		row.Accuracy = ratio(row.Hits, row.N)
		rep.Hits += row.Hits
		rep.N += row.N
		rep.Lengths = append(rep.Lengths, row)
	}
	rep.Accuracy = ratio(rep.Hits, rep.N)
	return rep
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// depthLabel formats a depth for column headings: 0, 0.1, … 1.
func depthLabel(d float64) string { return strconv.FormatFloat(d, 'g', 4, 64) }

// writeTable prints accuracy (%) with lengths as rows and depths as
// columns, each length's accuracy over all depths, and the overall figure.
func (r *needleReport) writeTable(w io.Writer) {
	fmt.Fprintf(w, "passkey retrieval, %s: accuracy %% by context length (rows) and needle depth (columns), %d prompts per cell, seed %d\n",
		r.Model, r.PerCell, r.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "length\tprompt tokens\t")
	for _, d := range r.Depths {
		fmt.Fprintf(tw, "%s\t", depthLabel(d))
	}
	fmt.Fprint(tw, "all depths\t\n")
	for _, row := range r.Lengths {
		fmt.Fprintf(tw, "%d\t%s\t", row.Length, span(row.TokensMin, row.TokensMax))
		for _, c := range row.Cells {
			fmt.Fprintf(tw, "%.0f\t", 100*c.Accuracy)
		}
		fmt.Fprintf(tw, "%.1f\t\n", 100*row.Accuracy)
	}
	tw.Flush()
	fmt.Fprintf(w, "overall: %d of %d prompts right (%.1f%%)\n", r.Hits, r.N, 100*r.Accuracy)
}
