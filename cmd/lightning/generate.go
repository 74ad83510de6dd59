package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/lightninglm/lightning/dist"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
)

func init() {
	register(&command{
		name:    "generate",
		summary: "generate token ids from a token-id prompt (greedy)",
		usage:   "[-model DIR] -ids 1,2,3 [-n 32] [-stop ID,...] [-quant FMT] [-plan PLAN (-workers ADDR,… | -local-workers N)]",
		help: `Feeds the prompt, then generates -n new tokens and prints them comma-separated on stdout. Always
greedy (argmax, ties to the lowest id): a reproducible check of a checkpoint; 'lightning run' samples text.
Timing goes to stderr with -v.
Without -model it runs the built-in model mini, embedded in this binary (no download, no file written).

Across processes: -plan with -workers or -local-workers runs the layers on 'lightning worker' processes
('lightning serve -help', docs/distributed.md); -v adds each worker's memory and the bytes sent. -quant
applies here (the LM head) and, through -local-workers, to the workers.

Examples:
  lightning generate -model DIR -ids 1,2,3 -n 16
  lightning generate -model DIR -ids 1,2,3 -n 16 -quant q8 -plan pp=2 -local-workers 2 -v`,
		run: runGenerate,
	})
}

func runGenerate(fs *flag.FlagSet, args []string) error {
	dir := fs.String("model", "", modelFlagHelp)
	idsFlag := fs.String("ids", "", "prompt token ids, comma-separated")
	n := fs.Int("n", 32, "number of new tokens")
	stop := fs.String("stop", "", "stop after generating any of these ids (comma-separated; the stop id is printed)")
	verbose := fs.Bool("v", false, "print prefill and decode speed to stderr")
	quantFmt := fs.String("quant", "", "quantize the weights at load to this format (q8, q8b32, q4g64, …; see 'lightning quantize')")
	df := addDistFlags(fs, true)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("%w: -n must be at least 1", errUsage)
	}
	ids, err := parseIDs(*idsFlag)
	if err != nil {
		return err
	}
	stopIDs := map[int32]bool{}
	if *stop != "" {
		s, err := parseIDs(*stop)
		if err != nil {
			return err
		}
		for _, id := range s {
			stopIDs[id] = true
		}
	}
	spec, err := quantOption(*quantFmt)
	if err != nil {
		return err
	}
	m, hub, closeModel, err := openModel(*dir, minimax01.Options{Quant: spec}, df, fs)
	if err != nil {
		return err
	}
	defer closeModel()
	V := m.Info().VocabSize
	if err := checkIDs(ids, V); err != nil {
		return err
	}
	st := m.NewState()
	logits := make([]float32, V)
	var out []string
	next := ids
	start := time.Now()
	var prefill time.Duration
	var prefillTraffic dist.Stats
	for i := 0; i < *n; i++ {
		seq := model.Seq{State: st, Tokens: next, Logits: model.LogitsLast}
		if err := forwardErr(func() { m.Forward([]model.Seq{seq}, logits) }); err != nil {
			return err
		}
		if !model.AllFinite(logits) {
			return nonFinite(m, seq, *dir)
		}
		if i == 0 {
			prefill = time.Since(start)
			if hub != nil {
				prefillTraffic = hub.Stats()
			}
		}
		best := 0
		for j, v := range logits {
			if v > logits[best] {
				best = j
			}
		}
		out = append(out, fmt.Sprint(best))
		next = []int32{int32(best)}
		if stopIDs[int32(best)] {
			break
		}
	}
	fmt.Fprintln(stdout, strings.Join(out, ","))
	if *verbose {
		dec := time.Since(start) - prefill
		fmt.Fprintf(fs.Output(), "prefill %d tokens in %v (%.1f tok/s); decode %d tokens in %v (%.1f tok/s)\n",
			len(ids), prefill.Round(time.Millisecond), float64(len(ids))/prefill.Seconds(),
			len(out)-1, dec.Round(time.Millisecond), float64(len(out)-1)/dec.Seconds())
		if hub != nil {
			d := hub.Stats()
			fmt.Fprintf(fs.Output(), "traffic: prefill %d B (%.0f B per prompt token); decode %d B (%.0f B per generated token); %s\n",
				prefillTraffic.Total(), float64(prefillTraffic.Total())/float64(len(ids)),
				d.Total(), float64(d.Total())/float64(max(len(out)-1, 1)), d)
		}
	}
	return nil
}
