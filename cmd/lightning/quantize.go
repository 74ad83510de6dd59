package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

func init() {
	register(&command{
		name:    "quantize",
		summary: "write an 8-bit or 4-bit copy of a float checkpoint",
		usage:   "-model DIR -format q8|q8b32|q4g64|... -o OUT [-lm-head FORMAT|none] [-embed FORMAT|none] [-scale-dtype F16|BF16]",
		help: `Quantizes the attention projections and expert matrices of a float (F32/BF16/F16) checkpoint and writes
a loadable folder: safetensors files named like the source's, with each quantized weight NAME stored as
NAME (I8 or packed U8 quants), NAME_scale and, for the formats with mins, NAME_min; config.json with a
"quantization_config" recording the choice; every other file (tokenizer, generation config) copied.
It streams one tensor at a time, so memory holds one quantized tensor, never the model. The router gate
and the norm weights stay as stored; every product accumulates in fp32.

Formats (bits per weight with F16 scales):
  q8       int8, one F32 scale per output channel (8)
  q8b32    int8, one scale per 32 inputs, like llama.cpp Q8_0 (8.5)
  q4gG     int4, one scale per G = 32, 64 or 128 inputs, symmetric (4 + 16/G)
  q4gGm    int4, a scale and a min per G inputs (4 + 32/G)

-quant FORMAT on run, chat, generate, logits, serve, bench, eval and perplexity applies the same
quantization at load, with the same defaults; it gives exactly the weights of quantize-then-load. Across
processes (-plan) the hub and every worker take the same -quant.

Example:
  lightning quantize -model /tmp/b2 -format q4g64 -o /tmp/b2-q4g64`,
		run: runQuantize,
	})
}

// quantFlags are the flags that choose a QuantSpec (quantize, and -quant on
// the commands that load a model).
type quantFlags struct {
	head, embed, scale *string
}

func addQuantSpecFlags(fs *flag.FlagSet) quantFlags {
	return quantFlags{
		head:  fs.String("lm-head", "q8", "format of lm_head.weight, or none to keep it as stored"),
		embed: fs.String("embed", "none", "format of the token embeddings, or none to keep them as stored"),
		scale: fs.String("scale-dtype", "F16", "dtype of the block formats' scales: F16 or BF16"),
	}
}

// spec builds the QuantSpec of format (a quantized format name), the
// value of flagName.
func (q quantFlags) spec(flagName, format string) (*minimax01.QuantSpec, error) {
	t, err := parseQuantType(flagName, format, false)
	if err != nil {
		return nil, err
	}
	s := minimax01.DefaultQuantSpec(t)
	if q.head != nil {
		if s.LMHead, err = parseQuantType("-lm-head", *q.head, true); err != nil {
			return nil, err
		}
		if s.Embed, err = parseQuantType("-embed", *q.embed, true); err != nil {
			return nil, err
		}
		switch strings.ToUpper(*q.scale) {
		case "F16":
			s.ScaleType = quant.F16
		case "BF16":
			s.ScaleType = quant.BF16
		default:
			return nil, fmt.Errorf("%w: -scale-dtype %q: want F16 or BF16", errUsage, *q.scale)
		}
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return &s, nil
}

// parseQuantType reads a quantized format name ("none" → quant.Invalid
// when allowed).
func parseQuantType(flagName, v string, none bool) (quant.Type, error) {
	if none && v == "none" {
		return quant.Invalid, nil
	}
	t, ok := quant.ByName(strings.ToLower(v))
	if !ok || !t.Quantized() {
		return quant.Invalid, fmt.Errorf("%w: %s %q: want one of %s", errUsage, flagName, v, strings.Join(quant.QuantizedNames(), ", "))
	}
	return t, nil
}

// quantOption reads a -quant flag value: "" means no quantization at load.
func quantOption(v string) (*minimax01.QuantSpec, error) {
	if v == "" {
		return nil, nil
	}
	return quantFlags{}.spec("-quant", v)
}

func runQuantize(fs *flag.FlagSet, args []string) error {
	dir := fs.String("model", "", "float checkpoint folder")
	format := fs.String("format", "", "quantized format: "+strings.Join(quant.QuantizedNames(), ", "))
	out := fs.String("o", "", "output folder")
	qf := addQuantSpecFlags(fs)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *dir == "" || *out == "" || *format == "" {
		return fmt.Errorf("%w: -model DIR, -format FORMAT and -o OUT are required", errUsage)
	}
	spec, err := qf.spec("-format", *format)
	if err != nil {
		return err
	}
	if ents, err := os.ReadDir(*out); err == nil && len(ents) > 0 {
		return fmt.Errorf("%w: -o %s exists and is not empty", errUsage, *out)
	}
	stderr := fs.Output()
	fmt.Fprintf(stderr, "quantizing %s → %s (%s)\n", *dir, *out, spec)
	bar := newProgress(stderr, "quantize", "B")
	start := time.Now()
	if err := minimax01.QuantizeCheckpoint(*dir, *out, minimax01.QuantizeOptions{Spec: *spec, Progress: bar.update,
		Warn: func(msg string) { fmt.Fprintf(stderr, "warning: %s\n", msg) }}); err != nil {
		return err
	}
	in, outB := dirBytes(*dir), dirBytes(*out)
	fmt.Fprintf(stderr, "wrote %s in %v: %s of weights → %s (%.2f×)\n", *out, time.Since(start).Round(time.Millisecond),
		human(float64(in), "B"), human(float64(outB), "B"), float64(in)/float64(max(outB, 1)))
	return nil
}

// dirBytes sums the sizes of the .safetensors files in dir.
func dirBytes(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".safetensors") {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}
