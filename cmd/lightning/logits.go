package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"

	"github.com/lightninglm/lightning/format/safetensors"
	"github.com/lightninglm/lightning/model"
	"github.com/lightninglm/lightning/model/minimax01"
)

func init() {
	register(&command{
		name:    "logits",
		summary: "write the logits of a token-id prompt to a safetensors file",
		usage:   "[-model DIR] -ids 1,2,3 [-chunk N] [-quant FMT] [-plan PLAN (-workers ADDR,… | -local-workers N)] -o out.safetensors",
		help: `Runs the prompt and writes F32 tensor "logits" [T, vocab]: the logits at every position.
With -chunk N the prompt is fed in chunks of N tokens through the state/cache path (prefill of the first
chunk, then continuation); -chunk 1 is token-by-token decode. Every schedule gives the same logits up to
float32 rounding. With -quant the products round their activations to int8, so a float32 rounding can move
one to the next int8 step: schedules then differ more (tiny-a's 257-token golden prompt, whole against
-chunk 1: up to 0.14 at q8, 0.92 at q4g64).
Without -model it runs the built-in model mini, embedded in this binary (no download, no file written).

Across processes: -plan with -workers or -local-workers runs the layers on 'lightning worker' processes
('lightning serve -help', docs/distributed.md); -quant applies here (the LM head) and, through
-local-workers, to the workers.

Examples:
  lightning logits -model DIR -ids 1,2,3 -o l.safetensors
  lightning logits -model DIR -ids 1,2,3 -quant q8 -plan pp=2 -local-workers 2 -o l.safetensors`,
		run: runLogits,
	})
}

func runLogits(fs *flag.FlagSet, args []string) error {
	dir := fs.String("model", "", modelFlagHelp)
	idsFlag := fs.String("ids", "", "prompt token ids, comma-separated")
	chunk := fs.Int("chunk", 0, "feed the prompt in chunks of this many tokens (0 = all at once)")
	out := fs.String("o", "", "output .safetensors file")
	quantFmt := fs.String("quant", "", "quantize the weights at load to this format (q8, q8b32, q4g64, …; see 'lightning quantize')")
	df := addDistFlags(fs, true)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: -o FILE is required", errUsage)
	}
	if *chunk < 0 {
		return fmt.Errorf("%w: -chunk must be ≥ 0", errUsage)
	}
	ids, err := parseIDs(*idsFlag)
	if err != nil {
		return err
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
	n := *chunk
	if n == 0 {
		n = len(ids)
	}
	st := m.NewState()
	logits := make([]float32, len(ids)*V)
	for i := 0; i < len(ids); i += n {
		j := min(i+n, len(ids))
		seq := model.Seq{State: st, Tokens: ids[i:j], Logits: model.LogitsAll}
		if err := forwardErr(func() { m.Forward([]model.Seq{seq}, logits[i*V:j*V]) }); err != nil {
			return err
		}
		if !model.AllFinite(logits[i*V : j*V]) {
			return nonFinite(m, seq, *dir)
		}
	}
	if hub != nil {
		st := hub.Stats()
		fmt.Fprintf(fs.Output(), "traffic: %d B for %d tokens (%s)\n", st.Total(), len(ids), st)
	}
	data := make([]byte, 4*len(logits))
	for i, v := range logits {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	t := safetensors.Tensor{Name: "logits", DType: safetensors.F32, Shape: []int{len(ids), V}, Data: data}
	return safetensors.Write(*out, []safetensors.Tensor{t}, nil)
}
