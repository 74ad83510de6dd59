package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lightninglm/lightning/model/minimax01"
	"github.com/lightninglm/lightning/quant"
)

func init() {
	register(&command{
		name:    "random-model",
		summary: "write a random-weight model of a real or preset shape (benchmarks, demos, tests)",
		usage:   "(-preset NAME | -like DIR) -o DIR [-dtype bf16] [-vocab N] [-tokenizer DIR] [-seed N]",
		help: `Writes a MiniMax-01 checkpoint with random weights in the real Hugging Face layout: config.json with the
official field names, and model.safetensors (or 0-based shards plus model.safetensors.index.json for big
models). Weights follow the official init, which training shares (minimax01.InitWeights): every matrix,
the embedding and the router gates N(0, initializer_range^2) with initializer_range 0.02, norm weights 1; router
gates are always F32, as in the real checkpoint.

Presets:
` + presetHelp() + `
-tokenizer DIR copies tokenizer.json, tokenizer_config.json (and vocab.json/merges.txt, chat_template.jinja,
special_tokens_map.json if present) into the model and sets the vocabulary to fit it, so text can flow end to
end through run/chat/serve.

Example:
  lightning random-model -preset m300 -o /tmp/m300
  lightning random-model -like /models/MiniMax-Text-01 -vocab 32000 -o /tmp/shape-test`,
		run: runRandomModel,
	})
}

func presetHelp() string {
	var b strings.Builder
	for _, p := range minimax01.Presets {
		fmt.Fprintf(&b, "  %-16s %s\n", p.Name, p.Summary)
	}
	return strings.TrimRight(b.String(), "\n")
}

func runRandomModel(fs *flag.FlagSet, args []string) error {
	preset := fs.String("preset", "", "shape preset (see the list above)")
	like := fs.String("like", "", "copy the shape of this model folder's config.json")
	out := fs.String("o", "", "output folder (created; must be empty or absent)")
	dtype := fs.String("dtype", "bf16", "weight dtype: f32, bf16 or f16")
	vocab := fs.Int("vocab", 0, "override the vocabulary size")
	tok := fs.String("tokenizer", "", "copy this folder's tokenizer files and size the vocabulary to fit")
	seed := fs.Uint64("seed", 1, "random seed (same seed, same weights)")
	shard := fs.Int64("shard-mb", 2048, "shard size in MiB")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	stderr := fs.Output()
	if (*preset == "") == (*like == "") {
		return fmt.Errorf("%w: give exactly one of -preset NAME or -like DIR", errUsage)
	}
	if *out == "" {
		return fmt.Errorf("%w: -o DIR is required", errUsage)
	}
	var typ quant.Type
	switch strings.ToLower(*dtype) {
	case "f32", "float32":
		typ = quant.F32
	case "bf16", "bfloat16":
		typ = quant.BF16
	case "f16", "float16":
		typ = quant.F16
	default:
		return fmt.Errorf("%w: -dtype %q: want f32, bf16 or f16", errUsage, *dtype)
	}
	var cfg *minimax01.Config
	var err error
	if *preset != "" {
		cfg, err = minimax01.PresetConfig(*preset)
	} else {
		cfg, err = minimax01.LoadConfig(*like)
	}
	if err != nil {
		return err
	}
	if *vocab < 0 {
		return fmt.Errorf("%w: -vocab must be positive", errUsage)
	}
	if *vocab > 0 {
		cfg.Vocab = *vocab
	}
	var tokFiles []string
	if *tok != "" {
		n, files, err := tokenizerVocab(*tok)
		if err != nil {
			return err
		}
		if *vocab > 0 && *vocab < n {
			return fmt.Errorf("%w: -vocab %d is smaller than the tokenizer's %d ids", errUsage, *vocab, n)
		}
		if *vocab == 0 {
			cfg.Vocab = (n + 63) / 64 * 64 // padded to a multiple of 64, as the real 200,064 is
		}
		tokFiles = files
	}
	if ents, err := os.ReadDir(*out); err == nil && len(ents) > 0 {
		return fmt.Errorf("output folder %s is not empty; choose a new one", *out)
	}
	total, active := cfg.Params()
	esize := map[quant.Type]int64{quant.F32: 4, quant.BF16: 2, quant.F16: 2}[typ]
	if total*esize > 500<<30 {
		return fmt.Errorf("a random %s model would take %s on disk; pick a smaller shape (-preset, -vocab, or edit a config and use -like)", *preset+*like, human(float64(total*esize), "B"))
	}
	fmt.Fprintf(stderr, "writing %s: %s parameters (%s active per token), %s, %s\n", *out, human(float64(total), ""), human(float64(active), ""), typ, human(float64(total*esize), "B"))
	bar := newProgress(stderr, "weights", "B")
	err = minimax01.WriteRandom(*out, cfg, minimax01.RandomOptions{DType: typ, Seed: *seed, ShardBytes: *shard << 20, Progress: bar.update, Files: tokFiles})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "done: %s\n", *out)
	return nil
}

// tokenizerVocab finds how many ids a tokenizer folder uses (the largest id in
// tokenizer.json's vocab and added tokens, plus one) and which files to copy.
func tokenizerVocab(dir string) (int, []string, error) {
	var files []string
	for _, n := range tokenizerFiles {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return 0, nil, fmt.Errorf("-tokenizer: %w (the folder needs a tokenizer.json)", err)
	}
	var tj struct {
		Model struct {
			Vocab json.RawMessage `json:"vocab"`
		} `json:"model"`
		Added []struct {
			ID int `json:"id"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(b, &tj); err != nil {
		return 0, nil, fmt.Errorf("-tokenizer: %s/tokenizer.json: %w", dir, err)
	}
	maxID := -1
	var asMap map[string]int
	if err := json.Unmarshal(tj.Model.Vocab, &asMap); err == nil {
		for _, id := range asMap {
			maxID = max(maxID, id)
		}
	} else {
		var asList [][2]any // Unigram-style [piece, score] lists: ids are positions
		if err := json.Unmarshal(tj.Model.Vocab, &asList); err != nil {
			return 0, nil, errors.New("-tokenizer: tokenizer.json model.vocab is neither a map nor a list")
		}
		maxID = len(asList) - 1
	}
	for _, a := range tj.Added {
		maxID = max(maxID, a.ID)
	}
	if maxID < 0 {
		return 0, nil, errors.New("-tokenizer: tokenizer.json has an empty vocabulary")
	}
	return maxID + 1, files, nil
}
