package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/lightninglm/lightning/train"
)

func init() {
	register(&command{
		name:    "plot",
		summary: "draw and compare the loss curves of training runs (their metrics.jsonl) in one picture",
		usage:   "[-o FILE.svg] [-title T] [-steps N] RUN[=NAME]...",
		help: `
Reads each RUN's metrics.jsonl (RUN is a 'lightning train' run folder, or the metrics.jsonl file itself) and
draws every run's training loss and held-out eval loss against training tokens on shared axes, as an SVG
picture. On standard output it prints a table of the eval losses of all runs at each evaluated step, then
each run's steps, tokens and mean training loss over its last 20 steps, so runs of the same budget can be
compared by eye and by number; -steps N cuts every run at step N. NAME labels a run in the legend (default: the folder's name).

Example:
  lightning plot -o compare.svg runs/hybrid=hybrid runs/softmax=all-softmax runs/lightning=all-lightning`,
		run: runPlot,
	})
}

// plotRun is one run read from its metrics.jsonl.
type plotRun struct {
	name    string
	records []train.Record
}

func runPlot(fs *flag.FlagSet, args []string) error {
	out := fs.String("o", "loss-compare.svg", "the SVG file to write")
	title := fs.String("title", "", "picture title (default: the runs' names)")
	upTo := fs.Int("steps", 0, "use only steps up to this one (0: all), to compare runs at the same budget")
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: name at least one run folder or metrics.jsonl", errUsage)
	}
	var runs []plotRun
	for _, arg := range fs.Args() {
		path, name, named := strings.Cut(arg, "=")
		r, err := readRunMetrics(path)
		if err != nil {
			return err
		}
		r.name = name
		if *upTo > 0 {
			n := sort.Search(len(r.records), func(i int) bool { return r.records[i].Step > *upTo })
			if n == 0 {
				return fmt.Errorf("%s: no steps up to %d", path, *upTo)
			}
			r.records = r.records[:n]
		}
		if !named {
			r.name = filepath.Base(strings.TrimSuffix(filepath.Clean(path), "/metrics.jsonl"))
		}
		runs = append(runs, r)
	}
	curves := make([]train.NamedCurve, len(runs))
	names := make([]string, len(runs))
	for i, r := range runs {
		var c train.Curve
		for _, rec := range r.records {
			c.Add(rec)
		}
		curves[i] = train.NamedCurve{Name: r.name, Curve: &c}
		names[i] = r.name
	}
	if *title == "" {
		*title = "loss: " + strings.Join(names, ", ")
	}
	var svg bytes.Buffer
	if err := train.WriteCurvesSVG(&svg, *title, curves); err != nil {
		return err
	}
	if err := writeFileAtomic(*out, svg.Bytes()); err != nil {
		return err
	}
	printRunTable(runs)
	fmt.Fprintf(fs.Output(), "wrote %s\n", *out)
	return nil
}

// readRunMetrics reads the records of a run folder's metrics.jsonl (or of
// that file named directly), in step order, the last record of a step
// winning.
func readRunMetrics(path string) (plotRun, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "metrics.jsonl")
	}
	f, err := os.Open(path)
	if err != nil {
		return plotRun{}, err
	}
	defer f.Close()
	byStep := map[int]train.Record{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r train.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return plotRun{}, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if r.Step <= 0 {
			return plotRun{}, fmt.Errorf("%s:%d: a record without a positive step", path, line)
		}
		byStep[r.Step] = r
	}
	if err := sc.Err(); err != nil {
		return plotRun{}, fmt.Errorf("%s: %v", path, err)
	}
	if len(byStep) == 0 {
		return plotRun{}, errors.New(path + ": no steps recorded yet")
	}
	r := plotRun{}
	for _, rec := range byStep {
		r.records = append(r.records, rec)
	}
	sort.Slice(r.records, func(i, j int) bool { return r.records[i].Step < r.records[j].Step })
	return r, nil
}

// printRunTable prints the runs' eval losses side by side at every evaluated
// step, then a summary line per run.
func printRunTable(runs []plotRun) {
	evals := map[int][]string{}
	for i, r := range runs {
		for _, rec := range r.records {
			if rec.EvalLoss == nil {
				continue
			}
			if evals[rec.Step] == nil {
				evals[rec.Step] = make([]string, len(runs))
			}
			evals[rec.Step][i] = fmt.Sprintf("%.4f", *rec.EvalLoss)
		}
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(evals) > 0 {
		fmt.Fprint(w, "eval loss at step\t")
		for _, r := range runs {
			fmt.Fprintf(w, "%s\t", r.name)
		}
		fmt.Fprintln(w)
		steps := make([]int, 0, len(evals))
		for s := range evals {
			steps = append(steps, s)
		}
		sort.Ints(steps)
		for _, s := range steps {
			fmt.Fprintf(w, "%d\t", s)
			for _, v := range evals[s] {
				if v == "" {
					v = "-"
				}
				fmt.Fprintf(w, "%s\t", v)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "run\tsteps\ttokens\ttraining loss (last 20 steps)\t")
	for _, r := range runs {
		last := r.records[max(len(r.records)-20, 0):]
		sum := 0.0
		for _, rec := range last {
			sum += rec.Loss
		}
		end := r.records[len(r.records)-1]
		fmt.Fprintf(w, "%s\t%d\t%d\t%.4f\t\n", r.name, end.Step, end.Tokens, sum/float64(len(last)))
	}
	w.Flush()
}
