package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lightninglm/lightning/format/gguf"
	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

func init() {
	register(&command{
		name:    "convert",
		summary: "convert a model to GGUF (llama.cpp, ollama) or back to a Hugging Face folder",
		usage:   "[-model DIR|FILE.gguf] -to gguf|hf [-type f32|f16|bf16|q8_0|q5_0|q5_1|q4_k|q4_k_m|q5_k|q5_k_m|q6_k] -o OUT",
		help: `-to gguf writes one .gguf file in llama.cpp's minimax-01 layout (tensor names, metadata, and the
tokenizer and chat template when the model folder has them), so llama.cpp and ollama can load it; every
Lightning command also takes it as -model FILE.gguf. -type picks the matrices' type (default bf16); norm
weights and router gates stay F32. q8_0 blocks are rounded as Lightning's q8b32, so the file loads back
into exactly the weights of 'lightning quantize -format q8b32 -lm-head q8b32 -embed q8b32'. q5_0 and
q5_1 take ggml's scales (d = the signed largest |x| / -16; d = (max-min)/31 and m = min), rounded to
F16 before quantizing. q4_k, q5_k and q6_k use ggml's plain min/max (absmax for q6_k) scales (no
iterative search: llama-quantize from an f32 file does better); matrices whose rows are not a multiple
of 256 are written as q8_0. q4_k_m and q5_k_m are llama.cpp's popular mixes: q4_k (q5_k) with q6_k
for the output matrix, q5_k (q6_k) for the lightning layers' attn_qkv, and q6_k for attn_v and
ffn_down_exps in the layers llama-quantize favours (the first and last eighth, every third between). 'lightning inspect -tensors OUT.gguf' lists the types.

-to hf writes a Hugging Face folder (config.json + model.safetensors, official names) from any model,
a GGUF file included; -type f32|f16|bf16 (default bf16). A model folder's tokenizer files are copied; a
GGUF file's tokenizer section becomes tokenizer.json and tokenizer_config.json (vocabulary, merges,
added tokens, pre-tokenizer, BOS/EOS and the chat template), so the folder runs on its own.

Both stream one matrix at a time with a progress bar, and write atomically. Without -model they convert
the built-in model mini, embedded in this binary.

Examples:
  lightning convert -model /tmp/b2 -to gguf -type q8_0 -o /tmp/b2-q8_0.gguf
  lightning convert -model /tmp/b2 -to gguf -type q4_k_m -o /tmp/b2-q4_k_m.gguf
  lightning convert -model /tmp/b2-q8_0.gguf -to hf -type f32 -o /tmp/b2-back`,
		run: runConvert,
	})
}

func runConvert(fs *flag.FlagSet, args []string) error {
	src := fs.String("model", "", "model folder or .gguf file (default: the built-in model)")
	to := fs.String("to", "", "gguf or hf")
	typ := fs.String("type", "bf16", "type of the matrices: f32, f16, bf16 (q8_0, q5_0, q5_1, q4_k, q4_k_m, q5_k, q5_k_m, q6_k for gguf)")
	out := fs.String("o", "", "output file (gguf) or folder (hf)")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: -o is required", errUsage)
	}
	m, err := loadModel(*src, minimax01.Options{MaxBatchTokens: 16}, fs.Output())
	if err != nil {
		return err
	}
	defer m.Close()
	bar := newProgress(fs.Output(), "convert", "B")
	switch *to {
	case "gguf":
		name := strings.ToLower(*typ)
		mixed := strings.HasSuffix(name, "_m")
		t, ok := map[string]gguf.Type{"f32": gguf.F32, "f16": gguf.F16, "bf16": gguf.BF16, "q8_0": gguf.Q8_0,
			"q5_0": gguf.Q5_0, "q5_1": gguf.Q5_1, "q4_k": gguf.Q4_K, "q4_k_m": gguf.Q4_K, "q5_k": gguf.Q5_K, "q5_k_m": gguf.Q5_K, "q6_k": gguf.Q6_K}[name]
		if !ok {
			return fmt.Errorf("%w: -type %q: want f32, f16, bf16, q8_0, q5_0, q5_1, q4_k, q4_k_m, q5_k, q5_k_m or q6_k for GGUF (other llama.cpp types: convert to f32 and run llama-quantize)", errUsage, *typ)
		}
		warn := func(s string) { fmt.Fprintf(fs.Output(), "note: %s\n", s) }
		opt := minimax01.GGUFExportOptions{Type: t, Mixed: mixed, Progress: bar.update, Warn: warn}
		if !minimax01.IsGGUF(*src) {
			if opt.Meta, err = ggufTokenizerMeta(*src, m.Config.Vocab, warn); err != nil {
				// llama.cpp refuses a file without tokenizer.ggml.model; "none" is
				// its mark of a model without a vocabulary (random models for
				// benchmarks): it loads, and token ids still run.
				opt.Meta = gguf.NewMetadata()
				opt.Meta.Set(keyTokModel, tokModelNone)
				opt.Meta.Set(minimax01.GGUFArch+".vocab_size", uint32(m.Config.Vocab)) // llama.cpp sizes a vocabulary-less model by it
				fmt.Fprintf(fs.Output(), "warning: no tokenizer (%v): wrote %s = %q, a model without a vocabulary\n", err, keyTokModel, tokModelNone)
			}
		} else {
			opt.Meta, err = ggufTokenizerSection(*src)
			if err != nil {
				return err
			}
		}
		if err := minimax01.WriteGGUF(*out, m.Config, m.Weights, opt); err != nil {
			return err
		}
	case "hf":
		dt, ok := map[string]quant.Type{"f32": quant.F32, "f16": quant.F16, "bf16": quant.BF16}[strings.ToLower(*typ)]
		if !ok {
			return fmt.Errorf("%w: -type %q: want f32, f16 or bf16 for a Hugging Face folder", errUsage, *typ)
		}
		if fi, err := os.Stat(*out); err == nil && fi.IsDir() {
			if ents, _ := os.ReadDir(*out); len(ents) > 0 {
				return fmt.Errorf("%w: -o %s is a folder that is not empty", errUsage, *out)
			}
		}
		if err := minimax01.WriteHF(*out, m.Config, m.Weights, dt, bar.update); err != nil {
			return err
		}
		names, err := writeTokenizerFiles(*src, *out)
		switch {
		case err != nil:
			fmt.Fprintf(fs.Output(), "warning: no tokenizer written (%v)\n", err)
		case len(names) == 0:
			fmt.Fprintf(fs.Output(), "warning: %s has no tokenizer files to copy\n", *src)
		default:
			fmt.Fprintf(fs.Output(), "tokenizer: %s\n", strings.Join(names, ", "))
		}
	default:
		return fmt.Errorf("%w: -to %q: want gguf or hf", errUsage, *to)
	}
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Clean(*out))
	return nil
}

// ggufTokenizerSection copies the tokenizer keys of a GGUF file, so
// re-converting a GGUF keeps its tokenizer.
func ggufTokenizerSection(path string) (*gguf.Metadata, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, out := f.Metadata(), gguf.NewMetadata()
	for _, k := range src.Keys() {
		if strings.HasPrefix(k, "tokenizer.") {
			v, _ := src.Get(k)
			out.Set(k, v)
		}
	}
	return out, nil
}
