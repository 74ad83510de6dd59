package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lightninglm/lightning/tokenizer"
	"github.com/lightninglm/lightning/train/data"
)

func init() {
	register(&command{
		name:    "train-tokenizer",
		summary: "train a byte-level BPE tokenizer on text, with MiniMax's special tokens and chat template",
		usage:   "-data PATH [-data PATH ...] [PATH ...] -vocab N -o DIR [-eval-frac F]",
		help: `Trains a byte-level BPE tokenizer on the documents under the -data paths and writes a Hugging Face
tokenizer folder: tokenizer.json (BPE vocabulary and merges, GPT-4o's o200k pre-tokenizer regex,
byte-level decoder, special tokens) and tokenizer_config.json (bos <beginning_of_sentence>, eos
<end_of_sentence>, unk <end_of_document>, and MiniMax-M1's chat template), which lightning tokenize,
run, chat, serve and train read, and so do transformers and the tokenizers library.

-vocab counts every id: the 256 byte tokens, the merges, and MiniMax's 58 special tokens, which come
last (]!p~[, <fim_prefix> … </minimax:tool_call>, then <beginning_of_sentence>, <end_of_sentence>,
<begin_of_document>, <end_of_document>). So -vocab 32000 gives 31,686 merges. Special tokens in
the text are cut out before counting and never trained on.

Documents: a text file is one document; a folder is read recursively in name order (hidden and
binary files skipped); a .jsonl file gives one document per line, from its "text" field. Extra
arguments after the flags are more data paths.

Training counts the pre-tokens of all documents, then merges the most frequent pair of symbols
again and again (ties go to the pair made of older tokens). The same data and flags give the
same files, byte for byte. It needs memory for the distinct pre-tokens (about 200,000 in 90 MB of
Go source), not for the text.

-eval-frac F holds out a fraction of the documents (the same documents lightning train holds out
with the same fraction): they are not trained on, and the tokenizer's compression is measured on
them at the end.

Example:
  lightning train-tokenizer -data corpus/ -data extra.jsonl -vocab 32000 -eval-frac 0.01 -o tok32k
  echo 'Hello, world!' | lightning tokenize -tokenizer tok32k
  lightning random-model -preset m300 -tokenizer tok32k -o /tmp/m300   # a model that uses it`,
		run: runTrainTokenizer,
	})
}

// stringList is a flag that may be given more than once.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func runTrainTokenizer(fs *flag.FlagSet, args []string) error {
	var paths stringList
	fs.Var(&paths, "data", "text file, folder or .jsonl file to train on (repeatable)")
	vocab := fs.Int("vocab", 0, "vocabulary size: 256 byte tokens + merges + special tokens (required)")
	out := fs.String("o", "", "output folder (created; must be empty or absent)")
	evalFrac := fs.Float64("eval-frac", 0, "fraction of documents held out from training and used to measure compression, in [0, 1)")
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	paths = append(paths, fs.Args()...)
	specials := tokenizer.MiniMaxSpecialTokens
	switch {
	case len(paths) == 0:
		return fmt.Errorf("%w: no data: give -data PATH (a text file, a folder or a .jsonl file)", errUsage)
	case *vocab == 0:
		return fmt.Errorf("%w: -vocab is required (for example -vocab 32000)", errUsage)
	case *vocab < 256+len(specials):
		return fmt.Errorf("%w: -vocab %d is too small: it must hold the 256 byte tokens and the %d special tokens (at least %d)",
			errUsage, *vocab, len(specials), 256+len(specials))
	case *out == "":
		return fmt.Errorf("%w: -o DIR is required", errUsage)
	case *evalFrac < 0 || *evalFrac >= 1:
		return fmt.Errorf("%w: -eval-frac %v is not in [0, 1)", errUsage, *evalFrac)
	}
	if ents, err := os.ReadDir(*out); err == nil && len(ents) > 0 {
		return fmt.Errorf("output folder %s is not empty; choose a new one", *out)
	}
	stderr := fs.Output()

	tr, err := tokenizer.NewBPETrainer(specials)
	if err != nil {
		return err
	}
	start := time.Now()
	var heldOut []string
	var docs int
	var lastShown time.Time
	showCount := func(final bool) {
		if now := time.Now(); final || now.Sub(lastShown) >= 500*time.Millisecond {
			lastShown = now
			el := max(now.Sub(start).Seconds(), 1e-9)
			fmt.Fprintf(stderr, "\rcounting: %s in %d documents, %s distinct pre-tokens, %s/s ",
				human(float64(tr.Bytes), "B"), docs, human(float64(tr.Words()), ""), human(float64(tr.Bytes)/el, "B"))
		}
	}
	err = data.ReadDocs(paths, func(d data.Doc) error {
		if *evalFrac > 0 && data.HeldOut(d.Name, d.Index, *evalFrac) {
			heldOut = append(heldOut, d.Text)
			return nil
		}
		tr.Add(d.Text)
		docs++
		showCount(false)
		return nil
	})
	if err != nil {
		return fmt.Errorf("-data: %w", err)
	}
	showCount(true)
	fmt.Fprintln(stderr)
	if tr.Bytes == 0 {
		return fmt.Errorf("no training text under %s (%d documents held out)", strings.Join(paths, " "), len(heldOut))
	}
	countTime := time.Since(start)

	nMerges := *vocab - 256 - len(specials)
	bar := newProgress(stderr, "merging", "")
	res, err := tr.Train(*vocab, func(n int) { bar.update(int64(n), int64(nMerges)) })
	if err != nil {
		return err
	}
	if len(res.Merges) < nMerges {
		fmt.Fprintln(stderr)
		fmt.Fprintf(stderr, "note: the data ran out of pairs to merge after %d merges; the vocabulary has %d ids, not %d\n",
			len(res.Merges), res.VocabSize(), *vocab)
	}
	trainTime := time.Since(start)

	cfg, err := res.TokenizerConfigJSON(tokenizer.MiniMaxConfig)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{{"tokenizer.json", res.TokenizerJSON()}, {"tokenizer_config.json", cfg}}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(*out, f.name), f.data); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "trained %d merges on %s (%s pre-tokens, %s distinct) in %.1f s: counting %.1f s (%s/s), merging %.1f s\n",
		len(res.Merges), human(float64(tr.Bytes), "B"), human(float64(tr.PreTokens), ""), human(float64(tr.Words()), ""),
		trainTime.Seconds(), countTime.Seconds(), human(float64(tr.Bytes)/countTime.Seconds(), "B"), (trainTime - countTime).Seconds())

	tok, err := tokenizer.Load(*out)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", *out, err)
	}
	if len(heldOut) > 0 {
		var nBytes, nTokens int
		for _, text := range heldOut {
			nBytes += len(text)
			nTokens += len(tok.Encode(text, false))
		}
		fmt.Fprintf(stderr, "held-out: %d documents, %s in %s tokens: %.2f bytes/token\n",
			len(heldOut), human(float64(nBytes), "B"), human(float64(nTokens), ""), float64(nBytes)/float64(max(nTokens, 1)))
	}
	fmt.Fprintf(stderr, "wrote %s: %d ids = 256 byte tokens + %d merges + %d special tokens\n",
		*out, res.VocabSize(), len(res.Merges), len(res.Specials))
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder, so a reader never sees a partial file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644) // CreateTemp makes the file private; the result is an ordinary file
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return errors.Join(fmt.Errorf("writing %s", path), err)
	}
	return nil
}
